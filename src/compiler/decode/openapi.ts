import * as t from 'io-ts';
import { fieldDocs, objectProps, scalarSchema } from './common.js';

/**
 * OpenAPI v3 schemas, in the structural subset Kubernetes requires of a CRD,
 * derived from the codecs that decode each kind: the API server and smc then
 * know the same fields. Every field of an object codec must be described
 * (`struct`'s `docs`); a codec this walk cannot express is an error, so a new
 * kind of codec is noticed when the CRDs are generated, not in a cluster.
 */
export interface Schema {
  readonly type?: 'object' | 'array' | 'string' | 'integer' | 'number' | 'boolean';
  readonly description?: string;
  readonly properties?: Readonly<Record<string, Schema>>;
  readonly required?: readonly string[];
  readonly items?: Schema;
  readonly additionalProperties?: Schema;
  readonly enum?: readonly unknown[];
  readonly minimum?: number;
  readonly maximum?: number;
  readonly minLength?: number;
  readonly 'x-kubernetes-int-or-string'?: true;
  readonly 'x-kubernetes-preserve-unknown-fields'?: true;
}

/** The schema of `codec`; `path` names the field in errors. */
export function schemaOf(codec: t.Mixed, path: string): Schema {
  const scalar = scalarSchema(codec);
  if (scalar) return scalar as Schema;
  if (codec instanceof t.StringType) return { type: 'string' };
  if (codec instanceof t.NumberType) return { type: 'number' };
  if (codec instanceof t.BooleanType) return { type: 'boolean' };
  if (codec instanceof t.LiteralType) return literal([codec.value as unknown]);
  if (codec instanceof t.ArrayType) return { type: 'array', items: schemaOf(codec.type as t.Mixed, `${path}[]`) };
  if (codec instanceof t.DictionaryType) return { type: 'object', additionalProperties: schemaOf(codec.codomain as t.Mixed, `${path}.*`) };
  if (codec instanceof t.UnionType) {
    const members = (codec.types as t.Mixed[]).filter((m) => !(m instanceof t.NullType));
    if (members.every((m) => m instanceof t.LiteralType)) return literal(members.map((m) => (m as t.LiteralType<string>).value));
    return members.map((m) => schemaOf(m, path)).reduce(merge);
  }
  const props = objectProps(codec);
  if (props) {
    const docs = describedFields(codec);
    const properties: Record<string, Schema> = {};
    for (const [key, field] of Object.entries(props)) {
      const at = path === '' ? key : `${path}.${key}`;
      const schema = schemaOf(field as t.Mixed, at);
      // A field's own description, or its codec's (ObjectMeta says what it is wherever it is used).
      const description = docs[key] ?? schema.description;
      if (!description) throw new Error(`schema: the field ${at} (${codec.name}) has no description; give it one in its struct's docs`);
      properties[key] = { description, ...schema };
    }
    const required = requiredFields(codec);
    return { type: 'object', properties, ...(required.length > 0 ? { required } : {}) };
  }
  throw new Error(`schema: no OpenAPI schema for the codec "${codec.name}" at ${path || 'the top level'}`);
}

function literal(values: readonly unknown[]): Schema {
  const kinds = new Set(values.map((v) => typeof v));
  if (kinds.size !== 1 || !kinds.has('string')) return { 'x-kubernetes-preserve-unknown-fields': true };
  return { type: 'string', enum: values };
}

/** Field docs of an object codec: of the struct itself, or of the parts of an intersection. */
function describedFields(codec: t.Mixed): Readonly<Record<string, string>> {
  const own = fieldDocs(codec);
  if (own) return own;
  if (codec instanceof t.IntersectionType) return Object.assign({}, ...(codec.types as t.Mixed[]).map(describedFields)) as Record<string, string>;
  if (codec instanceof t.ExactType) return describedFields(codec.type as t.Mixed);
  return {};
}

/** Fields of `t.type` parts (struct's required ones). */
function requiredFields(codec: t.Mixed): string[] {
  if (codec instanceof t.InterfaceType) return Object.keys(codec.props as t.Props);
  if (codec instanceof t.ExactType) return requiredFields(codec.type as t.Mixed);
  if (codec instanceof t.IntersectionType) return (codec.types as t.Mixed[]).flatMap(requiredFields);
  return [];
}

const same = (a: Schema, b: Schema) => JSON.stringify(a) === JSON.stringify(b);
const anything = (description?: string): Schema => ({ ...(description ? { description } : {}), 'x-kubernetes-preserve-unknown-fields': true });

/**
 * One schema that accepts what `a` or `b` accepts, in the structural subset
 * (no oneOf): objects merge their fields (required only if both require it),
 * an integer or a string is `x-kubernetes-int-or-string`, and shapes that
 * cannot be one type (an object or a list) are left to smc to check.
 */
export function merge(a: Schema, b: Schema): Schema {
  if (same(a, b)) return a;
  const description = a.description ?? b.description;
  const d = description ? { description } : {};
  if (a['x-kubernetes-preserve-unknown-fields'] || b['x-kubernetes-preserve-unknown-fields']) return anything(description);
  const intOrString = (s: Schema) => s['x-kubernetes-int-or-string'] || s.type === 'integer' || s.type === 'string';
  if (a.type !== b.type) {
    if (intOrString(a) && intOrString(b)) return { ...d, 'x-kubernetes-int-or-string': true };
    if ((a.type === 'integer' && b.type === 'number') || (a.type === 'number' && b.type === 'integer')) return { ...d, type: 'number' };
    return anything(description);
  }
  switch (a.type) {
    case 'object': {
      if (a.additionalProperties || b.additionalProperties) {
        if (a.additionalProperties && b.additionalProperties && !a.properties && !b.properties) return { ...d, type: 'object', additionalProperties: merge(a.additionalProperties, b.additionalProperties) };
        return anything(description);
      }
      return mergeObjects([a, b], d);
    }
    case 'array':
      return { ...d, type: 'array', items: merge(a.items!, b.items!) };
    case 'string':
      return {
        ...d,
        type: 'string',
        ...(a.enum && b.enum ? { enum: [...new Set([...a.enum, ...b.enum])] } : {}),
        ...(a.minLength !== undefined && b.minLength !== undefined ? { minLength: Math.min(a.minLength, b.minLength) } : {}),
      };
    default:
      return {
        ...d,
        type: a.type,
        ...(a.minimum !== undefined && b.minimum !== undefined ? { minimum: Math.min(a.minimum, b.minimum) } : {}),
        ...(a.maximum !== undefined && b.maximum !== undefined ? { maximum: Math.max(a.maximum, b.maximum) } : {}),
      };
  }
}

function mergeObjects(objects: readonly Schema[], d: { description?: string }): Schema {
  return labelled(objects.map((s) => ({ s, label: '' })), d, false);
}

const plainObject = (s: Schema) => s.type === 'object' && s.properties !== undefined && s.additionalProperties === undefined;

/** Merges objects field by field; with `annotate`, a field not every one has says whose it is (their labels). */
function labelled(entries: readonly { s: Schema; label: string }[], d: { description?: string }, annotate: boolean): Schema {
  const keys = [...new Set(entries.flatMap((e) => Object.keys(e.s.properties ?? {})))];
  const properties: Record<string, Schema> = {};
  for (const key of keys) {
    const having = entries.flatMap((e) => (e.s.properties?.[key] ? [{ s: e.s.properties[key], label: e.label }] : []));
    const first = having[0]!.s;
    let s = having.length > 1 && having.every((h) => plainObject(h.s))
      ? labelled(having, first.description ? { description: first.description } : {}, annotate)
      : having.map((h) => h.s).reduce(merge);
    if (annotate && having.length < entries.length) s = { ...s, description: `${s.description ?? ''} (${having.map((h) => h.label).sort().join(', ')} only)`.trim() };
    properties[key] = s;
  }
  const required = keys.filter((k) => entries.every((e) => e.s.required?.includes(k)));
  return { ...d, type: 'object', properties, ...(required.length > 0 ? { required } : {}) };
}

/**
 * One schema for every version of a kind. The CRDs have no conversion
 * webhook, so an object keeps the shape of the version it was written in
 * while the API server stores and serves it under another; each version's
 * schema must keep the fields of all of them, or the API server would prune
 * an older object's fields. A field only some versions have says which.
 */
export function mergeVersions(versions: readonly { name: string; schema: Schema }[]): Schema {
  const first = versions[0]!.schema;
  if (versions.length === 1) return first;
  if (!versions.every((v) => plainObject(v.schema))) return versions.map((v) => v.schema).reduce(merge);
  return labelled(versions.map((v) => ({ s: v.schema, label: v.name })), first.description ? { description: first.description } : {}, true);
}
