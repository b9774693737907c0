import { PUSH_ORDER, TYPES, type ProtoCodec, type ResourceKind } from './envoy/codec.js';
import type { ResourceSet, Snapshot } from './envoy/snapshot.js';
import { meshIndex, serviceKey } from './ir/index.js';
import { grantOpens } from './ir/query.js';
import type { Identity, MeshIR } from './ir/types.js';
import type { ObjectRef, StatusEntry } from './status.js';

/**
 * Which proxies carry each policy object, and whether they have taken it:
 * the `Programmed` condition. Every Envoy name smc emits says what it was
 * built from (a route `HTTPRoute shop/web rules[1] matches[0]`, an RBAC
 * policy `TrafficTarget shop/client-to-web spec.rules[0]`, a cluster
 * `outbound|80|web.shop`, an inbound route `shop/routes#read`), so each
 * resource of a snapshot is traced to objects by its names; what names do
 * not say is added from the IR: a TrafficTarget also shapes its sources'
 * clusters, listeners and routes of the services it opens to them, and the
 * routes its rules name shape whatever it shapes. The runtime says which
 * resources each connected proxy has not acknowledged or has rejected; this
 * module turns the two into one condition per object. Pure: the caller
 * gives the time.
 */

/** The kinds that get a `Programmed` condition. */
export const PROGRAMMED_KINDS: ReadonlySet<string> = new Set(['TrafficTarget', 'HTTPRouteGroup', 'TCPRoute', 'TrafficSplit', 'HTTPRoute', 'GRPCRoute', 'MeshConfig']);

/** `Kind namespace/name` (`Kind name` when mesh-wide): an object as the names of its resources and the status name it. */
export type ObjectKey = string;
export const objectKey = (o: Pick<ObjectRef, 'kind' | 'namespace' | 'name'>): ObjectKey => `${o.kind} ${o.namespace ? `${o.namespace}/` : ''}${o.name}`;

const LABEL = '[a-z0-9](?:[a-z0-9-]*[a-z0-9])?';
const KIND_NAMED = new RegExp(`^(TrafficTarget|TrafficSplit|HTTPRoute|GRPCRoute|Service) (${LABEL})/(${LABEL}(?:\\.${LABEL})*)(?: |$)`);
const GROUP_MATCH = new RegExp(`(?:^| )(${LABEL})/(${LABEL}(?:\\.${LABEL})*)#`, 'g');
const CLUSTER_NAMED = new RegExp(`^(?:inbound|outbound)\\|\\d+\\|(${LABEL})\\.(${LABEL})$`);
const HOST_NAMED = new RegExp(`^(${LABEL})\\.(${LABEL})(?:\\.svc(?:\\.[a-z0-9.-]+)?)?:\\d+$`);
/** Fields whose text is a name smc gave. */
const NAME_FIELDS = new Set(['name', 'cluster', 'clusterName', 'routeConfigName']);
/** What origins are read from: those fields, and the keys of an RBAC filter's `policies` map. */
const ORIGIN_KEYS: ReadonlySet<string> = new Set([...NAME_FIELDS, 'policies']);

/** The objects one name traces to (Services included: a TrafficTarget shapes its sources through them). */
export function originsOfName(name: string): ObjectKey[] {
  const out: ObjectKey[] = [];
  const k = KIND_NAMED.exec(name);
  if (k) out.push(`${k[1]} ${k[2]}/${k[3]}`);
  for (const g of name.matchAll(GROUP_MATCH)) out.push(`HTTPRouteGroup ${g[1]}/${g[2]}`);
  const c = CLUSTER_NAMED.exec(name) ?? HOST_NAMED.exec(name);
  if (c) out.push(`Service ${c[2]}/${c[1]}`);
  return out;
}

/**
 * What the names inside one encoded resource trace to, and the route tables
 * it refers to (a listener's `routeConfigName`): read from its texts on the
 * wire (`ProtoCodec.strings`), without decoding it.
 */
export function originsOfResource(codec: ProtoCodec, typeName: string, bytes: Uint8Array): { readonly origins: readonly ObjectKey[]; readonly routes: readonly string[] } {
  const found = new Set<ObjectKey>();
  const routes = new Set<string>();
  const add = (name: string) => {
    for (const o of originsOfName(name)) found.add(o);
  };
  codec.strings(typeName, bytes, ORIGIN_KEYS, (key, text, isMapKey) => {
    // An RBAC filter's policies are a map by name.
    if (isMapKey) {
      if (key === 'policies') add(text);
    } else if (NAME_FIELDS.has(key)) {
      add(text);
      if (key === 'routeConfigName') routes.add(text);
    }
  });
  return { origins: [...found].sort(), routes: [...routes].sort() };
}

/** One leaf set's resources: by the objects their names trace to, and the route tables each refers to. */
interface SetOrigins {
  readonly objects: ReadonlyMap<ObjectKey, readonly string[]>;
  readonly routes: ReadonlyMap<string, readonly string[]>;
}

/** What each distinct encoding traces to, decoded once however many snapshots hold it. */
const byBytes = new WeakMap<Uint8Array, ReturnType<typeof originsOfResource>>();
const bySet = new WeakMap<ResourceSet, SetOrigins>();

function leaves(set: ResourceSet): readonly ResourceSet[] {
  return set.parts ? set.parts.flatMap(leaves) : [set];
}

function setOrigins(codec: ProtoCodec, kind: ResourceKind, set: ResourceSet): SetOrigins {
  let made = bySet.get(set);
  if (made) return made;
  const objects = new Map<ObjectKey, string[]>();
  const routes = new Map<string, readonly string[]>();
  for (const r of set.resources) {
    let info = byBytes.get(r.bytes);
    if (!info) byBytes.set(r.bytes, (info = originsOfResource(codec, TYPES[kind], r.bytes)));
    for (const o of info.origins) {
      const list = objects.get(o);
      if (list) list.push(r.name);
      else objects.set(o, [r.name]);
    }
    if (info.routes.length > 0) routes.set(r.name, info.routes);
  }
  bySet.set(set, (made = { objects, routes }));
  return made;
}

/** The resources of one identity that an object shapes: kind -> names. */
export type Shaped = ReadonlyMap<ObjectKey, ReadonlyMap<ResourceKind, ReadonlySet<string>>>;

const shapedMemo = new WeakMap<Snapshot, WeakMap<object, Shaped>>();
const NO_GRANTS = {};

/**
 * The policy objects that shape `snapshot` (of `identity` in `ir`), each with
 * the resources it shapes there (made once per snapshot and grants). The
 * routes a TrafficTarget's rules name are not added here: they can change
 * without the snapshot, and `ProgrammedIndex` applies them per object.
 */
export function shapedBy(codec: ProtoCodec, ir: MeshIR, identity: Identity, snapshot: Snapshot): Shaped {
  const index = meshIndex(ir);
  const grantsFrom = index.grantsFrom.get(identity);
  let inner = shapedMemo.get(snapshot);
  if (!inner) shapedMemo.set(snapshot, (inner = new WeakMap()));
  const memoKey = grantsFrom ?? NO_GRANTS;
  let shaped = inner.get(memoKey);
  if (shaped) return shaped;
  const out = new Map<ObjectKey, Map<ResourceKind, Set<string>>>();
  const add = (o: ObjectKey, kind: ResourceKind, names: Iterable<string>) => {
    let byKind = out.get(o);
    if (!byKind) out.set(o, (byKind = new Map()));
    let set = byKind.get(kind);
    if (!set) byKind.set(kind, (set = new Set()));
    for (const n of names) set.add(n);
  };
  const services = new Map<ObjectKey, [ResourceKind, readonly string[]][]>();
  // A listener is shaped by what shapes the route tables it refers to (an explicit-mode listener names only its port).
  const routeOrigins = new Map<string, ObjectKey[]>();
  const listenerRoutes: [string, readonly string[]][] = [];
  const note = (o: ObjectKey, kind: ResourceKind, names: readonly string[]) => {
    if (o.startsWith('Service ')) {
      // Only a caller with grants needs its services' resources (a TrafficTarget shapes them).
      if (grantsFrom) services.set(o, [...(services.get(o) ?? []), [kind, names]]);
    } else add(o, kind, names);
  };
  for (const kind of PUSH_ORDER) {
    for (const leaf of leaves(snapshot.types[kind])) {
      const { objects, routes } = setOrigins(codec, kind, leaf);
      for (const [o, names] of objects) {
        note(o, kind, names);
        if (kind === 'route') for (const n of names) routeOrigins.set(n, [...(routeOrigins.get(n) ?? []), o]);
      }
      if (kind === 'listener') listenerRoutes.push(...routes);
    }
  }
  for (const [listener, routes] of listenerRoutes) for (const r of routes) for (const o of routeOrigins.get(r) ?? []) note(o, 'listener', [listener]);
  // A TrafficTarget shapes its sources too: what they were given of the services it opens to them.
  for (const [destination, grants] of grantsFrom ?? []) {
    for (const e of index.endpointsOf.get(destination) ?? []) {
      const resources = services.get(`Service ${serviceKey(e.service)}`);
      if (!resources) continue;
      for (const g of grants) {
        if (!grantOpens(g, e.endpoint.port, e.port.protocol)) continue;
        for (const [kind, names] of resources) add(`TrafficTarget ${g.grantedBy}`, kind, names);
      }
    }
  }
  inner.set(memoKey, (shaped = out));
  return shaped;
}

/** One connected proxy (one stream) and what it has not taken of what it was sent (the runtime's view). */
export interface ProxyProgress {
  /** The stream's number: a proxy's key from one query to the next. */
  readonly stream: number;
  readonly identity: Identity;
  readonly node: string;
  /** Sent and not acknowledged, per type: the names, the version the proxy holds of each instead (undefined: none), and when the oldest was sent (ms since the epoch). */
  readonly pending: readonly { readonly kind: ResourceKind; readonly names: readonly string[]; readonly held: readonly (string | undefined)[]; readonly since: number }[];
  /** Rejected (and still what it is sent), with the version it holds instead: Envoy's message, bounded and escaped by the runtime. */
  readonly rejected: readonly { readonly kind: ResourceKind; readonly name: string; readonly held: string | undefined; readonly message: string; readonly at: number }[];
}

/**
 * What changed on the runtime's side since the last query (everything, when
 * `full`): connection counts of the identities whose count changed (0: none
 * left), and the progress of the streams whose progress changed (empty
 * lists: settled, or gone).
 */
export interface ProgrammedQuery {
  readonly full: boolean;
  readonly connected: Readonly<Record<Identity, number>>;
  readonly progress: readonly ProxyProgress[];
  /** The runtime's clock, for the ages in messages. */
  readonly now: number;
}

/** The conditions that changed since the last answer (all of them after a full query), and the objects that no longer have one. */
export interface ProgrammedAnswer {
  readonly changed: readonly (readonly [ObjectKey, ProgrammedCondition])[];
  readonly removed: readonly ObjectKey[];
}

export type ProgrammedReason = 'Programmed' | 'Pending' | 'Rejected' | 'NoProxies';

export interface ProgrammedCondition {
  readonly status: 'True' | 'False';
  readonly reason: ProgrammedReason;
  readonly message: string;
  /** Connected proxies whose configuration the object shapes. */
  readonly proxies: number;
  /** Of those, how many have acknowledged all of it. */
  readonly programmed: number;
  /** At most `LISTED` of each, in node order. */
  readonly pending?: readonly { readonly node: string; readonly kind: ResourceKind; readonly resources: readonly string[]; readonly waitingMs: number }[];
  readonly rejected?: readonly { readonly node: string; readonly kind: ResourceKind; readonly resource: string; readonly message: string }[];
}

/** How many proxies a condition lists by name (the counts are exact). */
export const LISTED = 10;

/** A short, human form of a wait: `300 ms`, `1.6 s`, `3 min`. */
export const waitText = (ms: number) => (ms < 1000 ? `${Math.max(0, Math.round(ms))} ms` : ms < 120_000 ? `${(ms / 1000).toFixed(1)} s` : `${Math.round(ms / 60_000)} min`);

export interface ProgrammedInputs {
  readonly codec: ProtoCodec;
  readonly ir: MeshIR;
  readonly status: readonly StatusEntry[];
  /** The snapshot each identity is served. */
  readonly snapshotOf: (identity: Identity) => Snapshot | undefined;
  readonly rulesOf: (trafficTarget: ObjectKey) => readonly ObjectKey[];
  /** Changes whenever `rulesOf` may answer otherwise (every condition is then worked out again). */
  readonly rulesVersion: string;
  /**
   * Whether a resource version a proxy holds already carries the object as it
   * is now (made after its last change): an object a change did not touch
   * stays programmed while the resources it shares with the change are sent.
   * Without it, any resource the object shapes counts while it is not taken.
   */
  readonly carries?: (object: ObjectKey, version: string) => boolean;
  /**
   * The identities whose snapshot may have changed since the last query;
   * undefined: any. (When the status or the rules changed, every connected
   * identity is looked at again: its grants may name other TrafficTargets.)
   */
  readonly changedIdentities?: ReadonlySet<Identity>;
}

type Pending = NonNullable<ProgrammedCondition['pending']>[number];
type Rejected = NonNullable<ProgrammedCondition['rejected']>[number];
type Trouble = { pending: Pending[]; rejected: Rejected[] };

/**
 * The `Programmed` condition of every accepted policy object, kept as an
 * explicit index from one query to the next. A query says what changed on
 * the runtime's side (connections, and the streams whose progress changed);
 * which connected identities each object shapes is updated for the
 * identities whose snapshot or connection changed; what each unsettled
 * stream holds back is worked out when that stream moves; and only the
 * objects these touch (or whose status entry or rules changed) are worked
 * out again, the ages of waits at most once a second. Rule references (a
 * TrafficTarget's routes shape what it shapes) are applied per object.
 */
export class ProgrammedIndex {
  /** Per connected identity: the shaping it was indexed with. */
  private readonly indexed = new Map<Identity, Shaped>();
  /** Object -> the connected identities it shapes (directly: rule references aside). */
  private readonly holders = new Map<ObjectKey, Set<Identity>>();
  private readonly connected = new Map<Identity, number>();
  /** Streams with something not taken, and what each holds back, by object (directly shaped). */
  private readonly unsettled = new Map<number, { readonly progress: ProxyProgress; readonly holds: ReadonlyMap<ObjectKey, Held> }>();
  /** Object -> the unsettled streams that hold it back. */
  private readonly heldBy = new Map<ObjectKey, Set<number>>();
  private readonly last = new Map<ObjectKey, { readonly condition: ProgrammedCondition; readonly text: string }>();
  private lastStatus: readonly StatusEntry[] | undefined;
  private lastRules: string | undefined;
  private lastAges = 0;
  /** The policy objects of the status last seen, and who references each route. */
  private objects: ReturnType<typeof objectsOf> | undefined;

  conditions(inp: ProgrammedInputs, q: ProgrammedQuery): ProgrammedAnswer {
    const dirty = new Set<ObjectKey>();
    if (q.full) {
      this.connected.clear();
      for (const stream of [...this.unsettled.keys()]) this.settle(stream, dirty);
    }
    for (const [id, n] of Object.entries(q.connected)) {
      if ((this.connected.get(id) ?? 0) === n) continue;
      if (n > 0) this.connected.set(id, n);
      else this.connected.delete(id);
      for (const o of this.indexed.get(id)?.keys() ?? []) dirty.add(o);
    }
    // The policy objects: what a changed status entry or changed rules touch (everything, the first time).
    const fresh = q.full || this.objects === undefined;
    const statusBefore = this.lastStatus;
    const rulesBefore = this.lastRules;
    let removed: ObjectKey[] = [];
    let policyChanged = false;
    if (fresh || inp.status !== this.lastStatus || inp.rulesVersion !== this.lastRules) {
      const next = objectsOf(inp);
      const before = this.objects;
      if (before) {
        for (const k of next.wanted) if (before.entries.get(k) !== next.entries.get(k)) dirty.add(k);
        for (const [tt, text] of next.rules) {
          if (before.rules.get(tt) === text) continue;
          dirty.add(tt);
          for (const r of [...(before.referenced.get(tt) ?? []), ...(next.referenced.get(tt) ?? [])]) dirty.add(r);
        }
        removed = [...before.wanted].filter((k) => !next.keys.has(k));
        policyChanged = before.meshConfig !== next.meshConfig || removed.length > 0 || next.wanted.some((k) => !before.keys.has(k));
      }
      this.objects = next;
    }
    this.lastStatus = inp.status;
    this.lastRules = inp.rulesVersion;
    const { wanted, keys, meshConfig, referrers, referenced } = this.objects!;
    const reshaped = this.follow(inp, dirty, fresh || inp.status !== statusBefore || inp.rulesVersion !== rulesBefore ? undefined : inp.changedIdentities, new Set(Object.keys(q.connected)));
    // What each stream holds back: worked out again for the streams that moved, and those whose shaping or objects changed.
    const redo = new Map<number, ProxyProgress>(q.progress.map((p) => [p.stream, p]));
    for (const [stream, u] of this.unsettled) if (!redo.has(stream) && (policyChanged || reshaped.has(u.progress.identity))) redo.set(stream, u.progress);
    for (const [stream, p] of redo) {
      this.settle(stream, dirty);
      const shaped = this.indexed.get(p.identity);
      if ((p.pending.length === 0 && p.rejected.length === 0) || !shaped) continue;
      const holds = heldBack(p, shaped, keys, meshConfig, inp.carries);
      this.unsettled.set(stream, { progress: p, holds });
      for (const o of holds.keys()) {
        let set = this.heldBy.get(o);
        if (!set) this.heldBy.set(o, (set = new Set()));
        set.add(stream);
        dirty.add(o);
      }
    }
    // Waits age: what is held back is worked out again once a second.
    if (q.now - this.lastAges >= 1000) {
      this.lastAges = q.now;
      for (const o of this.heldBy.keys()) dirty.add(o);
    }
    for (const k of [...dirty]) for (const r of referenced.get(k) ?? []) dirty.add(r);
    if (meshConfig && dirty.size > 0) dirty.add(meshConfig);
    const changed: [ObjectKey, ProgrammedCondition][] = [];
    for (const key of fresh ? wanted : [...dirty].filter((k) => keys.has(k))) {
      const mesh = key === meshConfig;
      const from = [key, ...(referrers.get(key) ?? [])];
      const ids = mesh ? [...this.indexed.keys()] : from.length === 1 ? [...(this.holders.get(key) ?? [])] : [...new Set(from.flatMap((k) => [...(this.holders.get(k) ?? [])]))];
      const byNode = new Map<string, Trouble>();
      const nodeOf = (stream: number) => this.unsettled.get(stream)!.progress.node;
      const streams = (mesh ? [...this.unsettled.keys()] : [...new Set(from.flatMap((k) => [...(this.heldBy.get(k) ?? [])]))]).sort((a, b) => (nodeOf(a) < nodeOf(b) ? -1 : nodeOf(a) > nodeOf(b) ? 1 : a - b));
      for (const stream of streams) {
        const u = this.unsettled.get(stream)!;
        const node = u.progress.node;
        const mine = byNode.get(node) ?? { pending: [], rejected: [] };
        for (const k of mesh ? [...u.holds.keys()] : from) {
          const h = u.holds.get(k);
          if (!h) continue;
          mine.pending.push(...h.pending.map((x) => ({ node, kind: x.kind, resources: x.resources, waitingMs: q.now - x.since })));
          mine.rejected.push(...h.rejected);
        }
        if (mine.pending.length > 0 || mine.rejected.length > 0) byNode.set(node, mine);
      }
      const c = condition(ids.reduce((n, id) => n + (this.connected.get(id) ?? 0), 0), byNode);
      const text = JSON.stringify(c);
      if (this.last.get(key)?.text === text) continue;
      this.last.set(key, { condition: c, text });
      changed.push([key, c]);
    }
    for (const k of removed) this.last.delete(k);
    return { changed: q.full ? [...this.last].map(([k, v]) => [k, v.condition] as const) : changed, removed };
  }

  /** Forgets what a stream held back (its objects are `dirty`). */
  private settle(stream: number, dirty: Set<ObjectKey>): void {
    const was = this.unsettled.get(stream);
    if (!was) return;
    this.unsettled.delete(stream);
    for (const o of was.holds.keys()) {
      const set = this.heldBy.get(o);
      set?.delete(stream);
      if (set?.size === 0) this.heldBy.delete(o);
      dirty.add(o);
    }
  }

  /** Brings `holders` up to date with the connected identities and their snapshots; the objects whose holders changed are `dirty`. Returns the identities whose shaping changed. */
  private follow(inp: ProgrammedInputs, dirty: Set<ObjectKey>, changed: ReadonlySet<Identity> | undefined, counted: ReadonlySet<Identity>): Set<Identity> {
    const reshaped = new Set<Identity>();
    // Only the identities whose snapshot or connection changed, when that is known.
    const look = changed === undefined ? [...this.indexed.keys(), ...this.connected.keys()] : [...changed, ...counted];
    for (const id of look) {
      const was = this.indexed.get(id);
      if (!was || this.connected.has(id)) continue;
      this.unhold(id, was, dirty);
      this.indexed.delete(id);
      reshaped.add(id);
    }
    for (const id of new Set(look)) {
      if (!this.connected.has(id)) continue;
      const snapshot = inp.snapshotOf(id);
      const was = this.indexed.get(id);
      const now = snapshot ? shapedBy(inp.codec, inp.ir, id, snapshot) : undefined;
      if (now === was) continue;
      reshaped.add(id);
      if (was) this.unhold(id, was, dirty);
      if (now) {
        this.indexed.set(id, now);
        for (const o of now.keys()) {
          let set = this.holders.get(o);
          if (!set) this.holders.set(o, (set = new Set()));
          set.add(id);
          dirty.add(o);
        }
      } else this.indexed.delete(id);
    }
    return reshaped;
  }

  private unhold(id: Identity, shaped: Shaped, dirty: Set<ObjectKey>): void {
    for (const o of shaped.keys()) {
      const set = this.holders.get(o);
      set?.delete(id);
      if (set?.size === 0) this.holders.delete(o);
      dirty.add(o);
    }
  }
}

/** What one stream holds back of one object: its waits (with when each began) and its refusals. */
interface Held {
  readonly pending: readonly { readonly kind: ResourceKind; readonly resources: readonly string[]; readonly since: number }[];
  readonly rejected: readonly Rejected[];
}

/** What one unsettled stream holds back, by object it shapes directly (and MeshConfig, whose settings are in every resource). */
function heldBack(p: ProxyProgress, shaped: Shaped, keys: ReadonlySet<ObjectKey>, meshConfig: ObjectKey | undefined, carries: ProgrammedInputs['carries']): Map<ObjectKey, Held> {
  const out = new Map<ObjectKey, { pending: Held['pending'][number][]; rejected: Rejected[] }>();
  const of = (o: ObjectKey) => {
    let h = out.get(o);
    if (!h) out.set(o, (h = { pending: [], rejected: [] }));
    return h;
  };
  const objectsOf = (kind: ResourceKind, name: string): ObjectKey[] => {
    const found: ObjectKey[] = [];
    for (const [o, byKind] of shaped) if (keys.has(o) && byKind.get(kind)?.has(name)) found.push(o);
    if (meshConfig !== undefined) found.push(meshConfig);
    return found;
  };
  // What the proxy holds instead may carry the object already (it did not change since): then it is in force there.
  const stillCarried = (o: ObjectKey, held: string | undefined) => held !== undefined && carries !== undefined && carries(o, held);
  for (const pend of p.pending) {
    const perObject = new Map<ObjectKey, string[]>();
    pend.names.forEach((name, i) => {
      for (const o of objectsOf(pend.kind, name)) if (!stillCarried(o, pend.held[i])) perObject.set(o, [...(perObject.get(o) ?? []), name]);
    });
    for (const [o, names] of perObject) of(o).pending.push({ kind: pend.kind, resources: names, since: pend.since });
  }
  for (const r of p.rejected) {
    for (const o of objectsOf(r.kind, r.name)) if (!stillCarried(o, r.held)) of(o).rejected.push({ node: p.node, kind: r.kind, resource: r.name, message: r.message });
  }
  return out;
}

/** The accepted policy objects of a status, in its order, their entries, each TrafficTarget's rules (as text) and who references each route. */
function objectsOf(inp: ProgrammedInputs) {
  const entries = new Map<ObjectKey, StatusEntry>();
  for (const s of inp.status) if (PROGRAMMED_KINDS.has(s.object.kind) && (s.state === 'Accepted' || s.state === 'PartiallyAccepted')) entries.set(objectKey(s.object), s);
  const wanted = [...entries.keys()];
  const keys: ReadonlySet<ObjectKey> = new Set(wanted);
  const referrers = new Map<ObjectKey, ObjectKey[]>();
  const referenced = new Map<ObjectKey, readonly ObjectKey[]>();
  const rules = new Map<ObjectKey, string>();
  for (const tt of wanted) {
    if (!tt.startsWith('TrafficTarget ')) continue;
    const refs = inp.rulesOf(tt);
    referenced.set(tt, refs);
    rules.set(tt, refs.join('\n'));
    for (const r of refs) referrers.set(r, [...(referrers.get(r) ?? []), tt]);
  }
  return { wanted, keys, entries, meshConfig: wanted.find((k) => k.startsWith('MeshConfig ')), referrers, referenced, rules };
}

/** One object's condition from the proxies it shapes and what each unsettled one has not taken. */
function condition(proxies: number, byNode: ReadonlyMap<string, Trouble>): ProgrammedCondition {
  const programmed = proxies - byNode.size;
  if (proxies === 0) return { status: 'False', reason: 'NoProxies', message: 'no connected proxy carries it', proxies, programmed: 0 };
  const troubles = [...byNode.values()];
  const rejected = troubles.flatMap((t) => t.rejected);
  const pending = troubles.filter((t) => t.rejected.length === 0).flatMap((t) => t.pending);
  if (rejected.length > 0) {
    const first = rejected[0]!;
    const nodes = troubles.filter((t) => t.rejected.length > 0).length;
    return {
      status: 'False',
      reason: 'Rejected',
      message: `rejected by ${nodes} of ${proxies} proxies: ${first.node} rejected ${first.kind} ${first.resource}: ${first.message}`,
      proxies,
      programmed,
      rejected: rejected.slice(0, LISTED),
      ...(pending.length > 0 ? { pending: pending.slice(0, LISTED) } : {}),
    };
  }
  if (pending.length > 0) {
    const oldest = pending.reduce((a, b) => (b.waitingMs > a.waitingMs ? b : a));
    return {
      status: 'False',
      reason: 'Pending',
      message: `programmed on ${programmed} of ${proxies} proxies; waiting for ${byNode.size} to acknowledge (the longest ${waitText(oldest.waitingMs)}: ${oldest.node}, ${oldest.kind})`,
      proxies,
      programmed,
      pending: pending.slice(0, LISTED),
    };
  }
  return { status: 'True', reason: 'Programmed', message: `programmed on ${proxies} of ${proxies} proxies`, proxies, programmed: proxies };
}

/** The conditions of one query with a fresh index (the offline and test form; the controller keeps an index). */
export function programmedConditions(inp: ProgrammedInputs, q: Omit<ProgrammedQuery, 'full'>): Map<ObjectKey, ProgrammedCondition> {
  return new Map(new ProgrammedIndex().conditions(inp, { ...q, full: true }).changed);
}
