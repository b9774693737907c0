export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Thrown by a probe when waiting longer cannot help (the process it waits for exited): `waitFor` fails at once. */
export class GiveUp extends Error {}

/**
 * Polls `probe` until it returns a value (exceptions count as "not yet", except GiveUp); fails after `timeoutMs`,
 * counted on the monotonic clock (a step of the wall clock, as a virtual machine's may take, does not cut it short).
 */
export async function waitFor<T>(what: string, probe: () => Promise<T | undefined> | T | undefined, timeoutMs = 20_000): Promise<T> {
  const end = performance.now() + timeoutMs;
  let last: unknown;
  while (performance.now() < end) {
    try {
      const v = await probe();
      if (v !== undefined) return v;
    } catch (e) {
      if (e instanceof GiveUp) throw e;
      last = e;
    }
    await sleep(100);
  }
  throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ''}`);
}
