import { lstatSync, readdirSync, watch, type FSWatcher } from 'node:fs';
import { dirname, join } from 'node:path';
import { isWithin, isYamlFile } from './yaml-files.js';

/**
 * The folder source's watch: one `fs.watch` (inotify) per folder of a root,
 * and each event handed on as the path it names. An event costs what it
 * names: one `lstat` of that path (a folder made later is watched from then
 * on), never a listing of the folder it is in, however many files that
 * holds. What the paths mean is the reader's business (folder-reader.ts):
 * it reads the files named, lists the folders named, and forgets what is
 * gone. An event the kernel drops (or a watch that cannot be made) is made
 * up for by the source's periodic reconcile.
 *
 * What is handed on, as the reader lists: YAML files, links, hidden names at
 * the end (a ConfigMap volume's `..data` switching over), folders, and
 * whatever is gone; not other files (an editor's or `sed -i`'s temporary
 * file while it exists), and nothing inside a hidden folder (`.git`), which
 * is not watched.
 * A root that is a file is watched through its folder (editors replace
 * files), and only events naming it count.
 */
export interface TreeWatch {
  close(): void;
}

export function watchTree(root: string, isDir: boolean, onPath: (path: string) => void, onError: (e: Error) => void): TreeWatch {
  const watchers = new Map<string, FSWatcher>();
  let closed = false;

  const unwatch = (dir: string) => {
    for (const [d, w] of watchers) {
      if (!isWithin(d, dir)) continue;
      w.close();
      watchers.delete(d);
    }
  };

  /** Watches `dir` and, for a root that is a folder, every folder below it that is not hidden (links are not followed). */
  const add = (dir: string) => {
    if (closed || watchers.has(dir)) return;
    let w: FSWatcher;
    try {
      w = watch(dir, { persistent: true }, (_type, name) => seen(dir, name === null ? undefined : String(name)));
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      // A folder gone before it could be watched has nothing to watch; anything else (ENOSPC: no inotify watches left) is said.
      if (code !== 'ENOENT' && code !== 'ENOTDIR') onError(e as Error);
      return;
    }
    w.on('error', (e: Error) => {
      w.close();
      if (watchers.get(dir) === w) watchers.delete(dir);
      onError(e);
    });
    watchers.set(dir, w);
    if (!isDir) return;
    let entries;
    try {
      entries = readdirSync(dir, { withFileTypes: true });
    } catch {
      return; // gone or unreadable: the reconcile says so
    }
    for (const entry of entries) if (entry.isDirectory() && !entry.name.startsWith('.')) add(join(dir, entry.name));
  };

  const seen = (dir: string, name: string | undefined) => {
    if (closed) return;
    // No name: something happened to the folder itself.
    if (name === undefined) return onPath(dir);
    const path = join(dir, name);
    if (!isDir) {
      if (path === root) onPath(path);
      return;
    }
    let info;
    try {
      info = lstatSync(path);
    } catch {
      // Gone: a file the reader read, a folder (and what was watched under it), or something it never read (the reader knows).
      unwatch(path);
      return onPath(path);
    }
    if (info.isDirectory()) {
      if (name.startsWith('.')) return;
      add(path);
      return onPath(path);
    }
    if (isYamlFile(name) || name.startsWith('.') || info.isSymbolicLink()) onPath(path);
  };

  add(isDir ? root : dirname(root));
  return {
    close() {
      closed = true;
      for (const w of watchers.values()) w.close();
      watchers.clear();
    },
  };
}
