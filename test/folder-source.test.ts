import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { appendFileSync, closeSync, cpSync, mkdirSync, mkdtempSync, openSync, readFileSync, renameSync, rmSync, symlinkSync, truncateSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { testController } from './helpers/controller.js';
import { freePort } from './helpers/tools.js';
import { sleep, waitFor } from './helpers/wait.js';
import { createFolderSource } from '../src/adapters/folder-source.js';
import { createInputStore } from '../src/adapters/source.js';

/** The watched folder, written every way editors and tools write files, while the controller runs. */
const BIN = 'dist/src/cli/main.js';

/**
 * The split's weight for bookstore-v2 (bookstore-v1 has 90) as the running controller serves it: its
 * /explain answers from the served mesh, with the weights divided by their greatest common divisor.
 */
async function servedWeight(adminPort: number): Promise<number | undefined> {
  const r = await fetch(`http://127.0.0.1:${adminPort}/explain?from=bookbuyer/bookbuyer&to=bookstore.bookstore:14001`);
  const body = (await r.json()) as { backends?: { service: string; weight: number }[] };
  const weight = (name: string) => body.backends?.find((b) => b.service === `bookstore/${name}`)?.weight;
  const v1 = weight('bookstore-v1');
  const v2 = weight('bookstore-v2');
  return v1 === undefined || v2 === undefined ? undefined : (v2 * 90) / v1;
}

const withWeight = (text: string, w: number) => text.replace(/\{service: bookstore-v2, weight: \d+\}/, `{service: bookstore-v2, weight: ${w}}`);

test('a running controller follows every way of writing a file: in place, truncate and append, sed -i, cp onto it, rename over it, delete and recreate, in a folder made later', async () => {
  const { controller, dir, logs } = await testController('examples/bookstore', { pushWindowMs: 0 });
  const mesh = join(dir, 'mesh');
  const policy = join(mesh, '40-policy.yaml');
  const original = readFileSync(policy, 'utf8');
  const latencies: string[] = [];
  const expect = async (style: string, weight: number, write: () => void) => {
    const t0 = Date.now();
    write();
    await waitFor(`${style} (weight ${weight}) to be served`, async () => ((await servedWeight(controller.adminPort)) === weight ? true : undefined), 10_000);
    latencies.push(`${style} ${Date.now() - t0} ms`);
  };
  const styles: [string, (text: string) => void][] = [
    ['in place', (t) => {
      // Same length, written over the old bytes without truncating (what some editors and `dd conv=notrunc` do).
      const fd = openSync(policy, 'r+');
      writeSync(fd, t, 0);
      closeSync(fd);
    }],
    ['truncate and append', (t) => {
      truncateSync(policy, 0);
      appendFileSync(policy, t);
    }],
    ['sed -i', (t) => {
      const w = /bookstore-v2, weight: (\d+)/.exec(t)![1];
      execFileSync('sed', ['-i', `s/bookstore-v2, weight: [0-9]*/bookstore-v2, weight: ${w}/`, policy]);
    }],
    ['cp onto it', (t) => {
      const other = join(dir, 'copy.yaml');
      writeFileSync(other, t);
      execFileSync('cp', [other, policy]);
    }],
    ['rename over it (safe write)', (t) => {
      writeFileSync(`${policy}.tmp~`, t);
      renameSync(`${policy}.tmp~`, policy);
    }],
    ['delete and recreate', (t) => {
      rmSync(policy);
      writeFileSync(policy, t);
    }],
  ];
  try {
    await waitFor('the first compile', async () => ((await servedWeight(controller.adminPort)) === 10 ? true : undefined));
    // Weights 11..99 keep the text's length: an in-place write covers the old bytes exactly.
    let weight = 11;
    for (let round = 0; round < 3; round++) {
      for (const [style, write] of styles) {
        const w = weight++;
        await expect(style, w, () => write(withWeight(original, w)));
      }
    }
    // A folder made after the start, and a file in it edited in every way as well.
    rmSync(policy);
    const later = join(mesh, 'later', 'deeper');
    mkdirSync(later, { recursive: true });
    const moved = join(later, '40-policy.yaml');
    await expect('a new folder', 50, () => writeFileSync(moved, withWeight(original, 50)));
    await expect('sed -i in the new folder', 51, () => execFileSync('sed', ['-i', 's/bookstore-v2, weight: 50/bookstore-v2, weight: 51/', moved]));
    await expect('rename over it in the new folder', 52, () => {
      writeFileSync(`${moved}.swp`, withWeight(original, 52));
      renameSync(`${moved}.swp`, moved);
    });
    await expect('in place in the new folder', 53, () => writeFileSync(moved, withWeight(original, 53)));
    process.stdout.write(`folder edits, write to served: ${latencies.join(', ')}\n`);
    // Each edit was seen through its file-system event, not made up for by the reconcile.
    assert.deepEqual(logs.filter((l) => /without a file-system event/.test(l)), []);
  } finally {
    await controller.close();
  }
});

/** A folder source on its own, feeding an input store, with what it logs. */
async function watchedFolder(files: Record<string, string>, options: { reconcileMs?: number; dropEvent?: (path: string) => boolean } = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'smc-folder-'));
  for (const [name, text] of Object.entries(files)) {
    mkdirSync(join(dir, name, '..'), { recursive: true });
    writeFileSync(join(dir, name), text);
  }
  const logs: string[] = [];
  const source = createFolderSource({ paths: [dir], log: (l) => logs.push(l), ...options });
  const store = createInputStore([source]);
  const drifted: string[] = [];
  store.onDrift((_s, unit) => drifted.push(unit));
  await source.start(store.events(source));
  const text = (file: string) => JSON.stringify(store.units().get(`${source.name}\u0000${join(dir, file)}`)?.documents.map((d) => d.value));
  return { dir, source, store, logs, drifted, text };
}

const configMap = (name: string, value: string) => `apiVersion: v1\nkind: ConfigMap\nmetadata: {name: ${name}, namespace: default}\ndata: {value: "${value}"}\n`;

test('the reconcile applies an edit whose file-system event was lost, logs it at warn and counts it', async () => {
  let drop = false;
  const f = await watchedFolder({ 'a.yaml': configMap('a', 'one') }, { reconcileMs: 300, dropEvent: () => drop });
  try {
    assert.match(f.text('a.yaml'), /one/);
    drop = true;
    writeFileSync(join(f.dir, 'a.yaml'), configMap('a', 'two'));
    await waitFor('the reconcile to find the edit', () => (/two/.test(f.text('a.yaml')) ? true : undefined), 10_000);
    // Counted once no event for it came in time (a young change may still have its event on the way).
    await waitFor('the edit to count as missed', () => (f.drifted.length === 1 ? true : undefined), 10_000);
    assert.deepEqual(f.drifted, [join(f.dir, 'a.yaml')]);
    assert.ok(f.logs.some((l) => l.includes('a.yaml changed without a file-system event')), f.logs.join('\n'));
    // A file added and one removed without events are found too.
    writeFileSync(join(f.dir, 'b.yaml'), configMap('b', 'three'));
    await waitFor('the added file', () => (/three/.test(f.text('b.yaml')) ? true : undefined), 10_000);
    rmSync(join(f.dir, 'a.yaml'));
    await waitFor('the removed file', () => (f.text('a.yaml') === undefined ? true : undefined), 10_000);
    await waitFor('three missed events counted', () => (f.drifted.length === 3 ? true : undefined), 10_000);
    // With events, nothing counts as drift.
    drop = false;
    writeFileSync(join(f.dir, 'b.yaml'), configMap('b', 'four'));
    await waitFor('the watched edit', () => (/four/.test(f.text('b.yaml')) ? true : undefined), 5000);
    await new Promise((r) => setTimeout(r, 3000));
    assert.equal(f.drifted.length, 3, 'an edit seen by the watch is not counted as drift');
  } finally {
    await f.source.close();
  }
});

test('folders are followed through their events alone: one moved out and back, one removed, one made two levels deep, a safe write inside', async () => {
  // The reconcile is a minute away: whatever the test sees came through the watch.
  const f = await watchedFolder({ 'team/a.yaml': configMap('a', 'one'), 'team/deep/b.yaml': configMap('b', 'two') }, { reconcileMs: 60_000 });
  const outside = mkdtempSync(join(tmpdir(), 'smc-folder-outside-'));
  try {
    assert.match(f.text('team/a.yaml'), /one/);
    assert.match(f.text('team/deep/b.yaml'), /two/);
    // Moved out of the root: its files (and its subfolder's) leave.
    renameSync(join(f.dir, 'team'), join(outside, 'team'));
    await waitFor('the moved-out folder to leave', () => (f.text('team/a.yaml') === undefined && f.text('team/deep/b.yaml') === undefined ? true : undefined), 5000);
    // Edited while outside, then moved back: read as it is now, and watched again (an edit after the move is seen).
    writeFileSync(join(outside, 'team', 'deep', 'b.yaml'), configMap('b', 'three'));
    renameSync(join(outside, 'team'), join(f.dir, 'team'));
    await waitFor('the moved-back folder', () => (/one/.test(f.text('team/a.yaml')) && /three/.test(f.text('team/deep/b.yaml')) ? true : undefined), 5000);
    writeFileSync(join(f.dir, 'team', 'deep', 'b.yaml.swp'), configMap('b', 'four'));
    renameSync(join(f.dir, 'team', 'deep', 'b.yaml.swp'), join(f.dir, 'team', 'deep', 'b.yaml'));
    await waitFor('a safe write in the moved-back folder', () => (/four/.test(f.text('team/deep/b.yaml')) ? true : undefined), 5000);
    // Two levels made at once, then a file in them.
    mkdirSync(join(f.dir, 'x', 'y'), { recursive: true });
    writeFileSync(join(f.dir, 'x', 'y', 'c.yaml'), configMap('c', 'five'));
    await waitFor('a file two new levels down', () => (/five/.test(f.text('x/y/c.yaml')) ? true : undefined), 5000);
    // A folder removed with what it holds.
    rmSync(join(f.dir, 'team'), { recursive: true });
    await waitFor('the removed folder to leave', () => (f.text('team/a.yaml') === undefined && f.text('team/deep/b.yaml') === undefined ? true : undefined), 5000);
    assert.match(f.text('x/y/c.yaml'), /five/);
    // Made again under the same name (a new folder): watched as the new one.
    mkdirSync(join(f.dir, 'team'));
    writeFileSync(join(f.dir, 'team', 'a.yaml'), configMap('a', 'six'));
    await waitFor('the folder made again', () => (/six/.test(f.text('team/a.yaml')) ? true : undefined), 5000);
    writeFileSync(join(f.dir, 'team', 'a.yaml'), configMap('a', 'seven'));
    await waitFor('an edit in the folder made again', () => (/seven/.test(f.text('team/a.yaml')) ? true : undefined), 5000);
    assert.deepEqual(f.drifted, []);
  } finally {
    await f.source.close();
    rmSync(outside, { recursive: true, force: true });
  }
});

test('a file rewritten 50 times a second is read at least once a second while the writes go on', async () => {
  const f = await watchedFolder({ 'a.yaml': configMap('a', '0') }, { reconcileMs: 60_000 });
  try {
    const seen = new Set<string>();
    let i = 0;
    const writer = setInterval(() => writeFileSync(join(f.dir, 'a.yaml'), configMap('a', String(++i))), 20);
    const end = Date.now() + 4000;
    while (Date.now() < end) {
      seen.add(f.text('a.yaml') ?? '');
      await new Promise((r) => setTimeout(r, 50));
    }
    clearInterval(writer);
    // The settle time restarts with every write; its maximum makes the file read anyway.
    assert.ok(seen.size >= 3, `the content changed ${seen.size - 1} time(s) in 4 s of writes every 20 ms`);
  } finally {
    await f.source.close();
  }
});

test('links: a symlink loop is harmless, links to files are read, and a ConfigMap-style swap of ..data is followed', async () => {
  const f = await watchedFolder({ 'sub/a.yaml': configMap('a', 'one'), '..v1/cm.yaml': configMap('cm', 'first') }, { reconcileMs: 60_000 });
  try {
    symlinkSync(f.dir, join(f.dir, 'sub', 'loop'));
    symlinkSync('..v1', join(f.dir, '..data'));
    symlinkSync('..data/cm.yaml', join(f.dir, 'cm.yaml'));
    await waitFor('the linked file', () => (/first/.test(f.text('cm.yaml')) ? true : undefined), 5000);
    writeFileSync(join(f.dir, 'sub', 'a.yaml'), configMap('a', 'two'));
    await waitFor('the edit beside the loop', () => (/two/.test(f.text('sub/a.yaml')) ? true : undefined), 5000);
    // What the kubelet does to a ConfigMap volume: a new folder, then ..data switched to it by rename.
    mkdirSync(join(f.dir, '..v2'));
    writeFileSync(join(f.dir, '..v2', 'cm.yaml'), configMap('cm', 'second'));
    symlinkSync('..v2', join(f.dir, '..data_tmp'));
    renameSync(join(f.dir, '..data_tmp'), join(f.dir, '..data'));
    await waitFor('the switched ConfigMap', () => (/second/.test(f.text('cm.yaml')) ? true : undefined), 5000);
    assert.deepEqual(f.logs.filter((l) => /ELOOP|SIGHUP|failed/.test(l)), []);
    assert.deepEqual(f.drifted, []);
  } finally {
    await f.source.close();
  }
});

test('a source that does not exist at start is an error; a root that disappears while running keeps what was read, and says so', async () => {
  const missing = join(tmpdir(), 'smc-no-such-folder-' + process.pid);
  await assert.rejects(createFolderSource({ paths: [missing], log: () => undefined }).start(createInputStore([]).events({ name: 'x' } as never)), /no such file or folder/);
  const f = await watchedFolder({ 'a.yaml': configMap('a', 'one') }, { reconcileMs: 200 });
  try {
    const moved = `${f.dir}.away`;
    renameSync(f.dir, moved);
    const problem = await waitFor('the status to say the folder is gone', () => {
      const unit = f.store.units().get(`${f.source.name}\u0000${f.dir}\u0000unreadable`);
      return unit?.problems[0]?.message;
    }, 5000);
    assert.match(problem, /no such file or folder; the 1 file\(s\) read from it before stay in force/);
    assert.match(f.text('a.yaml'), /one/, 'what was read stays');
    assert.ok(f.logs.some((l) => l.includes('stay in force until it can be read again')));
    // Back again (a restore): it is read and watched again.
    renameSync(moved, f.dir);
    await waitFor('the problem to clear', () => (f.store.units().has(`${f.source.name}\u0000${f.dir}\u0000unreadable`) ? undefined : true), 5000);
    writeFileSync(join(f.dir, 'a.yaml'), configMap('a', 'two'));
    await waitFor('an edit after the restore', () => (/two/.test(f.text('a.yaml')) ? true : undefined), 5000);
  } finally {
    await f.source.close();
  }
});

test('smc controller with a mistyped --source exits 1 at once, naming it (no empty mesh is served)', () => {
  const r = spawnSync(process.execPath, [BIN, 'controller', '--source', 'examples/bookstre', '--state', mkdtempSync(join(tmpdir(), 'smc-state-')), '--xds-address', '127.0.0.1:0', '--admin-address', '127.0.0.1:0'], { encoding: 'utf8', timeout: 30_000 });
  assert.equal(r.status, 1, r.stderr);
  assert.match(r.stderr, /smc: --source examples\/bookstre: no such file or folder/);
  assert.doesNotMatch(r.stderr, /published/);
});

test('a file of 40,000 keys, growing, does not hold the controller: /healthz answers, the file is refused by its bound, SIGTERM stops it', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'smc-keys-'));
  mkdirSync(join(dir, 'mesh'));
  writeFileSync(join(dir, 'mesh', 'a.yaml'), configMap('a', 'one'));
  const admin = await freePort();
  const child = spawn(process.execPath, [BIN, 'controller', '--log-format', 'text', '--source', join(dir, 'mesh'), '--state', join(dir, 'state'), '--xds-address', `127.0.0.1:${await freePort()}`, '--admin-address', `127.0.0.1:${admin}`], { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  child.stderr!.on('data', (d: Buffer) => (log += d.toString()));
  try {
    await waitFor('readiness', async () => ((await fetch(`http://127.0.0.1:${admin}/readyz`)).status === 200 ? true : undefined));
    // The file grows to 40,000 keys in one map (duplicate-key checks used to be quadratic: 13.5 s on the loop).
    let keys = 0;
    let slowest = 0;
    const file = join(dir, 'mesh', 'big.yaml');
    const writer = setInterval(() => {
      keys += 5000;
      writeFileSync(file, `apiVersion: v1\nkind: ConfigMap\nmetadata: {name: big, namespace: default}\ndata:\n${Array.from({ length: keys }, (_, i) => `  k${i}: "${i}"\n`).join('')}`);
    }, 300);
    const end = Date.now() + 4000;
    while (Date.now() < end) {
      const t0 = Date.now();
      assert.equal((await fetch(`http://127.0.0.1:${admin}/healthz`)).status, 200);
      slowest = Math.max(slowest, Date.now() - t0);
      await sleep(50);
    }
    clearInterval(writer);
    process.stdout.write(`/healthz while a file grew to ${keys} keys: slowest answer ${slowest} ms\n`);
    assert.ok(slowest < 3000, `/healthz took ${slowest} ms`);
    await waitFor('the bound to be reported', () => (/big\.yaml:\d+: YAML document not read: a map of \d+ keys \(at most 10000\)/.test(log) ? true : undefined), 10_000);
    const stopped = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    await Promise.race([stopped, sleep(10_000).then(() => assert.fail('SIGTERM was not answered in 10 s'))]);
  } finally {
    child.kill('SIGKILL');
  }
});

test('10,000 files made at once are all read while /healthz keeps answering', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'smc-many-'));
  cpSync('examples/bookstore', join(dir, 'mesh'), { recursive: true });
  const admin = await freePort();
  const child = spawn(process.execPath, [BIN, 'controller', '--log-format', 'text', '--source', join(dir, 'mesh'), '--state', join(dir, 'state'), '--xds-address', `127.0.0.1:${await freePort()}`, '--admin-address', `127.0.0.1:${admin}`], { stdio: ['ignore', 'ignore', 'pipe'] });
  child.stderr!.resume();
  try {
    await waitFor('readiness', async () => ((await fetch(`http://127.0.0.1:${admin}/readyz`)).status === 200 ? true : undefined));
    const many = join(dir, 'mesh', 'many');
    mkdirSync(many);
    for (let i = 0; i < 10_000; i++) writeFileSync(join(many, `cm-${i}.yaml`), configMap(`cm-${i}`, String(i)));
    let slowest = 0;
    const counted = async () => {
      const t0 = Date.now();
      const inputs = (await (await fetch(`http://127.0.0.1:${admin}/status/inputs`)).json()) as { objects: { object: string }[] };
      slowest = Math.max(slowest, Date.now() - t0);
      return inputs.objects.filter((o) => o.object.startsWith('ConfigMap default/cm-')).length;
    };
    const end = Date.now() + 120_000;
    let probeSlowest = 0;
    let n = 0;
    while (Date.now() < end && (n = await counted()) < 10_000) {
      const t0 = Date.now();
      assert.equal((await fetch(`http://127.0.0.1:${admin}/healthz`)).status, 200);
      probeSlowest = Math.max(probeSlowest, Date.now() - t0);
      await sleep(200);
    }
    process.stdout.write(`10,000 new files: all read; /healthz slowest ${probeSlowest} ms, /status/inputs slowest ${slowest} ms\n`);
    assert.equal(n, 10_000);
    assert.ok(probeSlowest < 3000, `/healthz took ${probeSlowest} ms`);
  } finally {
    child.kill('SIGKILL');
  }
});

test('a FIFO named like a YAML file does not hold the reader; an edit beside it is still read', async () => {
  const f = await watchedFolder({ 'a.yaml': configMap('a', 'one') }, { reconcileMs: 300 });
  try {
    execFileSync('mkfifo', [join(f.dir, 'evil.yaml')]);
    await sleep(700);
    writeFileSync(join(f.dir, 'a.yaml'), configMap('a', 'two'));
    await waitFor('the edit beside the FIFO', () => (/two/.test(f.text('a.yaml')) ? true : undefined), 5000);
    assert.equal(f.text('evil.yaml'), undefined);
  } finally {
    await f.source.close();
  }
});

test('a write that changes only what smc does not read of a Pod (its status conditions) is no change; its IP, or any field of a policy object, is', async () => {
  const pod = (ip: string, ready: string) => `apiVersion: v1\nkind: Pod\nmetadata: {name: p, namespace: default, labels: {app: a}}\nspec: {serviceAccountName: a}\nstatus:\n  podIP: ${ip}\n  conditions: [{type: Ready, status: "${ready}"}]\n`;
  const target = (extra: string) => `apiVersion: access.smi-spec.io/v1alpha3\nkind: TrafficTarget\nmetadata: {name: t, namespace: default}\nspec:\n  destination: {kind: ServiceAccount, name: a}\n  sources: [{kind: ServiceAccount, name: b, namespace: default}]\n  rules: [{kind: TCPRoute, name: all}]\n${extra}`;
  const f = await watchedFolder({ 'pod.yaml': pod('198.18.0.1', 'True'), 'tt.yaml': target(''), 'marker.yaml': configMap('m', 'one') });
  const unit = (file: string) => f.store.units().get(`${f.source.name}\u0000${join(f.dir, file)}`);
  try {
    const before = unit('pod.yaml');
    writeFileSync(join(f.dir, 'pod.yaml'), pod('198.18.0.1', 'False'));
    await sleep(150);
    // A later write, read after the one before it: once it is in, the status write was read too.
    writeFileSync(join(f.dir, 'marker.yaml'), configMap('m', 'two'));
    await waitFor('the marker', () => (/two/.test(f.text('marker.yaml')) ? true : undefined), 5000);
    assert.equal(unit('pod.yaml'), before, 'the status write delivered nothing');
    writeFileSync(join(f.dir, 'pod.yaml'), pod('198.18.0.2', 'False'));
    await waitFor('the new IP', () => (/198\.18\.0\.2/.test(f.text('pod.yaml')) ? true : undefined), 5000);
    // Policy is read whole: a field smc does not know is delivered (rejected, its last accepted version kept, and the problem said), never dropped.
    const policy = unit('tt.yaml');
    writeFileSync(join(f.dir, 'tt.yaml'), target('  matchs: []\n'));
    await waitFor('the policy edit', () => (unit('tt.yaml') !== policy ? true : undefined), 5000);
  } finally {
    await f.source.close();
  }
});

test('a file holding a Pod and a TrafficTarget: a pod move keeps the TrafficTarget as it was, and a typo written with the next move is held back (its accepted version stays in force)', async () => {
  const pod = (ip: string) => `apiVersion: v1\nkind: Pod\nmetadata: {name: p, namespace: default, labels: {app: a}}\nspec: {serviceAccountName: a}\nstatus: {podIP: ${ip}}\n`;
  const target = (rules: string) => `apiVersion: access.smi-spec.io/v1alpha3\nkind: TrafficTarget\nmetadata: {name: t, namespace: default}\nspec:\n  destination: {kind: ServiceAccount, name: a}\n  sources: [{kind: ServiceAccount, name: b, namespace: default}]\n  ${rules}: [{kind: TCPRoute, name: all}]\n`;
  const both = (ip: string, rules: string) => `${pod(ip)}---\n${target(rules)}`;
  const f = await watchedFolder({ 'app.yaml': both('198.18.0.1', 'rules') });
  const documents = () => f.store.units().get(`${f.source.name}\u0000${join(f.dir, 'app.yaml')}`)?.documents;
  try {
    for (const ip of ['198.18.0.2', '198.18.0.3']) {
      writeFileSync(join(f.dir, 'app.yaml'), both(ip, 'rules'));
      await waitFor(`the pod at ${ip}`, () => (JSON.stringify(documents()?.[0]?.value).includes(ip) ? true : undefined), 5000);
      assert.equal(documents()?.[1]?.held, undefined, 'the TrafficTarget is accepted as it is');
    }
    // The pod moves again and the TrafficTarget's `rules` is misspelt in the same write: that version is rejected on its
    // own, and the one accepted before it is what is compiled.
    writeFileSync(join(f.dir, 'app.yaml'), both('198.18.0.4', 'rulez'));
    await waitFor('the pod at 198.18.0.4', () => (JSON.stringify(documents()?.[0]?.value).includes('198.18.0.4') ? true : undefined), 5000);
    const held = documents()?.[1];
    assert.ok(held?.held, 'the misspelt version is held back');
    assert.deepEqual(Object.keys((held.value as { spec: object }).spec).sort(), ['destination', 'rules', 'sources']);
    assert.match(JSON.stringify(held.held), /rulez/);
  } finally {
    await f.source.close();
  }
});
