import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { testController } from './helpers/controller.js';
import { startEnvoy } from './helpers/envoy.js';
import { freePort } from './helpers/tools.js';
import { waitFor } from './helpers/wait.js';

/** The watched folder: edits reach a connected real Envoy without a restart (live controller, folder source). */
const BOOKSTORE_CLUSTER = 'outbound|14001|bookstore-v1.bookstore';
const BOOKBUYER = 'spiffe://cluster.local/ns/bookbuyer/sa/bookbuyer';
const BOOKTHIEF = 'spiffe://cluster.local/ns/bookthief/sa/bookthief';

test('edit, break, fix, add and delete policy files while a real Envoy is connected: it follows every change, a broken file keeps its last good objects', async () => {
  const { controller, dir, state, logs } = await testController('examples/bookstore', { pushWindowMs: 0 });
  const envoy = await startEnvoy('bookbuyer/bookbuyer', controller.xdsPort, dir, state);
  const clusters = async () => (await (await fetch(`http://127.0.0.1:${envoy.adminPort}/clusters`)).text());
  const has = async (name: string) => (await clusters()).includes(`${name}::`);
  const policy = join(dir, 'mesh', '40-policy.yaml');
  const original = readFileSync(policy, 'utf8');
  const timed = async (what: string, write: () => void, seen: () => Promise<boolean>) => {
    const t0 = Date.now();
    write();
    await waitFor(what, async () => ((await seen()) ? true : undefined), 10_000);
    process.stdout.write(`live: ${what}: ${Date.now() - t0} ms from the file write to Envoy's admin showing it\n`);
  };
  try {
    await waitFor('Envoy to receive bookstore', async () => ((await has(BOOKSTORE_CLUSTER)) ? true : undefined), 20_000);

    // Edit: bookbuyer loses its grant, and Envoy drops the cluster.
    const denied = original.replace('    - {kind: ServiceAccount, name: bookbuyer, namespace: bookbuyer}\n', '    - {kind: ServiceAccount, name: bookthief, namespace: bookthief}\n');
    assert.notEqual(denied, original);
    await timed('an edit that removes a grant', () => writeFileSync(policy, denied), async () => !(await has(BOOKSTORE_CLUSTER)));
    assert.ok(controller.cache.get(BOOKTHIEF)!.types.cluster.resources.has(BOOKSTORE_CLUSTER), 'bookthief gained it');

    // Break: the file no longer parses; its last good objects stay in force and the status says so.
    const versionBefore = controller.cache.get(BOOKBUYER)!.types.cluster.version;
    writeFileSync(policy, `${denied}\n  bad: [indent\n`);
    const status = await waitFor('the status to report the broken file', async () => {
      const text = await (await fetch(`http://127.0.0.1:${controller.adminPort}/status/inputs`)).text();
      return text.includes('last good objects stay in force') ? text : undefined;
    });
    assert.match(status, /40-policy\.yaml/);
    assert.ok(logs.some((l) => l.includes('40-policy.yaml') && l.includes('last good objects stay in force')));
    assert.equal(controller.cache.get(BOOKBUYER)!.types.cluster.version, versionBefore, 'nothing changed for the proxy');
    assert.ok(controller.cache.get(BOOKTHIEF)!.types.cluster.resources.has(BOOKSTORE_CLUSTER), 'the broken file\'s grant to bookthief is still in force');

    // Fix: back to the original, and Envoy gets the cluster again.
    await timed('a fix that restores the grant', () => writeFileSync(policy, original), () => has(BOOKSTORE_CLUSTER));

    // Add a file, then delete it: its objects come and go.
    const extra = join(dir, 'mesh', '50-thief.yaml');
    const grant = original.split('---\n').find((d) => d.includes('name: bookbuyer-access-bookstore'))!
      .replace('bookbuyer-access-bookstore', 'bookthief-access-bookstore')
      .replace('name: bookbuyer, namespace: bookbuyer', 'name: bookthief, namespace: bookthief');
    writeFileSync(extra, grant);
    await waitFor('the added file to take effect', () => (controller.cache.get(BOOKTHIEF)!.types.cluster.resources.has(BOOKSTORE_CLUSTER) ? true : undefined), 5000);
    rmSync(extra);
    await waitFor('the deleted file to take its objects along', () => (controller.cache.get(BOOKTHIEF)!.types.cluster.resources.has(BOOKSTORE_CLUSTER) ? undefined : true), 5000);
    assert.ok(logs.some((l) => l.includes('50-thief.yaml was removed')));
    assert.ok(await has(BOOKSTORE_CLUSTER), 'bookbuyer kept its own access throughout');
  } finally {
    envoy.envoy.kill('SIGKILL');
    await controller.close();
  }
});

test('SIGHUP makes the controller read its sources again, and it keeps serving', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'smc-hup-'));
  cpSync('examples/bookstore', join(dir, 'mesh'), { recursive: true });
  const admin = await freePort();
  const child = spawn(process.execPath, ['dist/src/cli/main.js', 'controller', '--source', join(dir, 'mesh'), '--state', join(dir, 'state'), '--xds-address', `127.0.0.1:${await freePort()}`, '--admin-address', `127.0.0.1:${admin}`], { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  child.stderr.on('data', (d: Buffer) => (log += d.toString()));
  try {
    await waitFor('readiness', async () => ((await fetch(`http://127.0.0.1:${admin}/readyz`)).status === 200 ? true : undefined));
    child.kill('SIGHUP');
    await waitFor('the re-read', () => (/SIGHUP: \d+ identity\(ies\) changed/.test(log) ? true : undefined), 5000);
    assert.equal(child.exitCode, null, 'SIGHUP no longer kills the controller');
    assert.equal((await fetch(`http://127.0.0.1:${admin}/readyz`)).status, 200);
  } finally {
    child.kill('SIGKILL');
  }
});
