import type { HttpMatch, HttpRouteGroupObj } from '../model.js';
import { KeyedMemo } from '../keyed.js';
import { anchoredPathRegex, methodsRegex, re2Error, re2ProgramSizeBound, RE2_MAX_PROGRAM_SIZE } from '../regex.js';
import { error, type StatusCollector } from '../status.js';
import type { HttpMatchIR } from './types.js';

/** RFC 9110 token: what an HTTP method or header name may be made of. */
export const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

export interface CheckedRouteGroup {
  readonly key: string;
  /** Every match in order; `undefined` where the match is invalid. */
  readonly matches: readonly { readonly name: string; readonly ir: HttpMatchIR | undefined }[];
}

/**
 * Validates every match of every HTTPRouteGroup once. An invalid match (a
 * pattern RE2 rejects, a malformed method) grants nothing and is reported on
 * the route group; its valid siblings still work.
 */
/** Each HTTPRouteGroup checked on its own: given the previous build's memo, an unchanged group is the very value it was, with its messages (see keyed.ts). */
export function checkRouteGroups(groups: readonly HttpRouteGroupObj[], status: StatusCollector, previous?: KeyedMemo<CheckedRouteGroup>): { groups: Map<string, CheckedRouteGroup>; memo: KeyedMemo<CheckedRouteGroup> } {
  const byName = new Map(groups.map((g) => [`${g.meta.namespace}/${g.meta.name}`, g]));
  const memo = new KeyedMemo<CheckedRouteGroup, { group: typeof byName }>({ group: byName }, previous);
  const out = new Map<string, CheckedRouteGroup>();
  for (const name of byName.keys()) out.set(name, memo.get(name, status, (read, st) => checkRouteGroup(read('group', name)!, st)));
  return { groups: out, memo: memo.seal() };
}

function checkRouteGroup(g: HttpRouteGroupObj, status: StatusCollector): CheckedRouteGroup {
  const seen = new Set<string>();
  const matches = g.matches.map((m) => {
    let valid = checkMatch(m, g.key, status);
    if (m.name !== '' && seen.has(m.name)) {
      status.add(g.key, error(`${m.path}.name`, `duplicate match name ${JSON.stringify(m.name)}; references to it would be ambiguous, so this one grants nothing`));
      valid = false;
    }
    seen.add(m.name);
    const from = `${g.meta.namespace}/${g.meta.name}#${m.name}`;
    return {
      name: m.name,
      ir: valid ? { from, pathRegex: m.pathRegex, methods: normaliseMethods(m.methods), headers: m.headers } : undefined,
    };
  });
  return { key: g.key, matches };
}

function checkMatch(m: HttpMatch, key: string, status: StatusCollector): boolean {
  let ok = true;
  if (m.pathRegex !== undefined) {
    const e = re2Error(m.pathRegex) ?? tooLarge(anchoredPathRegex(m.pathRegex));
    if (e !== undefined) {
      status.add(key, error(`${m.path}.pathRegex`, `expected an RE2 pattern: ${e}`));
      ok = false;
    }
  }
  (m.methods ?? []).forEach((method, i) => {
    if (method !== '*' && !TOKEN.test(method)) {
      status.add(key, error(`${m.path}.methods[${i}]`, `expected an HTTP method such as GET or "*", got ${JSON.stringify(method)}`));
      ok = false;
    }
  });
  for (const h of m.headers) {
    if (!TOKEN.test(h.name)) {
      status.add(key, error(`${m.path}.headers`, `expected a header name, got ${JSON.stringify(h.name)}`));
      ok = false;
    }
    const e = re2Error(h.regex) ?? tooLarge(h.regex);
    if (e !== undefined) {
      status.add(key, error(`${m.path}.headers["${h.name}"]`, `expected an RE2 pattern: ${e}`));
      ok = false;
    }
  }
  const methods = normaliseMethods(m.methods);
  const e = methods && tooLarge(methodsRegex(methods));
  if (e !== undefined) {
    status.add(key, error(`${m.path}.methods`, `too many methods: ${e}`));
    ok = false;
  }
  return ok;
}

/** Why Envoy would refuse `envoyPattern` (the regex as the proxy gets it) for its size, if it would. */
export function tooLarge(envoyPattern: string): string | undefined {
  const size = re2ProgramSizeBound(envoyPattern);
  if (size === undefined || size <= RE2_MAX_PROGRAM_SIZE) return undefined;
  return `its RE2 program may take up to ${size} instructions, more than the ${RE2_MAX_PROGRAM_SIZE} Envoy is allowed (smaller or fewer {n,m} repetitions and narrower classes make it smaller)`;
}

/** `["*"]` anywhere, or no methods at all, means any method. */
function normaliseMethods(methods: readonly string[] | undefined): readonly string[] | undefined {
  if (methods === undefined || methods.length === 0 || methods.includes('*')) return undefined;
  return [...new Set(methods)].sort();
}
