import { startWorkerCalls } from './worker-calls.js';
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
  const { ask, close } = startWorkerCalls<ReaderRequest, ReaderReply>(new URL('./folder-reader-worker.js', import.meta.url), 'folder reader', { workerData: { roots } });
  return {
    scan: async (paths, force) => ((await ask({ paths, ...(force ? { force } : {}) })) as { result: ScanResult }).result,
    close,
  };
}
