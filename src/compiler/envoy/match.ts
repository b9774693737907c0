import type { HttpMatchIR } from '../ir/types.js';
import { anchoredPathRegex, methodsRegex } from '../regex.js';

/**
 * One SMI HTTP match (path AND methods AND headers) in the two places Envoy
 * needs it: a route's match and an RBAC permission. Both come from here so
 * that what is routed and what is allowed cannot drift apart.
 */

const regex = (r: string) => ({ safeRegex: { regex: r } });

function headerMatchers(m: HttpMatchIR) {
  const list = m.headers.map((h) => ({ name: h.name, stringMatch: regex(h.regex) }));
  if (m.methods !== undefined) list.unshift({ name: ':method', stringMatch: regex(methodsRegex(m.methods)) });
  return list;
}

/** A route match; an absent path matches every path (the query string is never part of it). */
export function routeMatch(m: HttpMatchIR) {
  const headers = headerMatchers(m);
  return {
    ...(m.pathRegex === undefined || m.pathRegex === '' ? { prefix: '/' } : regex(anchoredPathRegex(m.pathRegex))),
    ...(headers.length > 0 ? { headers } : {}),
  };
}

/** An RBAC permission that holds exactly when `routeMatch(m)` matches. */
export function permission(m: HttpMatchIR): object {
  const rules: object[] = [];
  if (m.pathRegex !== undefined && m.pathRegex !== '') rules.push({ urlPath: { path: regex(anchoredPathRegex(m.pathRegex)) } });
  for (const h of headerMatchers(m)) rules.push({ header: h });
  if (rules.length === 0) return { any: true };
  return rules.length === 1 ? rules[0]! : { andRules: { rules } };
}
