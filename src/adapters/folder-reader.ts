import { Worker } from 'node:worker_threads';
import type { ObjectCheck } from '../compiler/decode/index.js';
import type { InputDocument, InputProblem } from '../compiler/inputs.js';

/**
 * The folder source's side of its reader thread (folder-reader-worker.ts).
 * `scan(paths)` looks at the files under each path (a root, a folder, a
 * file) and answers with those whose content changed since it last read them:
 * new or changed content (parsed, each policy object checked on its own),
 * files gone, and files that cannot be read. A file whose stat did not change
 * is not read again; one that was read is parsed only when its bytes differ.
 */
export type FileChange =
  | { readonly file: string; readonly kind: 'gone' }
  | { readonly file: string; readonly kind: 'unreadable'; readonly reason: string }
  | {
      readonly file: string;
      readonly kind: 'content';
      readonly documents: InputDocument[];
      readonly problems: InputProblem[];
      /** checkDocument of each document. */
      readonly checks: ObjectCheck[][];
      /** The file's ctime in ms (a rename changes it too): how old the change is. */
      readonly changedAt: number;
    };

export interface ScanResult {
  readonly changes: readonly FileChange[];
  /** Roots that cannot be listed (gone, not readable): nothing under them was judged. */
  readonly failed: readonly { readonly path: string; readonly reason: string }[];
  /** Files known to the reader after the scan. */
  readonly files: number;
}

export interface ReaderRequest {
  readonly id: number;
  readonly paths: readonly string[];
  readonly force?: boolean;
}

export type ReaderReply = { readonly id: number; readonly result: ScanResult } | { readonly id: number; readonly error: string };

export interface FolderReader {
  /** `force`: read every file, whatever its stat says. */
  scan(paths: readonly string[], force?: boolean): Promise<ScanResult>;
  close(): Promise<void>;
}

export function startFolderReader(roots: readonly string[]): FolderReader {
  const worker = new Worker(new URL('./folder-reader-worker.js', import.meta.url), { workerData: { roots } });
  let next = 0;
  const waiting = new Map<number, { resolve: (r: ScanResult) => void; reject: (e: Error) => void }>();
  worker.on('message', (r: ReaderReply) => {
    const w = waiting.get(r.id);
    waiting.delete(r.id);
    if (!w) return;
    if ('error' in r) w.reject(new Error(`folder reader: ${r.error}`));
    else w.resolve(r.result);
  });
  const failAll = (e: Error) => {
    for (const w of waiting.values()) w.reject(e);
    waiting.clear();
  };
  worker.on('error', failAll);
  worker.on('exit', (code) => failAll(new Error(`the folder reader exited (${code})`)));
  const ask = (body: Omit<ReaderRequest, 'id'>) =>
    new Promise<ScanResult>((resolve, reject) => {
      const id = ++next;
      waiting.set(id, { resolve, reject });
      worker.postMessage({ ...body, id });
    });
  return {
    scan: (paths, force) => ask({ paths, ...(force ? { force } : {}) }),
    close: async () => void (await worker.terminate()),
  };
}
