// Runs every compiled test file with Node's test runner. The file list is
// built here rather than by a glob in package.json so that a run that finds
// no test fails loudly instead of passing with nothing executed.
//
// Every test writes its temporary files under one folder of this run (TMPDIR
// for the test processes and what they start), removed when the run ends,
// failed or not: a test that stops early, or a process killed by a timeout,
// leaves nothing behind in the machine's /tmp.
import { chmodSync, mkdtempSync, readdirSync, rmSync, statSync, statfsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawn } from 'node:child_process';

function walk(dir) {
  const out = [];
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) out.push(...walk(path));
    else if (name.endsWith('.test.js')) out.push(path);
  }
  return out;
}

const filter = process.argv.slice(2);
let files = walk('dist/test').sort();
if (filter.length > 0) files = files.filter((f) => filter.some((x) => f.includes(x)));
if (files.length === 0) {
  console.error('run-tests: no test files found under dist/test (did the build run?)');
  process.exit(1);
}

// The suite needs about 1 GiB at its peak (a Kubernetes API server's etcd, Envoy copied for another uid).
const free = (() => {
  const s = statfsSync(tmpdir());
  return Number(s.bavail) * Number(s.bsize);
})();
if (free < 2 * 2 ** 30) {
  console.error(`run-tests: warning: only ${(free / 2 ** 20).toFixed(0)} MiB free in ${tmpdir()}; tests that write there may fail with ENOSPC`);
}

const root = mkdtempSync(join(tmpdir(), 'smc-test-run-'));
// Sidecars run as the proxy uid in the network-namespace tests: they must be able to pass through.
chmodSync(root, 0o755);
const cleanup = () => rmSync(root, { recursive: true, force: true, maxRetries: 3 });

const child = spawn(
  process.execPath,
  ['--test', '--test-reporter=spec', '--test-concurrency=1', ...files],
  { stdio: 'inherit', env: { ...process.env, TMPDIR: root } },
);
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(signal, () => child.kill(signal));
}
child.on('exit', (code) => {
  cleanup();
  process.exit(code ?? 1);
});
