import { sameItems } from '../group.js';
import { compareStrings, type DestinationAccess, type MeshIR, type ServiceIR, type SplitIR, type Workload } from './types.js';

/**
 * What differs between two IRs of the same settings and namespaces, list by
 * list: the elements of `before` that are not in `after` and those of `after`
 * that are not in `before` (an element that changed is in both). The lists
 * are sorted, and an IR built from the previous one shares the elements of
 * what did not change (ir/build.ts), so the walk compares references and
 * looks closer only where they differ: it costs a pointer comparison per
 * element, and the changes.
 */
export interface IRDiff {
  readonly workloads: Changes<Workload>;
  readonly services: Changes<ServiceIR>;
  readonly access: Changes<DestinationAccess>;
  readonly splits: Changes<SplitIR>;
}

export interface Changes<T> {
  readonly removed: readonly T[];
  readonly added: readonly T[];
}

const cache = new WeakMap<MeshIR, { before: MeshIR; diff: IRDiff }>();

/** Undefined when the settings or namespaces differ (everything may then differ). */
export function diffIR(before: MeshIR, after: MeshIR): IRDiff | undefined {
  if (JSON.stringify(before.settings) !== JSON.stringify(after.settings) || !sameItems(before.namespaces, after.namespaces)) return undefined;
  const known = cache.get(after);
  if (known?.before === before) return known.diff;
  const diff: IRDiff = {
    workloads: walk(before.workloads, after.workloads, (a, b) => compareStrings(a.namespace, b.namespace) || compareStrings(a.kind, b.kind) || compareStrings(a.name, b.name)),
    services: walk(before.services, after.services, (a, b) => compareStrings(a.namespace, b.namespace) || compareStrings(a.name, b.name)),
    access: walk(before.access, after.access, (a, b) => compareStrings(a.destination, b.destination)),
    splits: walk(before.splits, after.splits, (a, b) => compareStrings(a.namespace, b.namespace) || compareStrings(a.service, b.service)),
  };
  cache.set(after, { before, diff });
  return diff;
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
