import type { Grant, HeaderModifierIR, HttpMatchIR, PathReplaceIR, PortProtocol, RedirectIR } from '../ir/types.js';
import { compareStrings, policyName } from '../ir/types.js';
import { gatewayMatch, routeMatch } from './match.js';
import { inboundClusterName, inboundRouteName, outboundRouteName, serviceHost, serviceRouteName } from './names.js';
import { isHttp, type Action, type OutboundService, type RoutedMatch } from './outbound.js';
import { groupBy } from '../group.js';
import { TYPE_PREFIX } from './codec.js';
import { escapeRe2 } from '../regex.js';

/** RouteConfigurations: outbound per service port (virtual hosts per service), inbound per local port. */

function routeAction(action: Action, protocol: PortProtocol) {
  // gRPC streams outlive Envoy's default 15 s route timeout.
  const timeout = protocol === 'grpc' ? { timeout: '0s' } : {};
  if (action.kind === 'cluster') return { cluster: action.cluster, ...timeout };
  return { weightedClusters: { clusters: action.clusters.map((c) => ({ name: c.cluster, weight: c.weight })) }, ...timeout };
}

/** The cluster a share of requests whose backend did not resolve is sent to: there is none, so Envoy answers 500 (`clusterNotFoundResponseCode`). */
export const UNRESOLVED_BACKEND = 'smc|unresolved-backend';

/**
 * A table that routes a share to the unresolved backend asks Envoy not to
 * check that its clusters exist (what it does by default for a table given
 * over RDS, not for one in a static bootstrap).
 */
function unvalidated(services: readonly OutboundService[]) {
  const unresolved = services.some((o) => o.routes?.some((r) => r.action.kind === 'clusters' && r.action.invalidWeight > 0));
  return unresolved ? { validateClusters: false } : {};
}

/** One Gateway API route match as an Envoy route: its match, its action, its header filters and timeouts. */
function gatewayRoute(r: RoutedMatch, protocol: PortProtocol, port: number) {
  const headers = (h: HeaderModifierIR | undefined, side: 'request' | 'response') => {
    if (h === undefined) return {};
    const add = [
      ...h.set.map((x) => ({ header: { key: x.name, value: x.value }, appendAction: 'OVERWRITE_IF_EXISTS_OR_ADD' })),
      ...h.add.map((x) => ({ header: { key: x.name, value: x.value }, appendAction: 'APPEND_IF_EXISTS_OR_ADD' })),
    ];
    return { ...(add.length > 0 ? { [`${side}HeadersToAdd`]: add } : {}), ...(h.remove.length > 0 ? { [`${side}HeadersToRemove`]: h.remove } : {}) };
  };
  const base = { name: r.name, match: gatewayMatch(r.match), ...headers(r.requestHeaders, 'request'), ...headers(r.responseHeaders, 'response') };
  if (r.action.kind === 'status') return { ...base, directResponse: { status: r.action.status } };
  if (r.action.kind === 'redirect') return { ...base, redirect: redirectAction(r.action.redirect, port) };
  const clusters = [
    ...r.action.clusters.map((c) => ({ name: c.cluster, weight: c.weight, ...headers(c.requestHeaders, 'request'), ...headers(c.responseHeaders, 'response') })),
    ...(r.action.invalidWeight > 0 ? [{ name: UNRESOLVED_BACKEND, weight: r.action.invalidWeight }] : []),
  ];
  // One backend with no filters of its own is the route's cluster; otherwise weighted clusters carry each backend's filters.
  const filtered = r.action.clusters.some((c) => c.requestHeaders !== undefined || c.responseHeaders !== undefined);
  const target = clusters.length === 1 && !filtered ? { cluster: clusters[0]!.name } : { weightedClusters: { clusters } };
  // gRPC streams outlive Envoy's default 15 s route timeout; a rule's own timeout wins.
  const timeout = r.timeout ?? (protocol === 'grpc' ? '0s' : undefined);
  const rewrite = r.rewrite;
  return {
    ...base,
    route: {
      ...target,
      ...(r.action.invalidWeight > 0 ? { clusterNotFoundResponseCode: 'INTERNAL_SERVER_ERROR' } : {}),
      ...(timeout !== undefined ? { timeout } : {}),
      ...(rewrite?.hostname !== undefined ? { hostRewriteLiteral: rewrite.hostname } : {}),
      ...(rewrite?.path !== undefined ? pathRewrite(rewrite.path) : {}),
      ...(r.mirrors.length > 0
        ? { requestMirrorPolicies: r.mirrors.map((m) => ({ cluster: m.cluster, ...(m.millionths < 1_000_000 ? { runtimeFraction: { defaultValue: { numerator: m.millionths, denominator: 'MILLION' } } } : {}) })) }
        : {}),
      ...retryPolicy(r),
    },
  };
}

const REDIRECT_CODES: Readonly<Record<number, string>> = { 301: 'MOVED_PERMANENTLY', 302: 'FOUND', 303: 'SEE_OTHER', 307: 'TEMPORARY_REDIRECT', 308: 'PERMANENT_REDIRECT' };

/**
 * A RequestRedirect. Without a port it keeps the port of the request (the
 * Service port the caller dialled), or with a scheme takes that scheme's
 * own port (the specification's rule). Envoy writes that port into
 * Location even when it is the scheme's own (the specification says it
 * should not): a redirect to the right port, with `:443` spelled out.
 */
function redirectAction(r: RedirectIR, requestPort: number) {
  const port = r.port ?? (r.scheme === 'https' ? 443 : r.scheme === 'http' ? 80 : requestPort);
  const path = r.path === undefined ? {} : r.path.type === 'ReplaceFullPath' ? { pathRedirect: r.path.value } : pathRewrite(r.path);
  return {
    ...(r.scheme !== undefined ? { schemeRedirect: r.scheme } : {}),
    ...(r.hostname !== undefined ? { hostRedirect: r.hostname } : {}),
    portRedirect: port,
    ...path,
    responseCode: REDIRECT_CODES[r.statusCode] ?? 'FOUND',
  };
}

/**
 * A path replacement as an Envoy regex rewrite (of the path, without its
 * query). ReplacePrefixMatch replaces the whole segments the rule's
 * PathPrefix matched: `/foo` -> `/bar` makes `/foo/x` `/bar/x` and `/foo`
 * `/bar`; -> `/` makes `/foo/x` `/x`.
 */
function pathRewrite(p: PathReplaceIR) {
  if (p.type === 'ReplaceFullPath') return { regexRewrite: { pattern: { regex: '^/.*$' }, substitution: p.value } };
  const prefix = (p.prefix ?? '/').replace(/\/+$/, '');
  const value = p.value.replace(/\/+$/, '');
  if (prefix === '') return { regexRewrite: { pattern: { regex: '^/' }, substitution: `${value}/` } };
  return { regexRewrite: { pattern: { regex: `^${escapeRe2(prefix)}(/|$)` }, substitution: value === '' ? '/' : `${value}\\1` } };
}

/**
 * A rule's retry policy, when it has one of its own: GEP-1731's retry (the
 * codes it names, connection failures, `attempts` times, backing off from
 * `backoff`), or smc's usual one with each attempt bounded by backendRequest.
 * A route's policy replaces the virtual host's.
 */
function retryPolicy(r: RoutedMatch) {
  const perTry = r.backendTimeout !== undefined ? { perTryTimeout: r.backendTimeout } : {};
  if (r.retry === undefined) return r.backendTimeout !== undefined ? { retryPolicy: { ...OUTBOUND_RETRY, ...perTry } } : {};
  const { retryOn, retryHostPredicate, hostSelectionRetryMaxAttempts } = OUTBOUND_RETRY;
  return {
    retryPolicy: {
      retryOn: r.retry.codes.length > 0 ? `retriable-status-codes,${retryOn}` : retryOn,
      ...(r.retry.codes.length > 0 ? { retriableStatusCodes: r.retry.codes } : {}),
      numRetries: r.retry.attempts ?? 1,
      ...(r.retry.backoff !== undefined ? { retryBackOff: { baseInterval: r.retry.backoff } } : {}),
      retryHostPredicate,
      hostSelectionRetryMaxAttempts,
      ...perTry,
    },
  };
}

/**
 * A connection to another sidecar can close under a request that had not been
 * answered: its listener finished draining after a policy change, or it went
 * away; or an endpoint just listed refused the connection because its proxy
 * was still starting. Such a request got no answer, so an idempotent one (by
 * method) is sent again, to another endpoint where there is one; a POST is
 * never repeated (the condition on the method applies to every retry).
 */
export const OUTBOUND_RETRY = {
  retryOn: 'reset,connect-failure,refused-stream',
  numRetries: 2,
  retryHostPredicate: [{ name: 'envoy.retry_host_predicates.previous_hosts', typedConfig: { '@type': `${TYPE_PREFIX}envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate` } }],
  hostSelectionRetryMaxAttempts: '5',
  retriableRequestHeaders: [{ name: ':method', stringMatch: { safeRegex: { regex: 'GET|HEAD|OPTIONS|PUT|DELETE' } } }],
};

/**
 * The names an application in `callerNamespace` may use for a service:
 * `name` (same namespace only), `name.ns`, `name.ns.svc`,
 * `name.ns.svc.cluster.local` and the cluster IPs, each with and without the port.
 */
export function serviceDomains(o: OutboundService, callerNamespace: string): string[] {
  const s = o.service;
  const hosts = [
    ...(s.namespace === callerNamespace ? [s.name] : []),
    `${s.name}.${s.namespace}`,
    `${s.name}.${s.namespace}.svc`,
    serviceHost(s),
    ...s.clusterIPs.map((ip) => (ip.includes(':') ? `[${ip}]` : ip)),
  ];
  return hosts.flatMap((h) => [h, `${h}:${o.port.port}`]);
}

/**
 * A service's virtual hosts that many route tables hold, made once per
 * outbound service (an object a later compile reuses when the service's plan
 * did not change), so each is encoded once: its own table's single host
 * (serviceRouteConfigs), and its host as callers in other namespaces see it
 * (all its names but the short one) in the per-port tables.
 */
interface Hosts {
  elsewhere?: ReturnType<typeof virtualHost>;
  own?: { readonly name: string; readonly virtualHosts: readonly ReturnType<typeof virtualHost>[] };
}
const hostsMemo = new WeakMap<OutboundService, Hosts>();
function hostsOf(o: OutboundService): Hosts {
  let h = hostsMemo.get(o);
  if (!h) hostsMemo.set(o, (h = {}));
  return h;
}

function virtualHost(o: OutboundService, port: number, domains: string[]) {
  if (o.routes !== undefined) return { name: `${o.service.name}.${o.service.namespace}:${port}`, domains, routes: o.routes.map((r) => gatewayRoute(r, o.protocol, port)), retryPolicy: OUTBOUND_RETRY };
  // Routes are named after what they come from: the TrafficSplit (and its match), or the service itself.
  const routes = o.matched.map((m) => ({ name: `TrafficSplit ${o.split} ${m.match.from}`, match: routeMatch(m.match), route: routeAction(m.action, o.protocol) }));
  if (o.fallback !== undefined) {
    const from = o.fallback.kind === 'weighted' ? `TrafficSplit ${o.split}` : `Service ${o.service.namespace}/${o.service.name}`;
    routes.push({ name: from, match: { prefix: '/' }, route: routeAction(o.fallback, o.protocol) });
  }
  return { name: `${o.service.name}.${o.service.namespace}:${port}`, domains, routes, retryPolicy: OUTBOUND_RETRY };
}

/**
 * One RouteConfiguration per HTTP service port this proxy calls, for the
 * transparent listener's chain of that service (the original destination
 * chose the service; any Host header is routed by that service's routes).
 * A table is made once per outbound service, so every namespace's proxies
 * of a permissive mesh share the same tables, and a change to one service
 * (a split's weights) changes its table alone.
 */
export function serviceRouteConfigs(services: readonly OutboundService[]) {
  return services.filter((o) => isHttp(o.protocol)).map((o) => {
    const h = hostsOf(o);
    return (h.own ??= { name: serviceRouteName(o.service, o.port.port), virtualHosts: [virtualHost(o, o.port.port, ['*'])], ...unvalidated([o]) });
  });
}

/** One RouteConfiguration per HTTP port this proxy calls, its services told apart by the Host header (explicit mode, proxyless clients). */
export function outboundRouteConfigs(services: readonly OutboundService[], callerNamespace: string) {
  const byPort = groupBy(services.filter((o) => isHttp(o.protocol)), (o) => o.port.port);
  return [...byPort.entries()].map(([port, list]) => {
    // Envoy rejects a route table in which two virtual hosts share a domain; the first service (by name) keeps it.
    const taken = new Set<string>();
    const virtualHosts = list.map((o) => {
      const all = serviceDomains(o, callerNamespace);
      const domains = all.filter((d) => !taken.has(d));
      for (const d of domains) taken.add(d);
      if (o.service.namespace === callerNamespace || domains.length !== all.length) return virtualHost(o, port, domains);
      const h = hostsOf(o);
      return (h.elsewhere ??= virtualHost(o, port, domains));
    });
    return { name: outboundRouteName(port), virtualHosts, ...unvalidated(list) };
  });
}

/**
 * The route table of one local HTTP port: a route per HTTPRouteGroup match
 * granted on it (RBAC decides who may use which), and a catch-all when some
 * caller may send anything (a TCP grant, or permissive mode).
 */
export function inboundRouteConfig(port: number, protocol: PortProtocol, grants: readonly Grant[], permissive: boolean) {
  const matches = new Map<string, HttpMatchIR>();
  for (const g of grants) for (const m of g.http) matches.set(m.from, m);
  const action = routeAction({ kind: 'cluster', cluster: inboundClusterName(port) }, protocol);
  const routes: object[] = [...matches.values()]
    .sort((a, b) => compareStrings(a.from, b.from))
    .map((m) => ({ name: m.from, match: routeMatch(m), route: action }));
  // Every request may pass: named after the TCP rule (or the permissive mesh) that lets it.
  const tcp = grants.filter((g) => g.protocol === 'tcp').map(policyName).sort(compareStrings)[0];
  if (permissive || tcp !== undefined) routes.push({ name: permissive ? 'permissive' : tcp!, match: { prefix: '/' }, route: action });
  return { name: inboundRouteName(port), virtualHosts: [{ name: inboundRouteName(port), domains: ['*'], routes }] };
}
