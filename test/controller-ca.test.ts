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
    const before = new Map(controller.cache.identities().map((id) => [id, controller.cache.get(id)!]));
    const renewed = await waitFor('a renewal', () => {
      const line = logs.find((l) => l.startsWith('ca: renewed the certificate of '));
      return line ? /of (\S+) /.exec(line)![1]! : undefined;
    }, 10_000);
    await waitFor('the renewed snapshot', () => (controller.cache.get(renewed) !== before.get(renewed) ? true : undefined), 5000);
    const after = controller.cache.get(renewed)!;
    for (const kind of ['cluster', 'endpoint', 'listener', 'route'] as const) assert.equal(after.types[kind].version, before.get(renewed)!.types[kind].version, `${kind} unchanged`);
    assert.notEqual(after.types.secret.version, before.get(renewed)!.types.secret.version, 'its secrets changed');
    // Identities not renewed by now still hold the very same cached snapshot object.
    const stillOld = logs.filter((l) => l.startsWith('ca: renewed')).map((l) => /of (\S+) /.exec(l)![1]!);
    const untouched = [...before.keys()].filter((id) => !stillOld.includes(id));
    assert.ok(untouched.length > 0, 'some identity was not renewed yet');
    for (const id of untouched) assert.equal(controller.cache.get(id), before.get(id), `${id} was not rebuilt`);
    const firstRenewal = logs.findIndex((l) => l.startsWith('ca: renewed'));
    assert.ok(!logs.slice(firstRenewal).some((l) => /published 5 proxy snapshot\(s\)/.test(l)), 'no whole-mesh publish after a renewal');
  } finally {
    await controller.close();
  }
});
