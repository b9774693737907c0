import type { ResourceKind } from '../../src/compiler/envoy/codec.js';
import type { DataPlane, Snapshot } from '../../src/compiler/envoy/snapshot.js';
import type { CachedSnapshot } from '../../src/runtime/cache.js';

/**
 * Tests of the runtime play the compiler's part: they take what the cache
 * serves, change one type, and set it back, to drive the server through
 * exactly the change a rule is about.
 */
export function asSnapshot(cached: CachedSnapshot, dataPlane: DataPlane = 'envoy'): Snapshot {
  const types = Object.fromEntries(
    Object.entries(cached.types).map(([kind, t]) => [kind, { version: t.version, resources: [...t.resources.values()].map((r) => ({ name: r.name, bytes: r.bytes })) }]),
  ) as unknown as Snapshot['types'];
  return { identity: cached.identity, dataPlane, types, warnings: [] };
}

/** `snapshot` with one type's resources replaced (by name) or added, at a new type version. */
export function withResources(snapshot: Snapshot, kind: ResourceKind, version: string, resources: readonly { name: string; bytes: Uint8Array }[]): Snapshot {
  const byName = new Map(snapshot.types[kind].resources.map((r) => [r.name, r]));
  for (const r of resources) byName.set(r.name, r);
  const sorted = [...byName.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  return { ...snapshot, types: { ...snapshot.types, [kind]: { version, resources: sorted } } };
}
