import * as t from 'io-ts';

/**
 * Turns io-ts validation errors into short messages such as
 * `spec.backends[0].weight: expected integer, got "80"`.
 *
 * io-ts reports one error per failing leaf, and for a union one per failing
 * branch; users want one line per field. So: intersection members are not
 * path segments, a failing union is reported once at the union's own path
 * with the union's name as the expectation, and duplicates are dropped.
 */
export interface DecodeProblem {
  readonly path: string;
  readonly message: string;
}

export function reportErrors(errors: t.Errors): DecodeProblem[] {
  const out = new Map<string, DecodeProblem>();
  for (const e of errors) {
    const described = describe(e.context);
    if (!described) continue;
    const { path, expected, actual } = described;
    if (!out.has(path)) out.set(path, { path, message: `expected ${words(expected)}, got ${show(actual)}` });
  }
  return [...out.values()];
}

/**
 * What a codec expects, in words rather than io-ts's type syntax
 * (`Array<string>` is "a list of strings"). A codec given a name of its own
 * (`t.array(t.string, 'a list of HTTP methods')`) is called by that name.
 */
export function words(type: t.Decoder<unknown, unknown>): string {
  const name = type.name;
  // io-ts's own names are type syntax; a name given on purpose has none of it.
  const generated = /[<>{}|]/.test(name);
  if (type instanceof t.ArrayType) return generated ? `a list of ${plural(words(type.type as t.Decoder<unknown, unknown>))}` : name;
  if (type instanceof t.StringType) return 'a string';
  if (type instanceof t.NumberType) return 'a number';
  if (type instanceof t.BooleanType) return 'true or false';
  if (type instanceof t.NullType) return 'nothing (null)';
  if (type instanceof t.UnionType && generated) return (type.types as t.Decoder<unknown, unknown>[]).map(words).join(' or ');
  if (type instanceof t.DictionaryType && generated) return `a map of ${plural(words(type.codomain as t.Decoder<unknown, unknown>))}`;
  if (generated) return 'an object';
  // A struct is named after its Kubernetes type (TrafficTargetSpec); other named codecs read as words already.
  return /^[A-Z][A-Za-z0-9]*$/.test(name) ? `${/^[AEIOU]/.test(name) ? 'an' : 'a'} ${name} object` : name;
}

function plural(phrase: string): string {
  const m = /^an? (.*)$/.exec(phrase);
  if (!m) return phrase;
  const rest = m[1]!;
  // "a string" -> "strings"; "an HTTPMatch object" -> "HTTPMatch objects"
  return /^\S+$/.test(rest) || / object$/.test(rest) ? `${rest}s` : rest;
}

function describe(context: t.Context): { path: string; expected: t.Decoder<unknown, unknown>; actual: unknown } | undefined {
  let path = '';
  for (let i = 1; i < context.length; i++) {
    const parent = context[i - 1]!.type;
    const entry = context[i]!;
    if (parent instanceof t.IntersectionType || parent instanceof t.ExactType || parent instanceof t.RefinementType) {
      continue;
    }
    if (parent instanceof t.UnionType && isNullable(parent)) {
      // `X | null` for an optional field: when the value is not null, the
      // error of the null branch says nothing; descend into X instead.
      if (context[i - 1]!.actual === null) return { path, expected: t.null, actual: null };
      if (entry.type instanceof t.NullType) return undefined;
      continue;
    }
    if (parent instanceof t.UnionType) {
      // Stop at the union: report it as a whole, with its own name.
      return { path, expected: parent, actual: context[i - 1]!.actual };
    }
    path = parent instanceof t.ArrayType ? `${path}[${entry.key}]` : path === '' ? entry.key : `${path}.${entry.key}`;
  }
  const last = context[context.length - 1]!;
  // An object's own codec is anonymous; the struct around it carries the Kubernetes type's name.
  const around = context[context.length - 2]?.type;
  const named = around instanceof t.IntersectionType && /[<>{}|]/.test(last.type.name) ? around : last.type;
  return { path, expected: named, actual: last.actual };
}

function isNullable(u: t.UnionType<t.Mixed[]>): boolean {
  return u.types.length === 2 && u.types.some((m) => m instanceof t.NullType);
}

function show(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'an object';
  const text = JSON.stringify(value);
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}
