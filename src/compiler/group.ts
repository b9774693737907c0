/** The same items in the same order (compared by reference); the same list at once. */
export function sameItems<T>(a: readonly T[], b: readonly T[] | undefined): boolean {
  return a === b || (b !== undefined && a.length === b.length && a.every((x, i) => x === b[i]));
}

/** Items grouped by a key, each group in input order (one pass; no copying per item). */
export function groupBy<K, V>(items: Iterable<V>, key: (item: V) => K): Map<K, V[]> {
  const out = new Map<K, V[]>();
  for (const item of items) {
    const k = key(item);
    const list = out.get(k);
    if (list) list.push(item);
    else out.set(k, [item]);
  }
  return out;
}

/**
 * `list` with some of its items replaced (by reference), as a new list; the list itself when none of them is in it.
 * A few are found by scanning for them; many by one pass over the list.
 */
export function replaceItems<T>(list: readonly T[], replaced: ReadonlyMap<T, T>): readonly T[] {
  if (replaced.size > 8) {
    let hit = false;
    const out = list.map((x) => {
      const y = replaced.get(x);
      if (y === undefined) return x;
      hit = true;
      return y;
    });
    return hit ? out : list;
  }
  let out: T[] | undefined;
  for (const [a, b] of replaced) {
    for (let i = (out ?? list).indexOf(a); i >= 0; i = (out ?? list).indexOf(a, i + 1)) (out ??= list.slice())[i] = b;
  }
  return out ?? list;
}

/**
 * Where `after` holds another item than `before` at the same place, when the two lists are as long and each such
 * pair is the same thing edited (`same`); undefined otherwise (items added, removed or moved).
 */
export function editedAt<T>(before: readonly T[], after: readonly T[], same: (a: T, b: T) => boolean): number[] | undefined {
  if (before.length !== after.length) return undefined;
  const at: number[] = [];
  for (let i = 0; i < after.length; i++) {
    if (before[i] === after[i]) continue;
    if (!same(before[i]!, after[i]!)) return undefined;
    at.push(i);
  }
  return at;
}

/** Where in `sorted` the item is that `compare` puts at 0 (it returns < 0 for items before it), by binary search; -1 when none is. */
export function sortedIndex<T>(sorted: readonly T[], compare: (item: T) => number): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (compare(sorted[mid]!) < 0) lo = mid + 1;
    else hi = mid;
  }
  return lo < sorted.length && compare(sorted[lo]!) === 0 ? lo : -1;
}
