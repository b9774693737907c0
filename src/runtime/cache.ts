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
  get(identity: string): CachedSnapshot | undefined;
  identities(): string[];
  /** Called with the new snapshot (or undefined when removed) after each change of this identity. */
  watch(identity: string, listener: CacheListener): () => void;
  stats(): { identities: number; resourceReferences: number; uniqueResources: number; uniqueBytes: number };
}

const hashBytes = (b: Uint8Array) => createHash('sha256').update(b).digest('hex').slice(0, 16);

export function createSnapshotCache(): SnapshotCache {
  let snapshots = new Map<string, CachedSnapshot>();
  // kind + name + content hash -> the one shared resource object.
  let interned = new Map<string, CachedResource>();
  const watchers = new Map<string, Set<CacheListener>>();

  const intern = (kind: ResourceKind, name: string, bytes: Uint8Array, next: Map<string, CachedResource>): CachedResource => {
    const version = hashBytes(bytes);
    const key = `${kind}\0${name}\0${version}`;
    const r = next.get(key) ?? interned.get(key) ?? { name, version, bytes };
    next.set(key, r);
    return r;
  };

  return {
    setSnapshots(list) {
      const nextInterned = new Map<string, CachedResource>();
      const next = new Map<string, CachedSnapshot>();
      for (const s of list) {
        const types = {} as Record<ResourceKind, CachedType>;
        for (const kind of PUSH_ORDER) {
          const set = s.types[kind];
          types[kind] = { version: set.version, resources: new Map(set.resources.map((r) => [r.name, intern(kind, r.name, r.bytes, nextInterned)])) };
        }
        next.set(s.identity, { identity: s.identity, types });
      }
      const changes: IdentityChange[] = [];
      for (const identity of new Set([...snapshots.keys(), ...next.keys()])) {
        const before = snapshots.get(identity);
        const after = next.get(identity);
        const types: Partial<Record<ResourceKind, TypeChange>> = {};
        for (const kind of PUSH_ORDER) {
          const a = before?.types[kind].resources ?? new Map<string, CachedResource>();
          const b = after?.types[kind].resources ?? new Map<string, CachedResource>();
          const changed = [...b.values()].filter((r) => a.get(r.name)?.version !== r.version).map((r) => r.name);
          const removed = [...a.keys()].filter((n) => !b.has(n));
          if (changed.length > 0 || removed.length > 0) types[kind] = { changed, removed };
        }
        if (Object.keys(types).length > 0 || (before === undefined) !== (after === undefined)) changes.push({ identity, types, gone: after === undefined });
      }
      snapshots = next;
      interned = nextInterned;
      for (const c of changes) for (const w of watchers.get(c.identity) ?? []) w(next.get(c.identity));
      return changes.sort((x, y) => (x.identity < y.identity ? -1 : 1));
    },
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
      for (const r of interned.values()) bytes += r.bytes.length;
      return { identities: snapshots.size, resourceReferences: refs, uniqueResources: interned.size, uniqueBytes: bytes };
    },
  };
}
