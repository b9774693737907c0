import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { openInternalCA } from '../src/adapters/ca/internal-ca.js';
import { TYPE_URL } from '../src/runtime/xds-types.js';
import { Client, open } from './helpers/ads-client.js';
import { testController } from './helpers/controller.js';

/** Proxy (bootstrap) certificates: unclaimed, claimed on first use, revocable. */
const BIN = 'dist/src/cli/main.js';
const smc = (args: string[]) =>
  new Promise<{ code: number; stdout: string; stderr: string }>((resolve) =>
    execFile(process.execPath, [BIN, ...args], (err, stdout, stderr) => resolve({ code: err ? Number(err.code) : 0, stdout, stderr })),
  );

test('a proxy certificate is unclaimed until first used, then claimed; once revoked it cannot open a stream; an unregistered one never could', async () => {
  const { controller, dir, state, logs } = await testController('examples/bookstore');
  const out = join(dir, 'bb');
  const b = spawnSync(process.execPath, [BIN, 'bootstrap', '--identity', 'bookbuyer/bookbuyer', '--xds-address', `127.0.0.1:${controller.xdsPort}`, '--state', state, '-o', out], { encoding: 'utf8' });
  assert.equal(b.status, 0, b.stderr);
  const list = async () => JSON.parse((await smc(['certs', 'list', '--state', state, '-o', 'json'])).stdout) as { proxyCertificates: { serial: string; identity: string; state: string; claimedBy?: string }[] };
  const [issued] = (await list()).proxyCertificates;
  assert.equal(issued?.state, 'unclaimed');
  assert.equal(issued?.identity, 'spiffe://cluster.local/ns/bookbuyer/sa/bookbuyer');

  const creds = grpc.credentials.createSsl(readFileSync(join(out, 'ca.crt')), readFileSync(join(out, 'proxy.key')), readFileSync(join(out, 'proxy.crt')));
  const client = new Client(`localhost:${controller.xdsPort}`, creds);
  const request = { node: { id: 'bookbuyer/bookbuyer/pod-1' }, typeUrl: TYPE_URL.cluster, resourceNames: [], versionInfo: '', responseNonce: '' };
  try {
    const s = open(client, 'sotw');
    s.send(request);
    assert.equal((await s.next()).resources.length, 3);
    const [claimed] = (await list()).proxyCertificates;
    assert.deepEqual([claimed?.state, claimed?.claimedBy], ['claimed', 'bookbuyer/bookbuyer/pod-1']);
    const table = await smc(['certs', 'list', '--state', state]);
    assert.match(table.stdout, new RegExp(`${issued!.serial}\\s+spiffe://cluster.local/ns/bookbuyer/sa/bookbuyer\\s+CLAIMED`));
    s.call.end();

    const revoked = await smc(['certs', 'revoke', '--identity', 'bookbuyer/bookbuyer', '--state', state]);
    assert.equal(revoked.code, 0, revoked.stderr);
    assert.match(revoked.stdout, new RegExp(`revoked ${issued!.serial}`));
    const again = open(client, 'sotw');
    again.send(request);
    await assert.rejects(again.next(2000));
    assert.equal(again.error()?.code, grpc.status.PERMISSION_DENIED);
    assert.match(again.error()?.details ?? '', /proxy certificate .* was revoked/);
    assert.equal((await smc(['certs', 'revoke', '--identity', 'bookbuyer/bookbuyer', '--state', state])).code, 1, 'nothing left to revoke');

    // Signed by the mesh CA but never issued as a proxy certificate (a service certificate, say): refused.
    const ca = await openInternalCA(state, 'cluster.local');
    const stray = await ca.issue('spiffe://cluster.local/ns/bookbuyer/sa/bookbuyer', { ttlMs: 3600_000 });
    const strayClient = new Client(`localhost:${controller.xdsPort}`, grpc.credentials.createSsl(Buffer.from(ca.trustBundle()), Buffer.from(stray.privateKey), Buffer.from(stray.certificateChain)));
    const t = open(strayClient, 'sotw');
    t.send(request);
    await assert.rejects(t.next(2000));
    assert.equal(t.error()?.code, grpc.status.PERMISSION_DENIED);
    assert.match(t.error()?.details ?? '', /was not issued as a proxy certificate/);
    strayClient.close();
    assert.ok(logs.some((l) => l.includes('claimed by bookbuyer/bookbuyer/pod-1')));
  } finally {
    client.close();
    await controller.close();
  }
});

test('smc certs: usage errors exit 2, help explains the states', async () => {
  const r = await smc(['certs', 'revoke', '--state', '/nonexistent']);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /exactly one of --serial SERIAL or --identity NS\/SA/);
  const h = await smc(['help', 'certs']);
  assert.match(h.stdout, /UNCLAIMED until a proxy first/);
});
