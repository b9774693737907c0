import { diffIR, LISTS, type Changes, type IRDiff, type IRLists } from './diff.js';
import { sameItems } from '../group.js';
import { MapView, PatchedTable, putIn, removeIn } from '../keyed.js';
import { compareStrings, type Endpoint, type Grant, type Identity, type MeshIR, type ServiceIR, type ServicePortIR, type ServiceRouteIR, type SplitIR, type Workload } from './types.js';

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
/** The `namespace/name` of the Services a route's rules send to. */
export const routeBackends = (r: ServiceRouteIR): string[] => [...new Set(r.rules.flatMap((rule) => rule.backends.map((b) => `${b.namespace}/${b.service}`)))];
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

/**
 * One field of the index: the keys each element of one IR list files under,
 * with what it contributes to each (`file`), and a key's value made from the
 * contributions of the elements filed under it, in the list's order
 * (`value`). `shape` is what a plan reads of a value: two values of the same
 * shape differ in endpoint addresses only (see `addressOnlyKeys`).
 */
interface Field<V> {
  readonly list: keyof IRLists;
  readonly file: (element: never, add: (key: string, item: never) => void) => void;
  readonly value: (items: never[]) => V;
  readonly shape?: (value: never) => string;
  /** The field is a set of its keys (its values are `true`). */
  readonly set?: true;
}
const field = <L extends keyof IRLists, I, V>(list: L, file: (element: IRLists[L][number], add: (key: string, item: I) => void) => void, value: (items: I[]) => V, shape?: (value: V) => string): Field<V> => ({
  list,
  file: file as unknown as Field<V>['file'],
  value: value as unknown as Field<V>['value'],
  ...(shape ? { shape } : {}),
});

/** The index's fields that are keyed (all but `identities`, the sorted keys of `identitySet`). */
type Keyed = Omit<MeshIndex, 'identities'>;
/** A field that is the set of keys the elements of `list` file under. */
const keySet = <L extends keyof IRLists>(list: L, file: (element: IRLists[L][number], add: (key: string) => void) => void): Field<true> => ({
  ...field(list, (e, add: (k: string, v: true) => void) => file(e, (k) => add(k, true)), () => true as const),
  set: true,
});
type ValueOf<T> = T extends ReadonlyMap<string, infer V> ? V : true;

const first = <T>(items: T[]): T => items[0]!;
const uniqueSorted = (items: string[]): string[] => [...new Set(items)].sort(compareStrings);

/**
 * Every field of the index, declared once: the type makes each field of
 * `MeshIndex` be here. The index is derived from these alone, from scratch
 * and from a previous index and the IR's diff alike.
 */
const FIELDS: { readonly [K in keyof Keyed]-?: Field<ValueOf<Keyed[K]>> } = {
  identitySet: keySet('workloads', (w, add) => add(w.identity)),
  workloadsOf: field('workloads', (w, add: (k: string, v: Workload) => void) => add(w.identity, w), (items) => items),
  podSet: keySet('workloads', (w, add) => w.kind === 'Pod' && add(`${w.namespace}/${w.name}`)),
  grantsTo: field('access', (a, add: (k: string, v: readonly Grant[]) => void) => add(a.destination, a.grants), first),
  grantsFrom: field(
    'access',
    (a, add: (k: string, v: readonly [Identity, Grant]) => void) => a.grants.forEach((g) => add(g.source, [a.destination, g])),
    (items) => {
      const byDestination = new Map<Identity, Grant[]>();
      for (const [d, g] of items) push(byDestination, d, g);
      return byDestination;
    },
  ),
  endpointsOf: field(
    'services',
    (s, add: (k: string, v: IndexedEndpoint) => void) => s.ports.forEach((port, portIndex) => port.endpoints.forEach((endpoint, endpointIndex) => add(endpoint.identity, { service: s, port, endpoint, portIndex, endpointIndex }))),
    (items) => items,
    endpointsShape,
  ),
  service: field('services', (s, add: (k: string, v: ServiceIR) => void) => add(serviceKey(s), s), first, serviceShape),
  splitOf: field('splits', (s, add: (k: string, v: SplitIR) => void) => add(`${s.namespace}/${s.service}`, s), first),
  splitRootsOf: field('splits', (s, add: (k: string, v: string) => void) => s.backends.forEach((b) => add(`${s.namespace}/${b.service}`, `${s.namespace}/${s.service}`)), uniqueSorted),
  routesOf: field('routes', (r, add: (k: string, v: ServiceRouteIR) => void) => add(routeParent(r), r), (items) => items),
  routeParentsOf: field('routes', (r, add: (k: string, v: string) => void) => routeBackends(r).forEach((b) => add(b, routeParent(r))), uniqueSorted),
  consumerRoutesIn: field('routes', (r, add: (k: string, v: true) => void) => isConsumer(r) && add(r.namespace, true), (items) => items.length),
  namespaceSet: keySet('namespaces', (ns, add) => add(ns)),
};
const FIELD_NAMES = Object.keys(FIELDS) as (keyof Keyed)[];

/** An element of an IR list filed under a key of a field, with what it gives that key. */
interface Member {
  readonly element: unknown;
  readonly items: unknown[];
}
/** A field's state: the members of each key, and each key's value (the map the index shows). */
interface FieldState {
  readonly members: ReadonlyMap<string, readonly Member[]>;
  readonly values: ReadonlyMap<string, unknown>;
}

/** An index, its fields' states, and what it was derived from: the previous IR, and the keys whose values it changed. */
interface Derived {
  readonly index: MeshIndex;
  readonly fields: Readonly<Record<keyof Keyed, FieldState>>;
  readonly from?: MeshIR;
  readonly touched: ReadonlySet<string>;
  readonly addressOnly: ReadonlySet<string>;
  /** A reader's view (`recordedView`): never a base to derive from. */
  readonly recorded?: true;
}

const derivations = new WeakMap<MeshIR, Derived>();

const push = <K, V>(m: Map<K, V[]>, k: K, v: V) => {
  const list = m.get(k);
  if (list) list.push(v);
  else m.set(k, [v]);
};

/**
 * The index of `ir`. Given an IR it was derived from whose index is known (a
 * compile's predecessor, with the same settings), the index is that one with
 * the keys the IR's diff files under derived again (ir/diff.ts): the same
 * maps and lists as from scratch, at the cost of the change.
 */
export function meshIndex(ir: MeshIR, previous?: MeshIR): MeshIndex {
  const known = derivations.get(ir);
  if (known) return known.index;
  const base = previous && !derivations.get(previous)?.recorded ? derivations.get(previous) : undefined;
  const diff = base && diffIR(previous!, ir);
  const derived = base && diff ? derive(ir, base, diff, previous!) : derive(ir);
  derivations.set(ir, derived);
  return derived.index;
}

/**
 * The keys whose value differs between the index of `before` and that of
 * `after` (`field\0key`, and `field*` for a field any key of which
 * changed), as read through `recordedView`; 'all' when they are not known
 * (the index of `after` was not derived from that of `before`).
 */
export function changedKeys(before: MeshIR, after: MeshIR): ReadonlySet<string> | 'all' {
  if (before === after) return new Set();
  return derivedFrom(before, after)?.touched ?? 'all';
}

/** The derivation of `after`'s index when it was derived from `before`'s. */
function derivedFrom(before: MeshIR, after: MeshIR): Derived | undefined {
  meshIndex(after, before);
  const derived = derivations.get(after)!;
  return derived.from === before ? derived : undefined;
}

/**
 * Of `changedKeys(before, after)`, those whose values differ only in
 * endpoint addresses (and the workloads they name): the fields with a
 * `shape`, whose old and new values have the same shape. A plan does not
 * read addresses (only endpoint assignments do), so a reader of these keys
 * alone has the plan it had. Empty when not known.
 */
export function addressOnlyKeys(before: MeshIR, after: MeshIR): ReadonlySet<string> {
  return (before === after ? undefined : derivedFrom(before, after)?.addressOnly) ?? new Set();
}

/**
 * The index of `ir`: from `base` (the index of `previous`) and the diff of
 * the IRs, or from nothing (every element of `ir` added). Each key an element
 * of the diff files under gets its members again and its value made again;
 * a value equal to the one it had (the same items) stays the object it was,
 * and its key is not counted as changed.
 */
function derive(ir: MeshIR, base?: Derived, diff?: IRDiff, previous?: MeshIR): Derived {
  const touched = new Set<string>();
  const addressOnly = new Set<string>();
  if (diff) for (const [list, changes] of Object.entries(diff)) if (changes.removed.length + changes.added.length > 0) touched.add(`${list}*`);
  const fields = {} as Record<keyof Keyed, FieldState>;
  const keysMoved = new Set<keyof Keyed>();
  for (const name of FIELD_NAMES) {
    const spec = FIELDS[name] as unknown as { list: keyof IRLists; file: (e: unknown, add: (key: string, item: unknown) => void) => void; value: (items: unknown[]) => unknown; shape?: (value: unknown) => string };
    const { order, key: keyOf } = LISTS[spec.list] as { order: (a: unknown, b: unknown) => number; key: (e: unknown) => string };
    const changes: Changes<unknown> = diff ? diff[spec.list] : { removed: [], added: ir[spec.list] };
    const was = base?.fields[name];
    if (was && changes.removed.length + changes.added.length === 0) {
      fields[name] = was;
      continue;
    }
    // What the changed elements file, per key: the elements gone from it, and the members come to it (in list order).
    const gone = new Map<string, Set<string>>();
    const come = new Map<string, Member[]>();
    for (const e of changes.removed) {
      const k = keyOf(e);
      spec.file(e, (at) => {
        const set = gone.get(at);
        if (set) set.add(k);
        else gone.set(at, new Set([k]));
      });
    }
    for (const e of changes.added) {
      spec.file(e, (at, item) => {
        const list = come.get(at);
        const last = list?.[list.length - 1];
        if (last !== undefined && last.element === e) last.items.push(item);
        else if (list) list.push({ element: e, items: [item] });
        else come.set(at, [{ element: e, items: [item] }]);
      });
    }
    // (From nothing, the members are those that came.)
    // (From a previous state, the tables are patched over its own: making them costs the keys they change.)
    const members = was ? new PatchedTable(was.members) : come;
    const values = was ? new PatchedTable(was.values) : new Map<string, unknown>();
    let all = true;
    let changed = false;
    for (const at of gone.size === 0 ? [...come.keys()] : new Set([...gone.keys(), ...come.keys()])) {
      const leaving = gone.get(at);
      const before = was?.members.get(at) ?? [];
      const kept = leaving ? before.filter((m) => !leaving.has(keyOf(m.element))) : before;
      const arriving = come.get(at) ?? [];
      const now = arriving.length === 0 ? kept : kept.length === 0 ? arriving : [...kept, ...arriving].sort((a, b) => order(a.element, b.element));
      const old = values.get(at);
      if (now.length === 0) {
        removeIn(members, at);
        removeIn(values, at);
      } else {
        putIn(members, at, now);
        const value = spec.value(now.length === 1 ? now[0]!.items : itemsOf(now));
        if (old !== undefined && sameValue(old, value)) continue;
        putIn(values, at, value);
      }
      if (!base) continue;
      changed = true;
      touched.add(`${name}\0${at}`);
      if ((old === undefined) !== (now.length === 0)) keysMoved.add(name);
      const sameShape = spec.shape !== undefined && old !== undefined && now.length > 0 && spec.shape(old) === spec.shape(values.get(at));
      if (sameShape) addressOnly.add(`${name}\0${at}`);
      else all = false;
    }
    if (changed) {
      touched.add(`${name}*`);
      if (all && spec.shape) addressOnly.add(`${name}*`);
    }
    fields[name] = { members, values };
  }
  const view = <K extends keyof Keyed>(name: K): Keyed[K] => {
    const values = fields[name].values;
    return (base && fields[name] === base.fields[name] ? base.index[name] : FIELDS[name].set ? new KeySet(values) : values) as Keyed[K];
  };
  const identitySet = view('identitySet');
  const identities = base && !keysMoved.has('identitySet') ? base.index.identities : [...identitySet].sort(compareStrings);
  if (base && identities !== base.index.identities) touched.add('identities*');
  const index = { identities, ...Object.fromEntries(FIELD_NAMES.map((name) => [name, view(name)])) } as MeshIndex;
  return { index, fields, touched, addressOnly, ...(previous ? { from: previous } : {}) };
}

/** The items of members, in order. */
function itemsOf(members: readonly Member[]): unknown[] {
  const out: unknown[] = [];
  for (const m of members) for (const item of m.items) out.push(item);
  return out;
}

/** Two values of a key: the same object, the same items, or maps of the same items per key. */
function sameValue(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (Array.isArray(a) && Array.isArray(b)) return sameItems(a, b);
  if (a instanceof Map && b instanceof Map) return a.size === b.size && [...a].every(([k, v]) => sameValue(v, b.get(k)));
  return false;
}

/** The keys of a map, as a set. */
class KeySet<K> implements ReadonlySet<K> {
  constructor(private readonly map: ReadonlyMap<K, unknown>) {}
  has(key: K): boolean {
    return this.map.has(key);
  }
  get size(): number {
    return this.map.size;
  }
  forEach(f: (value: K, key: K, set: ReadonlySet<K>) => void): void {
    for (const k of this.map.keys()) f(k, k, this);
  }
  *entries(): SetIterator<[K, K]> {
    for (const k of this.map.keys()) yield [k, k];
  }
  keys(): SetIterator<K> {
    return this.map.keys();
  }
  values(): SetIterator<K> {
    return this.map.keys();
  }
  [Symbol.iterator](): SetIterator<K> {
    return this.map.keys();
  }
}

/**
 * What a plan can read of a service: all of it but its endpoints' addresses
 * and workloads, their order and how many there are of each kind (port,
 * interception and identity). A replica added or removed beside others of
 * its kind changes only endpoint assignments.
 */
function serviceShape(s: ServiceIR): string {
  return JSON.stringify({ ...s, ports: s.ports.map((p) => ({ ...p, endpoints: distinctSorted(p.endpoints.map((e) => `${e.port} ${e.interception} ${e.identity}`)) })) });
}

/** What a plan can read of an identity's endpoints: the same, per service port. */
function endpointsShape(list: readonly IndexedEndpoint[] | undefined): string {
  return distinctSorted((list ?? []).map((e) => JSON.stringify([serviceKey(e.service), e.port.name, e.port.port, e.port.targetPort, e.port.protocol, e.endpoint.port, e.endpoint.interception, e.endpoint.identity]))).join('\n');
}

const distinctSorted = (items: readonly string[]): string[] => [...new Set(items)].sort(compareStrings);

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
  const recorded = Object.fromEntries(
    FIELD_NAMES.map((name) => [name, FIELDS[name].set ? new RecordedSet(name, index[name] as ReadonlySet<string>, record) : new RecordedMap(name, index[name] as ReadonlyMap<string, unknown>, record)]),
  ) as unknown as MeshIndex;
  Object.defineProperty(recorded, 'identities', {
    get: () => {
      record('identities*');
      return index.identities;
    },
  });
  derivations.set(view, { index: recorded, fields: derivations.get(ir)!.fields, touched: new Set(), addressOnly: new Set(), recorded: true });
  return view;
}

/** A map that tells each key read (a whole-map read as `field*`). */
class RecordedMap<K, V> extends MapView<K, V> {
  constructor(
    private readonly field: string,
    private readonly map: ReadonlyMap<K, V>,
    private readonly record: (key: string) => void,
  ) {
    super();
  }
  get(key: K): V | undefined {
    this.record(`${this.field}\0${String(key)}`);
    return this.map.get(key);
  }
  has(key: K): boolean {
    this.record(`${this.field}\0${String(key)}`);
    return this.map.has(key);
  }
  protected all(): ReadonlyMap<K, V> {
    this.record(`${this.field}*`);
    return this.map;
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
