import { sameItems } from './group.js';
import { recordInto, replay, type StatusCall, type StatusCollector } from './status.js';

/**
 * Keyed derivations that remember what they read. A value is derived for a
 * key by a pure function that reads its inputs only through named lookups
 * (`read('label', 'ns/app=web')`); each read is recorded with the value it
 * returned. In the next build the entry of a key is reused, with the status
 * messages it gave, when none of its recorded reads changed, and derived
 * again otherwise. Nobody keeps a list of what an entry depends on: the reads
 * are the list, so a lookup added to a derivation is checked without
 * anything else to update.
 *
 * A lookup is a table (a `Map`) or a function. A table is compared with the
 * previous build's table of the same name once per build, key by key (the
 * same reference, or a list of the same references), which gives the keys
 * that changed; an entry's reads of a table are then checked against that
 * set, and the table is not looked into again. A function lookup is called
 * again for each read it recorded and its answer compared with the recorded
 * one, so it must be cheap (an index lookup) and return stable references
 * for unchanged inputs (objects the decoder reuses, entries of an earlier
 * derivation). Tables are for what many entries read and is costly to
 * answer twice (a label's workloads); functions for what reaches outside the
 * build (another namespace's workloads).
 *
 * A memo holds the entries of one build and the tables they were checked
 * against; the next build starts a new memo from it, and keys not asked for
 * again are dropped.
 */
export type Lookup = ((arg: string) => unknown) | ReadonlyMap<string, unknown>;
export type Lookups = Readonly<Record<string, Lookup>>;

type Answer<F> = F extends ReadonlyMap<string, infer V> ? V | undefined : F extends (arg: string) => infer R ? R : never;
export type Read<L extends Lookups> = <K extends keyof L & string>(lookup: K, arg: string) => Answer<L[K]>;

interface Entry<V> {
  readonly value: V;
  readonly calls: readonly StatusCall[];
  /** Lookup name, argument, value returned: in the order read. */
  readonly reads: readonly (readonly [string, string, unknown])[];
}

export class KeyedMemo<V, L extends Lookups = Lookups> {
  private readonly entries = new Map<string, Entry<V>>();
  /** How many entries this build derived (the others were reused). */
  derived = 0;

  private previous: ReadonlyMap<string, Entry<V>> | undefined;
  /** Per table lookup, the keys whose value differs from the previous build's table (absent: a function, or no previous table). */
  private changed: ReadonlyMap<string, ReadonlySet<string>> | undefined;

  constructor(
    readonly lookups: L,
    previous?: KeyedMemo<V, Lookups>,
  ) {
    this.previous = previous?.entries;
    if (!previous) return;
    const changed = new Map<string, ReadonlySet<string>>();
    for (const [name, now] of Object.entries(lookups)) {
      const was = previous.lookups[name];
      if (now instanceof Map && was instanceof Map) changed.set(name, tableChanges(was, now));
    }
    this.changed = changed;
  }

  /** The build is over: the previous build's entries are let go (a memo never holds a chain of older ones). */
  seal(): this {
    this.previous = undefined;
    this.changed = undefined;
    return this;
  }

  /** The value of `key`: the previous build's when none of its reads changed, else `derive`'s. Its status messages are replayed into `status`. */
  get(key: string, status: StatusCollector, derive: (read: Read<L>, status: StatusCollector) => V): V {
    const before = this.previous?.get(key);
    const entry = before && before.reads.every(([name, arg, value]) => this.unchanged(name, arg, value)) ? before : this.derive(derive);
    this.entries.set(key, entry);
    replay(entry.calls, status);
    return entry.value;
  }

  private unchanged(name: string, arg: string, value: unknown): boolean {
    const changed = this.changed?.get(name);
    if (changed) return !changed.has(arg);
    return same(answer(this.lookups[name]!, arg), value);
  }

  private derive(derive: (read: Read<L>, status: StatusCollector) => V): Entry<V> {
    this.derived++;
    const calls: StatusCall[] = [];
    const reads: [string, string, unknown][] = [];
    const read = ((name: string, arg: string) => {
      const value = answer(this.lookups[name]!, arg);
      reads.push([name, arg, value]);
      return value;
    }) as Read<L>;
    const value = derive(read, recordInto(calls));
    return { value, calls, reads };
  }
}

const answer = (lookup: Lookup, arg: string): unknown => (lookup instanceof Map ? lookup.get(arg) : (lookup as (arg: string) => unknown)(arg));

/** The keys of either table whose values are not the same (one pass over each; none when they are the same table). */
export function tableChanges(before: ReadonlyMap<string, unknown>, after: ReadonlyMap<string, unknown>): ReadonlySet<string> {
  const out = new Set<string>();
  if (before === after) return out;
  for (const [k, v] of after) if (!same(v, before.get(k))) out.add(k);
  for (const k of before.keys()) if (!after.has(k)) out.add(k);
  return out;
}

/** The same reference, or two lists of the same references in the same order. */
const same = (a: unknown, b: unknown): boolean => a === b || (Array.isArray(a) && Array.isArray(b) && sameItems(a, b));
