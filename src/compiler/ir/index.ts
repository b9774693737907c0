import { diffIR, type IRDiff } from './diff.js';
import { compareStrings, type Endpoint, type Grant, type Identity, type MeshIR, type ServiceIR, type ServicePortIR, type ServiceRouteIR, type SplitIR, type Workload } from './types.js';
import { compareRoutes } from './gateway.js';

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
  /** `ns/name` of a Service -> the Gateway API routes attached to it (producer and consumer), in IR order. */
  readonly routesOf: ReadonlyMap<string, readonly ServiceRouteIR[]>;
  /** `ns/name` of a backend -> the Services whose routes name it, sorted. */
  readonly routeParentsOf: ReadonlyMap<string, readonly string[]>;
  /** Namespaces with consumer routes (a route on another namespace's Service) -> how many. */
  readonly consumerRoutesIn: ReadonlyMap<string, number>;
  /** Namespaces in the mesh. */
  readonly namespaceSet: ReadonlySet<string>;
  /** `ns/name` of every pod in the mesh. */
  readonly podSet: ReadonlySet<string>;
}

const routeParent = (r: ServiceRouteIR): string => `${r.serviceNamespace}/${r.service}`;
const routeBackends = (r: ServiceRouteIR): string[] => [...new Set(r.rules.flatMap((rule) => rule.backends.map((b) => `${b.namespace}/${b.service}`)))];
const isConsumer = (r: ServiceRouteIR): boolean => r.namespace !== r.serviceNamespace;

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
/** How an index was made: patched from the index of `from`, touching `touched` keys (see `changedKeys`). */
const lineage = new WeakMap<MeshIndex, { readonly from: MeshIR; readonly touched: ReadonlySet<string>; readonly addressOnly: ReadonlySet<string> }>();

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
  if (base && diff) {
    const touched = new Set<string>();
    const addressOnly = new Set<string>();
    const index = patched(base, diff, touched, addressOnly);
    cache.set(ir, index);
    lineage.set(index, { from: previous!, touched, addressOnly });
    return index;
  }
  const index = built(ir);
  cache.set(ir, index);
  return index;
}

/**
 * The keys whose value differs between the index of `before` and that of
 * `after` (`field\0key`, and `field*` for a field any key of which
 * changed), as read through `recordedView`; 'all' when they are not known
 * (the index of `after` was not patched from that of `before`).
 */
export function changedKeys(before: MeshIR, after: MeshIR): ReadonlySet<string> | 'all' {
  if (before === after) return new Set();
  const made = lineage.get(meshIndex(after, before));
  return made?.from === before ? made.touched : 'all';
}

/**
 * Of `changedKeys(before, after)`, those whose values differ only in
 * endpoint addresses (and the workloads they name): the same services with
 * the same ports, cluster IPs and, per port, the same endpoints' ports,
 * identities and interception modes. A plan does not read addresses (only
 * endpoint assignments do), so a reader of these keys alone has the plan it
 * had. Empty when not known.
 */
export function addressOnlyKeys(before: MeshIR, after: MeshIR): ReadonlySet<string> {
  const made = before === after ? undefined : lineage.get(meshIndex(after, before));
  return made?.from === before ? made.addressOnly : new Set();
}

/** What a plan can read of a service: all of it but its endpoints' addresses and workloads (and their order). */
function serviceShape(s: ServiceIR): string {
  return JSON.stringify({ ...s, ports: s.ports.map((p) => ({ ...p, endpoints: p.endpoints.map((e) => `${e.port} ${e.interception} ${e.identity}`).sort(compareStrings) })) });
}

/** What a plan can read of an identity's endpoints: the same, per service port. */
function endpointsShape(list: readonly IndexedEndpoint[] | undefined): string {
  return (list ?? [])
    .map((e) => JSON.stringify([serviceKey(e.service), e.port.name, e.port.port, e.port.targetPort, e.port.protocol, e.endpoint.port, e.endpoint.interception, e.endpoint.identity]))
    .sort(compareStrings)
    .join('\n');
}

/**
 * `ir` as seen by one reader: an IR value whose index (and whose lists)
 * tell `record` every key read through them (`field\0key`, or `field*`
 * for a read of a whole field). Planning reads the mesh through it, so what
 * a plan depends on is what it read, not a list kept by hand.
 */
export function recordedView(ir: MeshIR, record: (key: string) => void): MeshIR {
  const index = meshIndex(ir);
  const view = { settings: ir.settings } as MeshIR;
  for (const field of Object.keys(ir).filter((k): k is Exclude<keyof MeshIR, 'settings'> => k !== 'settings')) {
    Object.defineProperty(view, field, {
      get: () => {
        record(`${field}*`);
        return ir[field];
      },
    });
  }
  const map = <K, V>(field: string, m: ReadonlyMap<K, V>): ReadonlyMap<K, V> => new RecordedMap(field, m, record);
  const set = <K>(field: string, m: ReadonlySet<K>): ReadonlySet<K> => new RecordedSet(field, m, record);
  const recorded: MeshIndex = {
    get identities() {
      record('identities*');
      return index.identities;
    },
    identitySet: set('identitySet', index.identitySet),
    workloadsOf: map('workloadsOf', index.workloadsOf),
    grantsTo: map('grantsTo', index.grantsTo),
    grantsFrom: map('grantsFrom', index.grantsFrom),
    endpointsOf: map('endpointsOf', index.endpointsOf),
    service: map('service', index.service),
    splitOf: map('splitOf', index.splitOf),
    splitRootsOf: map('splitRootsOf', index.splitRootsOf),
    routesOf: map('routesOf', index.routesOf),
    routeParentsOf: map('routeParentsOf', index.routeParentsOf),
    consumerRoutesIn: map('consumerRoutesIn', index.consumerRoutesIn),
    namespaceSet: set('namespaceSet', index.namespaceSet),
    podSet: set('podSet', index.podSet),
  };
  cache.set(view, recorded);
  return view;
}

/** A map that tells each key read (a whole-map read as `field*`). */
class RecordedMap<K, V> implements ReadonlyMap<K, V> {
  constructor(
    private readonly field: string,
    private readonly map: ReadonlyMap<K, V>,
    private readonly record: (key: string) => void,
  ) {}
  get(key: K): V | undefined {
    this.record(`${this.field}\0${String(key)}`);
    return this.map.get(key);
  }
  has(key: K): boolean {
    this.record(`${this.field}\0${String(key)}`);
    return this.map.has(key);
  }
  private all(): ReadonlyMap<K, V> {
    this.record(`${this.field}*`);
    return this.map;
  }
  get size(): number {
    return this.all().size;
  }
  forEach(f: (value: V, key: K, map: ReadonlyMap<K, V>) => void): void {
    this.all().forEach((v, k) => f(v, k, this));
  }
  entries(): MapIterator<[K, V]> {
    return this.all().entries();
  }
  keys(): MapIterator<K> {
    return this.all().keys();
  }
  values(): MapIterator<V> {
    return this.all().values();
  }
  [Symbol.iterator](): MapIterator<[K, V]> {
    return this.all()[Symbol.iterator]();
  }
}

/** A set that tells each member asked about (a whole-set read as `field*`). */
class RecordedSet<K> implements ReadonlySet<K> {
  constructor(
    private readonly field: string,
    private readonly set: ReadonlySet<K>,
    private readonly record: (key: string) => void,
  ) {}
  has(key: K): boolean {
    this.record(`${this.field}\0${String(key)}`);
    return this.set.has(key);
  }
  private all(): ReadonlySet<K> {
    this.record(`${this.field}*`);
    return this.set;
  }
  get size(): number {
    return this.all().size;
  }
  forEach(f: (value: K, key: K, set: ReadonlySet<K>) => void): void {
    this.all().forEach((v) => f(v, v, this));
  }
  entries(): SetIterator<[K, K]> {
    return this.all().entries();
  }
  keys(): SetIterator<K> {
    return this.all().keys();
  }
  values(): SetIterator<K> {
    return this.all().values();
  }
  [Symbol.iterator](): SetIterator<K> {
    return this.all()[Symbol.iterator]();
  }
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
  const routesOf = new Map<string, ServiceRouteIR[]>();
  const parents = new Map<string, Set<string>>();
  const consumerRoutesIn = new Map<string, number>();
  for (const r of ir.routes) {
    push(routesOf, routeParent(r), r);
    for (const b of routeBackends(r)) {
      let set = parents.get(b);
      if (!set) parents.set(b, (set = new Set()));
      set.add(routeParent(r));
    }
    if (isConsumer(r)) consumerRoutesIn.set(r.namespace, (consumerRoutesIn.get(r.namespace) ?? 0) + 1);
  }
  const routeParentsOf = new Map([...parents].map(([b, set]) => [b, [...set].sort(compareStrings)] as const));
  const identities = [...workloadsOf.keys()].sort(compareStrings);
  const podSet = new Set(ir.workloads.filter((w) => w.kind === 'Pod').map((w) => `${w.namespace}/${w.name}`));
  return { identities, identitySet: new Set(identities), workloadsOf, grantsTo, grantsFrom, endpointsOf, service, splitOf, splitRootsOf, routesOf, routeParentsOf, consumerRoutesIn, namespaceSet: new Set(ir.namespaces), podSet };
}

function addEndpoints(endpointsOf: Map<Identity, IndexedEndpoint[]>, s: ServiceIR): void {
  s.ports.forEach((port, portIndex) =>
    port.endpoints.forEach((endpoint, endpointIndex) => {
      push(endpointsOf, endpoint.identity, { service: s, port, endpoint, portIndex, endpointIndex });
    }),
  );
}

/**
 * `base` with the changes of `diff` (the settings are the same); each key
 * whose value it changes goes into `touched`, and into `addressOnly` too
 * when only endpoint addresses changed in it (see `addressOnlyKeys`).
 */
function patched(base: MeshIndex, diff: IRDiff, touched: Set<string>, addressOnly: Set<string>): MeshIndex {
  const touch = (field: string, keys: Iterable<string>) => {
    for (const k of keys) {
      touched.add(`${field}\0${k}`);
      touched.add(`${field}*`);
    }
  };
  for (const [field, changes] of Object.entries(diff)) if (changes.removed.length + changes.added.length > 0) touched.add(`${field}*`);
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
    const owners = new Set([...diff.workloads.removed, ...diff.workloads.added].map((w) => w.identity));
    for (const id of owners) {
      const list = [...(workloadsOf.get(id) ?? []).filter((w) => !gone.has(workloadKey(w))), ...diff.workloads.added.filter((w) => w.identity === id)].sort(compareWorkloads);
      if (list.length > 0) workloadsOf.set(id, list);
      else workloadsOf.delete(id);
    }
    touch('workloadsOf', owners);
    const joinedOrLeft = [...owners].filter((id) => workloadsOf.has(id) !== base.workloadsOf.has(id));
    if (joinedOrLeft.length > 0) {
      identities = [...workloadsOf.keys()].sort(compareStrings);
      touch('identitySet', joinedOrLeft);
      touched.add('identities*');
    }
    const pods = (list: readonly Workload[]) => list.filter((w) => w.kind === 'Pod').map((w) => `${w.namespace}/${w.name}`);
    const removedPods = pods(diff.workloads.removed);
    const addedPods = pods(diff.workloads.added);
    if (removedPods.join(' ') !== addedPods.join(' ')) {
      const set = new Set(base.podSet);
      for (const p of removedPods) set.delete(p);
      for (const p of addedPods) set.add(p);
      podSet = set;
      touch('podSet', [...removedPods, ...addedPods]);
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
    touch('grantsTo', destinations);
    touch('grantsFrom', sources);
  }
  // Services and their endpoints.
  let service = base.service;
  let endpointsOf = base.endpointsOf;
  if (diff.services.removed.length + diff.services.added.length > 0) {
    const byKey = new Map(base.service);
    for (const s of diff.services.removed) byKey.delete(serviceKey(s));
    for (const s of diff.services.added) byKey.set(serviceKey(s), s);
    const gone = new Set(diff.services.removed.map(serviceKey));
    const backing = new Set([...diff.services.removed, ...diff.services.added].flatMap((s) => s.ports.flatMap((p) => p.endpoints.map((e) => e.identity))));
    const fresh = new Map<Identity, IndexedEndpoint[]>();
    for (const s of diff.services.added) addEndpoints(fresh, s);
    const map = new Map(base.endpointsOf);
    touch('service', [...diff.services.removed, ...diff.services.added].map(serviceKey));
    touch('endpointsOf', backing);
    for (const id of backing) {
      const list = [...(map.get(id) ?? []).filter((e) => !gone.has(serviceKey(e.service))), ...(fresh.get(id) ?? [])].sort(compareIndexed);
      if (list.length > 0) map.set(id, list);
      else map.delete(id);
    }
    service = byKey;
    endpointsOf = map;
    // Which of these changes moved addresses only: a service made again with the same shape, an identity's endpoints likewise.
    const before = new Map(diff.services.removed.map((s) => [serviceKey(s), s]));
    const keys = new Set([...diff.services.removed, ...diff.services.added].map(serviceKey));
    let allServices = true;
    for (const k of keys) {
      const was = before.get(k);
      const now = byKey.get(k);
      if (was && now && serviceShape(was) === serviceShape(now)) addressOnly.add(`service\0${k}`);
      else allServices = false;
    }
    if (allServices) addressOnly.add('service*');
    let allEndpoints = true;
    for (const id of backing) {
      if (endpointsShape(base.endpointsOf.get(id)) === endpointsShape(map.get(id))) addressOnly.add(`endpointsOf\0${id}`);
      else allEndpoints = false;
    }
    if (allEndpoints) addressOnly.add('endpointsOf*');
  }
  // Splits: the one of each root, and the roots of each backend (in root order).
  let splitOf = base.splitOf;
  let splitRootsOf = base.splitRootsOf;
  if (diff.splits.removed.length + diff.splits.added.length > 0) {
    const of = new Map(base.splitOf);
    const roots = new Map(base.splitRootsOf as Map<string, readonly string[]>);
    const rootOf = (s: SplitIR) => `${s.namespace}/${s.service}`;
    const backends = (s: SplitIR) => s.backends.map((b) => `${s.namespace}/${b.service}`);
    touch('splitOf', [...diff.splits.removed, ...diff.splits.added].map(rootOf));
    touch('splitRootsOf', [...diff.splits.removed, ...diff.splits.added].flatMap(backends));
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
  // Routes: those of each parent, the parents of each backend, the namespaces with consumer routes.
  let routesOf = base.routesOf;
  let routeParentsOf = base.routeParentsOf;
  let consumerRoutesIn = base.consumerRoutesIn;
  if (diff.routes.removed.length + diff.routes.added.length > 0) {
    const of = new Map(base.routesOf);
    const changedParents = new Set([...diff.routes.removed, ...diff.routes.added].map(routeParent));
    // By key: the index may hold an earlier value of an element that was made again with the same content (see diffIR).
    const routeKey = (r: ServiceRouteIR) => JSON.stringify([r.serviceNamespace, r.service, r.namespace, r.name, r.port ?? 0]);
    const gone = new Set(diff.routes.removed.map(routeKey));
    for (const parent of changedParents) {
      const list = [...(of.get(parent) ?? []).filter((r) => !gone.has(routeKey(r))), ...diff.routes.added.filter((r) => routeParent(r) === parent)].sort(compareRoutes);
      if (list.length > 0) of.set(parent, list);
      else of.delete(parent);
    }
    const backends = new Set([...diff.routes.removed, ...diff.routes.added].flatMap(routeBackends));
    const parents = new Map(base.routeParentsOf);
    for (const b of backends) {
      const candidates = new Set([...(base.routeParentsOf.get(b) ?? []), ...changedParents]);
      const list = [...candidates].filter((p) => (of.get(p) ?? []).some((r) => routeBackends(r).includes(b))).sort(compareStrings);
      if (list.length > 0) parents.set(b, list);
      else parents.delete(b);
    }
    const counts = new Map(base.consumerRoutesIn);
    const consumerNamespaces = new Set<string>();
    for (const [r, delta] of [...diff.routes.removed.map((r) => [r, -1] as const), ...diff.routes.added.map((r) => [r, 1] as const)]) {
      if (!isConsumer(r)) continue;
      consumerNamespaces.add(r.namespace);
      const n = (counts.get(r.namespace) ?? 0) + delta;
      if (n > 0) counts.set(r.namespace, n);
      else counts.delete(r.namespace);
    }
    touch('routesOf', changedParents);
    touch('routeParentsOf', backends);
    touch('consumerRoutesIn', [...consumerNamespaces].filter((ns) => counts.get(ns) !== base.consumerRoutesIn.get(ns)));
    routesOf = of;
    routeParentsOf = parents;
    consumerRoutesIn = counts;
  }
  const identitySet = identities === base.identities ? base.identitySet : new Set(identities);
  // Namespaces that joined or left the mesh.
  let namespaceSet = base.namespaceSet;
  if (diff.namespaces.removed.length + diff.namespaces.added.length > 0) {
    const set = new Set(base.namespaceSet);
    for (const ns of diff.namespaces.removed) set.delete(ns);
    for (const ns of diff.namespaces.added) set.add(ns);
    namespaceSet = set;
    touch('namespaceSet', [...diff.namespaces.removed, ...diff.namespaces.added]);
  }
  return { identities, identitySet, workloadsOf, grantsTo, grantsFrom, endpointsOf, service, splitOf, splitRootsOf, routesOf, routeParentsOf, consumerRoutesIn, namespaceSet, podSet };
}
