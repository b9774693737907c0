import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { openCertificateStore } from '../src/adapters/ca/certificate-store.js';
import { certificateFacts } from '../src/adapters/ca/x509.js';
import { testController } from './helpers/controller.js';
import { waitFor } from './helpers/wait.js';

const THIEF = 'spiffe://cluster.local/ns/bookthief/sa/bookthief';

test('every identity gets its own certificate in its own snapshot only; one that leaves the mesh is no longer renewed and its secrets leave every snapshot', async () => {
  const { controller, dir, state, logs } = await testController('examples/bookstore');
  try {
    const issued = await openCertificateStore(state).load();
    const ids = controller.cache.identities();
    assert.deepEqual([...issued.keys()].sort(), ids, 'one certificate per identity');
    for (const id of ids) {
      const cert = issued.get(id)!;
      assert.deepEqual(certificateFacts(cert.certificateChain).uris, [id]);
      const secrets = [...controller.cache.get(id)!.types.secret.resources.values()];
      const raw = Buffer.concat(secrets.map((r) => Buffer.from(r.bytes))).toString('utf8');
      assert.ok(raw.includes(cert.privateKey), `${id} receives its own key`);
      for (const [other, c] of issued) if (other !== id) assert.ok(!raw.includes(c.privateKey), `${id} holds ${other}'s key`);
    }
    const thiefKey = issued.get(THIEF)!.privateKey;

    // bookthief's pod leaves.
    const file = join(dir, 'mesh', '10-bookbuyer.yaml');
    const text = readFileSync(file, 'utf8');
    writeFileSync(file, text.slice(0, text.indexOf('apiVersion: v1\nkind: Pod\nmetadata:\n  name: bookthief-1')));
    const changes = await controller.reload();
    assert.ok(changes.some((c) => c.identity === THIEF && c.gone));
    assert.equal(controller.cache.get(THIEF), undefined);
    for (const id of controller.cache.identities()) {
      const raw = Buffer.concat([...controller.cache.get(id)!.types.secret.resources.values()].map((r) => Buffer.from(r.bytes))).toString('utf8');
      assert.ok(!raw.includes(thiefKey));
    }
    assert.equal((await openCertificateStore(state).load()).has(THIEF), false, 'not kept, so not renewed');
    assert.equal((await openCertificateStore(state).load()).size, ids.length - 1);
    assert.ok(!logs.some((l) => l.includes(`renewed the certificate of ${THIEF}`)));
  } finally {
    await controller.close();
  }
});

test('a certificate renewal rebuilds that identity\'s snapshot alone: only its secrets change, every other snapshot is left untouched', async () => {
  const { controller, logs } = await testController('examples/bookstore', { serviceCertTtlMs: 6000 });
  try {
    const ids = controller.cache.identities();
    const before = new Map(ids.map((id) => [id, controller.cache.get(id)!]));
    // The moment the first renewal reaches the cache, look at every identity at once.
    const firstChange = new Promise<{ changed: string[]; renewed: string[] }>((resolve) => {
      const stops = ids.map((id) =>
        controller.cache.watch(id, () => {
          for (const stop of stops) stop();
          const renewed = logs.filter((l) => l.startsWith('ca: renewed the certificate of ')).map((l) => /of (\S+) /.exec(l)![1]!);
          resolve({ changed: ids.filter((x) => controller.cache.get(x) !== before.get(x)), renewed });
        }),
      );
    });
    const { changed, renewed } = await firstChange;
    assert.ok(changed.length > 0);
    for (const id of changed) {
      assert.ok(renewed.includes(id), `${id} changed but was not renewed`);
      for (const kind of ['cluster', 'endpoint', 'listener', 'route'] as const) assert.equal(controller.cache.get(id)!.types[kind].version, before.get(id)!.types[kind].version, `${id}: ${kind} unchanged`);
      assert.notEqual(controller.cache.get(id)!.types.secret.version, before.get(id)!.types.secret.version, `${id}: its secrets changed`);
    }
    // Every identity not renewed is the very same cached snapshot object: nothing else was rebuilt.
    for (const id of ids.filter((x) => !renewed.includes(x))) assert.equal(controller.cache.get(id), before.get(id), `${id} was not rebuilt`);
    await waitFor('a moment after the renewal', () => (logs.some((l) => /published \d+ renewed snapshot\(s\); \d+ identity\(ies\) changed/.test(l)) ? true : undefined));
    const firstRenewal = logs.findIndex((l) => l.startsWith('ca: renewed'));
    assert.ok(!logs.slice(firstRenewal).some((l) => /published 5 proxy snapshot\(s\)/.test(l)), `no whole-mesh publish after a renewal:\n${logs.join('\n')}`);
  } finally {
    await controller.close();
  }
});

test('renewals are not pushed back by a controller that publishes all the time: every certificate is renewed before it expires', async () => {
  const { controller, logs, dir } = await testController('examples/bookstore', { serviceCertTtlMs: 3000 });
  try {
    // A policy edit every 300 ms for 7 s: a publish each time, more often than a renewal is due (3 s certificates are renewed about every 2 s).
    const policy = join(dir, 'mesh', '40-policy.yaml');
    const text = readFileSync(policy, 'utf8');
    const end = Date.now() + 7000;
    for (let k = 0; Date.now() < end; k++) {
      writeFileSync(policy, text.replace('weight: 90', `weight: ${k % 2 === 0 ? 80 : 90}`));
      await new Promise((r) => setTimeout(r, 300));
    }
    const now = Date.now();
    const seen = [...logs];
    const ids = controller.cache.identities();
    for (const id of ids) {
      const lines = seen.filter((l) => l.startsWith(`ca: renewed the certificate of ${id} `));
      assert.ok(lines.length >= 2, `${id} was renewed ${lines.length} time(s) in 7 s of publishes`);
      // The certificate it holds now (the last one issued) is still valid.
      const last = [...seen].reverse().find((l) => l.startsWith(`ca: issued the certificate of ${id} `) || l.startsWith(`ca: renewed the certificate of ${id} `))!;
      const expires = new Date(/expires (\S+)\)/.exec(last)![1]!).getTime();
      assert.ok(expires > now, `${id}: its certificate expired ${now - expires} ms ago`);
    }
  } finally {
    await controller.close();
  }
});
