import type { HttpMatchIR, RouteMatchIR, ValueMatchIR } from '../ir/types.js';
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

const valueMatch = (v: ValueMatchIR) => (v.type === 'Exact' ? { exact: v.value } : regex(v.value));

/**
 * A Gateway API match (HTTPRouteMatch): an Exact path is the whole path; a
 * PathPrefix matches whole path segments (`/abc` matches `/abc`, `/abc/` and
 * `/abc/def`, not `/abcd`; a trailing `/` in the prefix is ignored); a
 * RegularExpression matches the whole path. The query string is never part
 * of the path; query parameters are matched by name.
 */
export function gatewayMatch(m: RouteMatchIR) {
  const prefix = m.path.value.replace(/\/+$/, '');
  const path =
    m.path.type === 'Exact' ? { path: m.path.value } : m.path.type === 'RegularExpression' ? regex(m.path.value) : prefix === '' ? { prefix: '/' } : { pathSeparatedPrefix: prefix };
  const headers = [...(m.method !== undefined ? [{ name: ':method', stringMatch: { exact: m.method } }] : []), ...m.headers.map((h) => ({ name: h.name, stringMatch: valueMatch(h) }))];
  return {
    ...path,
    ...(headers.length > 0 ? { headers } : {}),
    ...(m.queryParams.length > 0 ? { queryParameters: m.queryParams.map((q) => ({ name: q.name, stringMatch: valueMatch(q) })) } : {}),
  };
}
