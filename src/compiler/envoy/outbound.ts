import type { Upstream } from '../ir/reachability.js';
import { compareStrings, type HeaderModifierIR, type HttpMatchIR, type MeshIR, type PortProtocol, type RedirectIR, type RetryIR, type RewriteIR, type RouteMatchIR, type ServiceIR, type ServicePortIR, type ServiceRouteIR, type SplitIR } from '../ir/types.js';
import { compareServices, meshIndex, serviceKey } from '../ir/index.js';
import { outboundClusterName } from './names.js';

/**
 * Where one proxy's calls to a service port go: the Envoy-free plan that
 * listeners and routes are both built from. Splits are applied here, and a
 * split never widens access: a backend this proxy may not reach gets no
 * weight (the remaining backends keep their ratios), and when no backend is
 * reachable the root service is used as if there were no split.
 */
export type Action =
  | { readonly kind: 'cluster'; readonly cluster: string }
  | { readonly kind: 'weighted'; readonly clusters: readonly { readonly cluster: string; readonly weight: number }[] };

/**
 * Where requests matching one Gateway API route match go: weighted clusters
 * (with the share of backends that did not resolve, answered 500), or a
 * status when no backend can take them (500: none resolved or every weight
 * is 0; 403: the backends exist but this proxy may reach none of them).
 */
export type RouteAction =
  | { readonly kind: 'clusters'; readonly clusters: readonly WeightedCluster[]; readonly invalidWeight: number }
  | { readonly kind: 'status'; readonly status: 500 | 403 }
  | { readonly kind: 'redirect'; readonly redirect: RedirectIR };

/** A backend of a route rule as a cluster, with its backendRef's own header filters. */
export interface WeightedCluster {
  readonly cluster: string;
  readonly weight: number;
  readonly requestHeaders?: HeaderModifierIR;
  readonly responseHeaders?: HeaderModifierIR;
}

/** One match of one rule of a Gateway API route, in the order of the specification's precedence. */
export interface RoutedMatch {
  /** `HTTPRoute ns/name rules[0] matches[1]` (the rule's name when it has one). */
  readonly name: string;
  readonly match: RouteMatchIR;
  readonly action: RouteAction;
  readonly requestHeaders: HeaderModifierIR | undefined;
  readonly responseHeaders: HeaderModifierIR | undefined;
  readonly timeout: string | undefined;
  readonly backendTimeout: string | undefined;
  readonly rewrite: RewriteIR | undefined;
  /** Mirrors to clusters this proxy may reach (one it may not reach is left out: a mirror never widens access). */
  readonly mirrors: readonly { readonly cluster: string; readonly millionths: number }[];
  readonly retry: RetryIR | undefined;
}

export interface OutboundService {
  readonly service: ServiceIR;
  readonly port: ServicePortIR;
  readonly protocol: PortProtocol;
  /** Requests matching one of these go to `action` (first match wins), before the default. */
  readonly matched: readonly { readonly match: HttpMatchIR; readonly action: Action }[];
  /** Everything else; undefined when the root service itself is not reachable and no split applies. */
  readonly fallback: Action | undefined;
  /** `ns/name` of the TrafficSplit in force on this port, when it sends this proxy anywhere (routes are named after it). */
  readonly split?: string;
  /**
   * Gateway API routes in force on this port for this proxy: when present they
   * decide every request (`matched` and `fallback` are empty), and a request
   * none of them matches is answered 404.
   */
  readonly routes?: readonly RoutedMatch[];
  /** `ns/name` of those routes. */
  readonly routeNames?: readonly string[];
}

export const isHttp = (p: PortProtocol): boolean => p !== 'tcp';

/**
 * The routes of `service` in force for a caller in `callerNamespace`
 * (GEP-1294): its consumer routes there when it has any, else its
 * producer routes (those in the Service's own namespace).
 */
export function routesInForce(attached: readonly ServiceRouteIR[], service: Pick<ServiceIR, 'namespace'>, callerNamespace: string): readonly ServiceRouteIR[] {
  if (attached.length === 0) return attached;
  const consumer = callerNamespace === service.namespace ? [] : attached.filter((r) => r.namespace === callerNamespace);
  return consumer.length > 0 ? consumer : attached.filter((r) => r.namespace === service.namespace);
}

export function outboundServices(ir: MeshIR, upstreams: readonly Upstream[], callerNamespace: string): OutboundService[] {
  const reachable = new Set(upstreams.map((u) => outboundClusterName(u.service, u.port.port)));
  const clusterIfReachable = (s: Pick<ServiceIR, 'namespace' | 'name'>, port: number): string | undefined => {
    const name = outboundClusterName(s, port);
    return reachable.has(name) ? name : undefined;
  };
  const index = meshIndex(ir);
  // Only services this proxy reaches, or whose split may send it to one it reaches, can matter.
  const candidates = new Set<string>();
  for (const u of upstreams) {
    candidates.add(serviceKey(u.service));
    for (const root of index.splitRootsOf.get(serviceKey(u.service)) ?? []) candidates.add(root);
    for (const parent of index.routeParentsOf.get(serviceKey(u.service)) ?? []) candidates.add(parent);
  }
  const ordered = [...candidates].filter((k) => index.service.has(k)).sort((a, b) => compareServices(index.service.get(a)!, index.service.get(b)!));
  return ordered.flatMap((key) => outboundOf(index.service.get(key)!, index.splitOf.get(key), index.routesOf.get(key) ?? [], callerNamespace, clusterIfReachable));
}

/**
 * The outbound services of one service's ports for a caller in
 * `callerNamespace` (the service is a candidate: it is reachable, or its
 * split or routes may send the caller to a service that is): its split in
 * force (`split`), its Gateway API routes (`attached`, all of them), and
 * which clusters the caller may reach.
 */
export function outboundOf(
  service: ServiceIR,
  split: SplitIR | undefined,
  attached: readonly ServiceRouteIR[],
  callerNamespace: string,
  clusterIfReachable: (s: Pick<ServiceIR, 'namespace' | 'name'>, port: number) => string | undefined,
): OutboundService[] {
  const out: OutboundService[] = [];
  const routes = routesInForce(attached, service, callerNamespace);
  for (const port of service.ports) {
    const attached = isHttp(port.protocol) ? routes.filter((r) => r.port === undefined || r.port === port.port) : [];
    // Routes of different kinds on one port: a GRPCRoute is the more specific, and the HTTPRoutes give way (GEP-1294).
    const onPort = attached.some((r) => r.kind === 'GRPCRoute') ? attached.filter((r) => r.kind === 'GRPCRoute') : attached;
    if (onPort.length > 0) {
      // A proxy that may reach neither the Service nor any backend of its routes is given nothing for it.
      const routed = routedMatches(onPort, clusterIfReachable);
      out.push({ service, port, protocol: port.protocol, matched: [], fallback: undefined, routes: routed, routeNames: [...new Set(onPort.map((r) => `${r.kind} ${r.namespace}/${r.name}`))] });
      continue;
    }
    const root = clusterIfReachable(service, port.port);
    const rootAction: Action | undefined = root === undefined ? undefined : { kind: 'cluster', cluster: root };
    const weighted: Action | undefined = split && weightedBackends(split.backends, service.namespace, port.port, clusterIfReachable);
    let matched: OutboundService['matched'] = [];
    let fallback: Action | undefined = rootAction;
    if (weighted !== undefined) {
      if (split!.matches.length === 0) fallback = weighted;
      // Matches are HTTP: on a TCP port a split with matches leaves traffic on the root service.
      else if (isHttp(port.protocol)) matched = split!.matches.map((match) => ({ match, action: weighted }));
    }
    if (fallback === undefined && matched.length === 0) continue;
    out.push({ service, port, protocol: port.protocol, matched, fallback, ...(weighted !== undefined ? { split: split!.from } : {}) });
  }
  return out;
}

function weightedBackends(
  backends: readonly { service: string; weight: number }[],
  namespace: string,
  port: number,
  clusterIfReachable: (s: { namespace: string; name: string }, port: number) => string | undefined,
): Action | undefined {
  const clusters: { cluster: string; weight: number }[] = [];
  for (const b of backends) {
    if (b.weight === 0) continue;
    const cluster = clusterIfReachable({ namespace, name: b.service }, port);
    if (cluster !== undefined) clusters.push({ cluster, weight: b.weight });
  }
  if (clusters.length === 0) return undefined;
  return { kind: 'weighted', clusters: clusters.sort((a, b) => compareStrings(a.cluster, b.cluster)) };
}

/** Path kinds in the order they take precedence (Exact, then RegularExpression: smc's choice, the specification leaves it open; then PathPrefix). */
const PATH_RANK = { Exact: 0, RegularExpression: 1, PathPrefix: 2 } as const;

/**
 * Every match of every rule of `routes`, in the specification's order
 * (HTTPRouteRule): an Exact path, then the longest path, a method, the most
 * headers, the most query parameters; for GRPCRoutes (GRPCRouteRule) the
 * most characters of service, then of method, then the most headers; then
 * the older route, the route first by namespace/name, the earlier rule and
 * match.
 */
function routedMatches(routes: readonly ServiceRouteIR[], clusterIfReachable: (s: { namespace: string; name: string }, port: number) => string | undefined): RoutedMatch[] {
  const entries: { readonly route: ServiceRouteIR; readonly rule: number; readonly index: number; readonly routed: RoutedMatch }[] = [];
  for (const route of routes) {
    route.rules.forEach((rule, r) => {
      const action: RouteAction = rule.redirect ? { kind: 'redirect', redirect: rule.redirect } : routeAction(rule.backends, rule.invalidWeight, clusterIfReachable);
      const mirrors = rule.mirrors.flatMap((m) => {
        const cluster = clusterIfReachable({ namespace: m.namespace, name: m.service }, m.port);
        return cluster === undefined ? [] : [{ cluster, millionths: m.millionths }];
      });
      rule.matches.forEach((match, i) => {
        entries.push({
          route,
          rule: r,
          index: i,
          routed: {
            name: `${route.kind} ${route.namespace}/${route.name} ${rule.name} matches[${i}]`,
            match,
            action,
            requestHeaders: rule.requestHeaders,
            responseHeaders: rule.responseHeaders,
            timeout: rule.timeout,
            backendTimeout: rule.backendTimeout,
            rewrite: rule.rewrite,
            mirrors,
            retry: rule.retry,
          },
        });
      });
    });
  }
  const tie = (a: (typeof entries)[number], b: (typeof entries)[number]) =>
    compareStrings(a.route.creationTimestamp, b.route.creationTimestamp) ||
    compareStrings(`${a.route.namespace}/${a.route.name}`, `${b.route.namespace}/${b.route.name}`) ||
    a.rule - b.rule ||
    a.index - b.index;
  const length = (s: string | undefined) => s?.length ?? 0;
  entries.sort((a, b) => {
    const x = a.routed.match;
    const y = b.routed.match;
    // GRPCRouteRule: the most characters of service, then of method, then the most headers.
    if (x.grpc !== undefined || y.grpc !== undefined) {
      return length(y.grpc?.service) - length(x.grpc?.service) || length(y.grpc?.method) - length(x.grpc?.method) || y.headers.length - x.headers.length || tie(a, b);
    }
    return (
      PATH_RANK[x.path.type] - PATH_RANK[y.path.type] ||
      y.path.value.length - x.path.value.length ||
      Number(y.method !== undefined) - Number(x.method !== undefined) ||
      y.headers.length - x.headers.length ||
      y.queryParams.length - x.queryParams.length ||
      tie(a, b)
    );
  });
  return entries.map((e) => e.routed);
}

/** A rule's action for one proxy: its reachable backends by weight; a backend it may not reach gets no weight (a route never widens access). */
function routeAction(
  backends: readonly { namespace: string; service: string; port: number; weight: number; requestHeaders?: HeaderModifierIR; responseHeaders?: HeaderModifierIR }[],
  invalidWeight: number,
  clusterIfReachable: (s: { namespace: string; name: string }, port: number) => string | undefined,
): RouteAction {
  // Backends that are the same cluster with the same filters are one entry.
  const entries = new Map<string, WeightedCluster>();
  let denied = false;
  for (const b of backends) {
    if (b.weight === 0) continue;
    const cluster = clusterIfReachable({ namespace: b.namespace, name: b.service }, b.port);
    if (cluster === undefined) {
      denied = true;
      continue;
    }
    const key = JSON.stringify([cluster, b.requestHeaders, b.responseHeaders]);
    const known = entries.get(key);
    entries.set(key, { cluster, weight: (known?.weight ?? 0) + b.weight, ...(b.requestHeaders ? { requestHeaders: b.requestHeaders } : {}), ...(b.responseHeaders ? { responseHeaders: b.responseHeaders } : {}) });
  }
  if (entries.size === 0) return { kind: 'status', status: denied && invalidWeight === 0 ? 403 : 500 };
  const clusters = [...entries.values()].sort((a, b) => compareStrings(a.cluster, b.cluster));
  return { kind: 'clusters', clusters, invalidWeight };
}
