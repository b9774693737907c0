import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
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
    assert.equal(readdirSync(join(state, 'issued')).length, ids.length - 1);
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
