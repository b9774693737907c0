import * as t from 'io-ts';
import { isRight } from 'fp-ts/lib/Either.js';
import type { DecodeProblem } from './report.js';
import { objectProps } from './common.js';
import { didYouMean } from '../did-you-mean.js';

export { didYouMean };

/**
 * Strict field validation, as `kubectl apply --validate=strict` does it: a
 * field the codec does not know is an error, never silently dropped. In a
 * policy object a dropped field can widen access (`header:` for `headers:`
 * removes a header condition), so SMI and smc kinds are checked with this.
 *
 * The walk follows the codec's own shape (the same codecs that decode), so
 * the known fields are never listed twice.
 */

/** Fields of Kubernetes ObjectMeta; their values are not checked further. */
const OBJECT_META_FIELDS = [
  'name', 'generateName', 'namespace', 'selfLink', 'uid', 'resourceVersion', 'generation', 'creationTimestamp',
  'deletionTimestamp', 'deletionGracePeriodSeconds', 'labels', 'annotations', 'ownerReferences', 'finalizers', 'managedFields',
];
/** Top-level fields every object may carry besides its codec's (status is the controller's to write). */
const TOP_LEVEL_FIELDS = ['apiVersion', 'kind', 'status'];

export function unknownFields(codec: t.Decoder<unknown, unknown>, value: unknown): DecodeProblem[] {
  const out: DecodeProblem[] = [];
  walk(codec as t.Mixed, value, '', out, true);
  return out;
}

function walk(codec: t.Mixed, value: unknown, path: string, out: DecodeProblem[], top = false): void {
  if (value === null || value === undefined) return;
  if (codec instanceof t.UnionType) {
    const members = (codec.types as t.Mixed[]).filter((m) => !(m instanceof t.NullType));
    // The branch the value decodes as; with one candidate, that one (its decode errors are reported elsewhere).
    const branch = members.find((m) => isRight(m.decode(value))) ?? (members.length === 1 ? members[0] : undefined);
    if (branch) walk(branch, value, path, out, top);
    return;
  }
  if (codec instanceof t.ArrayType) {
    if (Array.isArray(value)) value.forEach((v, i) => walk(codec.type as t.Mixed, v, `${path}[${i}]`, out));
    return;
  }
  const props = objectProps(codec);
  if (!props || typeof value !== 'object' || Array.isArray(value)) return;
  for (const [key, v] of Object.entries(value as Record<string, unknown>)) {
    const p = path === '' ? key : `${path}.${key}`;
    if (top && key === 'metadata') {
      checkNames(v, p, OBJECT_META_FIELDS, out);
      continue;
    }
    const field = props[key];
    if (field) walk(field, v, p, out);
    else if (!(top && TOP_LEVEL_FIELDS.includes(key))) out.push(unknown(p, key, Object.keys(props)));
  }
}

function checkNames(value: unknown, path: string, known: readonly string[], out: DecodeProblem[]): void {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return;
  for (const key of Object.keys(value)) if (!known.includes(key)) out.push(unknown(`${path}.${key}`, key, known));
}

function unknown(path: string, key: string, known: readonly string[]): DecodeProblem {
  const close = didYouMean(key, known);
  const hint = close ? `; did you mean "${close}"?` : known.length <= 8 ? ` (known fields: ${known.join(', ')})` : '';
  return { path, message: `unknown field "${path}"${hint}` };
}
