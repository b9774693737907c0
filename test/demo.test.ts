import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { waitFor } from './helpers/wait.js';

/** `npm run demo` as the README runs it (on a copy of the example, so the test may edit it): counters show, and an edit changes them. */
test('the demo brings the bookstore mesh up, shows allowed and denied calls, and a policy edit visibly changes them', { timeout: 120_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'smc-demo-'));
  cpSync('examples/bookstore', dir, { recursive: true });
  const demo = spawn(process.execPath, ['dist/lab/demo.js', '--source', dir, '--plain', '--duration', '40'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  demo.stdout.on('data', (d: Buffer) => (out += d.toString()));
  demo.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const lastScreen = () => out.split('smc demo:').at(-1) ?? '';
  const thief = () => /bookthief -> bookstore\s+allowed: (.*?)\s+denied: (.*)/.exec(lastScreen());
  try {
    await waitFor('the first counters', () => (/bookbuyer -> bookstore\s+allowed: bookstore-v1 \d+/.test(lastScreen()) && thief() ? true : undefined), 60_000).catch((e: Error) => assert.fail(`${e.message}\n${out.slice(-3000)}`));
    assert.equal(thief()![1], '-', 'bookthief is denied');
    assert.match(lastScreen(), /bookwarehouse -> mysql \(tcp\)\s+allowed: mysql \d+/);
    assert.match(lastScreen(), /bookbuyer\/bookbuyer\/bookbuyer-1\s+SYNCED/);
    // It says how long it took, where its admin port is, and the commands to try there, which work.
    assert.match(out, /^demo: the mesh is up \(\d+\.\d s\); the controller's admin port is 127\.0\.0\.1:\d+$/m);
    assert.match(lastScreen(), /^\s+node dist\/src\/cli\/main\.js proxy-config bookbuyer\/bookbuyer\/bookbuyer-1 routes/m);
    const command = /^\s+node dist\/src\/cli\/main\.js (proxy-status.*)$/m.exec(lastScreen())![1]!.split(' ');
    const status = spawnSync(process.execPath, ['dist/src/cli/main.js', ...command], { encoding: 'utf8' });
    assert.match(status.stdout, /^bookbuyer\/bookbuyer\/bookbuyer-1 /m, status.stderr);
    // --plain tables carry the time.
    assert.match(lastScreen(), /calls in the last 5 s; edit the files there and watch\. \[\d{4}-\d\d-\d\dT[\d:.]+Z\]/);
    // A problem shows whole on screen: its did-you-mean is at the end of a long line.
    writeFileSync(join(dir, '90-typo.yaml'), 'apiVersion: split.smi-spec.io/v1alpha4\nkind: TrafficSplit\nmetadata: {name: typo-with-a-rather-long-name-to-make-the-line-long, namespace: bookstore}\nspec: {service: bookstore, backends: [{service: bookstore-v1, weight: 1}], bakends: []}\n');
    await waitFor('the whole problem on screen', () => (/unknown field "spec\.bakends"; did you mean "backends"\?/.test(lastScreen()) ? true : undefined), 20_000).catch((e: Error) => assert.fail(`${e.message}\n${lastScreen()}`));
    rmSync(join(dir, '90-typo.yaml'));
    // The README's first suggested edit: permissive mode lets bookthief in.
    writeFileSync(join(dir, '00-mesh.yaml'), readFileSync(join(dir, '00-mesh.yaml'), 'utf8').replace('permissive: false', 'permissive: true'));
    await waitFor('bookthief to be allowed on screen', () => (/^bookstore-v\d \d+/.test(thief()?.[1] ?? '') ? true : undefined), 20_000).catch((e: Error) => assert.fail(`${e.message}\n${lastScreen()}`));
  } finally {
    demo.kill('SIGINT');
    await new Promise((r) => demo.once('exit', r));
    rmSync(dir, { recursive: true, force: true });
  }
  assert.match(out, /removing the network namespaces/, 'Ctrl-C tears it down');
});
