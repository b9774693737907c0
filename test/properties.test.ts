import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { compileIR } from '../src/compiler/compile.js';
import { renderStatus } from '../src/output/render.js';
import type { InputDocument } from '../src/compiler/inputs.js';
import { isAllowed } from '../src/compiler/ir/query.js';

/** Generated meshes: namespaces, pods, route groups and TrafficTargets of every version. */
const NAMESPACES = ['a', 'b', 'c'];
const ACCOUNTS = ['s1', 's2', 's3'];
const PORTS = [8080, 9090];

interface GenTarget {
  ns: string;
  name: string;
  version: 'v1alpha1' | 'v1alpha2' | 'v1alpha3';
  destNs: string | undefined;
  destSa: string;
  port: number | undefined;
  sources: { ns: string | undefined; sa: string }[];
  rules: ('tcp' | 'http' | 'missing')[];
}
interface GenMesh {
  inMesh: boolean[];
  permissive: boolean;
  pods: { ns: string; sa: string }[];
  targets: GenTarget[];
}

const genTarget: fc.Arbitrary<GenTarget> = fc.record({
  ns: fc.constantFrom(...NAMESPACES),
  name: fc.constantFrom('t1', 't2', 't3', 't4'),
  version: fc.constantFrom('v1alpha1' as const, 'v1alpha2' as const, 'v1alpha3' as const),
  destNs: fc.option(fc.constantFrom(...NAMESPACES), { nil: undefined }),
  destSa: fc.constantFrom(...ACCOUNTS),
  port: fc.option(fc.constantFrom(...PORTS), { nil: undefined }),
  sources: fc.array(fc.record({ ns: fc.option(fc.constantFrom(...NAMESPACES), { nil: undefined }), sa: fc.constantFrom(...ACCOUNTS) }), { maxLength: 3 }),
  rules: fc.array(fc.constantFrom('tcp' as const, 'http' as const, 'missing' as const), { maxLength: 2 }),
});

const genMesh: fc.Arbitrary<GenMesh> = fc.record({
  inMesh: fc.array(fc.boolean(), { minLength: 3, maxLength: 3 }),
  permissive: fc.boolean(),
  pods: fc.array(fc.record({ ns: fc.constantFrom(...NAMESPACES), sa: fc.constantFrom(...ACCOUNTS) }), { maxLength: 6 }),
  targets: fc.array(genTarget, { maxLength: 6 }),
});

function meshDocuments(m: GenMesh): unknown[] {
  const docs: unknown[] = [
    { apiVersion: 'smc.dev/v1alpha1', kind: 'MeshConfig', metadata: { name: 'smc', namespace: 'smc-system' }, spec: { permissive: m.permissive } },
  ];
  NAMESPACES.forEach((ns, i) => {
    docs.push({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns, labels: m.inMesh[i] ? { 'smc.dev/mesh': 'enabled' } : {} } });
    docs.push({ apiVersion: 'specs.smi-spec.io/v1alpha4', kind: 'TCPRoute', metadata: { name: 'tcp', namespace: ns }, spec: { matches: { ports: [9090] } } });
    docs.push({
      apiVersion: 'specs.smi-spec.io/v1alpha4',
      kind: 'HTTPRouteGroup',
      metadata: { name: 'http', namespace: ns },
      spec: { matches: [{ name: 'get', pathRegex: '/x', methods: ['GET'] }] },
    });
  });
  m.pods.forEach((p, i) =>
    docs.push({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: `pod-${i}`, namespace: p.ns },
      spec: { serviceAccountName: p.sa },
      status: { podIP: `198.18.0.${i + 1}` },
    }),
  );
  for (const t of m.targets) {
    const dest: Record<string, unknown> = { kind: 'ServiceAccount', name: t.destSa };
    if (t.destNs !== undefined) dest.namespace = t.destNs;
    if (t.port !== undefined && t.version !== 'v1alpha3') dest.port = t.version === 'v1alpha1' ? String(t.port) : t.port;
    const sources = t.sources.map((s) => (s.ns === undefined ? { kind: 'ServiceAccount', name: s.sa } : { kind: 'ServiceAccount', name: s.sa, namespace: s.ns }));
    const rules = t.rules.map((r) => (r === 'tcp' ? { kind: 'TCPRoute', name: 'tcp' } : r === 'http' ? { kind: 'HTTPRouteGroup', name: 'http' } : { kind: 'TCPRoute', name: 'nope' }));
    const metadata = { name: t.name, namespace: t.ns };
    const apiVersion = `access.smi-spec.io/${t.version}`;
    docs.push(
      t.version === 'v1alpha1'
        ? { apiVersion, kind: 'TrafficTarget', metadata, destination: dest, sources, specs: rules }
        : { apiVersion, kind: 'TrafficTarget', metadata, spec: { destination: dest, sources, rules } },
    );
  }
  return docs;
}

const asInputs = (docs: unknown[]) => ({
  documents: docs.map((value, i): InputDocument => ({ origin: { source: 'gen.yaml', document: i, line: 0 }, value })),
  problems: [],
});

const id = (ns: string, sa: string) => `spiffe://cluster.local/ns/${ns}/sa/${sa}`;

/**
 * The oracle, written from the SMI rules directly on the generator's data:
 * the pairs some TrafficTarget could grant (same-namespace destination, in a
 * mesh namespace, with a rule that exists). Duplicates by name are ignored
 * conservatively (either may win), which keeps the oracle an over-approximation.
 */
function grantablePairs(m: GenMesh): Set<string> {
  const pairs = new Set<string>();
  for (const t of m.targets) {
    const destNs = t.destNs ?? t.ns;
    if (destNs !== t.ns || !m.inMesh[NAMESPACES.indexOf(t.ns)]) continue;
    if (!t.rules.some((r) => r !== 'missing')) continue;
    for (const s of t.sources) pairs.add(`${id(s.ns ?? t.ns, s.sa)} -> ${id(destNs, t.destSa)}`);
  }
  return pairs;
}

const garbageDocument = fc.oneof(
  fc.anything(),
  fc.record({
    apiVersion: fc.constantFrom('v1', 'discovery.k8s.io/v1', 'access.smi-spec.io/v1alpha1', 'access.smi-spec.io/v1alpha2', 'access.smi-spec.io/v1alpha3', 'specs.smi-spec.io/v1alpha1', 'specs.smi-spec.io/v1alpha2', 'specs.smi-spec.io/v1alpha4', 'split.smi-spec.io/v1alpha1', 'split.smi-spec.io/v1alpha3', 'smc.dev/v1alpha1'),
    kind: fc.constantFrom('Namespace', 'Service', 'Pod', 'EndpointSlice', 'Endpoints', 'ServiceAccount', 'TrafficTarget', 'HTTPRouteGroup', 'TCPRoute', 'UDPRoute', 'TrafficSplit', 'MeshConfig', 'VirtualMachine', 'List'),
    metadata: fc.oneof(fc.anything(), fc.record({ name: fc.string(), namespace: fc.constantFrom(...NAMESPACES) })),
    spec: fc.anything(),
    matches: fc.anything(),
    items: fc.anything(),
    destination: fc.anything(),
  }),
);

test('the compiler never throws, whatever the documents', () => {
  fc.assert(
    fc.property(genMesh, fc.array(garbageDocument, { maxLength: 8 }), (m, garbage) => {
      const result = compileIR(asInputs([...meshDocuments(m), ...garbage]));
      assert.ok(result.status.length >= garbage.length);
    }),
    { numRuns: 300 },
  );
});

test('every input document gets a status entry', () => {
  fc.assert(
    fc.property(genMesh, (m) => {
      const docs = meshDocuments(m);
      assert.equal(compileIR(asInputs(docs)).status.length, docs.length);
    }),
    { numRuns: 100 },
  );
});

test('the result depends neither on the order of the documents nor on the files they were read from', () => {
  fc.assert(
    fc.property(genMesh, fc.array(garbageDocument, { maxLength: 4 }), fc.integer(), fc.integer({ min: 1, max: 4 }), (m, garbage, seed, files) => {
      const inputs = asInputs([...meshDocuments(m), ...garbage]);
      // Shuffled, and spread over other files under other names: origins change with the order.
      const moved = shuffle(inputs.documents, seed).map((d, i): InputDocument => ({ value: d.value, origin: { source: `moved-${i % files}.yaml`, document: Math.floor(i / files), line: i + 3 } }));
      const a = compileIR(inputs);
      const b = compileIR({ ...inputs, documents: moved });
      assert.deepEqual(b.ir, a.ir);
      // Status as files hold it (known by object, no origins) is the same too; a document that could
      // not be read at all can only be named by its file, which is the one thing left out here.
      const meaning = (r: ReturnType<typeof compileIR>) => renderStatus(r.status).map((x) => JSON.stringify({ ...(x as object), source: undefined })).sort();
      assert.deepEqual(meaning(b), meaning(a));
    }),
    { numRuns: 200 },
  );
});

test('without permissive mode nothing is allowed that no TrafficTarget grants', () => {
  fc.assert(
    fc.property(genMesh, (gen) => {
      const m = { ...gen, permissive: false };
      const ir = compileIR(asInputs(meshDocuments(m))).ir;
      const pairs = grantablePairs(m);
      const identities = NAMESPACES.flatMap((ns) => ACCOUNTS.map((sa) => id(ns, sa)));
      for (const src of identities)
        for (const dst of identities)
          for (const port of PORTS) {
            const allowed =
              isAllowed(ir, src, dst, port) || isAllowed(ir, src, dst, port, { method: 'GET', path: '/x', headers: {} });
            if (allowed) assert.ok(pairs.has(`${src} -> ${dst}`), `${src} -> ${dst}:${port} allowed without a TrafficTarget`);
          }
    }),
    { numRuns: 300 },
  );
});

test('a TrafficTarget in a foreign namespace grants nothing: its pairs stay denied unless a TrafficTarget of the right namespace grants them', () => {
  let checked = 0;
  fc.assert(
    fc.property(genMesh, (gen) => {
      const m = { ...gen, permissive: false };
      const ir = compileIR(asInputs(meshDocuments(m))).ir;
      const pairs = grantablePairs(m);
      for (const t of m.targets) {
        if (t.destNs === undefined || t.destNs === t.ns) continue;
        for (const s of t.sources) {
          const [src, dst] = [id(s.ns ?? t.ns, s.sa), id(t.destNs, t.destSa)];
          if (pairs.has(`${src} -> ${dst}`)) continue;
          checked++;
          for (const port of PORTS) {
            assert.ok(!isAllowed(ir, src, dst, port), `${t.ns}/${t.name} let ${src} reach ${dst}:${port} over TCP`);
            assert.ok(!isAllowed(ir, src, dst, port, { method: 'GET', path: '/x', headers: {} }), `${t.ns}/${t.name} let ${src} reach ${dst}:${port} over HTTP`);
          }
        }
      }
    }),
    { numRuns: 300 },
  );
  assert.ok(checked > 0, 'the generator made foreign TrafficTargets to check');
});

test('split weights normalise to the same ratios in every TrafficSplit version', () => {
  const services = ['root', 'b0', 'b1', 'b2', 'b3'].map((name) => ({
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name, namespace: 'a' },
    spec: { selector: { app: name }, ports: [{ port: 80 }] },
  }));
  const ns = { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'a', labels: { 'smc.dev/mesh': 'enabled' } } };
  fc.assert(
    fc.property(
      fc.array(fc.nat(1000), { minLength: 1, maxLength: 4 }).filter((ws) => ws.some((w) => w > 0)),
      fc.boolean(),
      (weights, milliText) => {
        const results = ['v1alpha1', 'v1alpha2', 'v1alpha3', 'v1alpha4'].map((v) => {
          const backends = weights.map((w, i) => ({
            service: `b${i}`,
            weight: v === 'v1alpha1' ? (milliText ? `${w * 1000}m` : String(w)) : w,
          }));
          const split = { apiVersion: `split.smi-spec.io/${v}`, kind: 'TrafficSplit', metadata: { name: 's', namespace: 'a' }, spec: { service: 'root', backends } };
          const ir = compileIR(asInputs([ns, ...services, split])).ir;
          assert.equal(ir.splits.length, 1, `split ${v} not applied`);
          return ir.splits[0]!.backends;
        });
        for (const r of results) assert.deepEqual(r, results[0]);
        const sumIn = weights.reduce((x, y) => x + y, 0);
        const sumOut = results[0]!.reduce((x, b) => x + b.weight, 0);
        results[0]!.forEach((b) => {
          const i = Number(b.service.slice(1));
          assert.equal(b.weight * sumIn, weights[i]! * sumOut, 'ratio changed');
        });
      },
    ),
    { numRuns: 200 },
  );
});

function shuffle<T>(items: readonly T[], seed: number): T[] {
  const out = [...items];
  let s = seed >>> 0 || 1;
  for (let i = out.length - 1; i > 0; i--) {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    const j = s % (i + 1);
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}
