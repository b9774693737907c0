import { isDeepStrictEqual } from 'node:util';
import type { InputDocument } from '../compiler/inputs.js';
import type { ObjectCheck } from '../compiler/decode/index.js';
import type { SourceUnit } from './source.js';

/**
 * "Last good" for policy objects on a running controller. When a new version
 * of an SMI or smc object is rejected (a misspelt field, a wrong type), the
 * version accepted before it stays in force, and its status says so; a new
 * object that is rejected is simply not applied. What counts is what
 * decoding says of the object alone (`checkDocument`), which is what every
 * compile says of it. Versions are kept per unit (a file, a Kubernetes
 * object) and by the object's group, kind, namespace and name, in memory: a
 * restarted controller applies what is valid at its start.
 */
export interface LastAccepted {
  /**
   * `content` as it is to be compiled: each rejected object with an accepted
   * version in the same unit is replaced by that version, and the document
   * carries why (`held`). `checks` are `checkDocument` of each document.
   */
  hold(unit: string, content: SourceUnit, checks: readonly (readonly ObjectCheck[])[]): SourceUnit;
  /** The unit is gone: its versions with it. */
  forget(unit: string): void;
}

interface Accepted {
  readonly value: unknown;
  readonly at: string;
}

export function createLastAccepted(now: () => Date = () => new Date()): LastAccepted {
  const units = new Map<string, ReadonlyMap<string, Accepted>>();
  return {
    hold(unit, content, checks) {
      const before = units.get(unit);
      const after = new Map<string, Accepted>();
      let changed = false;
      const documents = content.documents.map((doc, i): InputDocument => {
        let value = doc.value;
        let held: Record<string, { acceptedAt: string; problems: ObjectCheck['problems'] & object }> | undefined;
        for (const c of checks[i] ?? []) {
          const current = objectAt(doc.value, c.path);
          const was = before?.get(c.identity);
          if (!c.problems) {
            // The same version as before keeps the time it was first accepted.
            after.set(c.identity, was && isDeepStrictEqual(was.value, current) ? was : { value: current, at: now().toISOString().replace(/\.\d+Z$/, 'Z') });
            continue;
          }
          if (!was) continue;
          after.set(c.identity, was);
          value = replaceAt(value, c.path, was.value);
          (held ??= {})[c.path] = { acceptedAt: was.at, problems: c.problems };
        }
        if (!held) return doc;
        changed = true;
        return { ...doc, value, held };
      });
      if (after.size > 0) units.set(unit, after);
      else units.delete(unit);
      return changed ? { documents, problems: content.problems } : content;
    },
    forget: (unit) => void units.delete(unit),
  };
}

/** The object at `path` (`""`, or `items[3].` and so on) of a document's value. */
function objectAt(value: unknown, path: string): unknown {
  let at = value;
  for (const m of path.matchAll(/items\[(\d+)\]\./g)) at = (at as { items: unknown[] }).items[Number(m[1])];
  return at;
}

/** A copy of `value` with the object at `path` replaced. */
function replaceAt(value: unknown, path: string, replacement: unknown): unknown {
  const m = /^items\[(\d+)\]\.(.*)$/.exec(path);
  if (!m) return replacement;
  const list = value as { items: unknown[] };
  const i = Number(m[1]);
  return { ...list, items: list.items.map((item, j) => (j === i ? replaceAt(item, m[2]!, replacement) : item)) };
}
