import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { openInternalCA } from '../src/adapters/ca/internal-ca.js';
import { openProxyCertificates } from '../src/adapters/ca/proxy-certificates.js';
import { certificateFacts } from '../src/adapters/ca/x509.js';
import { loadEnvoyProtos } from '../src/adapters/envoy-protos.js';
import { TYPES } from '../src/compiler/envoy/codec.js';
import type { Snapshot } from '../src/compiler/envoy/snapshot.js';
import type { Controller } from '../src/runtime/controller.js';
import { TYPE_URL, kindOfTypeUrl } from '../src/runtime/xds-types.js';
import { Client, open, type Resp } from './helpers/ads-client.js';
import { testController } from './helpers/controller.js';
import { asSnapshot, withResources } from './helpers/snapshots.js';

/** Scripted raw ADS streams for the rules in xds-rules.md. */
const protos = loadEnvoyProtos();

const CDS = TYPE_URL.cluster;
const EDS = TYPE_URL.endpoint;
const node = { id: 'bookbuyer/bookbuyer' };

test('SotW: wildcard CDS gets the full set, EDS exactly the named ones, a stale nonce is ignored, a NACK is recorded and not answered with a resend', async () => {
  await withPlaintextAds({}, async ({ controller, client }) => {
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
  });
});

test('delta: initial_resource_versions means only what differs is sent; unsubscribe and resubscribe resends; removed resources are named', async () => {
  await withPlaintextAds({}, async ({ controller, client }) => {
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
  });
});

test('a proxy that stops reading fills its HTTP/2 window and waits alone: another proxy still gets every push', async () => {
  const { controller, dir } = await testController('examples/bookstore', { insecureXds: true, pushWindowMs: 0 });
  const client = new Client(`127.0.0.1:${controller.xdsPort}`, grpc.credentials.createInsecure());
  const client2 = new Client(`127.0.0.1:${controller.xdsPort}`, grpc.credentials.createInsecure());
  try {
    const RDS = TYPE_URL.route;
    const subscribe = (x: ReturnType<typeof open>, id: string) => x.send({ node: { id }, typeUrl: RDS, resourceNames: ['outbound|14001|bookstore.bookstore'], versionInfo: '', responseNonce: '' });
    const stuck = open(client, 'sotw');
    subscribe(stuck, 'bookbuyer/bookbuyer/stuck');
    await stuck.next();
    stuck.call.pause(); // reads nothing from now on
    const s = open(client2, 'sotw');
    subscribe(s, 'bookbuyer/bookbuyer/healthy');
    await s.next();
    const record = (suffix: string) => controller.proxies.list().find((p) => p.nodeId.endsWith(suffix))!;
    // Policy changes until the stuck stream's writes stop being accepted: its flow-control window is full.
    const policy = join(dir, 'mesh', '40-policy.yaml');
    const text = readFileSync(policy, 'utf8');
    let changes = 0;
    while (record('/stuck').sendBlockedSince === undefined && changes < 2000) {
      writeFileSync(policy, text.replace('weight: 90', `weight: ${11 + (changes % 500)}`).replace('weight: 10', `weight: ${1 + Math.floor(changes / 500)}`));
      await controller.reload();
      changes++;
    }
    assert.ok(record('/stuck').sendBlockedSince, `the stuck proxy's writes were still accepted after ${changes} changes`);
    const metrics = await (await fetch(`http://127.0.0.1:${controller.adminPort}/metrics`)).text();
    assert.match(metrics, /^smc_xds_blocked_streams 1$/m);
    // One more change: the healthy proxy receives it while the stuck one is still blocked.
    writeFileSync(policy, text.replace('weight: 90', 'weight: 3'));
    await controller.reload();
    const latest = controller.cache.get('spiffe://cluster.local/ns/bookbuyer/sa/bookbuyer')!.types.route.version;
    let last = '';
    while (last !== latest) last = (await s.next(5000)).versionInfo;
    assert.equal(last, latest, 'the healthy proxy received the latest route table');
    assert.ok(record('/stuck').sendBlockedSince, 'the stuck proxy is still blocked');
    assert.equal(record('/healthy').sendBlockedSince, undefined);
    const shown = (await (await fetch(`http://127.0.0.1:${controller.adminPort}/status/proxies`)).json()) as { proxies: { nodeId: string; sendBlockedSince?: string }[] };
    assert.ok(shown.proxies.find((p) => p.nodeId.endsWith('/stuck'))?.sendBlockedSince, '/status/proxies shows which proxy is not reading');
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
  await openProxyCertificates(state).recordIssued({ serial: certificateFacts(cert.certificateChain).serial, identity: 'spiffe://cluster.local/ns/bookthief/sa/bookthief', issuedAt: cert.issuedAt, notAfter: cert.notAfter });
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

const BOOKBUYER = 'spiffe://cluster.local/ns/bookbuyer/sa/bookbuyer';
const EXISTING = 'outbound|14001|bookstore-v1.bookstore';
const LATE = 'outbound|14001|bookstore-v3.bookstore';

/** The names of the resources in a SotW response (its resources are bare Any messages). */
function sotwNames(r: Resp): string[] {
  const kind = kindOfTypeUrl(r.typeUrl)!;
  return (r.resources as unknown as { value: Uint8Array }[]).map((x) => {
    const json = protos.toJson(TYPES[kind], x.value) as { name?: string; clusterName?: string };
    return (json.name ?? json.clusterName)!;
  });
}

/** A controller with plaintext xDS over the bookstore mesh and a raw ADS client to it, both closed afterwards. */
async function withPlaintextAds(options: { pushWindowMs?: number }, body: (x: { controller: Controller; dir: string; client: grpc.Client }) => Promise<void>) {
  const { controller, dir } = await testController('examples/bookstore', { insecureXds: true, ...options });
  const client = new Client(`127.0.0.1:${controller.xdsPort}`, grpc.credentials.createInsecure());
  try {
    await body({ controller, dir, client });
  } finally {
    client.close();
    await controller.close();
  }
}

/** Every snapshot the cache holds, with bookbuyer's replaced by `edit` of it. */
function editBookbuyer(controller: Controller, edit: (s: Snapshot) => Snapshot): Snapshot[] {
  return controller.cache.identities().map((id) => {
    const s = asSnapshot(controller.cache.get(id)!);
    return id === BOOKBUYER ? edit(s) : s;
  });
}

/** A copy of an existing cluster (and of its assignment) under another name. */
function cloneCluster(controller: Controller, from: string, name: string) {
  const snap = controller.cache.get(BOOKBUYER)!;
  const cluster = protos.toJson(TYPES.cluster, snap.types.cluster.resources.get(from)!.bytes) as Record<string, unknown>;
  const cla = protos.toJson(TYPES.endpoint, snap.types.endpoint.resources.get(from)!.bytes) as Record<string, unknown>;
  return {
    cluster: { name, bytes: protos.encode(TYPES.cluster, { ...cluster, name }) },
    endpoint: { name, bytes: protos.encode(TYPES.endpoint, { ...cla, clusterName: name }) },
  };
}

test('SotW: EDS is re-sent after a CDS change even when endpoints did not change, and a name that appears later is sent when it does', async () => {
  await withPlaintextAds({ pushWindowMs: 0 }, async ({ controller, client }) => {
    const s = open(client, 'sotw');
    s.send({ node, typeUrl: CDS, resourceNames: [], versionInfo: '', responseNonce: '' });
    const cds = await s.next();
    s.send({ typeUrl: CDS, resourceNames: [], versionInfo: cds.versionInfo, responseNonce: cds.nonce });
    s.send({ typeUrl: EDS, resourceNames: [EXISTING, LATE], versionInfo: '', responseNonce: '' });
    const eds = await s.next();
    assert.deepEqual(sotwNames(eds), [EXISTING], 'the name that does not exist yet is left out');
    s.send({ typeUrl: EDS, resourceNames: [EXISTING, LATE], versionInfo: eds.versionInfo, responseNonce: eds.nonce });
    assert.ok(await s.quiet(200));

    // A cluster changes (its timeout), its endpoints do not.
    const snap = controller.cache.get(BOOKBUYER)!;
    const changed = { ...(protos.toJson(TYPES.cluster, snap.types.cluster.resources.get(EXISTING)!.bytes) as object), connectTimeout: '7s' };
    controller.cache.setSnapshots(editBookbuyer(controller, (x) => withResources(x, 'cluster', 'cds-2', [{ name: EXISTING, bytes: protos.encode(TYPES.cluster, changed) }])));
    const cds2 = await s.next();
    assert.equal(cds2.typeUrl, CDS);
    assert.equal(cds2.versionInfo, 'cds-2');
    const eds2 = await s.next();
    assert.equal(eds2.typeUrl, EDS, 'EDS follows CDS, so the re-announced cluster does not stay warming');
    assert.equal(eds2.versionInfo, eds.versionInfo, 'the same endpoints, re-sent');
    assert.deepEqual(sotwNames(eds2), [EXISTING]);
    s.send({ typeUrl: CDS, resourceNames: [], versionInfo: cds2.versionInfo, responseNonce: cds2.nonce });
    s.send({ typeUrl: EDS, resourceNames: [EXISTING, LATE], versionInfo: eds2.versionInfo, responseNonce: eds2.nonce });
    assert.ok(await s.quiet(200), 'nothing more: only what changed is sent');

    // The late name appears (a new cluster and its assignment): CDS, then EDS with it.
    const late = cloneCluster(controller, EXISTING, LATE);
    controller.cache.setSnapshots(editBookbuyer(controller, (x) => withResources(withResources(x, 'cluster', 'cds-3', [late.cluster]), 'endpoint', 'eds-3', [late.endpoint])));
    const cds3 = await s.next();
    assert.ok(sotwNames(cds3).includes(LATE));
    const eds3 = await s.next();
    assert.equal(eds3.typeUrl, EDS);
    assert.deepEqual(sotwNames(eds3), [EXISTING, LATE], 'the remembered name is sent once it exists');
    s.call.end();
  });
});

test('SotW: a reconnecting proxy that reports its last versions is answered on the new stream, so warming completes', async () => {
  await withPlaintextAds({}, async ({ client }) => {
    const first = open(client, 'sotw');
    first.send({ node, typeUrl: CDS, resourceNames: [], versionInfo: '', responseNonce: '' });
    const cds = await first.next();
    first.send({ typeUrl: EDS, resourceNames: [EXISTING], versionInfo: '', responseNonce: '' });
    const eds = await first.next();
    first.send({ typeUrl: EDS, resourceNames: [EXISTING], versionInfo: eds.versionInfo, responseNonce: eds.nonce });
    first.call.cancel();
    // The new stream opens with the versions the proxy already holds, and no nonce.
    const again = open(client, 'sotw');
    again.send({ node, typeUrl: CDS, resourceNames: [], versionInfo: cds.versionInfo, responseNonce: '' });
    const cdsAgain = await again.next();
    assert.equal(cdsAgain.versionInfo, cds.versionInfo);
    assert.equal(cdsAgain.resources.length, cds.resources.length);
    again.send({ typeUrl: EDS, resourceNames: [EXISTING], versionInfo: eds.versionInfo, responseNonce: '' });
    const edsAgain = await again.next();
    assert.deepEqual(sotwNames(edsAgain), [EXISTING]);
    again.call.end();
  });
});

test('delta: a subscribed name that does not exist yet is sent when it appears', async () => {
  await withPlaintextAds({ pushWindowMs: 0 }, async ({ controller, client }) => {
    const s = open(client, 'delta');
    s.send({ node, typeUrl: EDS, resourceNamesSubscribe: [EXISTING, LATE], resourceNamesUnsubscribe: [], initialResourceVersions: {}, responseNonce: '' });
    const a = await s.next();
    assert.deepEqual(a.resources.map((r) => r.name), [EXISTING]);
    s.send({ typeUrl: EDS, resourceNamesSubscribe: [], resourceNamesUnsubscribe: [], initialResourceVersions: {}, responseNonce: a.nonce });
    const late = cloneCluster(controller, EXISTING, LATE);
    controller.cache.setSnapshots(editBookbuyer(controller, (x) => withResources(withResources(x, 'cluster', 'cds-2', [late.cluster]), 'endpoint', 'eds-2', [late.endpoint])));
    const b = await s.next();
    assert.deepEqual(b.resources.map((r) => r.name), [LATE], 'only the new resource');
    s.call.end();
  });
});

test('push window: a burst of snapshot changes inside the window reaches a proxy as one push of the latest', async () => {
  await withPlaintextAds({ pushWindowMs: 400 }, async ({ controller, client }) => {
    const s = open(client, 'sotw');
    s.send({ node, typeUrl: CDS, resourceNames: [], versionInfo: '', responseNonce: '' });
    const cds = await s.next();
    s.send({ typeUrl: CDS, resourceNames: [], versionInfo: cds.versionInfo, responseNonce: cds.nonce });
    assert.ok(await s.quiet(200));
    const snap = controller.cache.get(BOOKBUYER)!;
    const json = protos.toJson(TYPES.cluster, snap.types.cluster.resources.get(EXISTING)!.bytes) as object;
    for (const n of [1, 2, 3]) {
      const bytes = protos.encode(TYPES.cluster, { ...json, connectTimeout: `${n}s` });
      controller.cache.setSnapshots(editBookbuyer(controller, (x) => withResources(x, 'cluster', `burst-${n}`, [{ name: EXISTING, bytes }])));
    }
    const pushed = await s.next(2000);
    assert.equal(pushed.versionInfo, 'burst-3', 'the latest version, not the first');
    assert.ok(await s.quiet(800), 'one push for the whole burst');
    s.call.end();
  });
});

test('a stream whose first request has no node id is refused with INVALID_ARGUMENT', async () => {
  await withPlaintextAds({}, async ({ controller, client }) => {
    const s = open(client, 'sotw');
    s.send({ typeUrl: CDS, resourceNames: [], versionInfo: '', responseNonce: '' });
    await assert.rejects(s.next(2000));
    assert.equal(s.error()?.code, grpc.status.INVALID_ARGUMENT);
    assert.match(s.error()?.details ?? '', /must carry node\.id/);
    assert.equal(controller.proxies.list().length, 0);
  });
});

test('delta: a NACK is recorded and the rejected resources are not re-sent', async () => {
  await withPlaintextAds({}, async ({ controller, client }) => {
    const s = open(client, 'delta');
    s.send({ node, typeUrl: CDS, resourceNamesSubscribe: [], resourceNamesUnsubscribe: [], initialResourceVersions: {}, responseNonce: '' });
    const first = await s.next();
    assert.equal(first.resources.length, 3);
    s.send({ typeUrl: CDS, resourceNamesSubscribe: [], resourceNamesUnsubscribe: [], initialResourceVersions: {}, responseNonce: first.nonce, errorDetail: { code: 3, message: 'cluster rejected' } });
    assert.ok(await s.quiet(), 'no resend loop after a NACK');
    const t = controller.proxies.list()[0]!.types.cluster!;
    assert.equal(t.nack?.message, 'cluster rejected');
    s.call.end();
  });
});

test('a change of every type is pushed in make-before-break order: CDS, EDS, LDS, RDS, then SDS', async () => {
  await withPlaintextAds({ pushWindowMs: 0 }, async ({ controller, client }) => {
    const snap = controller.cache.get(BOOKBUYER)!;
    const first = (kind: keyof typeof TYPES) => [...snap.types[kind].resources.values()][0]!;
    const s = open(client, 'sotw');
    const subscriptions: [keyof typeof TYPES, string[]][] = [
      ['cluster', []],
      ['endpoint', [first('endpoint').name]],
      ['listener', []],
      ['route', [first('route').name]],
      ['secret', ['identity', 'trust-bundle']],
    ];
    for (const [kind, names] of subscriptions) {
      s.send({ node, typeUrl: TYPE_URL[kind], resourceNames: names, versionInfo: '', responseNonce: '' });
      const r = await s.next();
      s.send({ typeUrl: TYPE_URL[kind], resourceNames: names, versionInfo: r.versionInfo, responseNonce: r.nonce });
    }
    assert.ok(await s.quiet(200));
    const edit = (kind: keyof typeof TYPES, change: (json: Record<string, unknown>) => object) => {
      const r = first(kind);
      return { name: r.name, bytes: protos.encode(TYPES[kind], change(protos.toJson(TYPES[kind], r.bytes) as Record<string, unknown>)) };
    };
    const bundle = snap.types.secret.resources.get('trust-bundle')!;
    const bundleJson = protos.toJson(TYPES.secret, bundle.bytes) as { validationContext: { trustedCa: { inlineString: string } } };
    const changed = [
      ['cluster', edit('cluster', (j) => ({ ...j, connectTimeout: '9s' }))],
      ['endpoint', edit('endpoint', (j) => ({ ...j, policy: { overprovisioningFactor: 150 } }))],
      ['listener', edit('listener', (j) => ({ ...j, perConnectionBufferLimitBytes: 4096 }))],
      ['route', edit('route', (j) => ({ ...j, maxDirectResponseBodySizeBytes: 1024 }))],
      ['secret', { name: 'trust-bundle', bytes: protos.encode(TYPES.secret, { ...bundleJson, validationContext: { trustedCa: { inlineString: `${bundleJson.validationContext.trustedCa.inlineString}\n` } } }) }],
    ] as const;
    controller.cache.setSnapshots(editBookbuyer(controller, (x) => changed.reduce((out, [kind, r]) => withResources(out, kind, `${kind}-2`, [r]), x)));
    const order: string[] = [];
    for (let i = 0; i < 5; i++) order.push((await s.next()).typeUrl);
    assert.deepEqual(order, [CDS, EDS, TYPE_URL.listener, TYPE_URL.route, TYPE_URL.secret]);
    s.call.end();
  });
});

test('make before break: a cluster the new snapshot drops is removed last, after the listeners and routes that used it (SotW and delta)', async () => {
  await withPlaintextAds({ pushWindowMs: 0 }, async ({ controller, client }) => {
    const without = (s: Snapshot): Snapshot => {
      const listener = [...controller.cache.get(BOOKBUYER)!.types.listener.resources.values()][0]!;
      const json = protos.toJson(TYPES.listener, listener.bytes) as Record<string, unknown>;
      const changed = withResources(s, 'listener', 'listener-2', [{ name: listener.name, bytes: protos.encode(TYPES.listener, { ...json, perConnectionBufferLimitBytes: 4096 }) }]);
      return { ...changed, types: { ...changed.types, cluster: { version: 'cluster-2', resources: changed.types.cluster.resources.filter((r) => r.name !== EXISTING) } } };
    };
    // SotW: the first CDS keeps it, LDS follows, the last CDS drops it.
    const s = open(client, 'sotw');
    for (const kind of ['cluster', 'listener'] as const) {
      s.send({ node, typeUrl: TYPE_URL[kind], resourceNames: [], versionInfo: '', responseNonce: '' });
      const r = await s.next();
      s.send({ typeUrl: TYPE_URL[kind], resourceNames: [], versionInfo: r.versionInfo, responseNonce: r.nonce });
    }
    assert.ok(await s.quiet(200));
    // Delta, on a second stream of the same proxy.
    const d = open(client, 'delta');
    for (const kind of ['cluster', 'listener'] as const) {
      d.send({ node, typeUrl: TYPE_URL[kind], resourceNamesSubscribe: [], resourceNamesUnsubscribe: [], initialResourceVersions: {}, responseNonce: '' });
      const r = await d.next();
      d.send({ typeUrl: TYPE_URL[kind], resourceNamesSubscribe: [], resourceNamesUnsubscribe: [], initialResourceVersions: {}, responseNonce: r.nonce });
    }
    assert.ok(await d.quiet(200));

    controller.cache.setSnapshots(editBookbuyer(controller, without));
    // Whatever else is sent, no CDS response drops the cluster before the listener change, and the last one does.
    const drain = async (x: { next(ms?: number): Promise<unknown> }) => {
      const out: { typeUrl: string; removedResources?: string[] }[] = [];
      for (;;) {
        const r = (await x.next(1000).catch(() => undefined)) as { typeUrl: string; removedResources?: string[] } | undefined;
        if (!r) return out;
        out.push(r);
      }
    };
    const sotw = (await drain(s)).map((r) => ({ type: r.typeUrl, hasIt: r.typeUrl === CDS ? sotwNames(r as unknown as Resp).includes(EXISTING) : undefined }));
    assert.deepEqual(sotw.at(-1), { type: CDS, hasIt: false }, JSON.stringify(sotw));
    const lds = sotw.findIndex((x) => x.type === TYPE_URL.listener);
    assert.ok(lds >= 0 && sotw.slice(0, lds).every((x) => x.hasIt !== false), `the cluster stays until after LDS: ${JSON.stringify(sotw)}`);
    const delta = (await drain(d)).map((r) => ({ type: r.typeUrl, removed: r.removedResources ?? [] }));
    assert.deepEqual(delta.at(-1), { type: CDS, removed: [EXISTING] }, JSON.stringify(delta));
    assert.ok(delta.slice(0, -1).some((x) => x.type === TYPE_URL.listener) && delta.slice(0, -1).every((x) => x.removed.length === 0), `the removal comes after LDS: ${JSON.stringify(delta)}`);
    s.call.end();
    d.call.end();
  });
});
