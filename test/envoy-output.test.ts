import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { throwawayCertificates } from '../src/adapters/ca/throwaway.js';
import { loadEnvoyProtos } from '../src/adapters/envoy-protos.js';
import { loadPaths } from '../src/adapters/yaml-files.js';
import { compile, compileIR } from '../src/compiler/compile.js';
import { PUSH_ORDER, TYPES, type ResourceKind } from '../src/compiler/envoy/codec.js';
import { inconsistencies } from '../src/compiler/envoy/consistency.js';
import { buildSnapshots, type Snapshot } from '../src/compiler/envoy/snapshot.js';
import { applicableGrants } from '../src/compiler/ir/query.js';
import type { MeshIR } from '../src/compiler/ir/types.js';
import { configDump, REDACTED } from '../src/output/config-dump.js';

const codec = loadEnvoyProtos();
const id = (ns: string, sa: string) => `spiffe://cluster.local/ns/${ns}/sa/${sa}`;
const decoded = (s: Snapshot, kind: ResourceKind) => s.types[kind].resources.map((r) => codec.toJson(TYPES[kind], r.bytes) as Record<string, unknown>);

const bookstore = compileIR(await loadPaths(['golden/bookstore/input'])).ir;
const snapshots = buildSnapshots(bookstore, codec);
const snapshotOf = (identity: string) => snapshots.find((s) => s.identity === identity)!;

/** Every value under `key` anywhere inside `v`. */
function collect(v: unknown, key: string, out: unknown[] = []): unknown[] {
  if (Array.isArray(v)) v.forEach((x) => collect(x, key, out));
  else if (v !== null && typeof v === 'object') {
    for (const [k, x] of Object.entries(v)) {
      if (k === key) out.push(x);
      collect(x, key, out);
    }
  }
  return out;
}

type Policies = Record<string, { principals: { authenticated: { principalName: { exact?: string; prefix?: string } } }[] }>;

/** Inbound RBAC per port: the principals each filter chain allows. */
function inboundPrincipals(s: Snapshot): Map<number, string[]> {
  const out = new Map<number, string[]>();
  const inbound = decoded(s, 'listener').find((l) => l['name'] === 'inbound');
  for (const chain of (inbound?.['filterChains'] ?? []) as { filterChainMatch: { destinationPort?: number } }[]) {
    // A transparent caller's chain names its port; an explicit caller's (by TLS server name) leads to
    // the local port named by its route table or TCP cluster (inbound|PORT...).
    const local = [...collect(chain, 'routeConfigName'), ...collect(chain, 'cluster')].map((x) => /^inbound\|(\d+)/.exec(String(x))?.[1]).find((x) => x !== undefined);
    const port = chain.filterChainMatch.destinationPort ?? (local === undefined ? undefined : Number(local));
    assert.ok(port !== undefined, 'every inbound chain leads to a local port');
    const policies = (collect(chain, 'policies')[0] ?? {}) as Policies;
    const principals = [...new Set(Object.values(policies).flatMap((p) => p.principals.map((x) => x.authenticated.principalName.exact ?? `prefix:${x.authenticated.principalName.prefix}`)))].sort();
    // Chains of one port (by destination port and by server name) must agree.
    if (out.has(port)) assert.deepEqual(principals, out.get(port), `inbound chains of port ${port} disagree`);
    out.set(port, principals);
  }
  return out;
}

test('bookbuyer reaches bookstore through a 9:1 weighted route; bookthief gets no listener and no route', () => {
  const buyer = snapshotOf(id('bookbuyer', 'bookbuyer'));
  // The transparent listener's chain for bookstore's cluster IP and port routes by bookstore's own table: the destination chose the service, whatever the Host header says.
  const outbound = decoded(buyer, 'listener').find((l) => l['name'] === 'outbound')!;
  assert.deepEqual(collect(outbound, 'addressPrefix').sort(), ['198.18.100.1', '198.18.100.2', '198.18.100.3']);
  const chain = (outbound['filterChains'] as { name: string }[]).find((c) => c.name === 'outbound|14001|bookstore.bookstore')!;
  assert.deepEqual(collect(chain, 'routeConfigName'), ['outbound|14001|bookstore.bookstore']);
  const route = decoded(buyer, 'route').find((r) => r['name'] === 'outbound|14001|bookstore.bookstore')!;
  const hosts = route['virtualHosts'] as { name: string; domains: string[]; routes: unknown[] }[];
  assert.deepEqual(hosts.map((v) => [v.name, v.domains]), [['bookstore.bookstore:14001', ['*']]]);
  assert.deepEqual(collect(hosts[0]!, 'weightedClusters'), [
    { clusters: [{ name: 'outbound|14001|bookstore-v1.bookstore', weight: 9 }, { name: 'outbound|14001|bookstore-v2.bookstore', weight: 1 }] },
  ]);

  const thief = snapshotOf(id('bookthief', 'bookthief'));
  for (const kind of ['cluster', 'endpoint', 'listener', 'route'] as const) assert.deepEqual(thief.types[kind].resources, [], kind);
});

test('bookstore accepts only bookbuyer, over mTLS, on the granted paths and methods', () => {
  const store = snapshotOf(id('bookstore', 'bookstore'));
  assert.deepEqual(inboundPrincipals(store), new Map([[8080, [id('bookbuyer', 'bookbuyer')]]]));
  const inbound = decoded(store, 'listener').find((l) => l['name'] === 'inbound')!;
  assert.deepEqual(collect(inbound, 'requireClientCertificate'), [true]);
  assert.deepEqual(collect(inbound, 'regex').sort(), ['(?:/books-bought).*', '(?:/buy-a-book).*', 'GET', 'GET', 'bookbuyer/.*']);
  const routes = decoded(store, 'route').find((r) => r['name'] === 'inbound|8080')!;
  assert.deepEqual(collect(routes, 'name').filter((n) => String(n).includes('#')), ['bookstore/bookstore-service-routes#books-bought', 'bookstore/bookstore-service-routes#buy-a-book']);
  const mysql = snapshotOf(id('bookwarehouse', 'mysql'));
  assert.deepEqual(inboundPrincipals(mysql), new Map([[3306, [id('bookwarehouse', 'bookwarehouse')]]]));
  assert.equal(collect(decoded(mysql, 'listener'), 'routeConfigName').length, 0, 'a TCP port has no HTTP connection manager');
});

test('permissive mode lets any identity of the trust domain in, still over mTLS', async () => {
  const ir = compileIR(await loadPaths(['golden/bookstore-permissive/input'])).ir;
  const store = buildSnapshots(ir, codec).find((s) => s.identity === id('bookstore', 'bookstore'))!;
  assert.deepEqual(inboundPrincipals(store).get(8080), ['prefix:spiffe://cluster.local/']);
  assert.deepEqual(collect(decoded(store, 'listener'), 'requireClientCertificate'), [true]);
});

test('a proxy receives only its own certificate and key, and printed output redacts the key', async () => {
  const inputs = await loadPaths(['golden/bookstore/input']);
  const identities = [...new Set(bookstore.workloads.map((w) => w.identity))];
  const certificates = await throwawayCertificates('cluster.local', identities);
  const result = compile({ ...inputs, certificates }, codec);
  for (const s of result.snapshots) {
    assert.deepEqual(s.types.secret.resources.map((r) => r.name), ['identity', 'trust-bundle']);
    const mine = certificates.identities.find((c) => c.identity === s.identity)!;
    const raw = Buffer.concat(s.types.secret.resources.map((r) => Buffer.from(r.bytes))).toString('utf8');
    assert.ok(raw.includes(mine.privateKey) && raw.includes(mine.certificateChain), 'the snapshot carries its own certificate and key for SDS');
    for (const other of certificates.identities) if (other.identity !== s.identity) assert.ok(!raw.includes(other.privateKey), `${s.identity} holds ${other.identity}'s key`);
    assert.deepEqual(inconsistencies(s, codec), []);
    const printed = JSON.stringify(configDump(s, codec));
    assert.ok(!printed.includes('PRIVATE KEY'), 'no key material in config_dump output');
    assert.ok(printed.includes(REDACTED));
    assert.ok(printed.includes(mine.certificateChain.split('\n')[1]!), 'certificates themselves are shown');
  }
});

// ---- Properties over generated meshes -------------------------------------------------

const SAS = ['x', 'y', 'z'];
const APPS = ['p', 'q', 'r'];

const meshGen = fc.record({
  pods: fc.array(fc.record({ sa: fc.constantFrom(...SAS), app: fc.constantFrom(...APPS), explicit: fc.boolean() }), { maxLength: 6 }),
  grants: fc.array(
    fc.record({ src: fc.constantFrom(...SAS), dst: fc.constantFrom(...SAS), kind: fc.constantFrom('tcp', 'http'), port: fc.option(fc.constantFrom(8080, 9090), { nil: undefined }) }),
    { maxLength: 5 },
  ),
  split: fc.option(
    fc.record({ weights: fc.array(fc.nat({ max: 5 }), { minLength: 3, maxLength: 3 }), matched: fc.boolean() }),
    { nil: undefined },
  ),
  permissive: fc.boolean(),
});
type GenMesh = typeof meshGen extends fc.Arbitrary<infer T> ? T : never;

function documents(m: GenMesh): unknown[] {
  const meta = (name: string, extra: object = {}) => ({ name, namespace: 'a', ...extra });
  return [
    { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'a', labels: { 'smc.dev/mesh': 'enabled' } } },
    { apiVersion: 'smc.dev/v1alpha1', kind: 'MeshConfig', metadata: meta('m'), spec: { permissive: m.permissive } },
    { apiVersion: 'specs.smi-spec.io/v1alpha4', kind: 'TCPRoute', metadata: meta('all'), spec: {} },
    { apiVersion: 'specs.smi-spec.io/v1alpha4', kind: 'HTTPRouteGroup', metadata: meta('api'), spec: { matches: [{ name: 'get', pathRegex: '/api', methods: ['GET'] }, { name: 'beta', headers: [{ 'x-beta': 'yes' }] }] } },
    // Root service `web` selects every app; one backend service per app.
    { apiVersion: 'v1', kind: 'Service', metadata: meta('web'), spec: { clusterIP: '198.18.200.1', selector: {}, ports: [{ name: 'http', port: 80, targetPort: 8080 }, { name: 'tcp', port: 90, targetPort: 9090 }] } },
    ...APPS.map((app, i) => ({ apiVersion: 'v1', kind: 'Service', metadata: meta(`web-${app}`), spec: { clusterIP: `198.18.200.${i + 2}`, selector: { app }, ports: [{ name: 'http', port: 80, targetPort: 8080 }, { name: 'tcp', port: 90, targetPort: 9090 }] } })),
    ...m.pods.map((p, i) => ({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: meta(`pod${i}`, { labels: { app: p.app }, ...(p.explicit ? { annotations: { 'smc.dev/interception': 'explicit' } } : {}) }),
      spec: { serviceAccountName: p.sa },
      status: { podIP: `198.18.0.${i + 1}` },
    })),
    ...m.grants.map((g, i) => ({
      apiVersion: 'access.smi-spec.io/v1alpha2',
      kind: 'TrafficTarget',
      metadata: meta(`t${i}`),
      spec: {
        destination: { kind: 'ServiceAccount', name: g.dst, ...(g.port ? { port: g.port } : {}) },
        sources: [{ kind: 'ServiceAccount', name: g.src }],
        rules: [g.kind === 'tcp' ? { kind: 'TCPRoute', name: 'all' } : { kind: 'HTTPRouteGroup', name: 'api', matches: ['get', 'beta'] }],
      },
    })),
    ...(m.split
      ? [{
          apiVersion: 'split.smi-spec.io/v1alpha4',
          kind: 'TrafficSplit',
          metadata: meta('split'),
          spec: {
            service: 'web',
            ...(m.split.matched ? { matches: [{ kind: 'HTTPRouteGroup', name: 'api' }] } : {}),
            backends: APPS.map((app, i) => ({ service: `web-${app}`, weight: m.split!.weights[i] })),
          },
        }]
      : []),
  ];
}

function compileGenerated(m: GenMesh): { ir: MeshIR; snapshots: Snapshot[] } {
  const result = compile({ documents: documents(m).map((value, i) => ({ origin: { source: 'gen.yaml', document: i, line: 0 }, value })), problems: [] }, codec);
  return { ir: result.ir, snapshots: [...result.snapshots] };
}

test('property: every generated mesh gives consistent snapshots whose resources round-trip through Envoy\'s protos', () => {
  fc.assert(
    fc.property(meshGen, (m) => {
      for (const s of compileGenerated(m).snapshots) {
        assert.deepEqual(inconsistencies(s, codec), []);
        for (const kind of PUSH_ORDER)
          for (const r of s.types[kind].resources) assert.deepEqual(codec.encode(TYPES[kind], codec.toJson(TYPES[kind], r.bytes)), r.bytes);
      }
    }),
    { numRuns: 150 },
  );
});

test('property: deny by default - no identity gets a cluster, route or inbound permission the IR does not grant', () => {
  fc.assert(
    fc.property(meshGen, (m) => {
      const { ir, snapshots } = compileGenerated(m);
      const ids = new Set(ir.workloads.map((w) => w.identity));
      for (const s of snapshots) {
        // Outbound: every endpoint of every cluster is one this proxy may reach.
        for (const cla of decoded(s, 'endpoint')) {
          const [, port, host] = /^outbound\|(\d+)\|(.+)$/.exec(String(cla['clusterName']))!;
          const service = ir.services.find((x) => `${x.name}.${x.namespace}` === host)!;
          const servicePort = service.ports.find((p) => p.port === Number(port))!;
          for (const addr of collect(cla, 'socketAddress') as { address: string }[]) {
            const e = servicePort.endpoints.find((x) => x.address === addr.address)!;
            const allowed = ir.settings.permissive ? ids.has(s.identity) && ids.has(e.identity) : applicableGrants(ir, s.identity, e.identity, e.port, servicePort.protocol).length > 0;
            assert.ok(allowed, `${s.identity} may not reach ${e.workload}:${e.port}`);
          }
        }
        // Inbound: each port admits exactly the sources the IR grants on it (HTTP rules do not open TCP ports).
        for (const [port, principals] of inboundPrincipals(s)) {
          if (ir.settings.permissive) {
            assert.deepEqual(principals, ['prefix:spiffe://cluster.local/']);
            continue;
          }
          const http = port === 8080;
          const expected = SAS.map((sa) => id('a', sa)).filter((src) => applicableGrants(ir, src, s.identity, port).some((g) => g.protocol === 'tcp' || http));
          assert.deepEqual(principals, expected.sort(), `${s.identity} port ${port}`);
        }
      }
    }),
    { numRuns: 150 },
  );
});

test('property: split weights appear as the same ratios, and a zero-weight backend gets no weight', () => {
  fc.assert(
    fc.property(meshGen, (m) => {
      const { ir, snapshots } = compileGenerated(m);
      const split = ir.splits.find((x) => x.service === 'web');
      for (const s of snapshots) {
        for (const w of [...collect(decoded(s, 'route'), 'weightedClusters'), ...collect(decoded(s, 'listener'), 'weightedClusters')] as { clusters: { name: string; weight: number }[] }[]) {
          assert.ok(split, 'weighted clusters only come from a split');
          const ir = new Map(split.backends.map((b) => [b.service, b.weight]));
          for (const c of w.clusters) {
            const backend = /\|([^|.]+)\.a$/.exec(c.name)![1]!;
            assert.ok((ir.get(backend) ?? 0) > 0, `zero-weight backend ${backend} got weight ${c.weight}`);
          }
          // Every backend with weight that this proxy may reach (it has its cluster) is in the split.
          const port = /^outbound\|(\d+)\|/.exec(w.clusters[0]!.name)![1]!;
          const reachable = new Set(decoded(s, 'cluster').map((c) => String(c['name'])));
          for (const [backend, weight] of ir) {
            const cluster = `outbound|${port}|${backend}.a`;
            if (weight > 0 && reachable.has(cluster)) assert.ok(w.clusters.some((c) => c.name === cluster), `${s.identity}: reachable backend ${backend} is missing from the split`);
          }
          for (const a of w.clusters)
            for (const b of w.clusters) {
              const wa = ir.get(/\|([^|.]+)\.a$/.exec(a.name)![1]!)!;
              const wb = ir.get(/\|([^|.]+)\.a$/.exec(b.name)![1]!)!;
              assert.equal(a.weight * wb, b.weight * wa, `${a.name}:${b.name} should be ${wa}:${wb}`);
            }
        }
      }
    }),
    { numRuns: 150 },
  );
});

test('property: the generator reaches weighted routes, explicit listeners and inbound SNI chains', () => {
  // Guards the properties above against a generator that never produces the interesting cases.
  let weighted = 0;
  let explicit = 0;
  let sni = 0;
  fc.assert(
    fc.property(meshGen, (m) => {
      for (const s of compileGenerated(m).snapshots) {
        const listeners = decoded(s, 'listener');
        if (collect(decoded(s, 'route'), 'weightedClusters').length > 0) weighted++;
        if (listeners.some((l) => String(l['name']).endsWith('|explicit'))) explicit++;
        if (collect(listeners, 'serverNames').length > 0) sni++;
      }
    }),
    { numRuns: 150, seed: 42 },
  );
  assert.ok(weighted > 0 && explicit > 0 && sni > 0, `weighted ${weighted}, explicit ${explicit}, sni ${sni}`);
});
