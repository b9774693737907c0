import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { loadEnvoyProtos } from '../src/adapters/envoy-protos.js';
import { throwawayCertificates } from '../src/adapters/ca/throwaway.js';
import { compile, compileIR } from '../src/compiler/compile.js';
import { planSnapshots, type Snapshot, type SnapshotPlans } from '../src/compiler/envoy/snapshot.js';
import { PUSH_ORDER } from '../src/compiler/envoy/codec.js';
import type { MeshInputs } from '../src/compiler/inputs.js';
import { compileUnits, type InputUnit, type UnitsCompileResult } from '../src/compiler/units.js';
import { groupBy } from '../src/compiler/group.js';
import { addressOnlyKeys, changedKeys, meshIndex, type IndexedEndpoint, type MeshIndex } from '../src/compiler/ir/index.js';
import { vmNodeId } from '../src/compiler/ir/workloads.js';
import type { Endpoint, MeshIR } from '../src/compiler/ir/types.js';
import type { CertificateInputs } from '../src/compiler/inputs.js';
import type { StatusEntry } from '../src/compiler/status.js';
import { startCompilerThread } from '../src/runtime/compiler-thread.js';
import { createSnapshotCache } from '../src/runtime/cache.js';

/** The engine, as the controller's compile worker runs it (units compiled, then planned, each given the previous), gives exactly what a compile from scratch gives, and reuses what did not change. */
const codec = loadEnvoyProtos();
const APPS = ['a', 'b', 'c', 'd'] as const;
/** A second namespace whose workload `x` other namespaces' objects refer to (grants, an EndpointSlice's targetRef). */
const BACK = 'back';

interface State {
  permissive: boolean;
  inMesh: boolean;
  ips: Record<string, number>; // app -> last octet (0: no pod)
  grants: { from: string; to: string; http: boolean }[];
  split: [number, number] | undefined; // weights of c and d behind b
  explicit: boolean;
  /** Inputs smc rejects or ignores (a bad TrafficSplit, a ConfigMap): their status must be the same when replayed from the previous compile. */
  broken: boolean;
  backInMesh: boolean;
  /** x's pod in `back` (0: none). */
  xOctet: number;
  /** Whether `back` has a Service for x (else only shop's EndpointSlice makes x an endpoint). */
  xService: boolean;
  /** shop's service `ext` has an EndpointSlice naming x's pod in `back`. */
  extSlice: boolean;
  /** `back` declares ServiceAccount y, a source of a grant in shop. */
  account: boolean;
  /** Services without a cluster IP in `back` (they share a small virtual IP range with shop's `ext`; 14 fill it). */
  vips: number;
  /** A file that does not parse. */
  unparsable: boolean;
  /** An older MeshConfig in a file of its own: it is in force, and the other one is rejected. */
  rival: boolean;
  /** A VirtualMachine in shop with app b's label (an endpoint of b beside its pod), and whether its proxy is connected. */
  vm: boolean;
  vmConnected: boolean;
  /** Whether the proxyless pod (account p) has app b's label. */
  proxyless: boolean;
  /** Whether shop's Service d (a backend of the split) is renamed e, its pod staying: the split is then rejected. */
  noServiceD?: boolean;
  /** The account of b's pod (b unless said). */
  bAccount?: string;
  /** Replicas beside an app's first pod (`p`: the proxyless pod's), as a Deployment scaled up makes them. */
  replicas?: Record<string, number>;
  /** A producer HTTPRoute on a (weights of c and d on one path; a second rule to x of back), a consumer route of back on b (to c), and the ReferenceGrants that let each name the other namespace's Services. */
  route?: { weights: [number, number]; exact: boolean; port: boolean };
  consumerRoute?: boolean;
  refGrants?: boolean;
  /** How often each identity's certificate was renewed, and the trust bundle replaced (a new root). */
  renewals: Record<string, number>;
  bundle: number;
}

type Edit =
  | { kind: 'endpoint'; app: string; octet: number }
  | { kind: 'grant'; from: string; to: string; http: boolean }
  | { kind: 'revoke'; index: number }
  | { kind: 'split'; weights: [number, number] | undefined }
  | { kind: 'label'; inMesh: boolean }
  | { kind: 'meshconfig'; permissive: boolean }
  | { kind: 'mode'; explicit: boolean }
  | { kind: 'broken'; broken: boolean }
  | { kind: 'back'; inMesh: boolean }
  | { kind: 'x'; octet: number }
  | { kind: 'xService'; on: boolean }
  | { kind: 'extSlice'; on: boolean }
  | { kind: 'account'; on: boolean }
  | { kind: 'vips'; count: number }
  | { kind: 'unparsable'; on: boolean }
  | { kind: 'rival'; on: boolean }
  | { kind: 'vm'; on: boolean }
  | { kind: 'vmConnected'; on: boolean }
  | { kind: 'proxyless'; on: boolean }
  | { kind: 'renew'; app: string }
  | { kind: 'bundle' }
  | { kind: 'route'; route: State['route'] }
  | { kind: 'consumerRoute'; on: boolean }
  | { kind: 'refGrants'; on: boolean }
  | { kind: 'noServiceD'; on: boolean }
  | { kind: 'replicas'; app: string; extra: number };

const app = fc.constantFrom(...APPS, 'x');
const edit: fc.Arbitrary<Edit> = fc.oneof(
  fc.record({ kind: fc.constant('endpoint' as const), app, octet: fc.integer({ min: 0, max: 3 }) }),
  // (A grant to vm lets a caller reach both identities of b's endpoints: b's pod and the VM.)
  fc.record({ kind: fc.constant('grant' as const), from: app, to: fc.constantFrom(...APPS, 'x', 'vm', 'p'), http: fc.boolean() }),
  fc.record({ kind: fc.constant('revoke' as const), index: fc.nat(5) }),
  fc.record({ kind: fc.constant('split' as const), weights: fc.option(fc.tuple(fc.nat(3), fc.nat(3)), { nil: undefined }) }),
  fc.record({ kind: fc.constant('label' as const), inMesh: fc.boolean() }),
  fc.record({ kind: fc.constant('meshconfig' as const), permissive: fc.boolean() }),
  fc.record({ kind: fc.constant('mode' as const), explicit: fc.boolean() }),
  fc.record({ kind: fc.constant('broken' as const), broken: fc.boolean() }),
  fc.record({ kind: fc.constant('back' as const), inMesh: fc.boolean() }),
  fc.record({ kind: fc.constant('x' as const), octet: fc.integer({ min: 0, max: 3 }) }),
  fc.record({ kind: fc.constant('xService' as const), on: fc.boolean() }),
  fc.record({ kind: fc.constant('extSlice' as const), on: fc.boolean() }),
  fc.record({ kind: fc.constant('account' as const), on: fc.boolean() }),
  fc.record({ kind: fc.constant('vips' as const), count: fc.oneof(fc.integer({ min: 0, max: 4 }), fc.constant(15)) }),
  fc.record({ kind: fc.constant('unparsable' as const), on: fc.boolean() }),
  fc.record({ kind: fc.constant('rival' as const), on: fc.boolean() }),
  fc.record({ kind: fc.constant('vm' as const), on: fc.boolean() }),
  fc.record({ kind: fc.constant('vmConnected' as const), on: fc.boolean() }),
  fc.record({ kind: fc.constant('proxyless' as const), on: fc.boolean() }),
  fc.record({ kind: fc.constant('replicas' as const), app: fc.constantFrom('b', 'c', 'p'), extra: fc.integer({ min: 0, max: 2 }) }),
  fc.record({ kind: fc.constant('renew' as const), app: fc.constantFrom(...APPS, 'vm') }),
  fc.record({ kind: fc.constant('bundle' as const) }),
  // Gateway API routes: drawn more often, so that sequences of route edits with grants between them are common.
  { arbitrary: fc.record({ kind: fc.constant('route' as const), route: fc.option(fc.record({ weights: fc.tuple(fc.nat(3), fc.nat(3)), exact: fc.boolean(), port: fc.boolean() }), { nil: undefined }) }), weight: 4 },
  { arbitrary: fc.record({ kind: fc.constant('consumerRoute' as const), on: fc.boolean() }), weight: 2 },
  { arbitrary: fc.record({ kind: fc.constant('refGrants' as const), on: fc.boolean() }), weight: 2 },
  fc.record({ kind: fc.constant('noServiceD' as const), on: fc.boolean() }),
);

function apply(s: State, e: Edit): State {
  switch (e.kind) {
    case 'endpoint':
      return { ...s, ips: { ...s.ips, [e.app]: e.octet } };
    case 'replicas':
      return { ...s, replicas: { ...s.replicas, [e.app]: e.extra } };
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
    case 'back':
      return { ...s, backInMesh: e.inMesh };
    case 'x':
      return { ...s, xOctet: e.octet };
    case 'xService':
      return { ...s, xService: e.on };
    case 'extSlice':
      return { ...s, extSlice: e.on };
    case 'account':
      return { ...s, account: e.on };
    case 'vips':
      return { ...s, vips: e.count };
    case 'unparsable':
      return { ...s, unparsable: e.on };
    case 'rival':
      return { ...s, rival: e.on };
    case 'vm':
      return { ...s, vm: e.on };
    case 'vmConnected':
      return { ...s, vmConnected: e.on };
    case 'proxyless':
      return { ...s, proxyless: e.on };
    case 'renew':
      return { ...s, renewals: { ...s.renewals, [e.app]: (s.renewals[e.app] ?? 0) + 1 } };
    case 'bundle':
      return { ...s, bundle: s.bundle + 1 };
    case 'route':
      return { ...s, route: e.route };
    case 'consumerRoute':
      return { ...s, consumerRoute: e.on };
    case 'refGrants':
      return { ...s, refGrants: e.on };
    case 'noServiceD':
      return { ...s, noServiceD: e.on };
  }
}

const VM_NODE = vmNodeId('shop', 'vm', 'b-vm');
/** What the controller passes as live inputs: the VM's node id while its proxy is connected. */
const liveOf = (s: State) => ({ connectedVirtualMachines: s.vmConnected ? [VM_NODE] : [] });

/**
 * The certificates of a state (stand-ins: the compiler copies them into
 * secrets and does not read them), one value per distinct state as the
 * controller's certificate store gives: the same certificates are the same value.
 */
function certificatesOf(s: State, known: Map<string, CertificateInputs>): CertificateInputs {
  const key = JSON.stringify([s.renewals, s.bundle]);
  let c = known.get(key);
  if (!c) {
    const identities = [...APPS, 'vm'].map((a) => ({ identity: `spiffe://cluster.local/ns/shop/sa/${a}`, certificateChain: `chain-${a}-${s.renewals[a] ?? 0}`, privateKey: `key-${a}-${s.renewals[a] ?? 0}` }));
    known.set(key, (c = { trustBundle: `bundle-${s.bundle}`, identities }));
  }
  return c;
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
    { apiVersion: 'smc.dev/v1alpha1', kind: 'MeshConfig', metadata: { name: 'smc', namespace: 'smc-system', creationTimestamp: '2024-01-01T00:00:00Z' }, spec: { permissive: s.permissive, virtualIPRange: '198.19.255.0/28' } },
    { apiVersion: 'v1', kind: 'Namespace', metadata: { name: BACK, labels: s.backInMesh ? { 'smc.dev/mesh': 'enabled' } : {} } },
    ...(s.rival ? [{ apiVersion: 'smc.dev/v1alpha1', kind: 'MeshConfig', metadata: { name: 'rival', namespace: 'smc-system', creationTimestamp: '2020-01-01T00:00:00Z' }, spec: { permissive: s.permissive, virtualIPRange: '198.19.255.0/28' } }] : []),
    { apiVersion: 'specs.smi-spec.io/v1alpha4', kind: 'HTTPRouteGroup', metadata: { name: 'api', namespace: BACK }, spec: { matches: [{ name: 'get', pathRegex: '/api', methods: ['GET'] }] } },
    { apiVersion: 'specs.smi-spec.io/v1alpha4', kind: 'TCPRoute', metadata: { name: 'all', namespace: BACK }, spec: {} },
    // y of back may call a; it exists only while back declares its ServiceAccount.
    { apiVersion: 'access.smi-spec.io/v1alpha3', kind: 'TrafficTarget', metadata: { name: 'from-y', namespace: ns }, spec: { destination: { kind: 'ServiceAccount', name: 'a' }, sources: [{ kind: 'ServiceAccount', name: 'y', namespace: BACK }], rules: [{ kind: 'TCPRoute', name: 'all' }] } },
    ...(s.account ? [{ apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'y', namespace: BACK } }] : []),
    // ext has no cluster IP (a virtual one is allocated) and no selector: its endpoints are x's pod in back, through an EndpointSlice.
    { apiVersion: 'v1', kind: 'Service', metadata: { name: 'ext', namespace: ns }, spec: { ports: [{ name: 'tcp-db', port: 9090, targetPort: 9090 }] } },
    ...(s.extSlice
      ? [{ apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice', metadata: { name: 'ext-1', namespace: ns, labels: { 'kubernetes.io/service-name': 'ext' } }, addressType: 'IPv4', ports: [{ name: 'tcp-db', port: 9090, protocol: 'TCP' }], endpoints: [{ addresses: [`198.18.30.${s.xOctet || 1}`], conditions: { ready: true }, targetRef: { kind: 'Pod', name: 'x-1', namespace: BACK } }] }]
      : []),
    ...(s.xOctet > 0 ? [{ apiVersion: 'v1', kind: 'Pod', metadata: { name: 'x-1', namespace: BACK, labels: { app: 'x' } }, spec: { serviceAccountName: 'x', containers: [{ name: 'x', ports: [{ containerPort: 8080 }, { containerPort: 9090 }] }] }, status: { podIP: `198.18.30.${s.xOctet}` } }] : []),
    ...(s.xService ? [{ apiVersion: 'v1', kind: 'Service', metadata: { name: 'x', namespace: BACK }, spec: { selector: { app: 'x' }, clusterIP: '198.18.201.1', ports: [{ name: 'http', port: 80, targetPort: 8080 }] } }] : []),
    ...Array.from({ length: s.vips }, (_, i) => ({ apiVersion: 'v1', kind: 'Service', metadata: { name: `v${i}`, namespace: BACK }, spec: { selector: { app: 'nothing' }, ports: [{ name: 'http', port: 80, targetPort: 8080 }] } })),
    { apiVersion: 'specs.smi-spec.io/v1alpha4', kind: 'HTTPRouteGroup', metadata: { name: 'api', namespace: ns }, spec: { matches: [{ name: 'get', pathRegex: '/api', methods: ['GET'] }] } },
    { apiVersion: 'specs.smi-spec.io/v1alpha4', kind: 'TCPRoute', metadata: { name: 'all', namespace: ns }, spec: {} },
  ];
  APPS.forEach((a, i) => {
    // (Without d, a Service of another name in its place: the documents after it keep their places, and so their objects.)
    docs.push({ apiVersion: 'v1', kind: 'Service', metadata: { name: a === 'd' && s.noServiceD ? 'e' : a, namespace: ns }, spec: { selector: { app: a }, clusterIP: `198.18.200.${i + 1}`, ports: [{ name: 'http', port: 80, targetPort: 8080 }] } });
    const octet = s.ips[a] ?? 1;
    if (octet > 0) {
      const annotations = s.explicit && a === 'a' ? { 'smc.dev/interception': 'explicit' } : {};
      docs.push({ apiVersion: 'v1', kind: 'Pod', metadata: { name: `${a}-1`, namespace: ns, labels: { app: a }, annotations }, spec: { serviceAccountName: a === 'b' ? (s.bAccount ?? a) : a, containers: [{ name: a, ports: [{ containerPort: 8080 }] }] }, status: { podIP: `198.18.${10 + i}.${octet}` } });
      for (let k = 1; k <= (s.replicas?.[a] ?? 0); k++) docs.push({ apiVersion: 'v1', kind: 'Pod', metadata: { name: `${a}-${k + 1}`, namespace: ns, labels: { app: a }, annotations }, spec: { serviceAccountName: a === 'b' ? (s.bAccount ?? a) : a, containers: [{ name: a, ports: [{ containerPort: 8080 }] }] }, status: { podIP: `198.18.${10 + i}.${100 + k}` } });
    }
  });
  // A grant lives in its destination's namespace; x is of back, the others of shop.
  const home = (a: string) => (a === 'x' ? BACK : ns);
  s.grants.forEach((g, i) =>
    docs.push({
      apiVersion: 'access.smi-spec.io/v1alpha3',
      kind: 'TrafficTarget',
      metadata: { name: `g${i}`, namespace: home(g.to) },
      spec: { destination: { kind: 'ServiceAccount', name: g.to }, sources: [{ kind: 'ServiceAccount', name: g.from, namespace: home(g.from) }], rules: [g.http ? { kind: 'HTTPRouteGroup', name: 'api' } : { kind: 'TCPRoute', name: 'all' }] },
    }),
  );
  // The same split on a TCP port (its weights are in the outbound listener's filter chain, not in a route table).
  for (const [i, a] of ['b', 'c', 'd'].entries()) docs.push({ apiVersion: 'v1', kind: 'Service', metadata: { name: `${a}-tcp`, namespace: ns }, spec: { selector: { app: a }, clusterIP: `198.18.202.${i + 1}`, ports: [{ name: 'tcp-raw', port: 9100, targetPort: 8080 }] } });
  if (s.split) docs.push({ apiVersion: 'split.smi-spec.io/v1alpha4', kind: 'TrafficSplit', metadata: { name: 's', namespace: ns }, spec: { service: 'b', backends: [{ service: 'c', weight: s.split[0] }, { service: 'd', weight: s.split[1] }] } });
  if (s.split) docs.push({ apiVersion: 'split.smi-spec.io/v1alpha4', kind: 'TrafficSplit', metadata: { name: 'st', namespace: ns }, spec: { service: 'b-tcp', backends: [{ service: 'c-tcp', weight: s.split[0] }, { service: 'd-tcp', weight: s.split[1] }] } });
  if (s.vm) docs.push({ apiVersion: 'smc.dev/v1alpha1', kind: 'VirtualMachine', metadata: { name: 'b-vm', namespace: ns }, spec: { serviceAccount: 'vm', addresses: ['198.18.40.1'], ports: [{ name: 'http', port: 8080 }], labels: { app: 'b' } } });
  // A proxyless gRPC client's pod, given b's label: then an endpoint of b that sidecars leave out, with a warning (a reach's warning without a change of its rows).
  for (let k = 0; k <= (s.replicas?.p ?? 0); k++) docs.push({ apiVersion: 'v1', kind: 'Pod', metadata: { name: `p-${k + 1}`, namespace: ns, labels: { app: s.proxyless ? 'b' : 'p' }, annotations: { 'smc.dev/interception': 'proxyless' } }, spec: { serviceAccountName: 'p', containers: [{ name: 'p', ports: [{ containerPort: 8080 }] }] }, status: { podIP: `198.18.50.${k + 1}` } });
  // Gateway API routes: a producer route on a, a consumer route of back on b, and the grants that let them name each other's Services.
  const gw = 'gateway.networking.k8s.io';
  if (s.route) {
    const path = s.route.exact ? { type: 'Exact', value: '/x' } : { type: 'PathPrefix', value: '/api' };
    docs.push({
      apiVersion: `${gw}/v1`,
      kind: 'HTTPRoute',
      metadata: { name: 'r', namespace: ns },
      spec: {
        parentRefs: [{ group: '', kind: 'Service', name: 'a', ...(s.route.port ? { port: 80 } : {}) }],
        rules: [
          {
            matches: [{ path }],
            // A mirror to b: a caller that may not reach b is given no mirror.
            filters: [{ type: 'RequestMirror', requestMirror: { backendRef: { name: 'b', port: 80 }, percent: 50 } }],
            backendRefs: [{ name: 'c', port: 80, weight: s.route.weights[0] }, { name: 'd', port: 80, weight: s.route.weights[1] }],
          },
          { matches: [{ path: { type: 'Exact', value: '/old' } }], filters: [{ type: 'RequestRedirect', requestRedirect: { hostname: 'elsewhere.example' } }] },
          { backendRefs: [{ name: 'x', namespace: BACK, port: 80 }] },
        ],
      },
    });
  }
  if (s.consumerRoute) docs.push({ apiVersion: `${gw}/v1`, kind: 'HTTPRoute', metadata: { name: 'cr', namespace: BACK }, spec: { parentRefs: [{ group: '', kind: 'Service', name: 'b', namespace: ns }], rules: [{ backendRefs: [{ name: 'c', namespace: ns, port: 80 }] }] } });
  if (s.refGrants) {
    for (const [here, there] of [[ns, BACK], [BACK, ns]]) docs.push({ apiVersion: `${gw}/v1beta1`, kind: 'ReferenceGrant', metadata: { name: 'routes', namespace: here }, spec: { from: [{ group: gw, kind: 'HTTPRoute', namespace: there }], to: [{ group: '', kind: 'Service' }] } });
  }
  // One file per namespace (and one for what is mesh-wide), as a folder or the cluster would give them: an edit in one namespace moves no other namespace's documents.
  const fileOf = (d: unknown) => {
    const { kind, metadata } = d as { kind: string; metadata: { namespace?: string } };
    if (kind === 'MeshConfig') return (metadata as { name: string }).name === 'rival' ? 'rival.yaml' : 'mesh.yaml';
    return kind === 'Namespace' ? 'mesh.yaml' : `${metadata.namespace}.yaml`;
  };
  const counts = new Map<string, number>();
  const documents = docs.map((value) => {
    const source = fileOf(value);
    const document = counts.get(source) ?? 0;
    counts.set(source, document + 1);
    return { origin: { source, document, line: 0 }, value };
  });
  const problems = s.unparsable ? [{ origin: { source: 'broken.yaml', document: 0, line: 3 }, message: 'mapping values are not allowed here' }] : [];
  return { documents, problems, ...liveOf(s), ...(certificates ? { certificates } : {}) };
}

/** The inputs as a controller's input store holds them: one unit per file; a file whose content did not change is the same unit value. */
function unitsOf(i: MeshInputs, kept: Map<string, { text: string; unit: InputUnit }>): Map<string, InputUnit> {
  const documents = groupBy(i.documents, (d) => d.origin.source);
  const problems = groupBy(i.problems, (p) => p.origin.source);
  const out = new Map<string, InputUnit>();
  for (const source of new Set([...documents.keys(), ...problems.keys()])) {
    const unit = { documents: documents.get(source) ?? [], problems: problems.get(source) ?? [] };
    const text = JSON.stringify(unit);
    let k = kept.get(source);
    if (k?.text !== text) kept.set(source, (k = { text, unit }));
    out.set(`unit:${source}`, k.unit);
  }
  return out;
}

const serialised = (snapshots: readonly Snapshot[]) =>
  snapshots.map((s) => ({ identity: s.identity, dataPlane: s.dataPlane, warnings: s.warnings, types: PUSH_ORDER.map((k) => [s.types[k].version, s.types[k].resources.map((x) => `${x.name}=${Buffer.from(x.bytes).toString('base64')}`)]) }));

const start: State = {
  permissive: false,
  inMesh: true,
  ips: {},
  grants: [{ from: 'a', to: 'b', http: true }, { from: 'a', to: 'x', http: true }],
  split: undefined,
  explicit: false,
  broken: false,
  backInMesh: true,
  xOctet: 1,
  xService: true,
  extSlice: true,
  account: false,
  vips: 2,
  unparsable: false,
  rival: false,
  vm: false,
  vmConnected: false,
  proxyless: false,
  renewals: {},
  bundle: 0,
};

/** What an index holds, field by field, as plain Maps and Sets (a derived index's tables are patched over the previous one's). */
function indexContent(index: MeshIndex): Record<string, unknown> {
  const plain = (v: unknown): unknown =>
    typeof v === 'object' && v !== null && !Array.isArray(v) && 'has' in v && 'entries' in v ? ('get' in v ? new Map(v as ReadonlyMap<unknown, unknown>) : new Set(v as ReadonlySet<unknown>)) : v;
  return Object.fromEntries(Object.entries(index).map(([k, v]) => [k, plain(v)]));
}

/**
 * `changedKeys(before, after)` holds every index key whose value differs in
 * content between the two indexes (compared as JSON text, each index built
 * on its own), and `addressOnlyKeys` only keys whose values differ in
 * endpoint addresses and workloads at most.
 */
function assertChangesNamed(before: MeshIR, after: MeshIR, context: string): void {
  const changed = changedKeys(before, after);
  if (changed === 'all') return;
  const a = meshIndex(structuredClone(before)) as unknown as Record<string, unknown>;
  const b = meshIndex(structuredClone(after)) as unknown as Record<string, unknown>;
  const text = (v: unknown) => JSON.stringify(v instanceof Map ? [...v] : v);
  // What a plan reads of a value: a service without its endpoints' addresses, workloads, order and number (replicas of
  // one kind are one); of an identity's endpoints, each kind's service and port by name and the endpoint's port, mode
  // and identity.
  const kinds = (items: string[]) => [...new Set(items)].sort();
  const strip = (x: unknown) =>
    JSON.stringify(x, (k, y: unknown) => (k === 'endpoints' && Array.isArray(y) ? kinds((y as Endpoint[]).map((e) => `${e.port} ${e.interception} ${e.identity}`)) : y));
  const shape = (v: unknown) =>
    Array.isArray(v)
      ? kinds((v as IndexedEndpoint[]).map((e) => strip([e.service.namespace, e.service.name, e.port.name, e.port.port, e.port.targetPort, e.port.protocol, e.endpoint.port, e.endpoint.interception, e.endpoint.identity]))).join('\n')
      : strip(v);
  const light = addressOnlyKeys(before, after);
  for (const field of Object.keys(b).filter((f) => f !== 'identities')) {
    const was = a[field] as ReadonlyMap<string, unknown> | ReadonlySet<string>;
    const now = b[field] as ReadonlyMap<string, unknown> | ReadonlySet<string>;
    const get = (m: ReadonlyMap<string, unknown> | ReadonlySet<string>, k: string) => (m instanceof Map ? m.get(k) : (m as ReadonlySet<string>).has(k) || undefined);
    for (const k of new Set([...was.keys(), ...now.keys()])) {
      if (text(get(was, k)) === text(get(now, k))) continue;
      assert.ok(changed.has(`${field}\0${k}`) && changed.has(`${field}*`), `${field} ${k} changed but is not named, after ${context}`);
    }
  }
  if (text(a.identities) !== text(b.identities)) assert.ok(changed.has('identities*'), `identities changed but are not named, after ${context}`);
  for (const key of light) {
    const [field, k] = key.split('\0') as [string, string | undefined];
    if (k === undefined) continue;
    const get = (m: unknown) => (m as ReadonlyMap<string, unknown>).get(k);
    assert.equal(shape(get(a[field])), shape(get(b[field])), `${key} named as moving addresses only, after ${context}`);
  }
}

test('property: a chain of compiles, each given the previous result, equals compiling each state from scratch', () => {
  fc.assert(
    fc.property(fc.array(edit, { minLength: 1, maxLength: 8 }), (edits) => {
      let state = start;
      // The controller's way: the inputs as units (one per file), each compile given the previous one.
      const kept = new Map<string, { text: string; unit: InputUnit }>();
      const certificates = new Map<string, CertificateInputs>();
      let units: UnitsCompileResult = compileUnits(unitsOf(inputs(state), kept), liveOf(state));
      let plans = planSnapshots(units.ir, codec, certificatesOf(state, certificates));
      for (const e of edits) {
        state = apply(state, e);
        const fresh = compile(inputs(state, certificatesOf(state, certificates)), codec);
        const previousIR = units.ir;
        units = compileUnits(unitsOf(inputs(state), kept), liveOf(state), units);
        assert.deepEqual(units.ir, fresh.ir, `IR, after ${JSON.stringify(e)}`);
        assert.deepEqual(units.status, fresh.status, `status, after ${JSON.stringify(e)}`);
        // The index derived from the previous IR's is the one built from scratch, and it names every key whose value changed.
        assert.deepEqual(indexContent(meshIndex(units.ir, previousIR)), indexContent(meshIndex(structuredClone(fresh.ir))), `index, after ${JSON.stringify(e)}`);
        assertChangesNamed(previousIR, units.ir, JSON.stringify(e));
        // Only the identities that read a changed key are planned again: the snapshots are those built from scratch, byte for byte.
        plans = planSnapshots(units.ir, codec, certificatesOf(state, certificates), plans, undefined, previousIR);
        assert.deepEqual(serialised([...plans.values()].map((p) => p.snapshot)), serialised(fresh.snapshots), `snapshots, after ${JSON.stringify(e)}`);
      }
    }),
    {
      numRuns: 200,
      // Reads across namespaces, each made to matter at least once (with no EndpointSlice tying shop to back, shop's parts are kept while back changes): x's ports come only from shop's EndpointSlice (a check on back's grant reads them); y is declared in back (shop's grant from it warns until then); back's services without a cluster IP take virtual IPs before shop's ext.
      examples: [
        [[{ kind: 'xService', on: false }, { kind: 'extSlice', on: false }, { kind: 'extSlice', on: true }]],
        [[{ kind: 'extSlice', on: false }, { kind: 'account', on: true }, { kind: 'account', on: false }]],
        // back/v0 and shop/ext hash to the same address of the range: ext takes the next one while v0 exists.
        [[{ kind: 'extSlice', on: false }, { kind: 'vips', count: 0 }, { kind: 'vips', count: 3 }, { kind: 'meshconfig', permissive: true }, { kind: 'vips', count: 0 }]],
        [[{ kind: 'x', octet: 2 }, { kind: 'back', inMesh: false }, { kind: 'back', inMesh: true }]],
        // The range full: shop's ext gets no address, and a warning that goes once back's services leave.
        [[{ kind: 'extSlice', on: false }, { kind: 'vips', count: 15 }, { kind: 'vips', count: 0 }]],
        // Messages that depend on other files: a MeshConfig rejected while an older one exists; a file that does not parse, then removed.
        [[{ kind: 'rival', on: true }, { kind: 'rival', on: false }, { kind: 'unparsable', on: true }, { kind: 'unparsable', on: false }]],
        // A VM joins b's endpoints when its proxy connects; renewals and a new trust bundle re-make secrets only; a permissive reach made again after each.
        [[{ kind: 'vm', on: true }, { kind: 'vmConnected', on: true }, { kind: 'renew', app: 'a' }, { kind: 'meshconfig', permissive: true }, { kind: 'split', weights: [2, 1] }, { kind: 'bundle' }, { kind: 'vmConnected', on: false }]],
        // A permissive reach made again: the split's weights change (b's outbound service is made again, the others kept), then its pod moves.
        [[{ kind: 'meshconfig', permissive: true }, { kind: 'split', weights: [1, 3] }, { kind: 'split', weights: [3, 1] }, { kind: 'endpoint', app: 'c', octet: 2 }, { kind: 'split', weights: [0, 3] }]],
        // A permissive reach whose rows stay while its warnings change (a proxyless endpoint of b, which sidecars leave out), then a split with it.
        [[{ kind: 'meshconfig', permissive: true }, { kind: 'proxyless', on: true }, { kind: 'split', weights: [1, 1] }, { kind: 'proxyless', on: false }, { kind: 'split', weights: [2, 1] }]],
        // A split's backend Service goes (its pod stays) and comes back: the split is rejected, then applied, with nothing else of its namespace's policy changed.
        [[{ kind: 'split', weights: [1, 1] }, { kind: 'noServiceD', on: true }, { kind: 'noServiceD', on: false }]],
        // b's endpoints are of two identities (its pod's and the VM's), and a may reach both: b's pod moves, and a's assignment of b is made again whole.
        [[{ kind: 'vm', on: true }, { kind: 'vmConnected', on: true }, { kind: 'grant', from: 'a', to: 'b', http: false }, { kind: 'grant', from: 'a', to: 'vm', http: false }, { kind: 'endpoint', app: 'b', octet: 2 }, { kind: 'endpoint', app: 'b', octet: 3 }]],
        // Replicas added and removed (a Deployment scaled): b's callers take new assignments. The proxyless pod, given b's label
        // and granted to a, is left out of a's sidecar with a warning, as its replicas come and go; then the same, permissive.
        [[{ kind: 'replicas', app: 'b', extra: 2 }, { kind: 'replicas', app: 'b', extra: 1 }, { kind: 'proxyless', on: true }, { kind: 'grant', from: 'a', to: 'p', http: false }, { kind: 'replicas', app: 'p', extra: 2 }, { kind: 'replicas', app: 'p', extra: 0 }, { kind: 'meshconfig', permissive: true }, { kind: 'replicas', app: 'p', extra: 1 }, { kind: 'replicas', app: 'b', extra: 0 }]],
      ],
    },
  );
});

test('property: through the compile worker and into the snapshot cache (only change sets cross the thread, both ways), every step equals a compile from scratch', async () => {
  const thread = startCompilerThread();
  // The status the controller holds: the worker sends it only when it differs from its last answer (across runs too).
  let status: readonly StatusEntry[] | undefined;
  try {
    await fc.assert(
      fc.asyncProperty(fc.array(edit, { minLength: 1, maxLength: 8 }), async (edits) => {
        // A new cache: the worker forgets what it sent, and its next answer holds every snapshot.
        await thread.reset();
        const cache = createSnapshotCache();
        const kept = new Map<string, { text: string; unit: InputUnit }>();
        const certificates = new Map<string, CertificateInputs>();
        let state = start;
        for (const e of [undefined, ...edits]) {
          if (e) state = apply(state, e);
          const what = e ? `after ${JSON.stringify(e)}` : 'at the start';
          const compiled = await thread.compile(unitsOf(inputs(state), kept), liveOf(state));
          status = compiled.status ?? status;
          const { changed, moved, removed, complete, inconsistencies } = await thread.snapshots(certificatesOf(state, certificates));
          assert.deepEqual(inconsistencies, []);
          if (complete) cache.setSnapshots(changed);
          else cache.update(changed, removed, moved);
          const fresh = compile(inputs(state, certificatesOf(state, certificates)), codec);
          assert.deepEqual(status, fresh.status, `status, ${what}`);
          const cached = cache.identities().map((id) => cache.get(id)!);
          assert.deepEqual(
            cached.map((c) => ({ identity: c.identity, types: PUSH_ORDER.map((k) => [c.types[k].version, [...c.types[k].resources.values()].map((x) => `${x.name}=${Buffer.from(x.bytes).toString('base64')}`)]) })),
            serialised(fresh.snapshots).map(({ identity, types }) => ({ identity, types })),
            `cached snapshots, ${what}`,
          );
        }
      }),
      {
        numRuns: 40,
        examples: [
          // A permissive mesh: sets made of the shared reach's part and each identity's own, changed part by part.
          [[{ kind: 'meshconfig', permissive: true }, { kind: 'split', weights: [1, 3] }, { kind: 'split', weights: [3, 1] }, { kind: 'renew', app: 'c' }, { kind: 'endpoint', app: 'b', octet: 2 }, { kind: 'split', weights: undefined }, { kind: 'meshconfig', permissive: false }]],
          [[{ kind: 'vm', on: true }, { kind: 'vmConnected', on: true }, { kind: 'bundle' }, { kind: 'meshconfig', permissive: true }, { kind: 'vmConnected', on: false }, { kind: 'vm', on: false }]],
        ],
      },
    );
  } finally {
    await thread.close();
  }
});

test('an identity joining or leaving a permissive mesh is planned alone: every other identity keeps the plan it had and takes the new shared reach', async () => {
  const ids = [...APPS.map((a) => `spiffe://cluster.local/ns/shop/sa/${a}`), 'spiffe://cluster.local/ns/shop/sa/b2'];
  const certs = await throwawayCertificates('cluster.local', ids);
  const kept = new Map<string, { text: string; unit: InputUnit }>();
  const step = (s: State, previous?: { units: UnitsCompileResult; plans: SnapshotPlans }) => {
    const units = compileUnits(unitsOf(inputs(s), kept), undefined, previous?.units);
    return { units, plans: planSnapshots(units.ir, codec, certs, previous?.plans, undefined, previous?.units.ir) };
  };
  const versions = (r: { plans: SnapshotPlans }) => new Map([...r.plans].map(([id, p]) => [id, PUSH_ORDER.map((k) => p.snapshot.types[k].version).join(' ')]));
  const open: State = { ...start, permissive: true };
  let before = step(open);
  // b's pod runs as b2: identity b leaves the mesh and b2 joins it; then back.
  for (const [state, joins, leaves] of [[{ ...open, bAccount: 'b2' }, ids[4]!, ids[1]!], [open, ids[1]!, ids[4]!]] as const) {
    const after = step(state, before);
    assert.deepEqual(versions(after), versions(step(state)), 'as a compile from scratch gives them');
    assert.ok(after.plans.has(joins) && !after.plans.has(leaves));
    for (const id of ids) {
      if (id === joins || id === leaves) continue;
      // Not planned from the mesh again: what it read is the very set it had; only its reach is new.
      assert.equal(after.plans.get(id)!.reads, before.plans.get(id)!.reads, `${id} was not planned again`);
      assert.notEqual(after.plans.get(id)!.snapshot.types.cluster.version, before.plans.get(id)!.snapshot.types.cluster.version, `${id} reaches the new identity's service`);
    }
    before = after;
  }
});

test('an endpoint change re-translates only the identities that reach it (in a permissive mesh, nobody: the shared endpoint set is swapped in); a renewed certificate only its own identity\'s secrets', async () => {
  const ids = APPS.map((a) => `spiffe://cluster.local/ns/shop/sa/${a}`);
  const certs = await throwawayCertificates('cluster.local', ids);
  const state: State = { ...start, grants: [{ from: 'a', to: 'b', http: true }, { from: 'c', to: 'd', http: false }] };
  // As the controller's compile worker does: the units compiled, then planned given the previous plans and IR.
  const kept = new Map<string, { text: string; unit: InputUnit }>();
  const step = (s: State, c: typeof certs, previous?: { units: UnitsCompileResult; plans: SnapshotPlans }) => {
    const units = compileUnits(unitsOf(inputs(s), kept), undefined, previous?.units);
    return { units, plans: planSnapshots(units.ir, codec, c, previous?.plans, undefined, previous?.units.ir) };
  };
  const first = step(state, certs);
  const snapshotsOf = (r: { plans: SnapshotPlans }) => [...r.plans.values()].map((p) => p.snapshot);
  // b's pod moves: only a (its caller) gets a new snapshot, and only its endpoint set: a is not planned again (its plan is
  // the very value it was; plans hold no endpoint address). Every other snapshot is the previous object itself.
  const moved = step({ ...state, ips: { b: 2 } }, certs, first);
  const rebuilt = (r: { plans: SnapshotPlans }) => snapshotsOf(r).filter((s, i) => s !== snapshotsOf(first)[i]).map((s) => s.identity);
  assert.deepEqual(rebuilt(moved), [ids[0]]);
  const [aBefore, aAfter] = [first, moved].map((r) => r.plans.get(ids[0]!)!);
  assert.equal(aAfter!.plan, aBefore!.plan, 'a was not planned again');
  for (const kind of ['cluster', 'listener', 'route', 'secret'] as const) assert.equal(aAfter!.snapshot.types[kind], aBefore!.snapshot.types[kind], `a: ${kind} kept`);
  assert.equal(aAfter!.snapshot.types.endpoint.version, step({ ...state, ips: { b: 2 } }, certs).plans.get(ids[0]!)!.snapshot.types.endpoint.version, 'a: its endpoints as a compile from scratch gives them');
  // b's pod is replaced by one of another account, which a is not granted: not an address change, and a's plan does change.
  const other = step({ ...state, ips: { b: 2 }, bAccount: 'b2' }, certs, moved);
  assert.notDeepEqual(other.plans.get(ids[0]!)!.plan, aAfter!.plan);
  // A new certificate for d: only d's snapshot is built again.
  const renewed = await throwawayCertificates('cluster.local', [ids[3]!]);
  const withRenewal = { ...certs, identities: certs.identities.map((c) => (c.identity === ids[3] ? renewed.identities[0]! : c)) };
  // (From plans of their own: the controller's plans follow one another, and `first` handed its index of readers on to `moved`.)
  const base = step(state, certs);
  const afterRenewal = step(state, withRenewal, base);
  assert.deepEqual(snapshotsOf(afterRenewal).filter((s, i) => s !== snapshotsOf(base)[i]).map((s) => s.identity), [ids[3]]);
  // And of d's snapshot, only the secrets: every other type is the very set encoded before.
  const [before, after] = [base, afterRenewal].map((r) => snapshotsOf(r).find((s) => s.identity === ids[3])!);
  for (const kind of ['cluster', 'endpoint', 'listener', 'route'] as const) assert.equal(after!.types[kind], before!.types[kind], `${kind} was not built again`);
  assert.notEqual(after!.types.secret.version, before!.types.secret.version);
  assert.equal(afterRenewal.plans.get(ids[3]!)!.plan, base.plans.get(ids[3]!)!.plan, 'd was not planned again');
  assert.equal(after!.types.secret.version, step(state, withRenewal).plans.get(ids[3]!)!.snapshot.types.secret.version, 'd: its secrets as a compile from scratch gives them');
  // A start: everything planned before any certificate is issued, then given the certificates. Nobody is planned again.
  const unsigned = step(state, undefined as unknown as typeof certs);
  const signed = step(state, certs, unsigned);
  for (const id of ids) assert.equal(signed.plans.get(id)!.plan, unsigned.plans.get(id)!.plan, `${id}: not planned again for its certificate`);
  assert.deepEqual(snapshotsOf(signed), snapshotsOf(first), 'the snapshots of a compile that had the certificates from the start');

  // Permissive: every identity reaches b, and b's pod moving changes the endpoint set they share and nothing else. Nobody
  // but b (whose own workload moved) is planned again: each other plan is the very value it was, and b's is equal to its
  // previous one. Each snapshot takes the new endpoint set, every other type kept.
  const open = { ...state, permissive: true };
  const openFirst = step(open, certs);
  const openMoved = step({ ...open, ips: { b: 2 } }, certs, openFirst);
  const fresh = step({ ...open, ips: { b: 2 } }, certs);
  for (const id of ids) {
    const [was, now, scratch] = [openFirst, openMoved, fresh].map((r) => r.plans.get(id)!);
    if (id === ids[1]) assert.deepEqual(now!.plan, was!.plan, 'b planned again, to the same plan');
    else assert.equal(now!.plan, was!.plan, `${id} was not planned again`);
    for (const kind of ['cluster', 'listener', 'route', 'secret'] as const) assert.equal(now!.snapshot.types[kind], was!.snapshot.types[kind], `${id}: ${kind} kept`);
    assert.notEqual(now!.snapshot.types.endpoint.version, was!.snapshot.types.endpoint.version, `${id}: the endpoint set is new`);
    assert.equal(now!.snapshot.types.endpoint.version, scratch!.snapshot.types.endpoint.version, `${id}: as a compile from scratch gives it`);
  }
  const endpointSets = new Set(ids.map((id) => openMoved.plans.get(id)!.snapshot.types.endpoint));
  assert.equal(endpointSets.size, 1, 'one endpoint set, shared');
  // Then c's pod moves too: each service's cluster is found again (the untouched ones by their upstream, c's by its text), so every identity keeps its cluster set.
  const openTwice = step({ ...open, ips: { b: 2, c: 2 } }, certs, openMoved);
  for (const id of ids) assert.equal(openTwice.plans.get(id)!.snapshot.types.cluster, openMoved.plans.get(id)!.snapshot.types.cluster, `${id}: clusters kept over a second move`);
});

test('units that name the same source are compiled as one whole: their messages mix as they would in one list of documents', () => {
  const doc = (kind: string) => ({ origin: { source: 'same.yaml', document: 0, line: 1 }, value: { apiVersion: 'v1', kind, metadata: { name: 'x', namespace: 'shop' } } });
  const a: InputUnit = { documents: [doc('ConfigMap')], problems: [] };
  const b: InputUnit = { documents: [doc('Secret')], problems: [] };
  const units = new Map([['a', a], ['b', b]]);
  const fresh = compileIR({ documents: [...a.documents, ...b.documents], problems: [] });
  const first = compileUnits(units);
  assert.deepEqual(first.status, fresh.status);
  // Both documents are `same.yaml#0`: each entry carries both messages, as when they come in one list.
  assert.equal(first.status[0]!.messages.length, 2);
  assert.deepEqual(compileUnits(units, undefined, first).status, fresh.status);
  // The next compile, told which unit changed (as the compile worker tells it), still looks at every unit: the whole compile kept no parts.
  const c: InputUnit = { documents: [{ origin: { source: 'c.yaml', document: 0, line: 1 }, value: { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'y', namespace: 'shop' } } }], problems: [] };
  const apart = new Map([['a', a], ['c', c]]);
  assert.deepEqual(compileUnits(apart, undefined, first, ['b', 'c']).status, compileIR({ documents: [...a.documents, ...c.documents], problems: [] }).status);
});
