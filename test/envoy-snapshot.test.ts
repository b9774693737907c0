import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { loadEnvoyProtos } from '../src/adapters/envoy-protos.js';
import { loadPaths } from '../src/adapters/yaml-files.js';
import { throwawayCertificates } from '../src/adapters/ca/throwaway.js';
import { compileIR } from '../src/compiler/compile.js';
import { TYPES, PUSH_ORDER } from '../src/compiler/envoy/codec.js';
import { IDENTITY_SECRET, TRUST_BUNDLE_SECRET } from '../src/compiler/envoy/names.js';
import { inconsistencies, resourceInconsistencies } from '../src/compiler/envoy/consistency.js';
import { buildSnapshots, planSnapshots, type Snapshot } from '../src/compiler/envoy/snapshot.js';
import { applicableGrants } from '../src/compiler/ir/query.js';
import { compileUnits } from '../src/compiler/units.js';
import { meshUnits } from '../bench/controller.js';
import type { MeshIR } from '../src/compiler/ir/types.js';

const codec = loadEnvoyProtos();
const id = (ns: string, sa: string) => `spiffe://cluster.local/ns/${ns}/sa/${sa}`;
const bookstore = compileIR(await loadPaths(['golden/bookstore/input'])).ir;
const snapshots = buildSnapshots(bookstore, codec);
const snapshotOf = (identity: string) => snapshots.find((s) => s.identity === identity)!;
const names = (s: Snapshot, kind: keyof Snapshot['types']) => s.types[kind].resources.map((r) => r.name);

test('every resource encodes against Envoy v3 protos and round-trips through bytes and canonical JSON', () => {
  for (const s of snapshots)
    for (const kind of PUSH_ORDER)
      for (const r of s.types[kind].resources) {
        const json = codec.toJson(TYPES[kind], r.bytes);
        assert.deepEqual(codec.encode(TYPES[kind], json), r.bytes, `${kind} ${r.name} of ${s.identity}`);
      }
});

test('every resource sits in a buffer of its own (not a view into a shared slab, which the thread boundary would copy whole and which a kept resource would keep alive)', () => {
  for (const s of snapshots) for (const kind of PUSH_ORDER) for (const r of s.types[kind].resources) assert.equal(r.bytes.buffer.byteLength, r.bytes.byteLength, `${kind} ${r.name} of ${s.identity}`);
});

test('bookbuyer gets clusters and endpoints for bookstore; bookthief gets none (deny by default)', () => {
  const buyer = snapshotOf(id('bookbuyer', 'bookbuyer'));
  assert.deepEqual(names(buyer, 'cluster'), [
    'outbound|14001|bookstore-v1.bookstore',
    'outbound|14001|bookstore-v2.bookstore',
    'outbound|14001|bookstore.bookstore',
  ]);
  assert.deepEqual(names(buyer, 'endpoint'), names(buyer, 'cluster'));
  const thief = snapshotOf(id('bookthief', 'bookthief'));
  assert.deepEqual(names(thief, 'cluster'), []);
  assert.deepEqual(names(thief, 'endpoint'), []);
});

test('an outbound cluster verifies the destination identity and presents the proxy\'s own by SDS', () => {
  const buyer = snapshotOf(id('bookbuyer', 'bookbuyer'));
  type Tls = { tlsCertificateSdsSecretConfigs: { name: string }[]; combinedValidationContext: { defaultValidationContext: { matchTypedSubjectAltNames: unknown[] } } };
  const c = codec.toJson(TYPES.cluster, buyer.types.cluster.resources[2]!.bytes) as { transportSocket: { typedConfig: { commonTlsContext: Tls } } };
  const tls = c.transportSocket.typedConfig.commonTlsContext;
  assert.equal(tls.tlsCertificateSdsSecretConfigs[0]?.name, 'identity');
  assert.deepEqual(tls.combinedValidationContext.defaultValidationContext.matchTypedSubjectAltNames, [
    { sanType: 'URI', matcher: { exact: id('bookstore', 'bookstore') } },
  ]);
});

test('the same inputs in any order give byte-identical snapshots and versions', async () => {
  const inputs = await loadPaths(['golden/bookstore/input']);
  const reversed = { ...inputs, documents: [...inputs.documents].reverse() };
  const again = buildSnapshots(compileIR(reversed).ir, codec);
  assert.deepEqual(again, snapshots);
});

test('a policy change changes the versions of exactly the affected types', async () => {
  // Both compiles get the same certificates, so secrets are real (non-empty) and must not move with policy.
  const strict = compileIR(await loadPaths(['golden/bookstore/input'])).ir;
  const permissive = compileIR(await loadPaths(['golden/bookstore-permissive/input'])).ir;
  const ids = [...new Set(strict.workloads.map((w) => w.identity))];
  const certificates = await throwawayCertificates('cluster.local', ids);
  const before = buildSnapshots(strict, codec, certificates);
  const after = buildSnapshots(permissive, codec, certificates);
  const bytes = (x: Snapshot, kind: (typeof PUSH_ORDER)[number]) => x.types[kind].resources.map((r) => `${r.name}=${Buffer.from(r.bytes).toString('base64')}`).join(',');
  const changedTypes = new Map<string, string[]>();
  for (const a of after) {
    const b = before.find((x) => x.identity === a.identity)!;
    assert.ok(b.types.secret.resources.length === 2, 'secrets are there to compare');
    for (const kind of PUSH_ORDER) {
      // A version moves exactly when the content of its type does.
      assert.equal(a.types[kind].version === b.types[kind].version, bytes(a, kind) === bytes(b, kind), `${a.identity} ${kind}`);
    }
    changedTypes.set(a.identity, PUSH_ORDER.filter((k) => a.types[k].version !== b.types[k].version));
  }
  // Permissive mode lets bookthief reach bookstore: its clusters, endpoints, outbound listener and routes change; no secret changes anywhere.
  assert.deepEqual(changedTypes.get(id('bookthief', 'bookthief')), ['cluster', 'endpoint', 'listener', 'route']);
  for (const [identity, kinds] of changedTypes) assert.ok(!kinds.includes('secret'), `${identity}: a policy change does not touch secrets`);
});

function deniedEndpointsReached(ir: MeshIR, s: Snapshot): string[] {
  const leaks: string[] = [];
  for (const r of s.types.endpoint.resources) {
    const cla = codec.toJson(TYPES.endpoint, r.bytes) as { endpoints?: { lbEndpoints?: { endpoint: { address: { socketAddress: { address: string; portValue: number } } } }[] }[] };
    for (const lb of cla.endpoints?.[0]?.lbEndpoints ?? []) {
      const a = lb.endpoint.address.socketAddress;
      const [port, ep] = ir.services.flatMap((x) => x.ports.flatMap((p) => p.endpoints.map((e) => [p, e] as const))).find(([, e]) => e.address === a.address && e.port === a.portValue)!;
      if (!ir.settings.permissive && applicableGrants(ir, s.identity, ep.identity, ep.port, port.protocol).length === 0) leaks.push(`${s.identity} -> ${a.address}:${a.portValue}`);
    }
  }
  return leaks;
}

test('for generated meshes, snapshots are consistent and hold no endpoint the proxy may not reach', () => {
  const ns = { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'a', labels: { 'smc.dev/mesh': 'enabled' } } };
  const sas = ['x', 'y', 'z'];
  const gen = fc.record({
    pods: fc.array(fc.record({ sa: fc.constantFrom(...sas), app: fc.constantFrom('p', 'q') }), { maxLength: 5 }),
    grants: fc.array(fc.record({ src: fc.constantFrom(...sas), dst: fc.constantFrom(...sas), port: fc.option(fc.constantFrom(8080, 9090), { nil: undefined }) }), { maxLength: 4 }),
    permissive: fc.boolean(),
  });
  fc.assert(
    fc.property(gen, (m) => {
      const docs: unknown[] = [
        ns,
        { apiVersion: 'smc.dev/v1alpha1', kind: 'MeshConfig', metadata: { name: 'm', namespace: 'a' }, spec: { permissive: m.permissive } },
        { apiVersion: 'specs.smi-spec.io/v1alpha4', kind: 'TCPRoute', metadata: { name: 'all', namespace: 'a' }, spec: {} },
        ...['p', 'q'].map((app) => ({ apiVersion: 'v1', kind: 'Service', metadata: { name: app, namespace: 'a' }, spec: { selector: { app }, ports: [{ name: 'http', port: 80, targetPort: 8080 }, { name: 'tcp', port: 90, targetPort: 9090 }] } })),
        ...m.pods.map((p, i) => ({ apiVersion: 'v1', kind: 'Pod', metadata: { name: `pod${i}`, namespace: 'a', labels: { app: p.app } }, spec: { serviceAccountName: p.sa }, status: { podIP: `198.18.0.${i + 1}` } })),
        ...m.grants.map((g, i) => ({
          apiVersion: 'access.smi-spec.io/v1alpha2',
          kind: 'TrafficTarget',
          metadata: { name: `t${i}`, namespace: 'a' },
          spec: { destination: { kind: 'ServiceAccount', name: g.dst, ...(g.port ? { port: g.port } : {}) }, sources: [{ kind: 'ServiceAccount', name: g.src }], rules: [{ kind: 'TCPRoute', name: 'all' }] },
        })),
      ];
      const ir = compileIR({ documents: docs.map((value, i) => ({ origin: { source: 'g', document: i, line: 0 }, value })), problems: [] }).ir;
      for (const s of buildSnapshots(ir, codec)) {
        assert.deepEqual(inconsistencies(s, codec), []);
        assert.deepEqual(deniedEndpointsReached(ir, s), []);
      }
    }),
    { numRuns: 100 },
  );
});

test('consistency is checked on the resources as translated (no decoding): sound snapshots pass, and each kind of broken reference is named', async () => {
  // Every golden case: what the translation checked on its own resources agrees with the check on the encoded bytes.
  for (const c of ['bookstore', 'split-matches', 'explicit-mode', 'injected-pod-probes', 'proxyless-grpc', 'hybrid-service']) {
    const ir = compileIR(await loadPaths([`golden/${c}/input`])).ir;
    const certificates = await throwawayCertificates(ir.settings.trustDomain, [...new Set(ir.workloads.map((w) => w.identity))]);
    for (const p of planSnapshots(ir, codec, certificates).values()) {
      assert.deepEqual(p.inconsistencies, [], `${c}: ${p.snapshot.identity}`);
      assert.deepEqual(inconsistencies(p.snapshot, codec), p.inconsistencies);
    }
  }
  // Broken by hand: the bookbuyer's resources, decoded, with one reference of each kind cut.
  const s = snapshotOf(id('bookbuyer', 'bookbuyer'));
  const sets = Object.fromEntries(PUSH_ORDER.map((k) => [k, s.types[k].resources.map((r) => codec.toJson(TYPES[k], r.bytes) as object)])) as Record<(typeof PUSH_ORDER)[number], object[]>;
  assert.deepEqual(resourceInconsistencies(s.identity, sets, undefined, sets.secret), []);
  const assignment = (sets.endpoint[0] as { clusterName: string }).clusterName;
  const quoted = assignment.replace(/[|.]/g, '\\$&');
  const check = (change: Partial<typeof sets>) => {
    const all = { ...sets, ...change };
    return resourceInconsistencies(s.identity, all, undefined, all.secret).join('\n');
  };
  assert.match(check({ route: [] }), /a listener names route configuration outbound\|14001\|bookstore\.bookstore, which does not exist/);
  const noCluster = check({ cluster: sets.cluster.filter((c) => (c as { name: string }).name !== assignment) });
  assert.match(noCluster, new RegExp(`cluster ${quoted} is routed to but does not exist`));
  assert.match(noCluster, new RegExp(`ClusterLoadAssignment ${quoted} belongs to no EDS cluster`));
  assert.match(check({ endpoint: sets.endpoint.slice(1) }), new RegExp(`EDS cluster ${quoted} has no ClusterLoadAssignment`));
  assert.match(check({ secret: [{ name: 'spiffe://cluster.local/ns/bookstore/sa/bookstore' }] }), /secret spiffe:\/\/cluster.local\/ns\/bookstore\/sa\/bookstore does not belong to this proxy/);
});

test('consistency: a snapshot split into its own resources and shared ones, whichever way, has the problems of the whole; own resources kept while the shared ones change are checked against each, and other identities\' own resources and secrets against the same shared ones', () => {
  const s = snapshotOf(id('bookbuyer', 'bookbuyer'));
  const kinds = ['cluster', 'endpoint', 'listener', 'route'] as const;
  type Lists = Record<(typeof kinds)[number], object[]>;
  const sets = Object.fromEntries(PUSH_ORDER.map((k) => [k, s.types[k].resources.map((r) => codec.toJson(TYPES[k], r.bytes) as object)])) as Record<(typeof PUSH_ORDER)[number], object[]>;
  const count = kinds.reduce((n, k) => n + sets[k].length, 0);
  // A choice per resource (in kind order): whether it is the identity's own, or cut (a cut one breaks what names it);
  // secrets provided or not, and one that is another proxy's.
  const choice = fc.array(fc.boolean(), { minLength: count, maxLength: count });
  const pick = (from: Lists, choose: readonly boolean[], keep: boolean): Lists => {
    let i = 0;
    return Object.fromEntries(kinds.map((k) => [k, from[k].filter(() => choose[i++] === keep)])) as Lists;
  };
  const union = (a: Lists, b: Lists): Lists => Object.fromEntries(kinds.map((k) => [k, sets[k].filter((r) => a[k].includes(r) || b[k].includes(r))])) as Lists;
  fc.assert(
    fc.property(choice, fc.array(choice, { minLength: 1, maxLength: 4 }), fc.subarray([{ name: IDENTITY_SECRET }, { name: TRUST_BUNDLE_SECRET }, { name: id('bookstore', 'bookstore') }]), choice, fc.subarray([{ name: IDENTITY_SECRET }, { name: TRUST_BUNDLE_SECRET }]), (owned, cuts, secrets, cutOwn, otherSecrets) => {
      // One own value (the same object), checked against shared values that change: as an own part kept while the reach changes.
      const own = pick(sets, owned, true);
      const others = pick(sets, owned, false);
      // Another identity's own value (some of the first one's resources), checked against the same shared values with other secrets.
      const second = pick(own, cutOwn, false);
      for (const cut of cuts) {
        // Some of the shared resources cut (the choices line up with `others`' resources only in part: any subset will do).
        const shared = pick(others, cut, false);
        const whole = resourceInconsistencies(s.identity, union(own, shared), undefined, secrets).sort();
        assert.deepEqual(resourceInconsistencies(s.identity, own, shared, secrets).sort(), whole);
        for (const [lists, provided] of [[second, secrets], [second, otherSecrets], [own, otherSecrets]] as const) {
          assert.deepEqual(resourceInconsistencies(s.identity, lists, shared, provided).sort(), resourceInconsistencies(s.identity, union(lists, shared), undefined, provided).sort());
        }
      }
    }),
    { numRuns: 300 },
  );
});

test('in a mesh that is not permissive, what callers of one service hold alike is made and encoded once: a route table of the same content is one encoding, a filter chain is encoded once', () => {
  const ir = compileUnits(meshUnits(200), {}).ir;
  const chainEncodes: string[] = [];
  const counting = { ...codec, encode: (type: string, json: unknown) => (type.endsWith('.FilterChain') && chainEncodes.push(JSON.stringify(json)), codec.encode(type, json)) };
  const plans = [...planSnapshots(ir, counting).values()].map((p) => p.snapshot);
  // Each outbound route table is held by several callers, as one bytes object.
  const tables = new Map<string, Set<Uint8Array>>();
  for (const s of plans) for (const r of s.types.route.resources) if (r.name.startsWith('outbound|')) tables.set(r.name, (tables.get(r.name) ?? new Set()).add(r.bytes));
  const held = plans.reduce((n, s) => n + s.types.route.resources.filter((r) => r.name.startsWith('outbound|')).length, 0);
  assert.ok(tables.size > 100 && held >= 4 * tables.size, `callers share services (${held} tables held, ${tables.size} distinct)`);
  // (Callers may call a service differently: a split whose backends some of them may not reach.)
  for (const [name, encodings] of tables) assert.equal(encodings.size, new Set([...encodings].map((b) => Buffer.from(b).toString('base64'))).size, `${name}: one encoding per content, for all the callers that hold it`);
  assert.ok([...tables.values()].filter((e) => e.size === 1).length > tables.size / 2);
  // Every outbound filter chain the listeners hold was encoded once (an inbound chain is its identity's own).
  const chains = plans.flatMap((s) => s.types.listener.resources.flatMap((r) => (codec.toJson(TYPES.listener, r.bytes) as { filterChains?: unknown[] }).filterChains ?? []));
  assert.ok(chains.length > chainEncodes.length, 'chains are shared between listeners');
  const outbound = chainEncodes.filter((c) => (JSON.parse(c) as { name?: string }).name?.startsWith('outbound|'));
  assert.ok(outbound.length > 100);
  assert.equal(new Set(outbound).size, outbound.length, 'no outbound chain encoded twice');
});
