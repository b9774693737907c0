import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fc from 'fast-check';
import { stringify } from 'yaml';
import { compileIR } from '../src/compiler/compile.js';
import { convertSmi } from '../src/compiler/convert.js';
import { explain, type Explanation } from '../src/compiler/explain.js';
import { identityOf } from '../src/compiler/ir/types.js';
import type { MeshInputs } from '../src/compiler/inputs.js';

/**
 * `smc convert`'s contract: a mesh whose TrafficSplits are replaced by the
 * HTTPRoutes convert writes routes and allows exactly as the SMI mesh did,
 * for every caller, HTTP port and request (compared as where each request
 * goes, and in what shares, and whether it is allowed; not by names).
 */

interface Mesh {
  permissive: boolean;
  /** A second HTTP port (81) on the root and its backends (v3 lacks it when `v3Short`), and a TCP port (9000). */
  secondPort: boolean;
  v3Short: boolean;
  tcpPort: boolean;
  /** Weights of r-v1, r-v2, r-v3 (undefined: not a backend). */
  weights: [number | undefined, number | undefined, number | undefined];
  matches: { path: string | undefined; methods: string[] | undefined; beta: boolean }[];
}

const mesh: fc.Arbitrary<Mesh> = fc.record({
  permissive: fc.boolean(),
  secondPort: fc.boolean(),
  v3Short: fc.boolean(),
  tcpPort: fc.boolean(),
  weights: fc.tuple(fc.option(fc.nat(4), { nil: undefined }), fc.option(fc.nat(4), { nil: undefined }), fc.option(fc.nat(4), { nil: undefined })),
  matches: fc.array(
    fc.record({
      path: fc.constantFrom(undefined, '/api', '/items/[0-9]+'),
      methods: fc.constantFrom(undefined, ['GET'], ['GET', 'POST'], ['*']),
      beta: fc.boolean(),
    }),
    { maxLength: 3 },
  ),
});

function documents(m: Mesh): object[] {
  const ns = 'shop';
  const ports = (target: boolean) => [
    { name: 'http', port: 80, targetPort: 8080 },
    ...(m.secondPort && target ? [{ name: 'http-alt', port: 81, targetPort: 8081 }] : []),
    ...(m.tcpPort ? [{ name: 'tcp-raw', port: 9000, targetPort: 9000 }] : []),
  ];
  const docs: object[] = [
    { apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns, labels: { 'smc.dev/mesh': 'enabled' } } },
    { apiVersion: 'smc.dev/v1alpha1', kind: 'MeshConfig', metadata: { name: 'smc', namespace: 'smc-system' }, spec: { permissive: m.permissive } },
    { apiVersion: 'v1', kind: 'Service', metadata: { name: 'r', namespace: ns }, spec: { selector: { app: 'r' }, clusterIP: '198.18.170.1', ports: ports(true) } },
  ];
  for (const [i, v] of ['v1', 'v2', 'v3'].entries()) {
    docs.push({ apiVersion: 'v1', kind: 'Service', metadata: { name: `r-${v}`, namespace: ns }, spec: { selector: { app: 'r', version: v }, clusterIP: `198.18.170.${i + 2}`, ports: ports(!(v === 'v3' && m.v3Short)) } });
    docs.push({ apiVersion: 'v1', kind: 'Pod', metadata: { name: `r-${v}-1`, namespace: ns, labels: { app: 'r', version: v } }, spec: { serviceAccountName: 'r', containers: [{ name: 'r', ports: [{ containerPort: 8080 }, { containerPort: 8081 }, { containerPort: 9000 }] }] }, status: { podIP: `198.18.71.${i + 1}` } });
  }
  for (const [i, c] of ['c1', 'c2'].entries()) docs.push({ apiVersion: 'v1', kind: 'Pod', metadata: { name: `${c}-1`, namespace: ns, labels: { app: c } }, spec: { serviceAccountName: c, containers: [{ name: c }] }, status: { podIP: `198.18.72.${i + 1}` } });
  // c1 may call r (every port); c2 only in a permissive mesh.
  docs.push({ apiVersion: 'specs.smi-spec.io/v1alpha4', kind: 'TCPRoute', metadata: { name: 'all', namespace: ns }, spec: {} });
  docs.push({ apiVersion: 'access.smi-spec.io/v1alpha3', kind: 'TrafficTarget', metadata: { name: 'c1-to-r', namespace: ns }, spec: { destination: { kind: 'ServiceAccount', name: 'r' }, sources: [{ kind: 'ServiceAccount', name: 'c1' }], rules: [{ kind: 'TCPRoute', name: 'all' }] } });
  const backends = m.weights.flatMap((w, i) => (w === undefined ? [] : [{ service: `r-v${i + 1}`, weight: w }]));
  if (m.matches.length > 0) {
    docs.push({
      apiVersion: 'specs.smi-spec.io/v1alpha4',
      kind: 'HTTPRouteGroup',
      metadata: { name: 'split-matches', namespace: ns },
      spec: { matches: m.matches.map((x, i) => ({ name: `m${i}`, ...(x.path ? { pathRegex: x.path } : {}), ...(x.methods ? { methods: x.methods } : {}), ...(x.beta ? { headers: [{ 'x-beta': 'yes' }] } : {}) })) },
    });
  }
  if (backends.length > 0) {
    docs.push({
      apiVersion: 'split.smi-spec.io/v1alpha4',
      kind: 'TrafficSplit',
      metadata: { name: 's', namespace: ns },
      spec: { service: 'r', backends, ...(m.matches.length > 0 ? { matches: [{ kind: 'HTTPRouteGroup', name: 'split-matches' }] } : {}) },
    });
  }
  return docs;
}

const inputsOf = (docs: readonly object[]): MeshInputs => ({ documents: docs.map((value, i) => ({ origin: { source: 'mesh.yaml', document: i, line: 0 }, value })), problems: [] });

/** What a request amounts to: allowed or not, and the share of each backend Service (by name, reduced to fractions). */
function outcome(e: Explanation): string {
  const total = e.backends.reduce((n, b) => n + b.weight, 0);
  const shares = e.backends.map((b) => `${b.service}=${(b.weight / total).toFixed(4)}:${b.destinations.filter((d) => d.allowed).length}/${b.destinations.length}`).sort();
  return `${e.verdict} ${shares.join(' ')}`;
}

const REQUESTS = ['/', '/api', '/api/x', '/items/12', '/itemsx'].flatMap((path) => ['GET', 'POST', 'PUT'].flatMap((method) => ([{}, { 'x-beta': 'yes' }] as Record<string, string>[]).map((headers) => ({ method, path, headers }))));

test('property: replacing TrafficSplits by what smc convert writes routes and allows every request as the SMI mesh did', () => {
  fc.assert(
    fc.property(mesh, (m) => {
      const smi = documents(m);
      const conversion = convertSmi(inputsOf(smi));
      const converted = [...smi.filter((d) => (d as { kind: string }).kind !== 'TrafficSplit'), ...conversion.documents];
      const before = compileIR(inputsOf(smi));
      const after = compileIR(inputsOf(converted));
      // The routes are accepted as they are written.
      for (const s of after.status.filter((x) => x.object.kind === 'HTTPRoute')) assert.equal(s.state, 'Accepted', JSON.stringify(s));
      for (const caller of ['c1', 'c2']) {
        for (const port of m.secondPort ? [80, 81] : [80]) {
          for (const request of REQUESTS) {
            const q = { from: identityOf('cluster.local', 'shop', caller), service: { namespace: 'shop', name: 'r' }, port, request };
            const a = outcome(explain(before.ir, q));
            const b = outcome(explain(after.ir, q));
            assert.equal(b, a, `${caller} -> r:${port} ${request.method} ${request.path} ${JSON.stringify(request.headers)}\nSMI: ${a}\nconverted: ${b}\nroutes:\n${stringify(conversion.documents)}`);
          }
        }
      }
      // What is not carried over is said: the split of a TCP port.
      const inForce = before.ir.splits.length > 0;
      assert.equal(conversion.report.some((r) => r.includes('carries TCP')), inForce && m.tcpPort);
    }),
    { numRuns: 60 },
  );
});

test('the comparison is not blind: a converter that dropped the rule keeping unmatched requests on the root would be caught', () => {
  // The same comparison, on a mesh with matches, against routes whose second rule is left out.
  const m: Mesh = { permissive: false, secondPort: false, v3Short: false, tcpPort: false, weights: [1, 1, undefined], matches: [{ path: '/api', methods: undefined, beta: false }] };
  const smi = documents(m);
  const conversion = convertSmi(inputsOf(smi));
  const broken = conversion.documents.map((d) => {
    const r = structuredClone(d) as { spec: { rules: object[] } };
    r.spec.rules = r.spec.rules.slice(0, 1);
    return r;
  });
  const before = compileIR(inputsOf(smi));
  const after = compileIR(inputsOf([...smi.filter((d) => (d as { kind: string }).kind !== 'TrafficSplit'), ...broken]));
  const q = { from: identityOf('cluster.local', 'shop', 'c1'), service: { namespace: 'shop', name: 'r' }, port: 80, request: { method: 'GET', path: '/other', headers: {} } };
  assert.notEqual(outcome(explain(after.ir, q)), outcome(explain(before.ir, q)));
});

test('smc convert prints the routes, reports what it cannot carry over on stderr, and exits 1 when it left something out', () => {
  const ok = spawnSync(process.execPath, ['dist/src/cli/main.js', 'convert', 'examples/bookstore'], { encoding: 'utf8' });
  assert.equal(ok.status, 0, ok.stderr);
  assert.match(ok.stdout, /kind: HTTPRoute\n[\s\S]*name: bookstore-split[\s\S]*smc\.dev\/converted-from: TrafficSplit bookstore\/bookstore-split[\s\S]*weight: 9[\s\S]*weight: 1/);
  assert.match(ok.stderr, /1 HTTPRoute\(s\) from 1 TrafficSplit\(s\) \(bookstore\/bookstore-split\)/);
  const tcp = spawnSync(process.execPath, ['dist/src/cli/main.js', 'convert', 'golden/split-relative-weights/input', 'golden/http-rules-on-tcp-port/input', '--format', 'json'], { encoding: 'utf8' });
  assert.ok(tcp.status === 0 || tcp.status === 1, tcp.stderr);
  assert.doesNotThrow(() => JSON.parse(tcp.stdout), 'JSON output is one List');
  const usage = spawnSync(process.execPath, ['dist/src/cli/main.js', 'convert'], { encoding: 'utf8' });
  assert.equal(usage.status, 2);
  assert.match(usage.stderr, /needs at least one PATH/);
});
