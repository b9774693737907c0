/**
 * Logging for events a client can cause at will (failed handshakes, NACKs):
 * each kind of event (its key) is written once per `everyMs`, and what was
 * held back meanwhile is counted into the next line written for it, so a
 * flood costs a bounded number of lines. Keys are bounded too: past
 * `maxKeys`, the oldest are forgotten (a forgotten key is news again).
 */
export interface LimitedLog {
  /** Writes `line(suppressed)` unless this key was written less than `everyMs` ago; returns whether it wrote. */
  event(key: string, line: (suppressed: number) => void): boolean;
}

export function createLimitedLog(options: { everyMs: number; maxKeys?: number; now?: () => number }): LimitedLog {
  const now = options.now ?? Date.now;
  const maxKeys = options.maxKeys ?? 10_000;
  const seen = new Map<string, { at: number; suppressed: number }>();
  return {
    event(key, line) {
      const t = now();
      const was = seen.get(key);
      if (was && t - was.at < options.everyMs) {
        was.suppressed++;
        return false;
      }
      seen.delete(key);
      seen.set(key, { at: t, suppressed: 0 });
      if (seen.size > maxKeys) seen.delete(seen.keys().next().value!);
      line(was?.suppressed ?? 0);
      return true;
    },
  };
}
