import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { dirname, join, relative } from 'node:path';
import { createTwoFilesPatch } from 'diff';
import type { OutputFiles } from './render.js';

/**
 * Expected-output folders: the regression check users run in their own CI
 * (`smc compile --check DIR`) and the project's own golden cases.
 */
export interface Difference {
  readonly path: string;
  readonly kind: 'changed' | 'missing' | 'unexpected';
  /** A unified diff, expected -> actual. */
  readonly diff: string;
}

export async function compareWithFolder(dir: string, actual: OutputFiles): Promise<Difference[]> {
  const existing = await listFolder(dir);
  const out: Difference[] = [];
  for (const [path, text] of [...actual.entries()].sort(([a], [b]) => (a < b ? -1 : 1))) {
    if (!existing.has(path)) {
      out.push({ path, kind: 'missing', diff: createTwoFilesPatch(`expected/${path}`, `actual/${path}`, '', text, '(absent)', '') });
      continue;
    }
    const expected = await readFile(join(dir, path), 'utf8');
    if (expected !== text) {
      out.push({ path, kind: 'changed', diff: createTwoFilesPatch(`expected/${path}`, `actual/${path}`, expected, text, '', '', { context: 3 }) });
    }
  }
  for (const path of [...existing].sort()) {
    if (!actual.has(path)) out.push({ path, kind: 'unexpected', diff: `expected/${path} is no longer produced\n` });
  }
  return out;
}

/**
 * Writes `files` into the folder. With `prune` (expected-output folders
 * only) it holds exactly `files` afterwards: outputs nobody produced are deleted.
 */
export async function writeFolder(dir: string, files: OutputFiles, options: { prune: boolean }): Promise<void> {
  if (options.prune) for (const path of await listFolder(dir)) if (!files.has(path)) await rm(join(dir, path));
  for (const [path, text] of files) {
    await mkdir(dirname(join(dir, path)), { recursive: true });
    await writeFile(join(dir, path), text);
  }
  await removeEmptyFolders(dir);
}

async function listFolder(dir: string): Promise<Set<string>> {
  const out = new Set<string>();
  const walk = async (d: string) => {
    let entries;
    try {
      entries = await readdir(d, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      const p = join(d, e.name);
      if (e.isDirectory()) await walk(p);
      else out.add(relative(dir, p));
    }
  };
  await walk(dir);
  return out;
}

async function removeEmptyFolders(dir: string): Promise<boolean> {
  let entries;
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch {
    return false;
  }
  let empty = true;
  for (const e of entries) {
    if (e.isDirectory() && (await removeEmptyFolders(join(dir, e.name)))) await rm(join(dir, e.name), { recursive: true });
    else empty = false;
  }
  return empty;
}
