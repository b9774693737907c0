import { createHash } from 'node:crypto';
import { PUSH_ORDER, type ResourceKind } from '../compiler/envoy/codec.js';
import type { Snapshot } from '../compiler/envoy/snapshot.js';

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
  readonly resources: ReadonlyMap<string, CachedResource>;
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

export interface SnapshotCache {
  /** Replaces every snapshot at once; identities not in `snapshots` are removed. */
  setSnapshots(snapshots: readonly Snapshot[]): IdentityChange[];
  /**
   * Sets the snapshots of some identities and removes others, leaving every
   * other identity as it is: a change costs what it touches.
   */
  update(changed: readonly Snapshot[], removed?: readonly string[]): IdentityChange[];
  get(identity: string): CachedSnapshot | undefined;
  identities(): string[];
  /** Whether `snapshot` would change what is cached for its identity (compared by type versions). */
  differs(snapshot: Snapshot): boolean;
  /** Called with the new snapshot (or undefined when removed) after each change of this identity. */
  watch(identity: string, listener: CacheListener): () => void;
  stats(): { identities: number; resourceReferences: number; uniqueResources: number; uniqueBytes: number };
}

const hashBytes = (b: Uint8Array) => createHash('sha256').update(b).digest('hex').slice(0, 16);

export function createSnapshotCache(): SnapshotCache {
  const snapshots = new Map<string, CachedSnapshot>();
  // kind + name + content hash -> the one shared resource object, and how many snapshots hold it.
  const interned = new Map<string, { resource: CachedResource; holders: number }>();
  const watchers = new Map<string, Set<CacheListener>>();
  const keyOf = (kind: ResourceKind, name: string, version: string) => `${kind}\0${name}\0${version}`;

  const acquire = (kind: ResourceKind, name: string, bytes: Uint8Array): CachedResource => {
    const version = hashBytes(bytes);
    const key = keyOf(kind, name, version);
    const held = interned.get(key);
    if (held) {
      held.holders++;
      return held.resource;
    }
    const resource = { name, version, bytes };
    interned.set(key, { resource, holders: 1 });
    return resource;
  };
  const release = (s: CachedSnapshot) => {
    for (const kind of PUSH_ORDER) {
      for (const r of s.types[kind].resources.values()) {
        const key = keyOf(kind, r.name, r.version);
        const held = interned.get(key)!;
        if (--held.holders === 0) interned.delete(key);
      }
    }
  };
  const same = (a: CachedSnapshot | undefined, s: Snapshot) => a !== undefined && PUSH_ORDER.every((k) => a.types[k].version === s.types[k].version);
  const diff = (identity: string, before: CachedSnapshot | undefined, after: CachedSnapshot | undefined): IdentityChange | undefined => {
    const types: Partial<Record<ResourceKind, TypeChange>> = {};
    for (const kind of PUSH_ORDER) {
      const a = before?.types[kind].resources ?? new Map<string, CachedResource>();
      const b = after?.types[kind].resources ?? new Map<string, CachedResource>();
      const changed = [...b.values()].filter((r) => a.get(r.name)?.version !== r.version).map((r) => r.name);
      const removed = [...a.keys()].filter((n) => !b.has(n));
      if (changed.length > 0 || removed.length > 0) types[kind] = { changed, removed };
    }
    if (Object.keys(types).length > 0 || (before === undefined) !== (after === undefined)) return { identity, types, gone: after === undefined };
    return undefined;
  };

  const update = (changed: readonly Snapshot[], removed: readonly string[] = []): IdentityChange[] => {
    const changes: IdentityChange[] = [];
    for (const s of changed) {
      const before = snapshots.get(s.identity);
      // Same versions, same bytes: nothing to hash, intern or tell.
      if (same(before, s)) continue;
      const types = {} as Record<ResourceKind, CachedType>;
      for (const kind of PUSH_ORDER) {
        const set = s.types[kind];
        types[kind] = { version: set.version, resources: new Map(set.resources.map((r) => [r.name, acquire(kind, r.name, r.bytes)])) };
      }
      const after: CachedSnapshot = { identity: s.identity, types };
      if (before) release(before);
      snapshots.set(s.identity, after);
      const c = diff(s.identity, before, after);
      if (c) changes.push(c);
    }
    for (const identity of removed) {
      const before = snapshots.get(identity);
      if (!before) continue;
      release(before);
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
    differs: (s) => !same(snapshots.get(s.identity), s),
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
