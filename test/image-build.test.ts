import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { envoyPath } from './helpers/envoy.js';

/**
 * The image (deploy/Dockerfile) builds, and carries the Envoy the tests run.
 * There is no container engine here: the build stage is replayed in a clean
 * folder, with its COPY set and its RUN lines. `npm ci` is replayed from the
 * repository's own installed node_modules (hard links: the registry is not
 * asked again, and nothing of the repository's copy changes); every other
 * RUN line runs as written.
 */
const dockerfile = readFileSync('deploy/Dockerfile', 'utf8');
const lines = dockerfile.split('\n').map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith('#'));

/** The instructions of the stage named `name` (`FROM ... AS name`). */
function stage(name: string): string[] {
  const start = lines.findIndex((l) => new RegExp(`^FROM .* AS ${name}$`, 'i').test(l));
  assert.ok(start >= 0, `deploy/Dockerfile has no stage ${name}`);
  const end = lines.findIndex((l, i) => i > start && /^FROM /i.test(l));
  return lines.slice(start + 1, end < 0 ? undefined : end);
}

test("the image's build stage, replayed in a clean folder with only what it copies, compiles and leaves a runnable smc", () => {
  const dir = mkdtempSync(join(tmpdir(), 'smc-image-'));
  try {
    let workdir = dir;
    for (const line of stage('build')) {
      const [instruction, ...rest] = line.split(/\s+/);
      const args = rest.join(' ');
      switch (instruction!.toUpperCase()) {
        case 'WORKDIR':
          workdir = join(dir, args.replace(/^\//, ''));
          break;
        case 'COPY': {
          assert.ok(!args.startsWith('--'), `COPY with options is not replayed: ${line}`);
          const parts = args.split(/\s+/);
          const dest = parts.pop()!;
          for (const src of parts) {
            const to = dest.endsWith('/') || parts.length > 1 ? join(workdir, dest, src.split('/').pop()!) : join(workdir, dest);
            cpSync(src, to, { recursive: true });
          }
          break;
        }
        case 'RUN': {
          if (/^npm ci\b/.test(args)) {
            execFileSync('cp', ['-a', '-l', 'node_modules', join(workdir, 'node_modules')]);
            // npm rewrites its own record of the tree: a copy of its own, not a link to the repository's.
            const record = join(workdir, 'node_modules', '.package-lock.json');
            if (existsSync(record)) {
              rmSync(record);
              cpSync('node_modules/.package-lock.json', record);
            }
            break;
          }
          const r = spawnSync('sh', ['-c', args], { cwd: workdir, encoding: 'utf8', env: { ...process.env, npm_config_offline: 'true' } });
          assert.equal(r.status, 0, `RUN ${args} failed in the replayed build stage:\n${r.stdout}\n${r.stderr}`);
          break;
        }
        default:
          assert.fail(`an instruction the replay does not know: ${line}`);
      }
    }
    // What the final stage takes from the build stage, and the command it runs.
    for (const line of lines.filter((l) => /^COPY --from=build /.test(l))) {
      const src = line.split(/\s+/)[2]!.replace(/^\/src\/?/, '');
      assert.ok(existsSync(join(workdir, src)), `the final stage copies ${src}, which the build stage did not make`);
    }
    const help = execFileSync(process.execPath, ['dist/src/cli/main.js', '--help'], { cwd: workdir, encoding: 'utf8' });
    assert.match(help, /smc controller/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("the image's Envoy is the version the tests run (deploy/envoy-version)", () => {
  const pinned = readFileSync('deploy/envoy-version', 'utf8').trim();
  const arg = /^ARG ENVOY_VERSION=(\S+)$/m.exec(dockerfile)?.[1];
  assert.equal(arg, pinned, 'deploy/Dockerfile builds its Envoy from the version deploy/envoy-version names');
  assert.match(dockerfile, /^FROM envoyproxy\/envoy:v\$\{ENVOY_VERSION\} AS envoy$/m);
  assert.match(dockerfile, /^COPY --from=envoy \/usr\/local\/bin\/envoy /m);
  const version = execFileSync(envoyPath(), ['--version'], { encoding: 'utf8' });
  assert.ok(version.includes(`/${pinned}/`), `the tests' Envoy (${dirname(envoyPath())}) is ${version.trim()}, not ${pinned}`);
});
