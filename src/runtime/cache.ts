import { PUSH_ORDER, type ResourceKind } from '../compiler/envoy/codec.js';
import { composedVersion, resourceHash, setVersion, type EncodedResource, type SetEdit, type WireSet } from '../compiler/envoy/snapshot.js';

/**
 * The latest snapshot per proxy identity. Encoded resources are interned by
 * content: a resource identical for 1,000 proxies is stored once and every
 * snapshot points at the same bytes. Setting new snapshots reports, per
 * identity, type and resource, what changed. Cached values are immutable:
 * callers must not alter them.
 */
export interface CachedResource {
  readonly name: string;
  /** Hash of the encoded bytes (the delta protocol's per-resource version). */
  readonly version: string;
  readonly bytes: Uint8Array;
}

export interface CachedType {
  /** The compiler's version of the whole type. */
  readonly version: string;
  /** By name, in name order. */
  readonly resources: ReadonlyMap<string, CachedResource>;
  /** The cached types this one is the union of (a set the compiler made of parts): a part many identities hold is cached once. */
  readonly parts?: readonly CachedType[];
}

/**
 * The resources of parts whose names are disjoint, as one map: looked up in
 * each part, iterated in name order (the parts merged as they are read).
 * Holding it costs nothing per resource, so a snapshot made of a part shared
 * by the whole mesh and a few resources of its own is cached in their size.
 */
class PartsMap implements ReadonlyMap<string, CachedResource> {
  readonly size: number;
  constructor(private readonly parts: readonly ReadonlyMap<string, CachedResource>[]) {
    this.size = parts.reduce((n, p) => n + p.size, 0);
  }
  get(name: string): CachedResource | undefined {
    for (const p of this.parts) {
      const r = p.get(name);
      if (r) return r;
    }
    return undefined;
  }
  has(name: string): boolean {
    return this.parts.some((p) => p.has(name));
  }
  *entries(): MapIterator<[string, CachedResource]> {
    const its = this.parts.map((p) => p.entries());
    const heads = its.map((it) => it.next());
    for (;;) {
      let at = -1;
      for (let i = 0; i < heads.length; i++) if (!heads[i]!.done && (at < 0 || (heads[i]!.value as [string, CachedResource])[0] < (heads[at]!.value as [string, CachedResource])[0])) at = i;
      if (at < 0) return undefined;
      yield heads[at]!.value as [string, CachedResource];
      heads[at] = its[at]!.next();
    }
  }
  *keys(): MapIterator<string> {
    for (const [k] of this.entries()) yield k;
  }
  *values(): MapIterator<CachedResource> {
    for (const [, v] of this.entries()) yield v;
  }
  [Symbol.iterator](): MapIterator<[string, CachedResource]> {
    return this.entries();
  }
  forEach(f: (value: CachedResource, key: string, map: ReadonlyMap<string, CachedResource>) => void): void {
    for (const [k, v] of this.entries()) f(v, k, this);
  }
}

/** How many cached types (or identities) hold a cached type: at none it is let go (a cached type is the cache's own object). */
const HOLDERS = Symbol('holders');
type Held = CachedType & { [HOLDERS]: number };

/** A cached set made from another by a `SetEdit`: its version is made when first read (`setVersion`, as the compiler makes it). */
class EditedType implements CachedType {
  [HOLDERS] = 1;
  #version: string | undefined;
  constructor(readonly resources: ReadonlyMap<string, CachedResource>) {}
  get version(): string {
    return (this.#version ??= setVersion(this.resources.values(), (r) => r.version));
  }
}

/** A cached set made of a shared part and an identity's own: its version is made when first read (`composedVersion`, as the compiler makes it). */
class ComposedType implements CachedType {
  [HOLDERS] = 1;
  #version: string | undefined;
  readonly resources: PartsMap;
  readonly parts: readonly CachedType[];
  constructor(shared: CachedType, own: CachedType) {
    this.parts = [shared, own];
    this.resources = new PartsMap([shared.resources, own.resources]);
  }
  get version(): string {
    return (this.#version ??= composedVersion(this.parts[0]!.version, this.parts[1]!.version));
  }
}

export interface CachedSnapshot {
  readonly identity: string;
  readonly types: Readonly<Record<ResourceKind, CachedType>>;
}

export interface TypeChange {
  readonly changed: readonly string[];
  readonly removed: readonly string[];
}

export interface IdentityChange {
  readonly identity: string;
  /** Only types that changed. */
  readonly types: Partial<Record<ResourceKind, TypeChange>>;
  /** The identity has no snapshot any more (its workloads left the mesh). */
  readonly gone: boolean;
}

export type CacheListener = (snapshot: CachedSnapshot | undefined) => void;

/**
 * A snapshot, or what changed of one: types left out are the ones already
 * cached for the identity (the compile worker sends only the types that
 * changed since its last answer).
 */
export interface SnapshotPatch {
  readonly identity: string;
  readonly types: Partial<Readonly<Record<ResourceKind, WireSet>>>;
}

/**
 * Identities whose snapshots changed alike (sent once for all of them): in
 * each type named, each takes one set, or one new shared part beside the own
 * part it holds (`part`: its set is then the new part and its own, see
 * `composeSets`; its version is made when first read), or makes the same
 * edit of the set it holds (`SetEdit`: the callers of a service whose pod
 * moved each hold endpoints of their own, and take its new assignment).
 */
export interface SetMove {
  readonly identities: readonly string[];
  readonly types: readonly TypeMove[];
}

export interface TypeMove {
  readonly kind: ResourceKind;
  readonly part: boolean;
  /** The set (or part) they take, or how it differs from the one (the same for all) each of them holds now, or the edit each makes of its own. */
  readonly set: WireSet | SetDelta | SetEdit;
}

/** A set (of `version`) as the set of version `from` with some resources put in or replaced, and some removed. */
export interface SetDelta {
  readonly version: string;
  readonly from: string;
  readonly put: readonly EncodedResource[];
  readonly removed: readonly string[];
}

export interface SnapshotCache {
  /** Replaces every snapshot at once; identities not in `snapshots` are removed. */
  setSnapshots(snapshots: readonly SnapshotPatch[]): IdentityChange[];
  /**
   * Sets the snapshots (or the changed types) of some identities and removes
   * others, leaving every other identity as it is: a change costs what it touches.
   * `moved`: groups of identities (none of them in `changed`) that changed
   * alike, each set or part of a group cached once for all of it.
   */
  update(changed: readonly SnapshotPatch[], removed?: readonly string[], moved?: readonly SetMove[]): IdentityChange[];
  get(identity: string): CachedSnapshot | undefined;
  identities(): string[];
  /** Called with the new snapshot (or undefined when removed) after each change of this identity. */
  watch(identity: string, listener: CacheListener): () => void;
  stats(): { identities: number; resourceReferences: number; uniqueResources: number; uniqueBytes: number };
}


/** Whether a change has no name in it (told without listing the names of a union). */
const EMPTINESS = Symbol('empty');
const isEmpty = (c: TypeChange): boolean => (c as { [EMPTINESS]?: boolean })[EMPTINESS] ?? (c.changed.length === 0 && c.removed.length === 0);

/**
 * The change of a set made of parts, from the changes of the parts that
 * moved: its names are listed only when read (a first publish of a
 * permissive mesh would otherwise list the shared part's thousands of names
 * once per identity, where nobody reads them but to know there are some).
 */
function union(parts: readonly TypeChange[], after: CachedType): TypeChange {
  let made: { changed: readonly string[]; removed: readonly string[] } | undefined;
  const make = () =>
    (made ??= {
      changed: [...new Set(parts.flatMap((c) => c.changed))].sort(),
      removed: [...new Set(parts.flatMap((c) => c.removed))].filter((n) => !after.resources.has(n)).sort(),
    });
  const out = {} as TypeChange;
  Object.defineProperty(out, 'changed', { enumerable: true, get: () => make().changed });
  Object.defineProperty(out, 'removed', { enumerable: true, get: () => make().removed });
  Object.defineProperty(out, EMPTINESS, { enumerable: false, value: parts.every(isEmpty) });
  return out;
}

/** A resource as the cache holds it once, with how many cached types hold it and its key in the interned table. */
interface Interned {
  readonly resource: CachedResource;
  holders: number;
  readonly key: string;
}

export function createSnapshotCache(): SnapshotCache {
  const snapshots = new Map<string, CachedSnapshot>();
  // kind + name + content hash -> the one shared resource object, and how many cached types hold it.
  const interned = new Map<string, Interned>();
  // The interned resource of a resource object as received: a message holds one object per resource however many sets
  // hold it (a hub's assignment in 5,000 callers' sets), so it is looked up by its text key once per message.
  const internedOf = new Map<ResourceKind, WeakMap<object, Interned>>(PUSH_ORDER.map((k) => [k, new WeakMap()]));
  const entryOf = new WeakMap<CachedResource, Interned>();
  // A resource set the compiler made once for many identities (a permissive mesh's endpoint set) is cached once:
  // the cached type of each set, and how many identities hold each cached type.
  const typeOfSet = new WeakMap<WireSet, Held>();
  // What changed from one cached type to another, found once for every identity that makes the same move.
  const moves = new WeakMap<CachedType, WeakMap<CachedType, TypeChange>>();
  const watchers = new Map<string, Set<CacheListener>>();
  const keyOf = (kind: ResourceKind, name: string, version: string) => `${kind}\0${name}\0${version}`;

  const acquire = (kind: ResourceKind, received: EncodedResource): CachedResource => {
    const byObject = internedOf.get(kind)!;
    const known = byObject.get(received);
    if (known !== undefined && known.holders > 0) {
      known.holders++;
      return known.resource;
    }
    const version = received.hash ?? resourceHash(received.bytes);
    const key = keyOf(kind, received.name, version);
    let held = interned.get(key);
    if (held) held.holders++;
    else {
      held = { resource: { name: received.name, version, bytes: received.bytes }, holders: 1, key };
      interned.set(key, held);
      entryOf.set(held.resource, held);
    }
    byObject.set(received, held);
    return held.resource;
  };
  /** The cached type of `set`, held once more; a part named as held (see `onWire`) is found in `holding`, the identity's type now. */
  const acquireType = (kind: ResourceKind, set: WireSet, holding: CachedType | undefined): CachedType => {
    if ('held' in set) {
      const part = set.held < 0 ? holding : holding?.parts?.[set.held];
      if (part === undefined || part.version !== set.version) throw new Error(`a ${kind} part named as held (${set.held}, version ${set.version}) is not what the cache holds for this identity (a bug in smc)`);
      (part as Held)[HOLDERS]++;
      return part;
    }
    const known = typeOfSet.get(set);
    if (known && known[HOLDERS] > 0) {
      known[HOLDERS]++;
      return known;
    }
    let type: Held;
    if ('parts' in set) {
      const parts = set.parts.map((p) => acquireType(kind, p, holding));
      type = { version: set.version, resources: new PartsMap(parts.map((p) => p.resources)), parts, [HOLDERS]: 1 };
    } else type = { version: set.version, resources: new Map(set.resources.map((r) => [r.name, acquire(kind, r)])), [HOLDERS]: 1 };
    typeOfSet.set(set, type);
    return type;
  };
  /** The cached type `delta` makes of `base` (a set of resources, not parts): its unchanged resources are held once more, the others interned. */
  const deltaType = (kind: ResourceKind, base: CachedType, delta: SetDelta | SetEdit): CachedType => {
    if (base.parts) throw new Error(`a ${kind} set made from a set of parts (a bug in smc)`);
    const resources = new Map(base.resources);
    for (const name of delta.removed) resources.delete(name);
    // Each resource kept is held once more; one replaced by a resource put is not (the base still holds it).
    for (const r of resources.values()) entryOf.get(r)!.holders++;
    let added = false;
    for (const r of delta.put) {
      const replaced = resources.get(r.name);
      resources.set(r.name, acquire(kind, r));
      if (replaced) entryOf.get(replaced)!.holders--;
      else added = true;
    }
    const sorted = added ? new Map([...resources].sort(([a], [b]) => (a < b ? -1 : 1))) : resources;
    return 'edit' in delta ? new EditedType(sorted) : ({ version: delta.version, resources: sorted, [HOLDERS]: 1 } as Held);
  };
  const releaseType = (type: CachedType) => {
    if (--(type as Held)[HOLDERS] > 0) return;
    if (type.parts) {
      for (const p of type.parts) releaseType(p);
      return;
    }
    for (const r of type.resources.values()) {
      const entry = entryOf.get(r)!;
      if (--entry.holders === 0) interned.delete(entry.key);
    }
  };
  const EMPTY: CachedType = { version: '', resources: new Map() };
  const change = (before: CachedType, after: CachedType): TypeChange => {
    let byAfter = moves.get(before);
    const known = byAfter?.get(after);
    if (known) return known;
    // Part by part (each move found once, however many identities make it); a name may only change parts, never be in two.
    // Nothing cached (a first publish, an identity gone) counts as parts that are empty.
    const from = before.parts ?? (before === EMPTY && after.parts ? after.parts.map(() => EMPTY) : undefined);
    const to = after.parts ?? (after === EMPTY && before.parts ? before.parts.map(() => EMPTY) : undefined);
    if (from && to && from.length === to.length) {
      const moved = from.flatMap((p, i) => (p === to[i] ? [] : [change(p, to[i]!)]));
      return moved.length === 1 ? moved[0]! : union(moved, after);
    }
    const changed = [...after.resources.values()].filter((r) => before.resources.get(r.name)?.version !== r.version).map((r) => r.name);
    const removed = [...before.resources.keys()].filter((n) => !after.resources.has(n));
    const found = { changed, removed };
    if (!byAfter) moves.set(before, (byAfter = new WeakMap()));
    byAfter.set(after, found);
    return found;
  };
  /** What an edit changed of a set (its names only: a set made by an edit is its identity's own, so the change is found once). */
  const editChange = (before: CachedType, after: CachedType, edit: SetEdit): TypeChange => ({
    changed: edit.put.filter((r) => before.resources.get(r.name)?.version !== after.resources.get(r.name)!.version).map((r) => r.name),
    removed: edit.removed.filter((n) => before.resources.has(n)),
  });
  const diff = (identity: string, before: CachedSnapshot | undefined, after: CachedSnapshot | undefined): IdentityChange | undefined => {
    const types: Partial<Record<ResourceKind, TypeChange>> = {};
    for (const kind of PUSH_ORDER) {
      const a = before?.types[kind] ?? EMPTY;
      const b = after?.types[kind] ?? EMPTY;
      if (a === b) continue;
      const c = change(a, b);
      if (!isEmpty(c)) types[kind] = c;
    }
    if (Object.keys(types).length > 0 || (before === undefined) !== (after === undefined)) return { identity, types, gone: after === undefined };
    return undefined;
  };

  const update = (changed: readonly SnapshotPatch[], removed: readonly string[] = [], moved: readonly SetMove[] = []): IdentityChange[] => {
    const changes: IdentityChange[] = [];
    for (const { identities, types: moves } of moved) {
      // The set (or part) of each move, cached once for the group (from the first identity's, for a delta).
      const taken: (CachedType | undefined)[] = moves.map(() => undefined);
      for (const identity of identities) {
        const before = snapshots.get(identity);
        if (!before) throw new Error(`${identity} takes new sets, but has no snapshot cached (a bug in smc)`);
        const b = before.types;
        const types = { cluster: b.cluster, endpoint: b.endpoint, listener: b.listener, route: b.route, secret: b.secret };
        let told: Partial<Record<ResourceKind, TypeChange>> | undefined;
        for (let i = 0; i < moves.length; i++) {
          const { kind, part, set } = moves[i]!;
          if ('held' in set) throw new Error(`a ${kind} set taken by ${identities.length} identities names a part one of them holds (a bug in smc)`);
          const was = types[kind];
          const from = part ? was.parts?.[0] : was;
          if (!from || (part && was.parts!.length !== 2)) throw new Error(`${identity} takes a new shared ${kind} part, but holds no set of two parts (a bug in smc)`);
          if ('from' in set && from.version !== set.from) throw new Error(`${identity} takes a ${kind} set made from version ${set.from}, but holds ${from.version} (a bug in smc)`);
          let type = taken[i];
          // (An edit makes each identity's set of its own.)
          if ('edit' in set) type = deltaType(kind, from, set);
          else if (type) (type as Held)[HOLDERS]++;
          else type = taken[i] = 'from' in set ? deltaType(kind, from, set) : acquireType(kind, set, undefined);
          let now = type;
          if (part) {
            const own = was.parts![1]!;
            (own as Held)[HOLDERS]++;
            now = new ComposedType(type, own);
          }
          types[kind] = now;
          releaseType(was);
          // (Its own part the same, a set of two parts changed as its shared part did; an edit's change is the edit's.)
          const c = 'edit' in set ? editChange(from, type, set) : change(from, type);
          if (!isEmpty(c)) (told ??= {})[kind] = c;
        }
        snapshots.set(identity, { identity, types });
        if (told) changes.push({ identity, types: told, gone: false });
      }
    }
    for (const s of changed) {
      const before = snapshots.get(s.identity);
      const types = {} as Record<ResourceKind, CachedType>;
      const replaced: CachedType[] = [];
      for (const kind of PUSH_ORDER) {
        const set = s.types[kind];
        const was = before?.types[kind];
        if (set === undefined) {
          if (was === undefined) throw new Error(`the snapshot of ${s.identity} has no ${kind} resources and none are cached (a bug in smc)`);
          types[kind] = was;
        } else if (was !== undefined && was.version === set.version) {
          // Same version, same bytes: nothing to hash, intern or tell.
          types[kind] = was;
        } else {
          types[kind] = acquireType(kind, set, was);
          if (was) replaced.push(was);
        }
      }
      if (before && PUSH_ORDER.every((k) => types[k] === before.types[k])) continue;
      const after: CachedSnapshot = { identity: s.identity, types };
      for (const t of replaced) releaseType(t);
      snapshots.set(s.identity, after);
      const c = diff(s.identity, before, after);
      if (c) changes.push(c);
    }
    for (const identity of removed) {
      const before = snapshots.get(identity);
      if (!before) continue;
      for (const kind of PUSH_ORDER) releaseType(before.types[kind]);
      snapshots.delete(identity);
      changes.push({ identity, types: diff(identity, before, undefined)?.types ?? {}, gone: true });
    }
    for (const c of changes) for (const w of watchers.get(c.identity) ?? []) w(snapshots.get(c.identity));
    return changes.sort((x, y) => (x.identity < y.identity ? -1 : 1));
  };

  return {
    setSnapshots(list) {
      const keep = new Set(list.map((s) => s.identity));
      return update(list, [...snapshots.keys()].filter((id) => !keep.has(id)));
    },
    update,
    get: (identity) => snapshots.get(identity),
    identities: () => [...snapshots.keys()].sort(),
    watch(identity, listener) {
      const set = watchers.get(identity) ?? new Set();
      set.add(listener);
      watchers.set(identity, set);
      return () => {
        set.delete(listener);
        if (set.size === 0) watchers.delete(identity);
      };
    },
    stats() {
      let refs = 0;
      for (const s of snapshots.values()) for (const kind of PUSH_ORDER) refs += s.types[kind].resources.size;
      let bytes = 0;
      for (const { resource } of interned.values()) bytes += resource.bytes.length;
      return { identities: snapshots.size, resourceReferences: refs, uniqueResources: interned.size, uniqueBytes: bytes };
    },
  };
}
