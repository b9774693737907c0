import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { loadEnvoyProtos } from '../src/adapters/envoy-protos.js';
import { throwawayCertificates } from '../src/adapters/ca/throwaway.js';
import { compile, type MeshCompileResult } from '../src/compiler/compile.js';
import { PUSH_ORDER } from '../src/compiler/envoy/codec.js';
import type { MeshInputs } from '../src/compiler/inputs.js';

/** compile(inputs, previous) gives exactly what a compile from scratch gives, and reuses what did not change. */
const codec = loadEnvoyProtos();
const APPS = ['a', 'b', 'c', 'd'] as const;

interface State {
  permissive: boolean;
  inMesh: boolean;
  ips: Record<string, number>; // app -> last octet (0: no pod)
  grants: { from: string; to: string; http: boolean }[];
  split: [number, number] | undefined; // weights of c and d behind b
  explicit: boolean;
  /** Inputs smc rejects or ignores (a bad TrafficSplit, a ConfigMap): their status must be the same when replayed from the previous compile. */
  broken: boolean;
}

type Edit =
  | { kind: 'endpoint'; app: string; octet: number }
  | { kind: 'grant'; from: string; to: string; http: boolean }
  | { kind: 'revoke'; index: number }
  | { kind: 'split'; weights: [number, number] | undefined }
  | { kind: 'label'; inMesh: boolean }
  | { kind: 'meshconfig'; permissive: boolean }
  | { kind: 'mode'; explicit: boolean }
  | { kind: 'broken'; broken: boolean };

const app = fc.constantFrom(...APPS);
const edit: fc.Arbitrary<Edit> = fc.oneof(
  fc.record({ kind: fc.constant('endpoint' as const), app, octet: fc.integer({ min: 0, max: 3 }) }),
  fc.record({ kind: fc.constant('grant' as const), from: app, to: app, http: fc.boolean() }),
  fc.record({ kind: fc.constant('revoke' as const), index: fc.nat(5) }),
  fc.record({ kind: fc.constant('split' as const), weights: fc.option(fc.tuple(fc.nat(3), fc.nat(3)), { nil: undefined }) }),
  fc.record({ kind: fc.constant('label' as const), inMesh: fc.boolean() }),
  fc.record({ kind: fc.constant('meshconfig' as const), permissive: fc.boolean() }),
  fc.record({ kind: fc.constant('mode' as const), explicit: fc.boolean() }),
  fc.record({ kind: fc.constant('broken' as const), broken: fc.boolean() }),
);

function apply(s: State, e: Edit): State {
  switch (e.kind) {
    case 'endpoint':
      return { ...s, ips: { ...s.ips, [e.app]: e.octet } };
    case 'grant':
      return { ...s, grants: [...s.grants, { from: e.from, to: e.to, http: e.http }] };
    case 'revoke':
      return { ...s, grants: s.grants.filter((_, i) => i !== e.index) };
    case 'split':
      return { ...s, split: e.weights };
    case 'label':
      return { ...s, inMesh: e.inMesh };
    case 'meshconfig':
      return { ...s, permissive: e.permissive };
    case 'mode':
      return { ...s, explicit: e.explicit };
    case 'broken':
      return { ...s, broken: e.broken };
  }
}

function inputs(s: State, certificates?: MeshInputs['certificates']): MeshInputs {
  const ns = 'shop';
  const docs: unknown[] = [
    ...(s.broken
      ? [
          { apiVersion: 'split.smi-spec.io/v1alpha4', kind: 'TrafficSplit', metadata: { name: 'bad', namespace: 'shop' }, spec: { service: 'b', backends: [{ service: 'c', weight: 'x' }], extra: 1 } },
          { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'cm', namespace: 'shop' } },
        ]
      : []),
    { apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns, labels: s.inMesh ? { 'smc.dev/mesh': 'enabled' } : {} } },
    { apiVersion: 'smc.dev/v1alpha1', kind: 'MeshConfig', metadata: { name: 'smc', namespace: 'smc-system' }, spec: { permissive: s.permissive } },
    { apiVersion: 'specs.smi-spec.io/v1alpha4', kind: 'HTTPRouteGroup', metadata: { name: 'api', namespace: ns }, spec: { matches: [{ name: 'get', pathRegex: '/api', methods: ['GET'] }] } },
    { apiVersion: 'specs.smi-spec.io/v1alpha4', kind: 'TCPRoute', metadata: { name: 'all', namespace: ns }, spec: {} },
  ];
  APPS.forEach((a, i) => {
    docs.push({ apiVersion: 'v1', kind: 'Service', metadata: { name: a, namespace: ns }, spec: { selector: { app: a }, clusterIP: `198.18.200.${i + 1}`, ports: [{ name: 'http', port: 80, targetPort: 8080 }] } });
    const octet = s.ips[a] ?? 1;
    if (octet > 0) {
      const annotations = s.explicit && a === 'a' ? { 'smc.dev/interception': 'explicit' } : {};
      docs.push({ apiVersion: 'v1', kind: 'Pod', metadata: { name: `${a}-1`, namespace: ns, labels: { app: a }, annotations }, spec: { serviceAccountName: a, containers: [{ name: a, ports: [{ containerPort: 8080 }] }] }, status: { podIP: `198.18.${10 + i}.${octet}` } });
    }
  });
  s.grants.forEach((g, i) =>
    docs.push({
      apiVersion: 'access.smi-spec.io/v1alpha3',
      kind: 'TrafficTarget',
      metadata: { name: `g${i}`, namespace: ns },
      spec: { destination: { kind: 'ServiceAccount', name: g.to }, sources: [{ kind: 'ServiceAccount', name: g.from }], rules: [g.http ? { kind: 'HTTPRouteGroup', name: 'api' } : { kind: 'TCPRoute', name: 'all' }] },
    }),
  );
  if (s.split) docs.push({ apiVersion: 'split.smi-spec.io/v1alpha4', kind: 'TrafficSplit', metadata: { name: 's', namespace: ns }, spec: { service: 'b', backends: [{ service: 'c', weight: s.split[0] }, { service: 'd', weight: s.split[1] }] } });
  return { documents: docs.map((value, document) => ({ origin: { source: 'gen.yaml', document, line: 0 }, value })), problems: [], ...(certificates ? { certificates } : {}) };
}

const serialised = (r: MeshCompileResult) =>
  r.snapshots.map((s) => ({ identity: s.identity, dataPlane: s.dataPlane, warnings: s.warnings, types: PUSH_ORDER.map((k) => [s.types[k].version, s.types[k].resources.map((x) => `${x.name}=${Buffer.from(x.bytes).toString('base64')}`)]) }));

const start: State = { permissive: false, inMesh: true, ips: {}, grants: [{ from: 'a', to: 'b', http: true }], split: undefined, explicit: false, broken: false };

test('property: a chain of compiles, each given the previous result, equals compiling each state from scratch', () => {
  fc.assert(
    fc.property(fc.array(edit, { minLength: 1, maxLength: 8 }), (edits) => {
      let state = start;
      let chained = compile(inputs(state), codec);
      for (const e of edits) {
        state = apply(state, e);
        chained = compile(inputs(state), codec, chained);
        const fresh = compile(inputs(state), codec);
        assert.deepEqual(serialised(chained), serialised(fresh), `after ${JSON.stringify(e)}`);
        assert.deepEqual(chained.status, fresh.status);
      }
    }),
    { numRuns: 120 },
  );
});

test('an endpoint change re-translates only the identities that reach it; a renewed certificate only its own identity\'s secrets', async () => {
  const ids = APPS.map((a) => `spiffe://cluster.local/ns/shop/sa/${a}`);
  const certs = await throwawayCertificates('cluster.local', ids);
  const state: State = { ...start, grants: [{ from: 'a', to: 'b', http: true }, { from: 'c', to: 'd', http: false }] };
  const first = compile(inputs(state, certs), codec);
  // b's pod moves: only a (its caller) is planned anew; every other snapshot is the previous object itself.
  const moved = compile(inputs({ ...state, ips: { b: 2 } }, certs), codec, first);
  const rebuilt = (r: MeshCompileResult) => r.snapshots.filter((s, i) => s !== first.snapshots[i]).map((s) => s.identity);
  assert.deepEqual(rebuilt(moved), [ids[0]]);
  // A new certificate for d: only d's snapshot is built again.
  const renewed = await throwawayCertificates('cluster.local', [ids[3]!]);
  const withRenewal = { ...certs, identities: certs.identities.map((c) => (c.identity === ids[3] ? renewed.identities[0]! : c)) };
  const afterRenewal = compile(inputs(state, withRenewal), codec, first);
  assert.deepEqual(rebuilt(afterRenewal), [ids[3]]);
  // And of d's snapshot, only the secrets: every other type is the very set encoded before.
  const [before, after] = [first, afterRenewal].map((r) => r.snapshots.find((s) => s.identity === ids[3])!);
  for (const kind of ['cluster', 'endpoint', 'listener', 'route'] as const) assert.equal(after!.types[kind], before!.types[kind], `${kind} was not built again`);
  assert.notEqual(after!.types.secret.version, before!.types.secret.version);
});
