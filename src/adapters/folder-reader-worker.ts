import { parentPort, workerData } from 'node:worker_threads';
import { createHash } from 'node:crypto';
import { closeSync, constants, fstatSync, lstatSync, openSync, readSync, statSync, type BigIntStats } from 'node:fs';
import { dirname } from 'node:path';
import { checkDocument, type ObjectCheck } from '../compiler/decode/index.js';
import { MEMBERSHIP_CODECS, project } from '../compiler/decode/project.js';
import type { InputDocument } from '../compiler/inputs.js';
import { isWithin, isYamlFile, listUnder, MAX_FILE_BYTES, parseText } from './yaml-files.js';
import type { FileChange, ReaderReply, ReaderRequest, ScanResult } from './folder-reader.js';

/**
 * The folder source's reader, in a thread of its own: listing, reading,
 * hashing and parsing YAML never hold the event loop that serves probes and
 * xDS (a file of 40,000 keys takes most of a second to parse). It keeps,
 * per file, what it last read (the file's stat and the hash of its bytes),
 * and answers with the files whose content changed since.
 */
interface Seen {
  /** inode, size, mtime and ctime: a file whose stat is the same was not written. */
  readonly stat: string;
  readonly hash: string;
  /** Written so close to when it was read that a later write could leave the same stat (mtime ticks are coarse). */
  readonly racy: boolean;
  /** What smc reads of the content (see `readOf`): content that differs only in what smc does not read is no change. */
  readonly read?: Read;
  /** What decoding said of each document's policy objects when `read` was delivered (see `checkDocument`). */
  readonly checks?: readonly ObjectCheck[][];
}

/** What smc reads of a file: each document's text (see `readOf`), and its problems'. */
interface Read {
  readonly documents: readonly string[];
  readonly problems: string;
}

const sameRead = (a: Read | undefined, b: Read): boolean => a !== undefined && a.problems === b.problems && a.documents.length === b.documents.length && a.documents.every((d, i) => d === b.documents[i]);

/**
 * The text of what smc reads of a file's documents: membership objects
 * (Pods, Services, ...) as far as their codecs read them, as the Kubernetes
 * source delivers them (decode/project.ts); every other document whole
 * (policy is strict: every field counts); each with where it is. A write
 * that changes only a Pod's status conditions leaves it the same.
 */
function readOf(documents: readonly InputDocument[], problems: readonly unknown[]): Read {
  return {
    documents: documents.map((d) => {
      const v = d.value as { apiVersion?: unknown; kind?: unknown } | null;
      const codec = v !== null && typeof v === 'object' && typeof v.kind === 'string' && typeof v.apiVersion === 'string' && MEMBERSHIP_API.has(v.apiVersion) ? MEMBERSHIP_CODECS[v.kind] : undefined;
      return JSON.stringify([d.origin, codec ? [v!.apiVersion, v!.kind, project(codec, v)] : d.value]);
    }),
    problems: JSON.stringify(problems),
  };
}
/** The API versions of Kubernetes' own membership kinds (a document of another version is read whole, and decoding says what is wrong with it). */
const MEMBERSHIP_API: ReadonlySet<string> = new Set(['v1', 'discovery.k8s.io/v1']);

const roots: readonly string[] = (workerData as { roots: string[] }).roots;
const seen = new Map<string, Seen>();

/** How close to its read a write may leave the same mtime: a kernel tick is 1-10 ms; one second is generous. */
const RACY_MS = 1000;

const statKey = (s: BigIntStats) => `${s.ino}:${s.size}:${s.mtimeNs}:${s.ctimeNs}`;
const errorCode = (e: unknown) => (e as NodeJS.ErrnoException).code ?? '';

/** A file that cannot be read is reported once, not at every look (it stays so until its stat says otherwise). */
function unreadable(file: string, reason: string): FileChange | undefined {
  const key = `unreadable: ${reason}`;
  if (seen.get(file)?.hash === key) return undefined;
  seen.set(file, { stat: '', hash: key, racy: false });
  return { file, kind: 'unreadable', reason };
}

/** Reads one file, if it changed. `undefined`: unchanged. */
function check(file: string, force: boolean): FileChange | undefined {
  let fd: number;
  try {
    // Without blocking: a FIFO or device named like a YAML file must not hold the reader.
    fd = openSync(file, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (e) {
    const code = errorCode(e);
    if (code === 'ENOENT' || code === 'ENOTDIR') return forget(file);
    return unreadable(file, `cannot be read (${code || (e as Error).message})`);
  }
  try {
    const s = fstatSync(fd, { bigint: true });
    if (!s.isFile()) return unreadable(file, 'is not a file');
    const stat = statKey(s);
    const was = seen.get(file);
    if (!force && was && was.stat === stat && !was.racy) return undefined;
    const now = Date.now();
    const racy = now - Number(s.mtimeNs / 1_000_000n) < RACY_MS;
    if (s.size > BigInt(MAX_FILE_BYTES)) {
      seen.set(file, { stat, hash: `size ${s.size}`, racy });
      return was?.hash === `size ${s.size}` ? undefined : { file, kind: 'unreadable', reason: `is ${s.size} bytes; a file of the source may hold at most ${MAX_FILE_BYTES}` };
    }
    const bytes = Buffer.alloc(Number(s.size));
    let length = 0;
    // A file that grew since its stat is read to the size the stat gave; the next event reads the rest.
    while (length < bytes.length) {
      const n = readSync(fd, bytes, length, bytes.length - length, length);
      if (n === 0) break;
      length += n;
    }
    const content = bytes.subarray(0, length);
    const hash = createHash('sha256').update(content).digest('hex');
    // The same bytes: what was read of them stays what it was.
    seen.set(file, { stat, hash, racy, ...(was?.read !== undefined && was.hash === hash ? { read: was.read, checks: was.checks } : {}) });
    if (was?.hash === hash) return undefined;
    const parsed = parseText(content.toString('utf8'), file);
    const read = readOf(parsed.documents, parsed.problems);
    if (sameRead(was?.read, read)) {
      seen.set(file, { stat, hash, racy, read, checks: was!.checks });
      return undefined;
    }
    // A document read as before, in its place (its text names it), is what decoding said of it before: a Pod moving in a
    // file that also holds a TrafficTarget of thousands of sources does not decode the TrafficTarget again.
    const checks: ObjectCheck[][] = parsed.documents.map((d, i) => (was?.checks !== undefined && was.read?.documents[i] === read.documents[i] ? was.checks[i]! : checkDocument(d)));
    seen.set(file, { stat, hash, racy, read, checks });
    return { file, kind: 'content', documents: parsed.documents, problems: parsed.problems, checks, changedAt: Number(s.ctimeNs / 1_000_000n) };
  } catch (e) {
    return unreadable(file, `cannot be read (${errorCode(e) || (e as Error).message})`);
  } finally {
    closeSync(fd);
  }
}

function forget(file: string): FileChange | undefined {
  return seen.delete(file) ? { file, kind: 'gone' } : undefined;
}

/** Every known file under `dir` that is not in `listed` is gone. */
function goneUnder(dir: string, listed: ReadonlySet<string>, out: FileChange[]): void {
  for (const file of [...seen.keys()]) {
    if (isWithin(file, dir) && !listed.has(file)) {
      seen.delete(file);
      out.push({ file, kind: 'gone' });
    }
  }
}

function scan(paths: readonly string[], force: boolean): ScanResult {
  const changes: FileChange[] = [];
  const failed: { path: string; reason: string }[] = [];
  const checkedFiles = new Set<string>();
  const checkFile = (file: string) => {
    if (checkedFiles.has(file)) return;
    checkedFiles.add(file);
    const c = check(file, force);
    if (c) changes.push(c);
  };
  const subtree = (dir: string) => {
    const listed: string[] = [];
    listUnder(dir, listed);
    for (const f of listed) checkFile(f);
    goneUnder(dir, new Set(listed), changes);
  };
  // Subtrees first and then files, each once: events name the same file many times over.
  const dirs = new Set<string>();
  const files = new Set<string>();
  for (const path of paths) {
    const root = roots.includes(path);
    if (root || !seen.has(path)) {
      let info;
      try {
        // A root given as a link to a folder is that folder; below it, links to folders are not followed.
        info = root ? statSync(path) : lstatSync(path);
      } catch (e) {
        const code = errorCode(e);
        if (root) failed.push({ path, reason: code === 'ENOENT' ? 'no such file or folder' : `cannot be read (${code || (e as Error).message})` });
        else goneUnder(path, new Set(), changes);
        continue;
      }
      if (info.isDirectory()) {
        dirs.add(path);
        continue;
      }
      // A link or an odd name (a ConfigMap's `..data` switching over) may change what files under its folder read.
      if (!root && (info.isSymbolicLink() || !isYamlFile(path))) {
        if (info.isSymbolicLink()) dirs.add(dirname(path));
        continue;
      }
      // Only regular files are read (listing skips the rest too).
      if (!root && !info.isFile()) continue;
    }
    files.add(path);
  }
  for (const dir of dirs) {
    try {
      subtree(dir);
    } catch (e) {
      if (roots.includes(dir)) failed.push({ path: dir, reason: `cannot be read (${errorCode(e) || (e as Error).message})` });
    }
  }
  for (const file of files) checkFile(file);
  return { changes, failed, files: seen.size };
}

parentPort!.on('message', (r: ReaderRequest) => {
  let reply: ReaderReply;
  try {
    reply = { id: r.id, result: scan(r.paths, r.force ?? false) };
  } catch (e) {
    reply = { id: r.id, error: (e as Error).stack ?? String(e) };
  }
  parentPort!.postMessage(reply);
});
