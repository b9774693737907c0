import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
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
