import { compareStrings, type MeshIR } from './types.js';
import { compareRoutes } from './gateway.js';

/**
 * What differs between two IRs of the same settings, list by
 * list: the elements of `before` that are not in `after` and those of `after`
 * that are not in `before` (an element that changed is in both). The lists
 * are sorted, and an IR built from the previous one shares the elements of
 * what did not change (ir/build.ts), so the walk compares references and
 * looks closer only where they differ: it costs a pointer comparison per
 * element, and the changes.
 */
/** The IR's lists (everything but its settings, whose change changes everything). */
export type IRLists = Omit<MeshIR, 'settings'>;

export type IRDiff = { readonly [K in keyof IRLists]: Changes<IRLists[K][number]> };

/**
 * Each IR list's order (every list is sorted by it) and its elements' keys
 * (unique in a list; two elements with the same key are one element changed).
 * Every list of `MeshIR` must be here: the type says so, so a list added to
 * the IR is diffed, and the index derived from it, or it does not compile.
 */
export const LISTS: { readonly [K in keyof IRLists]-?: { readonly order: (a: IRLists[K][number], b: IRLists[K][number]) => number; readonly key: (e: IRLists[K][number]) => string } } = {
  workloads: { order: (a, b) => compareStrings(a.namespace, b.namespace) || compareStrings(a.kind, b.kind) || compareStrings(a.name, b.name), key: (w) => `${w.kind}/${w.namespace}/${w.name}` },
  services: { order: (a, b) => compareStrings(a.namespace, b.namespace) || compareStrings(a.name, b.name), key: (s) => `${s.namespace}/${s.name}` },
  access: { order: (a, b) => compareStrings(a.destination, b.destination), key: (a) => a.destination },
  splits: { order: (a, b) => compareStrings(a.namespace, b.namespace) || compareStrings(a.service, b.service), key: (s) => `${s.namespace}/${s.service}` },
  namespaces: { order: compareStrings, key: (ns) => ns },
  routes: { order: compareRoutes, key: (r) => JSON.stringify([r.serviceNamespace, r.service, r.namespace, r.name, r.port ?? 0]) },
};

export interface Changes<T> {
  readonly removed: readonly T[];
  readonly added: readonly T[];
}

/** Undefined when the settings differ (everything may then differ). */
export function diffIR(before: MeshIR, after: MeshIR): IRDiff | undefined {
  if (JSON.stringify(before.settings) !== JSON.stringify(after.settings)) return undefined;
  return Object.fromEntries(
    (Object.keys(LISTS) as (keyof IRLists)[]).map((k) => [k, walk<unknown>(before[k], after[k], LISTS[k].order as (a: unknown, b: unknown) => number)]),
  ) as unknown as IRDiff;
}

/** Two lists sorted by `order` (unique keys), walked together. */
function walk<T>(before: readonly T[], after: readonly T[], order: (a: T, b: T) => number): Changes<T> {
  const removed: T[] = [];
  const added: T[] = [];
  let i = 0;
  let j = 0;
  while (i < before.length || j < after.length) {
    const a = before[i];
    const b = after[j];
    if (i < before.length && j < after.length && a === b) {
      i++;
      j++;
      continue;
    }
    const c = i >= before.length ? 1 : j >= after.length ? -1 : order(a!, b!);
    if (c < 0) removed.push(before[i++]!);
    else if (c > 0) added.push(after[j++]!);
    else {
      // The same key: a new value with the same content (a part built again) is no change.
      if (JSON.stringify(a) !== JSON.stringify(b)) {
        removed.push(a!);
        added.push(b!);
      }
      i++;
      j++;
    }
  }
  return { removed, added };
}
