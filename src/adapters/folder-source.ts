import type { Log } from '../runtime/log.js';
import { watch, type FSWatcher } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import { dirname } from 'node:path';
import type { Source, SourceEvents, SourceUnit } from './source.js';
import { listFiles, parseText } from './yaml-files.js';

/**
 * The embedded default source: files and folders of YAML, read the way
 * `smc compile` reads them, and watched. A change is noticed through the
 * file system's events and confirmed by content (an editor's temporary
 * files and renames settle into one change per file):
 * - a new or changed file sets its unit; a deleted one removes it;
 * - a file that stops parsing keeps its last good objects in force, and its
 *   status and the log say so, until it parses again.
 */
export interface FolderSourceOptions {
  readonly paths: readonly string[];
  readonly log: Log;
  /** How long events settle before the folder is read again (default 50 ms). */
  readonly settleMs?: number;
}

interface Known {
  readonly hash: string;
  /** The last content that parsed without a problem, if any. */
  readonly good: SourceUnit | undefined;
}

export function createFolderSource(o: FolderSourceOptions): Source {
  const known = new Map<string, Known>();
  const watchers: FSWatcher[] = [];
  let events: SourceEvents | undefined;
  let timer: NodeJS.Timeout | undefined;
  let scanning: Promise<void> = Promise.resolve();
  let closed = false;

  const readAll = async (): Promise<void> => {
    const files = new Set<string>();
    for (const p of o.paths) {
      try {
        for (const f of await listFiles(p)) files.add(f);
      } catch (e) {
        o.log(`source: cannot read ${p}: ${(e as Error).message}`, { level: 'warn' });
      }
    }
    for (const file of [...files].sort()) {
      let text: string;
      try {
        text = await readFile(file, 'utf8');
      } catch {
        continue; // gone between listing and reading: the next scan removes it
      }
      const hash = createHash('sha256').update(text).digest('hex');
      const before = known.get(file);
      if (before?.hash === hash) continue;
      const parsed = parseText(text, file);
      if (parsed.problems.length === 0) {
        known.set(file, { hash, good: parsed });
        events?.set(file, parsed);
        if (before && !before.good) o.log(`source: ${file} parses again`);
        continue;
      }
      // Broken: what was in force stays in force, and the problems say so.
      const kept = before?.good;
      const note = kept ? '; its last good objects stay in force until it is fixed' : '';
      const problems = parsed.problems.map((p) => ({ ...p, message: `${p.message}${note}` }));
      known.set(file, { hash, good: kept });
      events?.set(file, kept ? { documents: kept.documents, problems } : { documents: parsed.documents, problems });
      for (const p of problems) o.log(`source: ${file}:${p.origin.line}: ${p.message}`, { level: 'warn', file });
    }
    for (const file of [...known.keys()]) {
      if (files.has(file)) continue;
      known.delete(file);
      events?.delete(file);
      o.log(`source: ${file} was removed; its objects leave the mesh`);
    }
  };
  const rescan = () => {
    scanning = scanning.then(readAll, readAll);
    return scanning;
  };
  const schedule = () => {
    if (closed) return;
    clearTimeout(timer);
    timer = setTimeout(() => void rescan(), o.settleMs ?? 50);
  };

  return {
    name: `folder ${o.paths.join(', ')}`,
    async start(e) {
      events = e;
      await rescan();
      e.synced();
      for (const p of o.paths) {
        // A file is watched through its folder: editors replace files rather than write them in place.
        const dir = (await stat(p).catch(() => undefined))?.isDirectory() ? p : dirname(p);
        try {
          const w = watch(dir, { recursive: true }, schedule);
          w.on('error', (err) => o.log(`source: watching ${dir} failed (${err.message}); send SIGHUP to read it again`, { level: 'error' }));
          watchers.push(w);
        } catch (err) {
          o.log(`source: cannot watch ${dir} (${(err as Error).message}); send SIGHUP to read it again`, { level: 'error' });
        }
      }
    },
    resync: () => {
      // Everything is read again; a broken file still keeps its last good objects.
      for (const [file, k] of known) known.set(file, { hash: '', good: k.good });
      return rescan();
    },
    async close() {
      closed = true;
      clearTimeout(timer);
      for (const w of watchers) w.close();
      await scanning;
    },
  };
}
