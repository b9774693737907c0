import { meshIndex } from './index.js';
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
 * Parts are compared by reference first (an IR built from the previous one
 * reuses the parts of what did not change), else as JSON text, each IR part
 * serialised once.
 */
export function changedIdentities(before: MeshIR, after: MeshIR): ReadonlySet<Identity> | 'all' {
  if (before === after) return new Set();
  if (text(before.settings) !== text(after.settings) || text(before.namespaces) !== text(after.namespaces)) return 'all';
  const dirty = new Set<Identity>();
  const was = meshIndex(before);
  const now = meshIndex(after);

  // Workloads, by identity.
  for (const id of new Set([...was.workloadsOf.keys(), ...now.workloadsOf.keys()])) {
    if (!same(was.workloadsOf.get(id), now.workloadsOf.get(id))) dirty.add(id);
  }
  // Grants, by destination.
  const callers = (id: Identity) => {
    for (const index of [was, now]) for (const g of index.grantsTo.get(id) ?? []) dirty.add(g.source);
  };
  for (const id of new Set([...was.grantsTo.keys(), ...now.grantsTo.keys()])) {
    if (same(was.grantsTo.get(id), now.grantsTo.get(id))) continue;
    dirty.add(id);
    callers(id);
  }
  // Services and splits, by `ns/name`.
  const touched = new Set<string>();
  for (const key of new Set([...was.service.keys(), ...now.service.keys()])) {
    if (!same(was.service.get(key), now.service.get(key))) touched.add(key);
  }
  for (const key of new Set([...was.splitOf.keys(), ...now.splitOf.keys()])) {
    if (!same(was.splitOf.get(key), now.splitOf.get(key))) touched.add(key);
  }
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

/** JSON text of an IR part, made once per part (an IR is immutable, and each one is compared with the next one too). */
const texts = new WeakMap<object, string>();
function text(value: object): string {
  let t = texts.get(value);
  if (t === undefined) texts.set(value, (t = JSON.stringify(value)));
  return t;
}
const textOf = (value: object | undefined) => (value === undefined ? '' : text(value));

/** The same part: the same value, a list of the same values, or else the same JSON text. */
function same(a: object | undefined, b: object | undefined): boolean {
  if (a === b) return true;
  if (Array.isArray(a) && Array.isArray(b) && a.length === b.length && a.every((x, i) => x === b[i])) return true;
  return textOf(a) === textOf(b);
}

