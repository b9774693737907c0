import type { InterceptionMode } from '../model.js';
import type { NamedProbe } from '../probes.js';

/**
 * The mesh IR: what the mesh means, with no Envoy types. SMI semantics live
 * here; the Envoy translation reads only this. Every list is sorted, so the
 * same inputs in any order give the same IR.
 */

/** `spiffe://<trust-domain>/ns/<namespace>/sa/<name>` */
export type Identity = string;

export interface MeshSettings {
  readonly trustDomain: string;
  readonly permissive: boolean;
  readonly defaultInterceptionMode: InterceptionMode;
  /** IPv4 CIDR from which services without a cluster IP get a stable virtual IP. */
  readonly virtualIPRange: string;
  /** Sidecars log every inbound request and connection (JSON lines on Envoy's stdout). */
  readonly accessLog: boolean;
}

export interface WorkloadPort {
  readonly name: string;
  readonly port: number;
}

export interface Workload {
  readonly kind: 'Pod' | 'VirtualMachine';
  readonly namespace: string;
  readonly name: string;
  readonly identity: Identity;
  readonly serviceAccount: string;
  readonly addresses: readonly string[];
  readonly ports: readonly WorkloadPort[];
  readonly labels: Readonly<Record<string, string>>;
  readonly interceptionMode: InterceptionMode;
  /** Only on pods injected by smc: their sidecar serves the probe port (its readiness and the pod's probes). */
  readonly injected?: { readonly probes: readonly NamedProbe[] };
}

/** How the destination port's bytes are understood. */
export type PortProtocol = 'http' | 'http2' | 'grpc' | 'tcp';

export interface Endpoint {
  readonly address: string;
  readonly port: number;
  /** `Pod ns/name` or `VirtualMachine ns/name`. */
  readonly workload: string;
  readonly identity: Identity;
  /** How the workload's sidecar receives traffic; decides the port callers dial (see envoy/names.ts). */
  readonly interception: InterceptionMode;
}

export interface ServicePortIR {
  readonly name: string;
  readonly port: number;
  readonly targetPort: number | string;
  readonly protocol: PortProtocol;
  readonly endpoints: readonly Endpoint[];
}

export interface ServiceIR {
  readonly namespace: string;
  readonly name: string;
  readonly clusterIPs: readonly string[];
  readonly ports: readonly ServicePortIR[];
  /** Every identity that backs some endpoint of this service. */
  readonly identities: readonly Identity[];
}

export interface HeaderMatchIR {
  readonly name: string;
  readonly regex: string;
}

/** One HTTP match: path AND method AND every header. */
export interface HttpMatchIR {
  /** `namespace/name#match` of the HTTPRouteGroup match it came from. */
  readonly from: string;
  /** As the user wrote it; undefined means any path. See `anchoredPathRegex`. */
  readonly pathRegex: string | undefined;
  /** Undefined means any method. */
  readonly methods: readonly string[] | undefined;
  readonly headers: readonly HeaderMatchIR[];
}

/**
 * Permission for `source` to call `destination` identity. `ports` are
 * destination workload ports; `all` means every port. A `tcp` grant allows any
 * bytes on its ports; an `http` grant allows only requests matching one of
 * `http` (OR).
 */
export interface Grant {
  readonly source: Identity;
  readonly protocol: 'tcp' | 'http';
  readonly ports: readonly number[] | 'all';
  readonly http: readonly HttpMatchIR[];
  /** `namespace/name` of the TrafficTarget. */
  readonly grantedBy: string;
  /** The rule of that TrafficTarget, as a field path: `spec.rules[0]` (`specs[0]` in v1alpha1). */
  readonly rule: string;
}

/** The name of the Envoy RBAC policy of one TrafficTarget rule: `TrafficTarget ns/name spec.rules[0]`. */
export const policyName = (g: Pick<Grant, 'grantedBy' | 'rule'>): string => `TrafficTarget ${g.grantedBy} ${g.rule}`;

export interface DestinationAccess {
  readonly destination: Identity;
  readonly grants: readonly Grant[];
}

export interface SplitBackend {
  readonly service: string;
  /** Relative weight, reduced by the greatest common divisor; 0 gets no traffic. */
  readonly weight: number;
}

export interface SplitIR {
  readonly namespace: string;
  /** The root service clients call. */
  readonly service: string;
  /** `namespace/name` of the TrafficSplit in force. */
  readonly from: string;
  readonly backends: readonly SplitBackend[];
  /** Empty: every request is split. Otherwise only matching requests are; the rest go to the root service. */
  readonly matches: readonly HttpMatchIR[];
}

/** One Gateway API path match, as the route wrote it (see `gatewayPath` in envoy/match.ts for how each is matched). */
export interface PathMatchIR {
  readonly type: 'Exact' | 'PathPrefix' | 'RegularExpression';
  readonly value: string;
}

/** A header or query parameter to match: `Exact` text or an RE2 `RegularExpression` (whole value). */
export interface ValueMatchIR {
  readonly type: 'Exact' | 'RegularExpression';
  /** Header names are lower-cased (they are case-insensitive); query parameter names are kept as written. */
  readonly name: string;
  readonly value: string;
}

/** One HTTPRoute match: path AND method AND every header AND every query parameter. */
export interface RouteMatchIR {
  readonly path: PathMatchIR;
  /** A GRPCRoute's method match the path was made from: GRPCRoute precedence counts the characters of its service and method. */
  readonly grpc?: { readonly service: string | undefined; readonly method: string | undefined };
  readonly method: string | undefined;
  readonly headers: readonly ValueMatchIR[];
  readonly queryParams: readonly ValueMatchIR[];
}

/** A header modifier filter (RequestHeaderModifier, ResponseHeaderModifier). Names as written; Envoy compares them case-insensitively. */
export interface HeaderModifierIR {
  readonly set: readonly { readonly name: string; readonly value: string }[];
  readonly add: readonly { readonly name: string; readonly value: string }[];
  readonly remove: readonly string[];
}

/** A backend of a route rule that resolved to a mesh Service port. */
export interface RouteBackendIR {
  readonly namespace: string;
  readonly service: string;
  readonly port: number;
  /** As written (0: no traffic). */
  readonly weight: number;
  /** The backendRef's own header filters (only for requests sent to it). */
  readonly requestHeaders?: HeaderModifierIR;
  readonly responseHeaders?: HeaderModifierIR;
}

/** A path replacement (RequestRedirect, URLRewrite): the whole path, or the part the rule's PathPrefix matched. */
export interface PathReplaceIR {
  readonly type: 'ReplaceFullPath' | 'ReplacePrefixMatch';
  readonly value: string;
  /** For ReplacePrefixMatch: the prefix the rule matched. */
  readonly prefix?: string;
}

export interface RedirectIR {
  readonly scheme: 'http' | 'https' | undefined;
  readonly hostname: string | undefined;
  readonly port: number | undefined;
  readonly path: PathReplaceIR | undefined;
  readonly statusCode: number;
}

export interface RewriteIR {
  readonly hostname: string | undefined;
  readonly path: PathReplaceIR | undefined;
}

/** A copy of some requests sent to a Service port (the answers are dropped). */
export interface MirrorIR {
  readonly namespace: string;
  readonly service: string;
  readonly port: number;
  /** Parts per million of the requests. */
  readonly millionths: number;
}

/** GEP-1731: retry answers with these codes (and connection failures) up to `attempts` times, waiting `backoff` (an Envoy duration) at first. */
export interface RetryIR {
  readonly codes: readonly number[];
  readonly attempts: number | undefined;
  readonly backoff: string | undefined;
}

export interface RouteRuleIR {
  /** `rules[2]`, or the rule's `name` when it has one (Envoy route names and status name the rule by it). */
  readonly name: string;
  readonly matches: readonly RouteMatchIR[];
  readonly backends: readonly RouteBackendIR[];
  /** The summed weight of backendRefs that did not resolve (their share of the requests is answered 500). */
  readonly invalidWeight: number;
  readonly requestHeaders: HeaderModifierIR | undefined;
  readonly responseHeaders: HeaderModifierIR | undefined;
  /** `timeouts.request` and `timeouts.backendRequest`, as Envoy durations ("1.5s"); "0s" turns the timeout off. */
  readonly timeout: string | undefined;
  readonly backendTimeout: string | undefined;
  /** Answered with a redirect instead of being sent anywhere. */
  readonly redirect: RedirectIR | undefined;
  readonly rewrite: RewriteIR | undefined;
  readonly mirrors: readonly MirrorIR[];
  readonly retry: RetryIR | undefined;
}

/**
 * A Gateway API route (HTTPRoute) attached to a mesh Service by one of its
 * parentRefs (GEP-1294): it routes what callers send to that Service's
 * cluster IP (and name), on `port` or on every HTTP port of the Service.
 * A producer route lives in the Service's namespace and applies to every
 * caller; a consumer route lives elsewhere and applies only to callers of
 * its own namespace, which then ignore the producer routes.
 */
export interface ServiceRouteIR {
  readonly kind: 'HTTPRoute' | 'GRPCRoute';
  /** The parent Service. */
  readonly serviceNamespace: string;
  readonly service: string;
  /** The parentRef's port; undefined: every port of the Service. */
  readonly port: number | undefined;
  /** The route. */
  readonly namespace: string;
  readonly name: string;
  /** For precedence between routes: the older route wins a tie. */
  readonly creationTimestamp: string;
  readonly rules: readonly RouteRuleIR[];
}

export interface MeshIR {
  readonly settings: MeshSettings;
  /** Namespaces in the mesh. */
  readonly namespaces: readonly string[];
  readonly workloads: readonly Workload[];
  readonly services: readonly ServiceIR[];
  /** One entry per identity that has a workload or is granted to; sorted by destination. */
  readonly access: readonly DestinationAccess[];
  readonly splits: readonly SplitIR[];
  /** Gateway API routes by parent: sorted by parent Service, then route namespace, name and port. */
  readonly routes: readonly ServiceRouteIR[];
}

export function identityOf(trustDomain: string, namespace: string, serviceAccount: string): Identity {
  return `spiffe://${trustDomain}/ns/${namespace}/sa/${serviceAccount}`;
}

/** The namespace and service account of a SPIFFE ID made by `identityOf`; undefined for any other string. */
export function parseIdentity(id: Identity): { trustDomain: string; namespace: string; serviceAccount: string } | undefined {
  const m = /^spiffe:\/\/([^/]+)\/ns\/([^/]+)\/sa\/([^/]+)$/.exec(id);
  return m ? { trustDomain: m[1]!, namespace: m[2]!, serviceAccount: m[3]! } : undefined;
}

/** `ns/sa` of a SPIFFE ID made by `identityOf` (any other string as it is): how people name an identity. */
export function accountOf(id: Identity): string {
  const p = parseIdentity(id);
  return p ? `${p.namespace}/${p.serviceAccount}` : id;
}

export function compareStrings(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
