/**
 * Bounded work for requests anyone can send: at most `slots` run at once, at
 * most `perPeer` of them for one peer; the rest wait in line (at most
 * `maxWaiting` in all, `maxWaitingPerPeer` per peer, each at most
 * `maxWaitMs`), and a freed slot goes to the peers in turn, so one peer
 * flooding the line cannot starve the others. A request that cannot wait is
 * refused at once: the caller answers "busy, retry" (429 or 503).
 *
 * Work may also weigh more than one unit (`cost`, e.g. the bytes of a body):
 * `capacity` bounds the sum of the costs running at once, so memory is
 * bounded by design whatever the mix.
 */
export interface FairGateOptions {
  readonly slots: number;
  readonly perPeer?: number;
  readonly maxWaiting: number;
  readonly maxWaitingPerPeer?: number;
  readonly maxWaitMs: number;
  /** Sum of costs that may run at once (default: unbounded; each request costs 1 unless told). */
  readonly capacity?: number;
}

export type Release = () => void;

export interface FairGate {
  /** A release to call when the work is done, or why it may not run. */
  enter(peer: string, cost?: number): Promise<Release | { refused: string }>;
  /** Running and waiting, for metrics and tests. */
  load(): { running: number; waiting: number };
}

interface Waiter {
  readonly peer: string;
  readonly cost: number;
  readonly grant: (r: Release | { refused: string }) => void;
  timer?: NodeJS.Timeout;
}

export function createFairGate(o: FairGateOptions): FairGate {
  const perPeer = o.perPeer ?? o.slots;
  const capacity = o.capacity ?? Number.POSITIVE_INFINITY;
  let running = 0;
  let used = 0;
  const runningByPeer = new Map<string, number>();
  /** Waiters by peer; the map's order is the turn order (a served peer goes to the back). */
  const lines = new Map<string, Waiter[]>();
  let waiting = 0;

  const fits = (peer: string, cost: number) =>
    running < o.slots && (runningByPeer.get(peer) ?? 0) < perPeer && (used + cost <= capacity || running === 0);
  const start = (peer: string, cost: number): Release => {
    running++;
    used += cost;
    runningByPeer.set(peer, (runningByPeer.get(peer) ?? 0) + 1);
    let done = false;
    return () => {
      if (done) return;
      done = true;
      running--;
      used -= cost;
      const n = runningByPeer.get(peer)! - 1;
      if (n === 0) runningByPeer.delete(peer);
      else runningByPeer.set(peer, n);
      next();
    };
  };
  const next = () => {
    for (const [peer, line] of lines) {
      const w = line[0]!;
      if (!fits(peer, w.cost)) continue;
      line.shift();
      waiting--;
      // The peer served goes to the back of the turn order.
      lines.delete(peer);
      if (line.length > 0) lines.set(peer, line);
      clearTimeout(w.timer);
      w.grant(start(peer, w.cost));
      return next();
    }
  };

  return {
    enter(peer, cost = 1) {
      if (lines.size === 0 && fits(peer, cost)) return Promise.resolve(start(peer, cost));
      const line = lines.get(peer) ?? [];
      if (waiting >= o.maxWaiting) return Promise.resolve({ refused: `busy: ${running} running and ${waiting} waiting` });
      if (line.length >= (o.maxWaitingPerPeer ?? o.maxWaiting)) return Promise.resolve({ refused: `busy: ${line.length} requests of yours are waiting already` });
      return new Promise((grant) => {
        const w: Waiter = { peer, cost, grant };
        w.timer = setTimeout(() => {
          const l = lines.get(peer);
          const i = l?.indexOf(w) ?? -1;
          if (i < 0) return;
          l!.splice(i, 1);
          if (l!.length === 0) lines.delete(peer);
          waiting--;
          grant({ refused: `busy: waited ${o.maxWaitMs} ms for a turn` });
        }, o.maxWaitMs);
        line.push(w);
        lines.set(peer, line);
        waiting++;
      });
    },
    load: () => ({ running, waiting }),
  };
}
