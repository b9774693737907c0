import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { loadEnvoyProtos } from '../src/adapters/envoy-protos.js';
import { compileIR } from '../src/compiler/compile.js';
import { TYPES, type ResourceKind } from '../src/compiler/envoy/codec.js';
import { buildSnapshots, type Snapshot } from '../src/compiler/envoy/snapshot.js';
import { explain, type DestinationVerdict } from '../src/compiler/explain.js';
import type { InputDocument } from '../src/compiler/inputs.js';
import type { HttpRequest } from '../src/compiler/ir/query.js';
import { fullMatch } from '../src/compiler/regex.js';

/**
 * `smc explain` against what Envoy is given: over generated meshes, for every
 * destination explain reports, its verdict equals the destination's compiled
 * inbound RBAC evaluated on the request (a small evaluator of the RBAC
 * subset smc emits, below), and "reached" equals the caller's EDS holding
 * that endpoint. One definition of allowed, checked from both ends.
 */

const codec = loadEnvoyProtos();
const NAMESPACES = ['a', 'b'];
const ACCOUNTS = ['s1', 's2', 's3'];
const SERVICES = ['web', 'web-v2', 'db'];
const id = (ns: string, sa: string) => `spiffe://cluster.local/ns/${ns}/sa/${sa}`;

interface GenMatch {
  methods: string[] | undefined;
  path: string | undefined;
  header: string | undefined;
}
interface GenMesh {
  permissive: boolean;
  pods: { ns: string; sa: string; app: string }[];
  matches: GenMatch[];
  tcpPorts: number[] | undefined;
  targets: { ns: string; destSa: string; sources: { ns: string; sa: string }[]; rules: { kind: 'http' | 'tcp'; only: number[] | undefined }[] }[];
  split: { ns: string; weights: [number, number]; matchOnly: boolean } | undefined;
}

const genMesh: fc.Arbitrary<GenMesh> = fc.record({
  permissive: fc.integer({ min: 0, max: 4 }).map((x) => x === 0),
  pods: fc.array(fc.record({ ns: fc.constantFrom(...NAMESPACES), sa: fc.constantFrom(...ACCOUNTS), app: fc.constantFrom(...SERVICES) }), { minLength: 1, maxLength: 6 }),
  matches: fc.array(
    fc.record({
      methods: fc.option(fc.subarray(['GET', 'POST']), { nil: undefined }),
      path: fc.option(fc.constantFrom('/a', '/b.*', '/a/[0-9]+'), { nil: undefined }),
      header: fc.option(fc.constantFrom('alice', 'alice|bob'), { nil: undefined }),
    }),
    { minLength: 1, maxLength: 3 },
  ),
  tcpPorts: fc.option(fc.subarray([8080, 9090], { minLength: 1 }), { nil: undefined }),
  targets: fc.array(
    fc.record({
      ns: fc.constantFrom(...NAMESPACES),
      destSa: fc.constantFrom(...ACCOUNTS),
      sources: fc.array(fc.record({ ns: fc.constantFrom(...NAMESPACES), sa: fc.constantFrom(...ACCOUNTS) }), { minLength: 1, maxLength: 3 }),
      rules: fc.array(fc.record({ kind: fc.constantFrom('http' as const, 'tcp' as const), only: fc.option(fc.subarray([0, 1, 2], { minLength: 1 }), { nil: undefined }) }), { minLength: 1, maxLength: 2 }),
    }),
    { maxLength: 5 },
  ),
  split: fc.option(fc.record({ ns: fc.constantFrom(...NAMESPACES), weights: fc.tuple(fc.nat(3), fc.nat(3)), matchOnly: fc.boolean() }), { nil: undefined }),
});

function documents(m: GenMesh): unknown[] {
  const docs: unknown[] = [{ apiVersion: 'smc.dev/v1alpha1', kind: 'MeshConfig', metadata: { name: 'smc', namespace: 'smc-system' }, spec: { permissive: m.permissive } }];
  for (const ns of NAMESPACES) {
    docs.push({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns, labels: { 'smc.dev/mesh': 'enabled' } } });
    for (const s of SERVICES) {
      docs.push({
        apiVersion: 'v1',
        kind: 'Service',
        metadata: { name: s, namespace: ns },
        spec: { selector: { app: s }, ports: [{ name: 'http', port: 80, targetPort: 8080 }, { name: 'tcp', port: 3306, targetPort: 9090 }] },
      });
    }
    docs.push({
      apiVersion: 'specs.smi-spec.io/v1alpha4',
      kind: 'HTTPRouteGroup',
      metadata: { name: 'routes', namespace: ns },
      spec: {
        matches: m.matches.map((x, i) => ({
          name: `m${i}`,
          ...(x.path ? { pathRegex: x.path } : {}),
          ...(x.methods ? { methods: x.methods } : {}),
          ...(x.header ? { headers: [{ 'x-user': x.header }] } : {}),
        })),
      },
    });
    docs.push({ apiVersion: 'specs.smi-spec.io/v1alpha4', kind: 'TCPRoute', metadata: { name: 'tcp', namespace: ns }, spec: m.tcpPorts ? { matches: { ports: m.tcpPorts } } : {} });
  }
  m.pods.forEach((p, i) =>
    docs.push({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: `pod-${i}`, namespace: p.ns, labels: { app: p.app } },
      spec: { serviceAccountName: p.sa, containers: [{ name: 'app', ports: [{ containerPort: 8080 }, { containerPort: 9090 }] }] },
      status: { podIP: `198.18.0.${i + 1}` },
    }),
  );
  m.targets.forEach((t, i) => {
    const rules = t.rules.map((r) =>
      r.kind === 'tcp'
        ? { kind: 'TCPRoute', name: 'tcp' }
        : { kind: 'HTTPRouteGroup', name: 'routes', ...(r.only ? { matches: r.only.filter((j) => j < m.matches.length).map((j) => `m${j}`) } : {}) },
    );
    docs.push({
      apiVersion: 'access.smi-spec.io/v1alpha3',
      kind: 'TrafficTarget',
      metadata: { name: `t${i}`, namespace: t.ns },
      spec: { destination: { kind: 'ServiceAccount', name: t.destSa, namespace: t.ns }, sources: t.sources.map((s) => ({ kind: 'ServiceAccount', name: s.sa, namespace: s.ns })), rules },
    });
  });
  if (m.split) {
    docs.push({
      apiVersion: 'split.smi-spec.io/v1alpha4',
      kind: 'TrafficSplit',
      metadata: { name: 'web-split', namespace: m.split.ns },
      spec: {
        service: 'web',
        backends: [
          { service: 'web', weight: m.split.weights[0] },
          { service: 'web-v2', weight: m.split.weights[1] },
        ],
        ...(m.split.matchOnly ? { matches: [{ kind: 'HTTPRouteGroup', name: 'routes' }] } : {}),
      },
    });
  }
  return docs;
}

const asInputs = (docs: unknown[]) => ({ documents: docs.map((value, i): InputDocument => ({ origin: { source: 'gen.yaml', document: i, line: 0 }, value })), problems: [] });

type Json = Record<string, unknown>;
const decoded = (s: Snapshot, kind: ResourceKind) => s.types[kind].resources.map((r) => codec.toJson(TYPES[kind], r.bytes) as Json);

/** Every object under `key` anywhere in `v`. */
function find(v: unknown, key: string, out: unknown[] = []): unknown[] {
  if (Array.isArray(v)) for (const x of v) find(x, key, out);
  else if (v !== null && typeof v === 'object') {
    for (const [k, x] of Object.entries(v)) {
      if (k === key) out.push(x);
      find(x, key, out);
    }
  }
  return out;
}

/** Envoy's RBAC (ALLOW action), for the principals and permissions smc emits. */
function permits(p: Json, r: HttpRequest | undefined): boolean {
  if (p['any'] === true) return true;
  if (p['andRules']) return ((p['andRules'] as Json)['rules'] as Json[]).every((x) => permits(x, r));
  if (p['urlPath']) return r !== undefined && fullMatch(String(find(p['urlPath'], 'regex')[0]), r.path);
  if (p['header']) {
    const h = p['header'] as Json;
    const name = String(h['name']);
    const value = r === undefined ? undefined : name === ':method' ? r.method : r.headers[name];
    return value !== undefined && fullMatch(String(find(h, 'regex')[0]), value);
  }
  throw new Error(`the test's RBAC evaluator does not know ${JSON.stringify(p)}`);
}
function principalIs(p: Json, source: string): boolean {
  const name = find(p, 'principalName')[0] as { exact?: string; prefix?: string };
  return name.exact !== undefined ? name.exact === source : source.startsWith(name.prefix!);
}
/** The names of the RBAC policies that admit the request (empty: denied). */
function rbacAllows(destination: Snapshot, port: number, source: string, request: HttpRequest | undefined): string[] {
  const inbound = decoded(destination, 'listener').find((l) => l['name'] === 'inbound');
  const chain = ((inbound?.['filterChains'] ?? []) as Json[]).find((c) => (c['filterChainMatch'] as Json | undefined)?.['destinationPort'] === port);
  if (!chain) return [];
  const rbac = (find(chain, 'typedConfig') as Json[]).find((x) => String(x['@type']).endsWith('.rbac.v3.RBAC'));
  assert.ok(rbac, `the inbound chain of port ${port} has an RBAC filter`);
  const rules = rbac['rules'] as Json;
  // ALLOW is the enum's zero value, which proto3 JSON leaves out.
  assert.ok(rules && (rules['action'] ?? 'ALLOW') === 'ALLOW', 'an ALLOW policy set');
  return Object.entries((rules['policies'] ?? {}) as Record<string, Json>)
    .filter(([, p]) => (p['principals'] as Json[]).some((x) => principalIs(x, source)) && (p['permissions'] as Json[]).some((x) => permits(x, request)))
    .map(([name]) => name);
}
function endpointsOf(caller: Snapshot | undefined): Set<string> {
  const out = new Set<string>();
  for (const cla of caller ? decoded(caller, 'endpoint') : []) {
    for (const a of find(cla, 'socketAddress') as Json[]) out.add(`${String(cla['clusterName'])} ${String(a['address'])}`);
  }
  return out;
}

const genQuery = fc.record({
  from: fc.record({ ns: fc.constantFrom(...NAMESPACES), sa: fc.constantFrom(...ACCOUNTS) }),
  to: fc.record({ ns: fc.constantFrom(...NAMESPACES), name: fc.constantFrom(...SERVICES), port: fc.constantFrom(80, 3306) }),
  method: fc.constantFrom('GET', 'POST', 'DELETE'),
  path: fc.constantFrom('/', '/a', '/a/12', '/b/x', '/c'),
  user: fc.option(fc.constantFrom('alice', 'bob', 'eve'), { nil: undefined }),
});

test("explain's verdict for every destination is the destination's compiled RBAC; 'reached' is the caller's EDS", () => {
  let checked = 0;
  let allowed = 0;
  fc.assert(
    fc.property(genMesh, fc.array(genQuery, { minLength: 1, maxLength: 8 }), (m, queries) => {
      const { ir } = compileIR(asInputs(documents(m)));
      const snapshots = new Map(buildSnapshots(ir, codec).map((s) => [s.identity, s]));
      for (const q of queries) {
        const from = id(q.from.ns, q.from.sa);
        const request: HttpRequest = { method: q.method, path: q.path, headers: q.user ? { 'x-user': q.user } : {} };
        const e = explain(ir, { from, service: { namespace: q.to.ns, name: q.to.name }, port: q.to.port, request });
        const http = q.to.port === 80;
        const reachable = endpointsOf(snapshots.get(from));
        const judge = (service: string, d: DestinationVerdict) => {
          const dest = snapshots.get(d.identity);
          assert.ok(dest, `a snapshot for ${d.identity}`);
          const admitting = rbacAllows(dest, d.port, from, http ? request : undefined);
          const envoy = admitting.length > 0;
          assert.equal(d.allowed, envoy, `${from} -> ${d.identity}:${d.port} ${JSON.stringify(request)}: explain says ${d.allowed}, the RBAC says ${envoy}\n${JSON.stringify(e, null, 1)}`);
          // The rule explain names is a policy of the destination's RBAC, by that name, and it admits the request.
          if (d.allowed) assert.ok(admitting.includes(d.allowedBy!.policy), `explain names ${d.allowedBy!.policy}; the RBAC policies admitting it are ${admitting.join(', ')}`);
          const [ns, name] = service.split('/');
          const cluster = `outbound|${q.to.port}|${name}.${ns}`;
          const inEds = [...reachable].some((k) => k.startsWith(`${cluster} `) && d.workloads.some((w) => k.endsWith(` 198.18.0.${Number(w.split('pod-')[1]) + 1}`)));
          assert.equal(d.reached, inEds, `${from} -> ${service} ${d.identity}: explain says reached=${d.reached}, the caller's EDS says ${inEds}`);
          checked++;
        };
        for (const b of [...e.backends, ...e.unreached]) for (const d of b.destinations) judge(b.service, d);
        if (e.verdict === 'allowed') {
          allowed++;
          assert.ok(e.backends.length > 0 && e.backends.every((b) => b.destinations.every((d) => d.allowed && d.reached)));
        }
        if (e.verdict === 'denied') assert.ok(e.backends.every((b) => b.destinations.every((d) => !d.allowed)));
      }
    }),
    { numRuns: 150, includeErrorInReport: true },
  );
  // The generator must reach both answers often enough to mean something.
  assert.ok(checked > 200 && allowed > 10, `checked ${checked} destinations, ${allowed} allowed`);
});

const smc = (args: string[]) => spawnSync(process.execPath, ['dist/src/cli/main.js', ...args], { encoding: 'utf8' });

test('smc explain names the rule that allows a request, and says what is missing when it is denied (exit 0 / 1)', () => {
  const ok = smc(['explain', '--from', 'bookbuyer/bookbuyer', '--to', 'bookstore.bookstore:14001', '--path', '/books-bought', 'golden/bookstore/input']);
  assert.equal(ok.status, 0, ok.stderr);
  assert.match(ok.stdout, /^ALLOWED: bookbuyer\/bookbuyer -> bookstore\/bookstore:14001/);
  assert.match(ok.stdout, /TrafficSplit bookstore\/bookstore-split: applies/);
  assert.match(ok.stdout, /90% bookstore\/bookstore-v1/);
  assert.match(ok.stdout, /allowed by TrafficTarget bookstore\/bookbuyer-access-bookstore spec\.rules\[0\] \(bookstore\/bookstore-service-routes#books-bought\)/);

  const method = smc(['explain', '--from', 'bookbuyer/bookbuyer', '--to', 'bookstore.bookstore:14001', '--method', 'POST', '--path', '/books-bought', 'golden/bookstore/input']);
  assert.equal(method.status, 1);
  assert.match(method.stdout, /^DENIED/);
  assert.match(method.stdout, /books-bought allows method GET, not POST/);

  const thief = JSON.parse(smc(['explain', '--from', 'bookthief/bookthief', '--to', 'bookstore.bookstore:14001', '-o', 'json', 'golden/bookstore/input']).stdout) as { verdict: string; reasons: string[]; unreached: { destinations: DestinationVerdict[] }[] };
  assert.equal(thief.verdict, 'denied');
  assert.match(thief.reasons.join('\n'), /bookthief\/bookthief's proxy has no route/);
  assert.match(thief.unreached[0]!.destinations[0]!.reasons.join('\n'), /TrafficTarget bookstore\/bookbuyer-access-bookstore has destination bookstore\/bookstore, but none lists bookthief\/bookthief/);

  const tcp = smc(['explain', '--from', 'bookwarehouse/bookwarehouse', '--to', 'mysql.bookwarehouse:3306', 'golden/bookstore/input']);
  assert.equal(tcp.status, 0, tcp.stdout);
  assert.match(tcp.stdout, /allowed by TrafficTarget bookwarehouse\/bookwarehouse-access-mysql spec\.rules\[0\]/);

  const bad = smc(['explain', '--from', 'nope', '--to', 'bookstore', 'golden/bookstore/input']);
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /--from expects NAMESPACE\/SERVICEACCOUNT.*--to expects SERVICE\[\.NAMESPACE\]:PORT/);
  assert.equal(bad.stderr.trim().split('\n').length, 1, 'one line');
});

test('a denial names the rejected TrafficTargets of the namespaces involved: the one written in the caller\'s namespace by mistake', () => {
  const dir = mkdtempSync(join(tmpdir(), 'smc-explain-'));
  cpSync('golden/bookstore/input', dir, { recursive: true });
  const policy = join(dir, '40-policy.yaml');
  writeFileSync(policy, readFileSync(policy, 'utf8').replace('metadata: {name: bookbuyer-access-bookstore, namespace: bookstore}', 'metadata: {name: bookbuyer-access-bookstore, namespace: bookbuyer}'));
  const r = smc(['explain', '--from', 'bookbuyer/bookbuyer', '--to', 'bookstore.bookstore:14001', '--path', '/books-bought', dir]);
  assert.equal(r.status, 1);
  assert.match(r.stdout, /^ {2}note: TrafficTarget bookbuyer\/bookbuyer-access-bookstore is rejected: spec\.destination\.namespace: a TrafficTarget must live in its destination's namespace/m);
});

test('smc explain without SOURCE and no controller says so and exits 3', () => {
  const r = smc(['explain', '--from', 'a/b', '--to', 'c.d:80', '--admin', '127.0.0.1:1']);
  assert.equal(r.status, 3);
  assert.match(r.stderr, /cannot reach the controller's admin port at 127\.0\.0\.1:1.*give a SOURCE folder/);
});
