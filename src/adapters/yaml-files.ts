import { readdirSync, statSync } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { extname, join, relative, sep } from 'node:path';
import { isAlias, isCollection, isMap, isNode, isPair, isScalar, isSeq, LineCounter, parseAllDocuments, type Document, type Node as YamlNode } from 'yaml';
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

/**
 * Keys one YAML map may hold. No Kubernetes object comes near it; a map past
 * it is refused before it is turned into an object (its document is a
 * problem), so a hostile or broken file costs a bounded amount of work.
 */
export const MAX_KEYS_PER_MAP = 10_000;

export interface LoadOptions {
  /** Origins are written relative to this folder (stable golden output). */
  readonly relativeTo?: string;
}

export class PathNotFoundError extends Error {}

export async function loadPaths(paths: readonly string[], options: LoadOptions = {}): Promise<MeshInputs> {
  const files: string[] = [];
  for (const p of paths) files.push(...listFiles(p));
  const documents: InputDocument[] = [];
  const problems: InputProblem[] = [];
  for (const file of [...new Set(files)].sort()) {
    const source = options.relativeTo ? relative(options.relativeTo, file) : file;
    const size = (await stat(file)).size;
    if (size > MAX_FILE_BYTES) {
      problems.push({ origin: { source, document: 0, line: 0 }, message: `not read: ${size} bytes; a file may hold at most ${MAX_FILE_BYTES}` });
      continue;
    }
    const text = await readFile(file, 'utf8');
    const parsed = parseText(text, source);
    documents.push(...parsed.documents);
    problems.push(...parsed.problems);
  }
  return { documents, problems };
}

/** The largest file read (8 MiB: etcd keeps a Kubernetes object under 1.5 MiB; a file may hold many). */
export const MAX_FILE_BYTES = 8 * 1024 * 1024;

export const isYamlFile = (name: string) => EXTENSIONS.has(extname(name).toLowerCase());

/** Whether `path` is `dir` or below it. */
export const isWithin = (path: string, dir: string) => path === dir || path.startsWith(dir.endsWith(sep) ? dir : dir + sep);

/**
 * The files `kubectl apply -f` would read under `path` (a file, or a folder
 * recursively), sorted: `.yaml`, `.yml` and `.json`, names starting with `.`
 * skipped. A symbolic link to a file is read (a ConfigMap volume is made of
 * them); one to a folder is not followed, so no link makes a loop.
 */
export function listFiles(path: string): string[] {
  let info;
  try {
    info = statSync(path);
  } catch {
    throw new PathNotFoundError(`${path}: no such file or folder`);
  }
  if (!info.isDirectory()) return [path];
  const out: string[] = [];
  listUnder(path, out);
  return out;
}

/** Appends the YAML files under folder `dir` to `out`, sorted (see listFiles). */
export function listUnder(dir: string, out: string[]): void {
  const entries = readdirSync(dir, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  for (const entry of entries) {
    if (entry.name.startsWith('.')) continue;
    const child = join(dir, entry.name);
    if (entry.isDirectory()) {
      try {
        listUnder(child, out);
      } catch {
        // A folder that vanished or cannot be read while listing: its files count when they can be read.
      }
    } else if (isYamlFile(entry.name) && (entry.isFile() || (entry.isSymbolicLink() && isFileBehindLink(child)))) out.push(child);
  }
}

function isFileBehindLink(path: string): boolean {
  try {
    return statSync(path).isFile();
  } catch {
    return false; // dangling, or a loop (ELOOP)
  }
}

/** Parses one file's text; exported for sources that are not files. */
export function parseText(text: string, source: string): { documents: InputDocument[]; problems: InputProblem[] } {
  return parseJsonDocuments(text, source) ?? parseYaml(text, source);
}

/**
 * A text of JSON objects between `---` lines (what `kubectl get -o json` and
 * generators write) read by `JSON.parse`, which gives for such text what
 * the YAML parser gives, many times faster. Undefined for anything else, and
 * whenever the two could differ: a comment or other YAML, a document that
 * is not one JSON object, an empty document, a repeated key, a map past
 * MAX_KEYS_PER_MAP, an `items` list (whose lines the YAML path gives).
 */
export function parseJsonDocuments(text: string, source: string): { documents: InputDocument[]; problems: InputProblem[] } | undefined {
  const first = text.search(/\S/);
  if (first < 0 || (text[first] !== '{' && text[first] !== '-')) return undefined;
  const documents: InputDocument[] = [];
  // Document markers: `---` alone on its line (anything after it, or a `...` end marker, is left to the YAML parser).
  const marker = /^(---|\.\.\.)([^\n]*)$/gm;
  let start = 0;
  // Lines are counted as documents are met, each character once.
  let line = 1;
  let counted = 0;
  const lineAt = (offset: number) => {
    for (; counted < offset; counted++) if (text.charCodeAt(counted) === 10) line++;
    return line;
  };
  const take = (end: number): boolean => {
    const part = text.slice(start, end);
    const at = part.search(/\S/);
    // Only blank before the first marker: no document (as the YAML parser counts them).
    if (at < 0) return start === 0 && end !== text.length;
    if (part[at] !== '{') return false;
    let value: unknown;
    try {
      value = JSON.parse(part);
    } catch {
      return false;
    }
    if (members(part) !== keysIn(value)) return false;
    if (Object.prototype.hasOwnProperty.call(value, 'items')) return false;
    documents.push({ origin: { source, document: documents.length, line: lineAt(start + at) }, value });
    return true;
  };
  for (let m = marker.exec(text); m !== null; m = marker.exec(text)) {
    if (m[1] !== '---' || m[2]!.trim() !== '') return undefined;
    if (!take(m.index)) return undefined;
    start = m.index + m[0].length;
  }
  if (!take(text.length)) return undefined;
  return { documents, problems: [] };
}

/** How many members the objects of a JSON text have in all: its colons outside strings. */
function members(json: string): number {
  let n = 0;
  let inString = false;
  for (let i = 0; i < json.length; i++) {
    const c = json.charCodeAt(i);
    if (inString) {
      if (c === 92) i++; // a backslash escapes the next character
      else if (c === 34) inString = false;
    } else if (c === 34) inString = true;
    else if (c === 58) n++;
  }
  return n;
}

/** How many keys the objects of a parsed JSON value have in all; -1 past MAX_KEYS_PER_MAP in one object. */
function keysIn(value: unknown): number {
  let n = 0;
  const stack: unknown[] = [value];
  while (stack.length > 0) {
    const v = stack.pop();
    if (v === null || typeof v !== 'object') continue;
    if (Array.isArray(v)) {
      for (const x of v) stack.push(x);
      continue;
    }
    const keys = Object.keys(v);
    if (keys.length > MAX_KEYS_PER_MAP) return -1;
    n += keys.length;
    for (const k of keys) stack.push((v as Record<string, unknown>)[k]);
  }
  return n;
}

/** Exported for the test that holds the JSON path to it. */
export function parseYaml(text: string, source: string): { documents: InputDocument[]; problems: InputProblem[] } {
  const lineCounter = new LineCounter();
  // The yaml library's own duplicate-key check compares every key with every other (40,000 keys: 13 s);
  // duplicates are found here instead, in one pass with a set per map.
  let docs: Document.Parsed[];
  try {
    docs = parseAllDocuments(text, { lineCounter, prettyErrors: false, uniqueKeys: false }) as Document.Parsed[];
  } catch (e) {
    // Nesting deep enough to exhaust the parser's stack, say: the file is one problem.
    return { documents: [], problems: [{ origin: { source, document: 0, line: 0 }, message: `YAML not read: ${(e as Error).message.split('\n')[0]}` }] };
  }
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
    const keys = keyProblem(doc.contents);
    if (keys) {
      problems.push({ origin: { ...origin, line: keys.at === undefined ? origin.line : lineCounter.linePos(keys.at).line }, message: keys.message });
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

/**
 * The first map of `root` that repeats a key (as the object it becomes would
 * see it: `1` and `"1"` are the same key) or holds more than
 * MAX_KEYS_PER_MAP keys. One pass over the nodes, without recursion.
 */
function keyProblem(root: unknown): { message: string; at?: number } | undefined {
  const stack: unknown[] = [root];
  while (stack.length > 0) {
    const node = stack.pop();
    if (!isCollection(node)) continue;
    if (isMap(node)) {
      if (node.items.length > MAX_KEYS_PER_MAP) return { message: `YAML document not read: a map of ${node.items.length} keys (at most ${MAX_KEYS_PER_MAP})`, at: node.range?.[0] };
      const seen = new Set<string>();
      for (const pair of node.items) {
        if (!isPair(pair)) continue;
        const key = keyText(pair.key);
        if (seen.has(key)) return { message: `YAML syntax error: Map keys must be unique; ${JSON.stringify(key)} is repeated`, at: (pair.key as YamlNode | null)?.range?.[0] };
        seen.add(key);
        stack.push(pair.key, pair.value);
      }
    } else for (const item of node.items) stack.push(item);
  }
  return undefined;
}

function keyText(key: unknown): string {
  if (key === null || key === undefined) return '';
  if (isScalar(key)) return String(key.value);
  if (isAlias(key)) return `*${key.source}`;
  try {
    return JSON.stringify((key as YamlNode).toJSON());
  } catch {
    return String(key);
  }
}
