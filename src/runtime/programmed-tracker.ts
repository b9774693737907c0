import { clientText } from '../compiler/client-text.js';
import type { ObjectKey, ProgrammedCondition, ProgrammedQuery, ProxyProgress } from '../compiler/programmed.js';
import { progressOf, type ProxyRegistry } from './proxy-status.js';

/**
 * Keeps the `Programmed` condition of every policy object current. It is
 * worked out again (in the compile worker, where the snapshots' origins are)
 * after something it depends on changed: a publish, a response sent, an ACK
 * or NACK, a stream opened or closed; at most once per `intervalMs`, and not
 * at all while nothing changes (but once a second while something is
 * Pending, so its wait reads true). What the runtime contributes is only what
 * each proxy has not taken (nothing for a proxy in step), so a settled mesh
 * sends the worker a query of connection counts.
 */
export interface ProgrammedTracker {
  /** Something a condition depends on changed; `published`: snapshots were, and the next conditions are told whether or not they differ (so written status follows the objects' generations). */
  touch(published?: boolean): void;
  /** The latest conditions, by object key (empty before the first). */
  current(): ReadonlyMap<ObjectKey, ProgrammedCondition>;
  /** When the proxies' state behind the latest conditions was read (ms since the epoch). */
  asOf(): number | undefined;
  /** Told after each recompute whose conditions differ from the previous ones. */
  onChange(listener: (conditions: ReadonlyMap<ObjectKey, ProgrammedCondition>) => void): void;
  close(): void;
}

export interface TrackerOptions {
  readonly proxies: ProxyRegistry;
  /** The snapshot an identity is served now (what a proxy has not been sent yet counts as not taken). */
  readonly snapshotOf: (identity: string) => Parameters<typeof progressOf>[1];
  readonly ask: (query: ProgrammedQuery) => Promise<readonly (readonly [ObjectKey, ProgrammedCondition])[]>;
  /** Least time between two recomputes (default 500 ms). */
  readonly intervalMs?: number;
  readonly log: (message: string) => void;
  /** Told how long each recompute took (seconds, the worker's part included). */
  readonly observe?: (seconds: number) => void;
}

/** The runtime's half of a query: connection counts, and each unsettled proxy's pending and rejected resources. */
export function programmedQuery(proxies: ProxyRegistry, snapshotOf: TrackerOptions['snapshotOf'], now: number): ProgrammedQuery {
  const connected: Record<string, number> = {};
  const progress: ProxyProgress[] = [];
  for (const p of proxies.list()) {
    connected[p.identity] = (connected[p.identity] ?? 0) + 1;
    const { pending, rejected } = progressOf(p, snapshotOf(p.identity));
    if (pending.length > 0 || rejected.length > 0) progress.push({ identity: p.identity, node: clientText(p.nodeId, 128), pending, rejected });
  }
  return { connected, progress, now };
}

export function trackProgrammed(o: TrackerOptions): ProgrammedTracker {
  const interval = o.intervalMs ?? 500;
  let conditions: ReadonlyMap<ObjectKey, ProgrammedCondition> = new Map();
  let asOf: number | undefined;
  let text = '';
  const listeners: ((c: ReadonlyMap<ObjectKey, ProgrammedCondition>) => void)[] = [];
  let dirty = false;
  let published = false;
  let running = false;
  let lastRun = 0;
  let timer: NodeJS.Timeout | undefined;
  let ageTimer: NodeJS.Timeout | undefined;
  let closed = false;
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
      const answer = await o.ask(programmedQuery(o.proxies, o.snapshotOf, at));
      o.observe?.((Date.now() - at) / 1000);
      asOf = at;
      // Ages in messages move with the clock: a change is a change of anything but them.
      const next = JSON.stringify(answer.map(([k, c]) => [k, c.status, c.reason, c.proxies, c.programmed, c.rejected, c.pending?.map((p) => [p.node, p.kind, p.resources])]));
      conditions = new Map(answer);
      if (next !== text || tell) {
        text = next;
        for (const l of listeners) l(conditions);
      }
    } catch (e) {
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
    timer = setTimeout(() => void run(), Math.max(0, lastRun + interval - Date.now()));
    timer.unref();
  };
  const touch = (publish = false) => {
    dirty = true;
    if (publish) published = true;
    schedule();
  };
  o.proxies.onStream(() => touch());
  o.proxies.onProgress(() => touch());
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
