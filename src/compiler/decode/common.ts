import * as t from 'io-ts';
import { isRight } from 'fp-ts/lib/Either.js';
import { reportErrors, type DecodeProblem } from './report.js';

/**
 * Building blocks shared by every kind's codec. Kubernetes treats a field set
 * to `null` like an absent one, so every optional field accepts null too.
 */

export type Decoded<A> = { readonly ok: true; readonly value: A } | { readonly ok: false; readonly problems: DecodeProblem[] };

export function decodeWith<A>(codec: t.Decoder<unknown, A>, value: unknown): Decoded<A> {
  const result = codec.decode(value);
  return isRight(result) ? { ok: true, value: result.right } : { ok: false, problems: reportErrors(result.left) };
}

/** What each field of an object codec means, for the CRDs' schemas (`kubectl explain`); `metadata` describes itself. */
export type FieldDocs<R extends t.Props, O extends t.Props> = { readonly [K in Exclude<keyof R | keyof O, 'metadata'>]: string };
const DOCS = new WeakMap<t.Mixed, Readonly<Record<string, string>>>();

/**
 * An object with required and optional fields; optional ones may be null.
 * `docs` says what each field means: the CRDs' schemas are generated from
 * these codecs (output/crds.ts), so a policy kind's field is described here,
 * next to its definition, or the generation refuses it.
 */
export function struct<R extends t.Props, O extends t.Props>(
  name: string,
  required: R,
  optional: O,
  docs?: FieldDocs<R, O>,
): t.Type<t.TypeOfProps<R> & { [K in keyof O]?: t.TypeOf<O[K]> | null }, unknown, unknown> {
  const nullable: t.Props = {};
  for (const [k, c] of Object.entries(optional)) nullable[k] = t.union([c, t.null], c.name);
  // The cast only widens optional members to `| null`, which is what `nullable` accepts.
  const codec = t.intersection([t.type(required), t.partial(nullable)], name) as never as t.Mixed;
  if (docs) DOCS.set(codec, docs);
  return codec as never;
}

/** The field descriptions given to `struct`, if any. */
export const fieldDocs = (codec: t.Mixed): Readonly<Record<string, string>> | undefined => DOCS.get(codec);

/** The OpenAPI schema of a scalar codec built here (io-ts cannot say that a string is a port number). */
const SCHEMAS = new WeakMap<t.Mixed, Readonly<Record<string, unknown>>>();
export const withSchema = <C extends t.Mixed>(codec: C, schema: Readonly<Record<string, unknown>>): C => {
  SCHEMAS.set(codec, schema);
  return codec;
};
export const scalarSchema = (codec: t.Mixed): Readonly<Record<string, unknown>> | undefined => SCHEMAS.get(codec);

export const nonEmptyString = withSchema(new t.Type<string, string, unknown>(
  'non-empty string',
  (u): u is string => typeof u === 'string' && u.length > 0,
  (u, c) => (typeof u === 'string' && u.length > 0 ? t.success(u) : t.failure(u, c)),
  t.identity,
), { type: 'string', minLength: 1 });

export const integer = withSchema(new t.Type<number, number, unknown>(
  'integer',
  (u): u is number => typeof u === 'number' && Number.isInteger(u),
  (u, c) => (typeof u === 'number' && Number.isInteger(u) ? t.success(u) : t.failure(u, c)),
  t.identity,
), { type: 'integer' });

export const port = withSchema(new t.Type<number, number, unknown>(
  'port number (1-65535)',
  (u): u is number => typeof u === 'number' && Number.isInteger(u) && u >= 1 && u <= 65535,
  (u, c) => (typeof u === 'number' && Number.isInteger(u) && u >= 1 && u <= 65535 ? t.success(u) : t.failure(u, c)),
  t.identity,
), { type: 'integer', minimum: 1, maximum: 65535 });

/** A port given as a number, or as a string of digits (TrafficTarget v1alpha1 uses a string). */
export const portLike = withSchema(new t.Type<number, number, unknown>(
  'port number (1-65535)',
  (u): u is number => port.is(u),
  (u, c) => {
    const n = typeof u === 'string' && /^\d+$/.test(u) ? Number(u) : u;
    return port.is(n) ? t.success(n) : t.failure(u, c);
  },
  t.identity,
), { 'x-kubernetes-int-or-string': true });

export const stringMap = t.record(t.string, t.string, 'map of string to string');

export const objectMeta = withSchema(struct(
  'ObjectMeta',
  { name: nonEmptyString },
  {
    namespace: t.string,
    labels: stringMap,
    annotations: stringMap,
    creationTimestamp: t.string,
    uid: t.string,
  },
), { type: 'object', description: "The object's name, namespace, labels and annotations (Kubernetes ObjectMeta)." });

/** Metadata after normalisation: namespace defaulted, labels never absent. */
export interface Meta {
  readonly namespace: string;
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  /** RFC 3339 text as given; compared as text, which orders RFC 3339 UTC times correctly. */
  readonly creationTimestamp: string;
}

export function normaliseMeta(meta: t.TypeOf<typeof objectMeta>, clusterScoped = false): Meta {
  return {
    namespace: clusterScoped ? '' : meta.namespace || 'default',
    name: meta.name,
    labels: meta.labels ?? {},
    creationTimestamp: meta.creationTimestamp ?? '',
  };
}

/** Kubernetes-style IPv4 or IPv6 address text. */
export function isIpAddress(s: string): boolean {
  const v4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;
  if (v4.test(s)) return true;
  if (!/^[0-9a-fA-F:.]+$/.test(s) || !s.includes(':')) return false;
  const parts = s.split('::');
  if (parts.length > 2) return false;
  const groups = parts.flatMap((p) => (p === '' ? [] : p.split(':')));
  const ok = groups.every((g, i) => /^[0-9a-fA-F]{1,4}$/.test(g) || (i === groups.length - 1 && v4.test(g)));
  return ok && (parts.length === 2 ? groups.length < 8 : groups.length === 8);
}

export const ipAddress = withSchema(new t.Type<string, string, unknown>(
  'IP address',
  (u): u is string => typeof u === 'string' && isIpAddress(u),
  (u, c) => (typeof u === 'string' && isIpAddress(u) ? t.success(u) : t.failure(u, c)),
  t.identity,
), { type: 'string' });

export function literalUnion<const V extends readonly [string, string, ...string[]]>(values: V, name?: string) {
  const [a, b, ...rest] = values;
  return t.union(
    [t.literal(a), t.literal(b), ...rest.map((v) => t.literal(v))] as unknown as [t.LiteralC<V[number]>, t.LiteralC<V[number]>],
    name ?? `one of ${values.map((v) => JSON.stringify(v)).join(', ')}`,
  );
}

/** The props of an object codec (`t.type`, `t.partial`, `t.exact`, or an intersection of them); undefined for anything else. */
export function objectProps(codec: t.Mixed): t.Props | undefined {
  if (codec instanceof t.InterfaceType || codec instanceof t.PartialType) return codec.props as t.Props;
  if (codec instanceof t.ExactType) return objectProps(codec.type as t.Mixed);
  if (codec instanceof t.IntersectionType) {
    const merged: t.Props = {};
    for (const m of codec.types as t.Mixed[]) {
      const p = objectProps(m);
      if (!p) return undefined;
      Object.assign(merged, p);
    }
    return merged;
  }
  return undefined;
}
