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
