import { readdir, readFile, stat } from 'node:fs/promises';
import { extname, join, relative } from 'node:path';
import { isMap, isNode, isSeq, LineCounter, parseAllDocuments } from 'yaml';
import type { InputDocument, InputProblem, MeshInputs } from '../compiler/inputs.js';

/**
 * Reads files or folders of YAML/JSON the way `kubectl apply -f` takes them:
 * `.yaml`, `.yml` and `.json`, folders recursively, several documents per
 * file. Each document keeps its origin (file, index, line) for messages.
 * A file that does not parse becomes a problem, not an exception: the other
 * files still count.
 */
const EXTENSIONS = new Set(['.yaml', '.yml', '.json']);

/**
 * The yaml library's `maxAliasCount` bounds (uses of aliases) x (aliases
 * nested inside the anchored node): plain reuse of an anchor hundreds of times
 * stays far below it, while nested alias bombs exceed it at once.
 */
const MAX_ALIAS_EXPANSION = 10_000;

export interface LoadOptions {
  /** Origins are written relative to this folder (stable golden output). */
  readonly relativeTo?: string;
}

export class PathNotFoundError extends Error {}

export async function loadPaths(paths: readonly string[], options: LoadOptions = {}): Promise<MeshInputs> {
  const files: string[] = [];
  for (const p of paths) files.push(...(await listFiles(p)));
  const documents: InputDocument[] = [];
  const problems: InputProblem[] = [];
  for (const file of [...new Set(files)].sort()) {
    const source = options.relativeTo ? relative(options.relativeTo, file) : file;
    const text = await readFile(file, 'utf8');
    const parsed = parseText(text, source);
    documents.push(...parsed.documents);
    problems.push(...parsed.problems);
  }
  return { documents, problems };
}

/** The files `kubectl apply -f` would read under `path` (a file, or a folder recursively), sorted. */
export async function listFiles(path: string): Promise<string[]> {
  let info;
  try {
    info = await stat(path);
  } catch {
    throw new PathNotFoundError(`${path}: no such file or folder`);
  }
  if (info.isFile()) return [path];
  const out: string[] = [];
  for (const entry of (await readdir(path, { withFileTypes: true })).sort((a, b) => (a.name < b.name ? -1 : 1))) {
    if (entry.name.startsWith('.')) continue;
    const child = join(path, entry.name);
    if (entry.isDirectory()) out.push(...(await listFiles(child)));
    else if (entry.isFile() && EXTENSIONS.has(extname(entry.name).toLowerCase())) out.push(child);
  }
  return out;
}

/** Parses one file's text; exported for sources that are not files. */
export function parseText(text: string, source: string): { documents: InputDocument[]; problems: InputProblem[] } {
  const lineCounter = new LineCounter();
  const docs = parseAllDocuments(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  const documents: InputDocument[] = [];
  const problems: InputProblem[] = [];
  const list = Array.isArray(docs) ? docs : [docs];
  list.forEach((doc, index) => {
    const start = doc.contents?.range?.[0] ?? doc.range[0];
    const origin = { source, document: index, line: lineCounter.linePos(start).line };
    if (doc.errors.length > 0) {
      const e = doc.errors[0]!;
      const line = lineCounter.linePos(e.pos[0]).line;
      problems.push({ origin: { ...origin, line }, message: `YAML syntax error: ${e.message.split('\n')[0]}` });
      return;
    }
    let value: unknown;
    try {
      value = doc.toJS({ maxAliasCount: MAX_ALIAS_EXPANSION });
    } catch (e) {
      // The yaml library refuses alias expansion past the bound ("billion laughs"); that is this document's problem only.
      const reason = e instanceof ReferenceError ? `its aliases expand past ${MAX_ALIAS_EXPANSION} nodes (a "billion laughs" document?)` : (e as Error).message;
      problems.push({ origin, message: `YAML document not read: ${reason}` });
      return;
    }
    // An empty document (a stray `---`) is not an object anyone wrote.
    if (value === null || value === undefined) return;
    // The items of a List (what `kubectl get -o yaml` writes) are named by their own lines.
    const items = isMap(doc.contents) ? doc.contents.get('items', true) : undefined;
    const itemLines = isSeq(items) ? items.items.map((n) => (isNode(n) && n.range ? lineCounter.linePos(n.range[0]).line : origin.line)) : undefined;
    documents.push({ origin, value, ...(itemLines ? { itemLines } : {}) });
  });
  return { documents, problems };
}
