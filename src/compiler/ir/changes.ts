import { diffIR } from './diff.js';
import { meshIndex, serviceKey } from './index.js';
import type { Identity, MeshIR } from './types.js';

/**
 * Which identities' plans a change from one IR to the next can touch: the
 * rest keep their plans without being planned again. What a plan reads (see
 * envoy/snapshot.ts) is the mesh settings, the identity's own workloads, the
 * grants to it, the grants from it and the services and splits they lead to;
 * so a plan can change only when one of those differs:
 * - settings or mesh namespaces: every identity;
 * - with permissive mode (before or after), any service, grant, split or
 *   workload: every identity (each reaches the whole mesh);
 * - an identity's workloads: that identity;
 * - the grants to an identity: it, and every source of those grants, before
 *   and after;
 * - a service, or a split (its root and backends): every identity backing
 *   one of those services, or a service split with them, before or after,
 *   and every source of grants to those identities, before and after.
 * The two IRs are compared list by list (ir/diff.ts): what costs is what changed.
 */
export function changedIdentities(before: MeshIR, after: MeshIR): ReadonlySet<Identity> | 'all' {
  if (before === after) return new Set();
  const diff = diffIR(before, after);
  if (!diff) return 'all';
  const dirty = new Set<Identity>();
  const was = meshIndex(before);
  const now = meshIndex(after, before);

  // Workloads, by identity.
  for (const w of [...diff.workloads.removed, ...diff.workloads.added]) dirty.add(w.identity);
  // Grants, by destination.
  const callers = (id: Identity) => {
    for (const index of [was, now]) for (const g of index.grantsTo.get(id) ?? []) dirty.add(g.source);
  };
  for (const a of [...diff.access.removed, ...diff.access.added]) {
    dirty.add(a.destination);
    callers(a.destination);
  }
  // Services and splits, by `ns/name`.
  const touched = new Set<string>();
  for (const s of [...diff.services.removed, ...diff.services.added]) touched.add(serviceKey(s));
  for (const s of [...diff.splits.removed, ...diff.splits.added]) touched.add(`${s.namespace}/${s.service}`);
  const permissive = before.settings.permissive || after.settings.permissive;
  if (permissive && (dirty.size > 0 || touched.size > 0)) return 'all';
  // A split root comes with its backends, and a backend with its roots: a caller of any of them has routes for the root.
  const work = [...touched];
  while (work.length > 0) {
    const key = work.pop()!;
    for (const index of [was, now]) {
      const split = index.splitOf.get(key);
      const related = [...(split ? split.backends.map((b) => `${split.namespace}/${b.service}`) : []), ...(index.splitRootsOf.get(key) ?? [])];
      for (const k of related) {
        if (touched.has(k)) continue;
        touched.add(k);
        work.push(k);
      }
    }
  }
  const backing = new Set<Identity>();
  for (const key of touched) for (const index of [was, now]) for (const id of index.service.get(key)?.identities ?? []) backing.add(id);
  for (const id of backing) {
    dirty.add(id);
    callers(id);
  }
  return dirty;
}

