import { recordInto, replay, type StatusCall, type StatusCollector } from './status.js';

/**
 * Keyed derivations that remember what they read. A value is derived for a
 * key by a pure function that reads its inputs only through named lookups
 * (`read('selected', 'app=web')`); each read is recorded with the value it
 * returned. In the next build the entry of a key is reused, with the status
 * messages it gave, when every one of its recorded reads returns the same
 * value again (the same reference, or a list of the same references), and
 * derived again otherwise. Nobody keeps a list of what an entry depends on:
 * the reads are the list, so a lookup added to a derivation is checked
 * without anything else to update.
 *
 * Lookups must be cheap (an index lookup) and return stable references for
 * unchanged inputs (objects the decoder reuses, entries of an earlier
 * derivation): that is what makes a reused entry cost its reads and nothing
 * more. A memo holds the entries of one build; the next build starts a new
 * memo from it, and keys not asked for again are dropped.
 */
export type Lookups = Readonly<Record<string, (arg: string) => unknown>>;

export type Read<L extends Lookups> = <K extends keyof L & string>(lookup: K, arg: string) => ReturnType<L[K]>;

interface Entry<V> {
  readonly value: V;
  readonly calls: readonly StatusCall[];
  /** Lookup name, argument, value returned: in the order read. */
  readonly reads: readonly (readonly [string, string, unknown])[];
}

export class KeyedMemo<V> {
  private readonly entries = new Map<string, Entry<V>>();
  /** How many entries this build derived (the others were reused). */
  derived = 0;

  private previous: ReadonlyMap<string, Entry<V>> | undefined;

  constructor(previous?: KeyedMemo<V>) {
    this.previous = previous?.entries;
  }

  /** The build is over: the previous build's entries are let go (a memo never holds a chain of older ones). */
  seal(): this {
    this.previous = undefined;
    return this;
  }

  /** The value of `key`: the previous build's when its reads are unchanged, else `derive`'s. Its status messages are replayed into `status`. */
  get<L extends Lookups>(key: string, lookups: L, status: StatusCollector, derive: (read: Read<L>, status: StatusCollector) => V): V {
    const before = this.previous?.get(key);
    const entry = before && before.reads.every(([name, arg, value]) => same(lookups[name]!(arg), value)) ? before : this.derive(lookups, derive);
    this.entries.set(key, entry);
    replay(entry.calls, status);
    return entry.value;
  }

  private derive<L extends Lookups>(lookups: L, derive: (read: Read<L>, status: StatusCollector) => V): Entry<V> {
    this.derived++;
    const calls: StatusCall[] = [];
    const reads: [string, string, unknown][] = [];
    const read = ((name: string, arg: string) => {
      const value = lookups[name]!(arg);
      reads.push([name, arg, value]);
      return value;
    }) as Read<L>;
    const value = derive(read, recordInto(calls));
    return { value, calls, reads };
  }
}

/** The same reference, or two lists of the same references in the same order. */
function same(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (!Array.isArray(a) || !Array.isArray(b) || a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
