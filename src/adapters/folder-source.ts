import type { Log } from '../runtime/log.js';
import { statSync } from 'node:fs';
import { normalize } from 'node:path';
import { StartupError } from './startup-error.js';
import { createLastAccepted } from './last-accepted.js';
import { startFolderReader, type FileChange, type FolderReader, type ScanResult } from './folder-reader.js';
import type { Source, SourceEvents, SourceUnit } from './source.js';
import { watchTree, type TreeWatch } from './tree-watch.js';
import { isWithin } from './yaml-files.js';

/**
 * The embedded default source: files and folders of YAML, read the way
 * `smc compile` reads them, and followed while the controller runs.
 *
 * - Changes are seen through file-system events (tree-watch.ts: renames
 *   over a file, in-place writes, new folders) that name the paths they
 *   concern; only those paths are read again. Events settle for `settleMs`, and a
 *   change is read `maxWaitMs` after the first event at the latest, however
 *   often the file is written.
 * - Every `reconcileMs` the folder is compared with what was read (by each
 *   file's stat, then its bytes): a change found this way had no event, and is
 *   applied, logged at warn and counted (`drifted`), so a watch that misses
 *   events is seen and converges anyway.
 * - What stays in force: a file that stops parsing, or cannot be read, keeps
 *   its last good objects; a policy object whose new version is rejected keeps
 *   its last accepted version (last-accepted.ts); a root that disappears or
 *   cannot be read keeps everything that was read from it. The status of the
 *   file and the log say so until it is fixed. Deleting a file takes its
 *   objects out of the mesh.
 * - A root that does not exist at start is an error: a mistyped path must not
 *   start a controller that serves an empty mesh.
 * - Reading and parsing run in a thread of their own (folder-reader.ts).
 */
export interface FolderSourceOptions {
  readonly paths: readonly string[];
  readonly log: Log;
  /** How long events settle before the paths they name are read (default 50 ms)... */
  readonly settleMs?: number;
  /** ...but never longer than this after the first event (default 1 s). */
  readonly maxWaitMs?: number;
  /** How often the folder is compared with what was read (default 5 s). */
  readonly reconcileMs?: number;
  /** Events for which this returns true are dropped, as a watch that misses events would (tests of the reconcile). */
  readonly dropEvent?: (path: string) => boolean;
}

interface Known {
  /** The last content that parsed without a problem, if any (as delivered). */
  readonly good: SourceUnit | undefined;
  /** Why the file is not in force as it is on disk, if it is not. */
  readonly problem?: string;
}

export function createFolderSource(o: FolderSourceOptions): Source {
  // As the watch and the reader name paths: `./mesh/` is `mesh`.
  const roots = o.paths.map((p) => normalize(p).replace(/(.)\/+$/, '$1'));
  const known = new Map<string, Known>();
  const lastAccepted = createLastAccepted();
  const watchers = new Map<string, TreeWatch>();
  /** Roots that could not be read at the last look, and why. */
  const unreadable = new Map<string, string>();
  const pending = new Set<string>();
  let events: SourceEvents | undefined;
  let timer: NodeJS.Timeout | undefined;
  let firstEventAt: number | undefined;
  let reconcileTimer: NodeJS.Timeout | undefined;
  let chain: Promise<unknown> = Promise.resolve();
  let closed = false;
  // The reader thread runs from start to close.
  let reader: FolderReader | undefined;
  const scan = (paths: readonly string[], force?: boolean) => reader!.scan(paths, force);
  const serially = (f: () => Promise<void>): Promise<void> => {
    const next = chain.then(f, f);
    chain = next.catch((e: Error) => o.log(`source: reading ${roots.join(', ')} failed: ${e.message}`, { level: 'error' }));
    return next;
  };

  /** The unit of a root that cannot be read: its status entry says what stays in force. */
  const rootUnit = (root: string) => `${root}\u0000unreadable`;

  const apply = (change: FileChange) => {
    const file = change.file;
    const before = known.get(file);
    if (change.kind === 'gone') {
      known.delete(file);
      lastAccepted.forget(file);
      events?.delete(file);
      o.log(`source: ${file} was removed; its objects leave the mesh`);
      return;
    }
    const keep = (message: string) => {
      const kept = before?.good;
      const note = kept ? '; its last good objects stay in force until it is fixed' : '';
      return { kept, note, message: `${message}${note}` };
    };
    if (change.kind === 'unreadable') {
      const { kept, message } = keep(`${file} ${change.reason}`);
      if (before?.problem !== message) o.log(`source: ${message}`, { level: 'warn', file });
      known.set(file, { good: kept, problem: message });
      events?.set(file, { documents: kept?.documents ?? [], problems: [{ origin: { source: file, document: 0, line: 0 }, message }] });
      return;
    }
    if (change.problems.length === 0) {
      const unit = lastAccepted.hold(file, { documents: change.documents, problems: [] }, change.checks);
      known.set(file, { good: unit });
      events?.set(file, unit);
      if (before?.problem) o.log(`source: ${file} is read again`);
      return;
    }
    // Broken: what was in force stays in force, and the problems say so.
    const { kept, note } = keep('');
    const problems = change.problems.map((p) => ({ ...p, message: `${p.message}${note}` }));
    known.set(file, { good: kept, problem: problems.map((p) => p.message).join('; ') });
    events?.set(file, kept ? { documents: kept.documents, problems } : { documents: change.documents, problems });
    for (const p of problems) o.log(`source: ${file}:${p.origin.line}: ${p.message}`, { level: 'warn', file });
  };

  const applyScan = (result: ScanResult) => {
    for (const change of result.changes) apply(change);
    for (const root of roots) {
      const failure = result.failed.find((f) => f.path === root);
      const was = unreadable.get(root);
      if (failure) {
        if (was === failure.reason) continue;
        unreadable.set(root, failure.reason);
        const count = [...known.keys()].filter((f) => isWithin(f, root)).length;
        const message = `${root}: ${failure.reason}; the ${count} file(s) read from it before stay in force until it can be read again`;
        o.log(`source: ${message}`, { level: 'warn', path: root });
        events?.set(rootUnit(root), { documents: [], problems: [{ origin: { source: root, document: 0, line: 0 }, message }] });
      } else if (was !== undefined) {
        unreadable.delete(root);
        events?.delete(rootUnit(root));
        o.log(`source: ${root} can be read again`);
        // A folder made again is a new inode: its watch is made again too.
        restartWatch(root);
      }
    }
  };

  const flush = () => {
    clearTimeout(timer);
    timer = undefined;
    firstEventAt = undefined;
    const paths = [...pending];
    pending.clear();
    if (paths.length === 0 || closed) return;
    void serially(async () => applyScan(await scan(paths)));
  };
  const onEvent = (path: string) => {
    if (closed || o.dropEvent?.(path)) return;
    clearTimeout(suspects.get(path));
    suspects.delete(path);
    pending.add(path);
    const now = Date.now();
    firstEventAt ??= now;
    clearTimeout(timer);
    timer = setTimeout(flush, Math.max(0, Math.min(o.settleMs ?? 50, firstEventAt + (o.maxWaitMs ?? 1000) - now)));
  };

  /**
   * Changes the reconcile found that are younger than an event's longest way here: their event may
   * still come. They are applied at once, and count as missed only if no event names them by the deadline.
   */
  const suspects = new Map<string, NodeJS.Timeout>();
  const lateness = (o.maxWaitMs ?? 1000) + 1000;
  const missed = (file: string, kind: FileChange['kind']) => {
    o.log(`source: ${file} ${kind === 'gone' ? 'was removed' : 'changed'} without a file-system event; the reconcile applied it`, { level: 'warn', file });
    events?.drifted(file);
  };
  const reconcile = () =>
    serially(async () => {
      if (closed) return;
      const started = Date.now();
      const result = await scan(roots);
      for (const c of result.changes) {
        if (pending.has(c.file) || suspects.has(c.file)) continue;
        // A removal has no time of its own: like a recent change, it may still have its event on the way.
        if (c.kind !== 'content' || started - c.changedAt < lateness) {
          const t = setTimeout(() => {
            suspects.delete(c.file);
            missed(c.file, c.kind);
          }, lateness);
          t.unref();
          suspects.set(c.file, t);
        } else missed(c.file, c.kind);
      }
      applyScan(result);
    });

  const watchRoot = (root: string) => {
    let isDir = false;
    try {
      isDir = statSync(root).isDirectory();
    } catch {
      return; // not there now: the reconcile notices when it is back
    }
    const onError = (e: Error) => o.log(`source: watching ${root}: ${e.message}; changes are still found by the reconcile (every ${(o.reconcileMs ?? 5000) / 1000} s)`, { level: 'warn', path: root });
    watchers.set(root, watchTree(root, isDir, onEvent, onError));
  };
  const restartWatch = (root: string) => {
    watchers.get(root)?.close();
    watchers.delete(root);
    if (!closed) watchRoot(root);
  };

  return {
    name: `folder ${roots.join(', ')}`,
    async start(e) {
      events = e;
      for (const root of roots) {
        try {
          statSync(root);
        } catch (err) {
          const code = (err as NodeJS.ErrnoException).code;
          throw new StartupError(`--source ${root}: ${code === 'ENOENT' ? 'no such file or folder' : `cannot be read (${code ?? (err as Error).message})`}`);
        }
      }
      reader = startFolderReader(roots);
      // Watching starts before the first read: nothing written in between is missed.
      for (const root of roots) watchRoot(root);
      const first = await scan(roots);
      const failed = first.failed[0];
      if (failed) {
        await this.close();
        throw new StartupError(`--source ${failed.path}: ${failed.reason}`);
      }
      applyScan(first);
      e.synced();
      const every = o.reconcileMs ?? 5000;
      const tick = () => {
        reconcileTimer = setTimeout(() => void reconcile().finally(() => closed || tick()), every);
        reconcileTimer.unref();
      };
      tick();
    },
    // Every file is read again (whatever its stat says); a broken file still keeps its last good objects.
    resync: () => serially(async () => applyScan(await scan(roots, true))),
    async close() {
      closed = true;
      clearTimeout(timer);
      clearTimeout(reconcileTimer);
      for (const t of suspects.values()) clearTimeout(t);
      for (const w of watchers.values()) w.close();
      await chain.catch(() => undefined);
      await reader?.close();
    },
  };
}
