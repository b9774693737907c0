import { apiError } from './kubernetes-source.js';

/** What `keepWatching` needs of an informer (the client library's ListWatch and makeInformer give it). */
interface Restartable {
  start(): Promise<void>;
  stop(): Promise<void>;
  on(verb: 'error', cb: (e: unknown) => void): void;
}

/**
 * Starts `informer` and keeps it running: the client library's informer
 * stops itself on a watch error, so it is started again after a back-off
 * (from `retryMs`, doubling to 30 s; back to `retryMs` once it runs), each
 * time saying why through `onProblem`. `firstProblem` words a failure of the
 * first start (default: the API server's message). Returns the stop function.
 */
export function keepWatching(
  informer: Restartable,
  o: { readonly what: string; readonly retryMs?: number; readonly onProblem: (message: string) => void; readonly firstProblem?: (e: unknown) => string },
): () => void {
  const first = o.retryMs ?? 500;
  let stopped = false;
  let delay = first;
  let timer: NodeJS.Timeout | undefined;
  const restart = (why: string) => {
    if (stopped) return;
    o.onProblem(`watching ${o.what} stopped (${why}); starting again in ${delay} ms`);
    clearTimeout(timer);
    timer = setTimeout(() => {
      informer.start().then(
        () => (delay = first),
        (e: unknown) => restart(apiError(e)),
      );
    }, delay);
    timer.unref();
    delay = Math.min(delay * 2, 30_000);
  };
  informer.on('error', (e: unknown) => restart(apiError(e)));
  informer.start().catch((e: unknown) => restart(o.firstProblem ? o.firstProblem(e) : apiError(e)));
  return () => {
    stopped = true;
    clearTimeout(timer);
    void informer.stop().catch(() => undefined);
  };
}
