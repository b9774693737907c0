import { Worker, type WorkerOptions } from 'node:worker_threads';

/**
 * Requests to a worker thread, answered in order as promises: each request
 * carries an id and its reply the same id; a reply with `error` rejects. A
 * worker that fails or exits rejects every request still waiting.
 */
export interface WorkerCalls<Request, Reply> {
  ask(body: Body<Request>): Promise<Reply>;
  close(): Promise<void>;
}

/** A request as the caller writes it: the id is added here. */
export type Body<T> = T extends unknown ? Omit<T, 'id'> : never;

export function startWorkerCalls<Request extends { readonly id: number }, Reply extends { readonly id: number }>(url: URL, name: string, options: WorkerOptions = {}): WorkerCalls<Request, Reply> {
  const worker = new Worker(url, options);
  let next = 0;
  const waiting = new Map<number, { resolve: (r: Reply) => void; reject: (e: Error) => void }>();
  worker.on('message', (r: Reply | { readonly id: number; readonly error: string }) => {
    const w = waiting.get(r.id);
    waiting.delete(r.id);
    if (!w) return;
    if ('error' in r) w.reject(new Error(`${name}: ${r.error}`));
    else w.resolve(r as Reply);
  });
  const failAll = (e: Error) => {
    for (const w of waiting.values()) w.reject(e);
    waiting.clear();
  };
  worker.on('error', failAll);
  worker.on('exit', (code) => failAll(new Error(`the ${name} exited (${code})`)));
  return {
    ask: (body) =>
      new Promise<Reply>((resolve, reject) => {
        const id = ++next;
        waiting.set(id, { resolve, reject });
        worker.postMessage({ ...body, id });
      }),
    close: async () => void (await worker.terminate()),
  };
}
