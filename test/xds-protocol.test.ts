import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { openInternalCA } from '../src/adapters/ca/internal-ca.js';
import { loadEnvoyProtos } from '../src/adapters/envoy-protos.js';
import { TYPE_URL } from '../src/runtime/xds-types.js';
import { testController } from './helpers/controller.js';

/** Scripted raw ADS streams for the rules in xds-rules.md. */
const protos = loadEnvoyProtos();
const wire = (name: string) => {
  const t = protos.lookupType(`envoy.service.discovery.v3.${name}`);
  return {
    serialize: (v: unknown) => Buffer.from(t.encode(t.fromObject(v as Record<string, unknown>)).finish()),
    deserialize: (b: Buffer) => t.toObject(t.decode(b), { defaults: true, arrays: true, longs: String }),
  };
};
const method = (name: string, rq: string, rs: string) => ({
  path: `/envoy.service.discovery.v3.AggregatedDiscoveryService/${name}`,
  requestStream: true,
  responseStream: true,
  requestSerialize: wire(rq).serialize,
  requestDeserialize: wire(rq).deserialize,
  responseSerialize: wire(rs).serialize,
  responseDeserialize: wire(rs).deserialize,
});
const Client = grpc.makeGenericClientConstructor(
  { sotw: method('StreamAggregatedResources', 'DiscoveryRequest', 'DiscoveryResponse'), delta: method('DeltaAggregatedResources', 'DeltaDiscoveryRequest', 'DeltaDiscoveryResponse') },
  'ADS',
);

type Resp = { versionInfo: string; systemVersionInfo: string; nonce: string; typeUrl: string; removedResources: string[]; resources: { name: string; version: string; type_url: string }[] };

/** A stream with a queue of responses and a way to wait for the next one (or prove none comes). */
function open(client: grpc.Client, kind: 'sotw' | 'delta') {
  const call = (client as unknown as Record<string, () => grpc.ClientDuplexStream<unknown, Resp>>)[kind]!();
  const queue: Resp[] = [];
  const waiters: ((r: Resp) => void)[] = [];
  let error: grpc.ServiceError | undefined;
  call.on('data', (r: Resp) => (waiters.length ? waiters.shift()!(r) : queue.push(r)));
  call.on('error', (e: grpc.ServiceError) => (error = e));
  return {
    call,
    send: (m: object) => call.write(m),
    next: (ms = 3000) =>
      new Promise<Resp>((resolve, reject) => {
        if (queue.length) return resolve(queue.shift()!);
        const t = setTimeout(() => reject(new Error(`no response within ${ms} ms${error ? ` (stream error: ${error.details})` : ''}`)), ms);
        waiters.push((r) => {
          clearTimeout(t);
          resolve(r);
        });
      }),
    /** Resolves true when nothing arrives for `ms`. */
    quiet: async (ms = 400) => {
      await new Promise((r) => setTimeout(r, ms));
      return queue.length === 0;
    },
    error: () => error,
  };
}

const CDS = TYPE_URL.cluster;
const EDS = TYPE_URL.endpoint;
const node = { id: 'bookbuyer/bookbuyer' };

test('SotW: wildcard CDS gets the full set, EDS exactly the named ones, a stale nonce is ignored, a NACK is recorded and not answered with a resend', async () => {
  const { controller } = await testController('examples/bookstore', { insecureXds: true });
  const client = new Client(`127.0.0.1:${controller.xdsPort}`, grpc.credentials.createInsecure());
  try {
    const s = open(client, 'sotw');
    s.send({ node, typeUrl: CDS, resourceNames: [], versionInfo: '', responseNonce: '' });
    const cds = await s.next();
    assert.equal(cds.resources.length, 3);
    s.send({ typeUrl: EDS, resourceNames: ['outbound|14001|bookstore-v1.bookstore', 'not-yet-there'], versionInfo: '', responseNonce: '' });
    const eds = await s.next();
    assert.equal(eds.resources.length, 1, 'only the named assignment that exists');
    // A request carrying an old nonce is stale: no answer, even with new names.
    s.send({ typeUrl: CDS, resourceNames: ['x'], versionInfo: '', responseNonce: 'stale-nonce' });
    assert.ok(await s.quiet(), 'a stale request gets no response (no ping-pong)');
    // NACK: recorded, and the rejected version is not re-sent.
    s.send({ typeUrl: CDS, resourceNames: [], versionInfo: '', responseNonce: cds.nonce, errorDetail: { code: 3, message: 'bad cluster' } });
    assert.ok(await s.quiet(), 'no resend loop after a NACK');
    const rec = controller.proxies.list()[0]!;
    assert.equal(rec.types.cluster?.nack?.message, 'bad cluster');
    // ACK of EDS records the version.
    s.send({ typeUrl: EDS, resourceNames: ['outbound|14001|bookstore-v1.bookstore', 'not-yet-there'], versionInfo: eds.versionInfo, responseNonce: eds.nonce });
    assert.ok(await s.quiet());
    assert.equal(controller.proxies.list()[0]!.types.endpoint?.acked, eds.versionInfo);
    s.call.end();
  } finally {
    client.close();
    await controller.close();
  }
});

test('delta: initial_resource_versions means only what differs is sent; unsubscribe and resubscribe resends; removed resources are named', async () => {
  const { controller } = await testController('examples/bookstore', { insecureXds: true });
  const client = new Client(`127.0.0.1:${controller.xdsPort}`, grpc.credentials.createInsecure());
  try {
    const snapshot = controller.cache.get('spiffe://cluster.local/ns/bookbuyer/sa/bookbuyer')!;
    const clusters = [...snapshot.types.cluster.resources.values()];
    const s = open(client, 'delta');
    // A reconnecting client that already has two of the three clusters at their current versions.
    const initial = Object.fromEntries(clusters.slice(0, 2).map((r) => [r.name, r.version]));
    s.send({ node, typeUrl: CDS, resourceNamesSubscribe: [], resourceNamesUnsubscribe: [], initialResourceVersions: { ...initial, 'gone-cluster': 'v0' }, responseNonce: '' });
    const first = await s.next();
    assert.deepEqual(first.resources.map((r) => r.name), [clusters[2]!.name]);
    assert.deepEqual(first.removedResources, ['gone-cluster']);
    // EDS: subscribe one name, unsubscribe it, subscribe again: sent both times.
    const name = clusters[0]!.name;
    s.send({ typeUrl: EDS, resourceNamesSubscribe: [name], resourceNamesUnsubscribe: [], initialResourceVersions: {}, responseNonce: '' });
    const a = await s.next();
    assert.deepEqual(a.resources.map((r) => r.name), [name]);
    s.send({ typeUrl: EDS, resourceNamesSubscribe: [], resourceNamesUnsubscribe: [name], initialResourceVersions: {}, responseNonce: a.nonce });
    assert.ok(await s.quiet());
    s.send({ typeUrl: EDS, resourceNamesSubscribe: [name], resourceNamesUnsubscribe: [], initialResourceVersions: {}, responseNonce: 'stale' });
    const b = await s.next();
    assert.deepEqual(b.resources.map((r) => r.name), [name], 'resubscribe is honoured even on a stale nonce');
    s.call.end();
  } finally {
    client.close();
    await controller.close();
  }
});

test('a proxy that stops reading does not delay another proxy\'s push', async () => {
  const { controller, dir } = await testController('examples/bookstore', { insecureXds: true });
  const client = new Client(`127.0.0.1:${controller.xdsPort}`, grpc.credentials.createInsecure());
  const client2 = new Client(`127.0.0.1:${controller.xdsPort}`, grpc.credentials.createInsecure());
  try {
    const RDS = TYPE_URL.route;
    const subscribe = (x: ReturnType<typeof open>, id: string) => x.send({ node: { id }, typeUrl: RDS, resourceNames: ['outbound|14001'], versionInfo: '', responseNonce: '' });
    const stuck = open(client, 'sotw');
    subscribe(stuck, 'bookbuyer/bookbuyer');
    await stuck.next();
    stuck.call.pause(); // reads nothing from now on
    const s = open(client2, 'sotw');
    subscribe(s, 'bookbuyer/bookbuyer/second');
    await s.next();
    // Many policy changes: each is pushed to both streams; the stuck one's responses pile up unread.
    const policy = join(dir, 'mesh', '40-policy.yaml');
    const text = readFileSync(policy, 'utf8');
    for (let i = 0; i < 60; i++) {
      writeFileSync(policy, text.replace('weight: 90', `weight: ${11 + i}`));
      await controller.reload();
    }
    const latest = controller.cache.get('spiffe://cluster.local/ns/bookbuyer/sa/bookbuyer')!.types.route.version;
    let last = '';
    while (last !== latest) last = (await s.next(5000)).versionInfo;
    assert.equal(last, latest, 'the healthy proxy received the latest route table');
    assert.equal(controller.proxies.list().length, 2);
  } finally {
    client.close();
    client2.close();
    await controller.close();
  }
});

test('mutual TLS: a node id that disagrees with the client certificate is refused with PERMISSION_DENIED', async () => {
  const { controller, state } = await testController('examples/bookstore');
  const ca = await openInternalCA(state, 'cluster.local');
  const cert = await ca.issue('spiffe://cluster.local/ns/bookthief/sa/bookthief', { ttlMs: 3600_000 });
  const creds = grpc.credentials.createSsl(Buffer.from(ca.trustBundle()), Buffer.from(cert.privateKey), Buffer.from(cert.certificateChain));
  const client = new Client(`localhost:${controller.xdsPort}`, creds);
  try {
    const s = open(client, 'sotw');
    s.send({ node: { id: 'bookbuyer/bookbuyer' }, typeUrl: CDS, resourceNames: [], versionInfo: '', responseNonce: '' });
    await assert.rejects(s.next(2000));
    assert.equal(s.error()?.code, grpc.status.PERMISSION_DENIED);
    assert.match(s.error()?.details ?? '', /does not match the certificate's identity spiffe:\/\/cluster\.local\/ns\/bookthief\/sa\/bookthief/);
    // The same certificate with its own node id is served.
    const ok = open(client, 'sotw');
    ok.send({ node: { id: 'bookthief/bookthief' }, typeUrl: CDS, resourceNames: [], versionInfo: '', responseNonce: '' });
    assert.equal((await ok.next()).resources.length, 0, 'bookthief may call nothing');
    ok.call.end();
  } finally {
    client.close();
    await controller.close();
  }
});
