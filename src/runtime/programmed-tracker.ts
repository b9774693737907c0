import { clientText } from '../compiler/client-text.js';
import type { ObjectKey, ProgrammedAnswer, ProgrammedCondition, ProgrammedQuery, ProxyProgress } from '../compiler/programmed.js';
import { progressOf, type ProxyRecord, type ProxyRegistry } from './proxy-status.js';

/**
 * Keeps the `Programmed` condition of every policy object current. It is
 * worked out again (in the compile worker, where the snapshots' origins are)
 * after something it depends on changed: a publish, a response sent, an ACK
 * or NACK, a stream opened or closed; at most once per `intervalMs` (or twice
 * the last recompute's time, if longer, up to a second), not at
 * all while nothing changes, and once a second while something is Pending
 * (so its wait reads true). Each query carries what changed since the last
 * one: the connection counts that moved and the progress of the streams that
 * moved; the answer carries the conditions that changed. A settled mesh of
 * 10,000 proxies costs a query nothing per proxy.
 */
export interface ProgrammedTracker {
  /** Something a condition depends on changed; `published`: these identities' snapshots did, and the next conditions are told whether or not they differ (so written status follows the objects' generations). */
  touch(published?: readonly string[]): void;
  /** The latest conditions, by object key (empty before the first). */
  current(): ReadonlyMap<ObjectKey, ProgrammedCondition>;
  /** When the proxies' state behind the latest conditions was read (ms since the epoch). */
  asOf(): number | undefined;
  /** Told after each recompute that changed a condition, or followed a publish. */
  onChange(listener: (conditions: ReadonlyMap<ObjectKey, ProgrammedCondition>) => void): void;
  close(): void;
}

export interface TrackerOptions {
  readonly proxies: ProxyRegistry;
  /** The snapshot an identity is served now (what a proxy has not been sent yet counts as not taken). */
  readonly snapshotOf: (identity: string) => Parameters<typeof progressOf>[1];
  readonly ask: (query: ProgrammedQuery) => Promise<ProgrammedAnswer>;
  /** Least time between two recomputes (default 250 ms). */
  readonly intervalMs?: number;
  readonly log: (message: string) => void;
  /** Told how long each recompute took (seconds, the worker's part included). */
  readonly observe?: (seconds: number) => void;
}

const progressOfRecord = (r: ProxyRecord, snapshotOf: TrackerOptions['snapshotOf'], open: boolean): ProxyProgress => {
  const { pending, rejected } = open ? progressOf(r, snapshotOf(r.identity)) : { pending: [], rejected: [] };
  return { stream: r.stream, identity: r.identity, node: clientText(r.nodeId, 128), pending, rejected };
};

export function trackProgrammed(o: TrackerOptions): ProgrammedTracker {
  const interval = o.intervalMs ?? 250;
  const conditions = new Map<ObjectKey, ProgrammedCondition>();
  let asOf: number | undefined;
  const listeners: ((c: ReadonlyMap<ObjectKey, ProgrammedCondition>) => void)[] = [];
  // The runtime's side, kept as streams open and close: who is connected, and which streams moved since the last query.
  const open = new Set<ProxyRecord>();
  const byIdentity = new Map<string, Set<ProxyRecord>>();
  const moved = new Set<ProxyRecord>();
  const closedStreams = new Set<ProxyRecord>();
  // Identities whose count of streams changed since the last query; `full`: the next query tells the worker everything.
  const recounted = new Set<string>();
  let full = true;
  let dirty = false;
  let published = false;
  let running = false;
  let lastRun = 0;
  let lastTook = 0;
  let timer: NodeJS.Timeout | undefined;
  let ageTimer: NodeJS.Timeout | undefined;
  let closed = false;

  const query = (at: number): ProgrammedQuery => {
    const all = full;
    const connected: Record<string, number> = {};
    for (const id of all ? byIdentity.keys() : recounted) connected[id] = byIdentity.get(id)?.size ?? 0;
    const progress = (all ? [...open] : [...moved]).map((r) => progressOfRecord(r, o.snapshotOf, open.has(r)));
    if (!all) for (const r of closedStreams) progress.push(progressOfRecord(r, o.snapshotOf, false));
    moved.clear();
    closedStreams.clear();
    recounted.clear();
    full = false;
    return { full: all, connected, progress: all ? progress.filter((p) => p.pending.length > 0 || p.rejected.length > 0) : progress, now: at };
  };

  const run = async () => {
    timer = undefined;
    if (closed || running || !dirty) return;
    running = true;
    dirty = false;
    const tell = published;
    published = false;
    lastRun = Date.now();
    try {
      const at = Date.now();
      const answer = await o.ask(query(at));
      lastTook = Date.now() - at;
      o.observe?.(lastTook / 1000);
      asOf = at;
      for (const [k, c] of answer.changed) conditions.set(k, c);
      for (const k of answer.removed) conditions.delete(k);
      if (answer.changed.length > 0 || answer.removed.length > 0 || tell) for (const l of listeners) l(conditions);
    } catch (e) {
      // The worker's index may hold less than it was told: the next query tells it everything.
      full = true;
      dirty = true;
      o.log(`programmed: could not work out which proxies carry each object: ${(e as Error).message}`);
    } finally {
      running = false;
      // While something waits, its age in the messages is kept within a second of the truth.
      if (!dirty && [...conditions.values()].some((c) => c.reason === 'Pending')) {
        clearTimeout(ageTimer);
        ageTimer = setTimeout(() => touch(), 1000);
        ageTimer.unref();
      }
      if (dirty) schedule();
    }
  };
  const schedule = () => {
    if (closed || timer || running) return;
    // At least the interval, and twice the last recompute (up to a second): a storm of connections is taken in fewer,
    // larger steps, and the worker spends at most about a third of its time here.
    timer = setTimeout(() => void run(), Math.max(0, lastRun + Math.max(interval, Math.min(2 * lastTook, 1000)) - Date.now()));
    timer.unref();
  };
  const touch = (identities?: readonly string[]) => {
    dirty = true;
    if (identities) {
      published = true;
      // Their proxies are behind their new snapshots until they are sent and take them.
      for (const id of identities) for (const r of byIdentity.get(id) ?? []) moved.add(r);
    }
    schedule();
  };
  o.proxies.onStream((r, isOpen) => {
    recounted.add(r.identity);
    if (isOpen) {
      open.add(r);
      let set = byIdentity.get(r.identity);
      if (!set) byIdentity.set(r.identity, (set = new Set()));
      set.add(r);
      moved.add(r);
    } else {
      open.delete(r);
      const set = byIdentity.get(r.identity);
      set?.delete(r);
      if (set?.size === 0) byIdentity.delete(r.identity);
      moved.delete(r);
      closedStreams.add(r);
    }
    touch();
  });
  o.proxies.onProgress((r) => {
    if (open.has(r)) moved.add(r);
    touch();
  });
  return {
    touch,
    current: () => conditions,
    asOf: () => asOf,
    onChange: (l) => void listeners.push(l),
    close() {
      closed = true;
      clearTimeout(timer);
      clearTimeout(ageTimer);
    },
  };
}
