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
 *
 * A build that knows what changed asks less. When its tables were made from
 * the previous build's by patching them (`PatchedTable`, which knows the keys
 * it changed), a carried memo (`KeyedMemo.carried`) keeps every previous
 * entry and names, from who read what (kept from build to build), the
 * entries that read a changed key: only those are asked again. Its cost is
 * the change, not the number of entries.
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
  /** This build's entries (in a carried build, the previous build's with those derived again put over them). */
  private entries: Map<string, Entry<V>> | PatchedTable<Entry<V>> = new Map();
  /** How many entries this build derived (the others were reused). */
  derived = 0;

  private previous: ReadonlyMap<string, Entry<V>> | undefined;
  /** Per table lookup, the keys whose value differs from the previous build's table (absent: a function, or no previous table). */
  private changed: ReadonlyMap<string, ReadonlySet<string>> | undefined;
  /**
   * Who read what, for a carried build (see `carried`): `lookup\0arg` -> the keys of the entries that read it from a table,
   * and the keys of the entries that called a function lookup. Made from the entries when first needed, then handed on
   * from memo to memo and kept up to date as entries are derived again.
   */
  private readers: Readers | undefined;
  /** Keys derived again in a carried build (their readers are brought up to date when it is sealed). */
  private rederived: string[] | undefined;

  constructor(
    readonly lookups: L,
    previous?: KeyedMemo<V, Lookups>,
  ) {
    this.previous = previous?.entries;
    if (!previous) return;
    const changed = new Map<string, ReadonlySet<string>>();
    for (const [name, now] of Object.entries(lookups)) {
      const was = previous.lookups[name];
      if (isTable(now) && isTable(was)) changed.set(name, tableChanges(was, now));
    }
    this.changed = changed;
  }

  /**
   * A memo for a build whose lookups are the previous build's with some tables patched (see `PatchedTable`): it holds
   * every entry of `previous` as it is, and `dirty` says which of them read a changed key (or a function lookup), the
   * only ones the build has to ask for again with `get`. The readers `previous` kept are handed on (should `previous`
   * be given to another build, that one finds them again from its entries).
   */
  static carried<V, L extends Lookups>(lookups: L, previous: KeyedMemo<V, Lookups>): KeyedMemo<V, L> {
    const memo = new KeyedMemo<V, L>(lookups, previous);
    for (const [name, lookup] of Object.entries(lookups)) {
      if (isTable(lookup) && !memo.changed!.has(name)) throw new Error(`a carried build's table ${name} was not a table in the previous build`);
    }
    memo.entries = new PatchedTable(previous.entries);
    memo.readers = previous.readers ?? readersOf(previous.entries, lookups);
    previous.readers = undefined;
    memo.rederived = [];
    return memo;
  }

  /** In a carried build: the keys of the entries that read a key of a table that changed, or called a function lookup. */
  dirty(): Set<string> {
    const out = new Set<string>(this.readers!.callers);
    this.changed?.forEach((keys, name) => {
      for (const arg of keys) this.readers!.table.get(`${name}\0${arg}`)?.forEach((key) => out.add(key));
    });
    return out;
  }

  /** The status messages the entry of `key` gave (none when there is no entry). */
  callsOf(key: string): readonly StatusCall[] {
    return this.entries.get(key)?.calls ?? [];
  }

  /** The build is over: the previous build's memo is let go (a carried memo's entries stand on its table, a chain of a few tables at most: see `PatchedTable`). */
  seal(): this {
    if (this.rederived && this.readers) {
      for (const key of this.rederived) {
        const before = this.previous?.get(key);
        if (before) removeReads(this.readers, before, key);
        const entry = this.entries.get(key);
        if (entry) addReads(this.readers, entry, key, this.lookups);
      }
    }
    this.rederived = undefined;
    this.previous = undefined;
    this.changed = undefined;
    return this;
  }

  /** The value of `key`: the previous build's when none of its reads changed, else `derive`'s. Its status messages are replayed into `status`. */
  get(key: string, status: StatusCollector, derive: (read: Read<L>, status: StatusCollector) => V): V {
    const before = this.previous?.get(key);
    const entry = before && before.reads.every(([name, arg, value]) => this.unchanged(name, arg, value)) ? before : this.derive(derive);
    if (entry !== before) this.rederived?.push(key);
    putIn(this.entries, key, entry);
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

interface Readers {
  /** `lookup\0arg` -> keys of the entries that read it from a table. */
  readonly table: Map<string, Set<string>>;
  /** Keys of the entries that read anything through a function lookup (they are asked again in every carried build). */
  readonly callers: Set<string>;
}

function readersOf(entries: ReadonlyMap<string, Entry<unknown>>, lookups: Lookups): Readers {
  const readers: Readers = { table: new Map(), callers: new Set() };
  entries.forEach((entry, key) => addReads(readers, entry, key, lookups));
  return readers;
}

function addReads(readers: Readers, entry: Entry<unknown>, key: string, lookups: Lookups): void {
  for (const [name, arg] of entry.reads) {
    if (!isTable(lookups[name])) {
      readers.callers.add(key);
      continue;
    }
    const read = `${name}\0${arg}`;
    const set = readers.table.get(read);
    if (set) set.add(key);
    else readers.table.set(read, new Set([key]));
  }
}

function removeReads(readers: Readers, entry: Entry<unknown>, key: string): void {
  readers.callers.delete(key);
  for (const [name, arg] of entry.reads) readers.table.get(`${name}\0${arg}`)?.delete(key);
}

const answer = (lookup: Lookup, arg: string): unknown => (isTable(lookup) ? lookup.get(arg) : (lookup as (arg: string) => unknown)(arg));

/**
 * A read-only map whose whole contents come from `all()`: what a map that
 * answers single keys its own way (a patched table, a map that records its
 * reads) iterates and counts through.
 */
export abstract class MapView<K, V> implements ReadonlyMap<K, V> {
  protected abstract all(): ReadonlyMap<K, V>;
  abstract get(key: K): V | undefined;
  abstract has(key: K): boolean;
  get size(): number {
    return this.all().size;
  }
  forEach(each: (value: V, key: K, map: ReadonlyMap<K, V>) => void): void {
    this.all().forEach((v, k) => each(v, k, this));
  }
  entries(): MapIterator<[K, V]> {
    return this.all().entries();
  }
  keys(): MapIterator<K> {
    return this.all().keys();
  }
  values(): MapIterator<V> {
    return this.all().values();
  }
  [Symbol.iterator](): MapIterator<[K, V]> {
    return this.all()[Symbol.iterator]();
  }
}

/**
 * A table made from another (`base`) by putting and removing some keys: it
 * knows which keys those were, so comparing it with the table it was made
 * from costs them alone (comparing it with any other table walks both, as
 * for any Map). It holds only its own keys and looks up the rest in `base`,
 * so making it costs the keys it changes, not the table; every few tables
 * in a chain, one is made a plain copy so that lookups stay short. Iterating
 * it makes (once) the whole table.
 */
export class PatchedTable<V> extends MapView<string, V> {
  /** The keys put or removed since `base` (put to a value that may be the same one). */
  readonly touched = new Set<string>();
  private readonly own = new Map<string, V | typeof GONE>();
  /** Keys of `under` removed and put again here (they go last). */
  private readonly readded = new Set<string>();
  /** `base`, or a copy of it when the chain behind it is long. */
  private readonly under: ReadonlyMap<string, V>;
  private readonly depth: number;
  private count: number;
  private whole: Map<string, V> | undefined;

  constructor(readonly base: ReadonlyMap<string, V>) {
    super();
    const depth = base instanceof PatchedTable ? base.depth + 1 : 0;
    this.under = depth > MAX_DEPTH ? flatten(base) : base;
    this.depth = depth > MAX_DEPTH ? 0 : depth;
    this.count = base.size;
  }

  put(key: string, value: V): this {
    if (!this.has(key)) {
      this.count++;
      // A key removed and put again goes last, as in a Map.
      if (this.own.get(key) === GONE || this.under.has(key)) {
        this.own.delete(key);
        this.readded.add(key);
      }
    }
    this.own.set(key, value);
    this.touched.add(key);
    this.whole = undefined;
    return this;
  }

  remove(key: string): boolean {
    const had = this.has(key);
    if (had) this.count--;
    this.own.set(key, GONE);
    this.touched.add(key);
    this.whole = undefined;
    return had;
  }

  get(key: string): V | undefined {
    const v = this.own.get(key);
    if (v === undefined && !this.own.has(key)) return this.under.get(key);
    return v === GONE ? undefined : (v as V);
  }

  has(key: string): boolean {
    return this.own.has(key) ? this.own.get(key) !== GONE : this.under.has(key);
  }

  override get size(): number {
    return this.count;
  }

  /** The whole table as a Map (made when first asked, in the order a copy of `base` with the same puts and removes has). */
  protected all(): Map<string, V> {
    return (this.whole ??= flatten(this));
  }

  /** The tables this one stands on, from the bottom one (a plain table) up to this one's own keys. */
  static layers<V>(table: ReadonlyMap<string, V>): { bottom: ReadonlyMap<string, V>; above: { own: ReadonlyMap<string, V | typeof GONE>; readded: ReadonlySet<string> }[] } {
    const above: { own: ReadonlyMap<string, V | typeof GONE>; readded: ReadonlySet<string> }[] = [];
    let t = table;
    while (t instanceof PatchedTable) {
      const patched = t as PatchedTable<V>;
      // (One made whole already is a plain table to start from.)
      if (patched.whole) {
        t = patched.whole;
        break;
      }
      above.push({ own: patched.own, readded: patched.readded });
      t = patched.under;
    }
    return { bottom: t, above: above.reverse() };
  }
}

const GONE = Symbol('gone');

/** A table as one plain Map: a copy of the bottom of its chain with each layer's puts and removes applied in turn. */
function flatten<V>(table: ReadonlyMap<string, V>): Map<string, V> {
  const { bottom, above } = PatchedTable.layers(table);
  const whole = new Map(bottom);
  for (const { own, readded } of above) {
    own.forEach((v, k) => {
      if (v === GONE || readded.has(k)) whole.delete(k);
      if (v !== GONE) whole.set(k, v as V);
    });
  }
  return whole;
}
/** How many tables may stand on one another before one is a plain copy. */
const MAX_DEPTH = 8;

/** Sets `key` in a table being made: a plain Map, or a table patched over another. */
export const putIn = <V>(table: Map<string, V> | PatchedTable<V>, key: string, value: V): void => void (table instanceof PatchedTable ? table.put(key, value) : table.set(key, value));
/** Deletes `key` from a table being made: a plain Map, or a table patched over another. */
export const removeIn = <V>(table: Map<string, V> | PatchedTable<V>, key: string): void => void (table instanceof PatchedTable ? table.remove(key) : table.delete(key));

/** Whether a lookup is a table (compared key by key) rather than a function. */
export const isTable = (lookup: Lookup | undefined): lookup is ReadonlyMap<string, unknown> => lookup !== undefined && typeof lookup !== 'function';

/** The keys of either table whose values are not the same (one pass over each; none when they are the same table; the keys touched when one was patched from the other). */
export function tableChanges(before: ReadonlyMap<string, unknown>, after: ReadonlyMap<string, unknown>): ReadonlySet<string> {
  const out = new Set<string>();
  if (before === after) return out;
  if (after instanceof PatchedTable && after.base === before) {
    for (const k of after.touched) if (!same(after.get(k), before.get(k)) || after.has(k) !== before.has(k)) out.add(k);
    return out;
  }
  for (const [k, v] of after) if (!same(v, before.get(k))) out.add(k);
  for (const k of before.keys()) if (!after.has(k)) out.add(k);
  return out;
}

/** The same reference, or two lists of the same references in the same order. */
const same = (a: unknown, b: unknown): boolean => a === b || (Array.isArray(a) && Array.isArray(b) && sameItems(a, b));
