import { diffIR, type IRDiff } from './diff.js';
import { compareStrings, type Endpoint, type Grant, type Identity, type MeshIR, type ServiceIR, type ServicePortIR, type SplitIR, type Workload } from './types.js';

/**
 * The mesh IR indexed once, so that no per-proxy step scans the mesh:
 * building every proxy's configuration costs what that proxy's own
 * neighbourhood holds, not the size of the mesh. Built on first use and kept
 * for the life of the IR value (which is immutable).
 */
export interface MeshIndex {
  /** Identities that have a workload, sorted. */
  readonly identities: readonly Identity[];
  readonly identitySet: ReadonlySet<Identity>;
  readonly workloadsOf: ReadonlyMap<Identity, readonly Workload[]>;
  /** Grants whose destination is the key. */
  readonly grantsTo: ReadonlyMap<Identity, readonly Grant[]>;
  /** source -> destination -> grants from that source to that destination. */
  readonly grantsFrom: ReadonlyMap<Identity, ReadonlyMap<Identity, readonly Grant[]>>;
  /** Endpoints of each identity, in IR order (service, port, endpoint). */
  readonly endpointsOf: ReadonlyMap<Identity, readonly IndexedEndpoint[]>;
  /** `ns/name` -> service. */
  readonly service: ReadonlyMap<string, ServiceIR>;
  /** `ns/name` of a root service -> its effective split (the first the IR lists). */
  readonly splitOf: ReadonlyMap<string, SplitIR>;
  /** `ns/name` of a backend -> the roots whose split names it. */
  readonly splitRootsOf: ReadonlyMap<string, readonly string[]>;
  /** Namespaces in the mesh. */
  readonly namespaceSet: ReadonlySet<string>;
  /** `ns/name` of every pod in the mesh. */
  readonly podSet: ReadonlySet<string>;
}

export interface IndexedEndpoint {
  readonly service: ServiceIR;
  readonly port: ServicePortIR;
  readonly endpoint: Endpoint;
  /** Positions of the port in its service and of the endpoint in its port (see `compareIndexed`). */
  readonly portIndex: number;
  readonly endpointIndex: number;
}

/** IR order (service, port, endpoint): output built from several identities' endpoints sorts by it. */
export function compareIndexed(a: IndexedEndpoint, b: IndexedEndpoint): number {
  return compareServices(a.service, b.service) || a.portIndex - b.portIndex || a.endpointIndex - b.endpointIndex;
}

/** The order of `ir.services`: by namespace, then name. */
export function compareServices(a: Pick<ServiceIR, 'namespace' | 'name'>, b: Pick<ServiceIR, 'namespace' | 'name'>): number {
  return compareStrings(a.namespace, b.namespace) || compareStrings(a.name, b.name);
}

export const serviceKey = (s: { readonly namespace: string; readonly name: string }): string => `${s.namespace}/${s.name}`;

const cache = new WeakMap<MeshIR, MeshIndex>();

const push = <K, V>(m: Map<K, V[]>, k: K, v: V) => {
  const list = m.get(k);
  if (list) list.push(v);
  else m.set(k, [v]);
};

/**
 * The index of `ir`. Given an IR it was built from whose index is known (a
 * compile's predecessor), the index is that one with what changed patched in
 * (ir/diff.ts): the same maps and lists as built from scratch, at the cost of
 * the change.
 */
export function meshIndex(ir: MeshIR, previous?: MeshIR): MeshIndex {
  const known = cache.get(ir);
  if (known) return known;
  const base = previous && cache.get(previous);
  const diff = base && diffIR(previous!, ir);
  const index = base && diff ? patched(base, diff) : built(ir);
  cache.set(ir, index);
  return index;
}

function built(ir: MeshIR): MeshIndex {
  const workloadsOf = new Map<Identity, Workload[]>();
  for (const w of ir.workloads) push(workloadsOf, w.identity, w);
  const grantsTo = new Map<Identity, readonly Grant[]>();
  const grantsFrom = new Map<Identity, Map<Identity, Grant[]>>();
  for (const a of ir.access) {
    grantsTo.set(a.destination, a.grants);
    for (const g of a.grants) {
      let bySource = grantsFrom.get(g.source);
      if (!bySource) grantsFrom.set(g.source, (bySource = new Map()));
      push(bySource, a.destination, g);
    }
  }
  const endpointsOf = new Map<Identity, IndexedEndpoint[]>();
  const service = new Map<string, ServiceIR>();
  for (const s of ir.services) {
    service.set(serviceKey(s), s);
    addEndpoints(endpointsOf, s);
  }
  const splitOf = new Map<string, SplitIR>();
  const splitRootsOf = new Map<string, string[]>();
  for (const s of ir.splits) {
    const root = `${s.namespace}/${s.service}`;
    if (splitOf.has(root)) continue;
    splitOf.set(root, s);
    for (const b of s.backends) push(splitRootsOf, `${s.namespace}/${b.service}`, root);
  }
  const identities = [...workloadsOf.keys()].sort(compareStrings);
  const podSet = new Set(ir.workloads.filter((w) => w.kind === 'Pod').map((w) => `${w.namespace}/${w.name}`));
  return { identities, identitySet: new Set(identities), workloadsOf, grantsTo, grantsFrom, endpointsOf, service, splitOf, splitRootsOf, namespaceSet: new Set(ir.namespaces), podSet };
}

function addEndpoints(endpointsOf: Map<Identity, IndexedEndpoint[]>, s: ServiceIR): void {
  s.ports.forEach((port, portIndex) =>
    port.endpoints.forEach((endpoint, endpointIndex) => {
      push(endpointsOf, endpoint.identity, { service: s, port, endpoint, portIndex, endpointIndex });
    }),
  );
}

/** `base` with the changes of `diff` (the settings and namespaces are the same). */
function patched(base: MeshIndex, diff: IRDiff): MeshIndex {
  const compareWorkloads = (a: Workload, b: Workload) => compareStrings(a.kind, b.kind) || compareStrings(a.name, b.name);
  // Workloads (an identity's are all of its namespace: by kind and name).
  let workloadsOf = base.workloadsOf as Map<Identity, readonly Workload[]>;
  let identities = base.identities;
  let podSet = base.podSet;
  if (diff.workloads.removed.length + diff.workloads.added.length > 0) {
    workloadsOf = new Map(base.workloadsOf);
    // By name: the index may hold an earlier value of an element that was made again with the same content (see diffIR).
    const workloadKey = (w: Workload) => `${w.kind}/${w.namespace}/${w.name}`;
    const gone = new Set(diff.workloads.removed.map(workloadKey));
    const touched = new Set([...diff.workloads.removed, ...diff.workloads.added].map((w) => w.identity));
    for (const id of touched) {
      const list = [...(workloadsOf.get(id) ?? []).filter((w) => !gone.has(workloadKey(w))), ...diff.workloads.added.filter((w) => w.identity === id)].sort(compareWorkloads);
      if (list.length > 0) workloadsOf.set(id, list);
      else workloadsOf.delete(id);
    }
    if ([...touched].some((id) => workloadsOf.has(id) !== base.workloadsOf.has(id))) identities = [...workloadsOf.keys()].sort(compareStrings);
    const pods = (list: readonly Workload[]) => list.filter((w) => w.kind === 'Pod').map((w) => `${w.namespace}/${w.name}`);
    const removedPods = pods(diff.workloads.removed);
    const addedPods = pods(diff.workloads.added);
    if (removedPods.join(' ') !== addedPods.join(' ')) {
      const set = new Set(base.podSet);
      for (const p of removedPods) set.delete(p);
      for (const p of addedPods) set.add(p);
      podSet = set;
    }
  }
  // Grants: to each destination, and from each source (its destinations in destination order).
  let grantsTo = base.grantsTo;
  let grantsFrom = base.grantsFrom;
  if (diff.access.removed.length + diff.access.added.length > 0) {
    const to = new Map(base.grantsTo);
    const from = new Map(base.grantsFrom);
    const sources = new Set<Identity>();
    for (const a of diff.access.removed) {
      to.delete(a.destination);
      for (const g of a.grants) sources.add(g.source);
    }
    for (const a of diff.access.added) {
      to.set(a.destination, a.grants);
      for (const g of a.grants) sources.add(g.source);
    }
    const destinations = new Set([...diff.access.removed, ...diff.access.added].map((a) => a.destination));
    for (const source of sources) {
      const bySource = new Map<Identity, Grant[]>();
      for (const [d, grants] of from.get(source) ?? []) if (!destinations.has(d)) bySource.set(d, [...grants]);
      for (const d of destinations) for (const g of to.get(d) ?? []) if (g.source === source) push(bySource, d, g);
      if (bySource.size === 0) from.delete(source);
      else from.set(source, new Map([...bySource].sort(([a], [b]) => compareStrings(a, b))));
    }
    grantsTo = to;
    grantsFrom = from;
  }
  // Services and their endpoints.
  let service = base.service;
  let endpointsOf = base.endpointsOf;
  if (diff.services.removed.length + diff.services.added.length > 0) {
    const byKey = new Map(base.service);
    for (const s of diff.services.removed) byKey.delete(serviceKey(s));
    for (const s of diff.services.added) byKey.set(serviceKey(s), s);
    const gone = new Set(diff.services.removed.map(serviceKey));
    const touched = new Set([...diff.services.removed, ...diff.services.added].flatMap((s) => s.ports.flatMap((p) => p.endpoints.map((e) => e.identity))));
    const fresh = new Map<Identity, IndexedEndpoint[]>();
    for (const s of diff.services.added) addEndpoints(fresh, s);
    const map = new Map(base.endpointsOf);
    for (const id of touched) {
      const list = [...(map.get(id) ?? []).filter((e) => !gone.has(serviceKey(e.service))), ...(fresh.get(id) ?? [])].sort(compareIndexed);
      if (list.length > 0) map.set(id, list);
      else map.delete(id);
    }
    service = byKey;
    endpointsOf = map;
  }
  // Splits: the one of each root, and the roots of each backend (in root order).
  let splitOf = base.splitOf;
  let splitRootsOf = base.splitRootsOf;
  if (diff.splits.removed.length + diff.splits.added.length > 0) {
    const of = new Map(base.splitOf);
    const roots = new Map(base.splitRootsOf as Map<string, readonly string[]>);
    const rootOf = (s: SplitIR) => `${s.namespace}/${s.service}`;
    const backends = (s: SplitIR) => s.backends.map((b) => `${s.namespace}/${b.service}`);
    for (const s of diff.splits.removed) {
      of.delete(rootOf(s));
      for (const b of backends(s)) {
        const list = (roots.get(b) ?? []).filter((r) => r !== rootOf(s));
        if (list.length > 0) roots.set(b, list);
        else roots.delete(b);
      }
    }
    for (const s of diff.splits.added) {
      of.set(rootOf(s), s);
      for (const b of backends(s)) roots.set(b, [...(roots.get(b) ?? []), rootOf(s)].sort(compareStrings));
    }
    splitOf = of;
    splitRootsOf = roots;
  }
  const identitySet = identities === base.identities ? base.identitySet : new Set(identities);
  return { identities, identitySet, workloadsOf, grantsTo, grantsFrom, endpointsOf, service, splitOf, splitRootsOf, namespaceSet: base.namespaceSet, podSet };
}
