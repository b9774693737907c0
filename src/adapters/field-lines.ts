import { readFileSync, statSync } from 'node:fs';
import { LineCounter, parseAllDocuments, isMap, isSeq, isScalar, type Node } from 'yaml';
import type { Origin } from '../compiler/inputs.js';

/**
 * The line of a field inside a file's document, for problems: a misspelt
 * field on line 7 is reported at line 7, not at the document's first line.
 * Read only when a problem is printed (the compiler keeps no positions), from
 * the file as it is now; a file that changed since (size or time) is read
 * again. Anything that cannot be followed (a source that is no file, a path
 * the document no longer has) gives undefined, and the document's line stands.
 */
interface Parsed {
  readonly size: number;
  readonly mtimeMs: number;
  readonly documents: ReturnType<typeof parseAllDocuments>;
  readonly lines: LineCounter;
}
const cache = new Map<string, Parsed>();
const MAX_BYTES = 4 * 1024 * 1024;

function parsed(source: string): Parsed | undefined {
  let stat;
  try {
    stat = statSync(source);
  } catch {
    return undefined;
  }
  if (!stat.isFile() || stat.size > MAX_BYTES) return undefined;
  const hit = cache.get(source);
  if (hit && hit.size === stat.size && hit.mtimeMs === stat.mtimeMs) return hit;
  const lines = new LineCounter();
  const documents = parseAllDocuments(readFileSync(source, 'utf8'), { lineCounter: lines });
  const entry = { size: stat.size, mtimeMs: stat.mtimeMs, documents, lines };
  if (cache.size > 256) cache.clear();
  cache.set(source, entry);
  return entry;
}

/** `spec.rules[0].matchs` as keys and indices. */
const steps = (path: string): (string | number)[] => [...path.matchAll(/([^.[\]]+)|\[(\d+)\]/g)].map((m) => (m[2] !== undefined ? Number(m[2]) : m[1]!));

export function fieldLine(origin: Origin, path: string): number | undefined {
  if (path === '') return undefined;
  const file = parsed(origin.source);
  if (!file) return undefined;
  const docs = Array.isArray(file.documents) ? file.documents : [file.documents];
  let node: Node | null | undefined = docs[origin.document]?.contents as Node | null | undefined;
  let at: number | undefined;
  for (const step of steps(path)) {
    if (typeof step === 'number' && isSeq(node)) node = node.items[step] as Node | undefined;
    else if (typeof step === 'string' && isMap(node)) {
      const pair = node.items.find((p) => isScalar(p.key) && String(p.key.value) === step);
      if (!pair) return at === undefined ? undefined : file.lines.linePos(at).line;
      // The key's own line: where the field is written.
      at = (pair.key as Node).range?.[0];
      node = pair.value as Node | null;
      continue;
    } else return at === undefined ? undefined : file.lines.linePos(at).line;
    at = node?.range?.[0] ?? at;
  }
  return at === undefined ? undefined : file.lines.linePos(at).line;
}
