import type { Origin } from './inputs.js';
import type { Meta } from './decode/common.js';

/**
 * The normalised form of every input kind: one shape per kind whatever
 * version it was written in. Produced by `decode/`, consumed by `ir/`.
 */

/**
 * How a workload's traffic reaches the mesh:
 * - `transparent`: iptables redirects it to the sidecar (15001 out, 15003 in);
 * - `explicit`: no iptables, the application calls one local listener per upstream port;
 * - `proxyless`: no sidecar at all; the application's gRPC library is the xDS
 *   client (grpc-js-xds, grpc-go, ...). See `envoy/proxyless.ts` for what that gives up.
 */
export const INTERCEPTION_MODES = ['transparent', 'explicit', 'proxyless'] as const;
export type InterceptionMode = (typeof INTERCEPTION_MODES)[number];

interface Base {
  /** Unique per input object; the status key. */
  readonly key: string;
  readonly origin: Origin;
  readonly apiVersion: string;
  readonly meta: Meta;
}

export interface NamespaceObj extends Base { readonly kind: 'Namespace' }

export interface ServicePort {
  readonly name: string;
  readonly port: number;
  readonly targetPort: number | string;
  readonly protocol: string;
  readonly appProtocol: string;
}
export interface ServiceObj extends Base {
  readonly kind: 'Service';
  /** Absent selector: endpoints come only from EndpointSlices/Endpoints. */
  readonly selector: Readonly<Record<string, string>> | undefined;
  readonly ports: readonly ServicePort[];
  readonly clusterIPs: readonly string[];
  /** `clusterIP: None`: no virtual IP, callers use endpoint addresses. */
  readonly headless: boolean;
}

export interface ServiceAccountObj extends Base { readonly kind: 'ServiceAccount' }

export interface ContainerPort { readonly name: string; readonly port: number; readonly protocol: string }
export interface PodObj extends Base {
  readonly kind: 'Pod';
  readonly serviceAccountName: string;
  readonly ips: readonly string[];
  readonly ports: readonly ContainerPort[];
  readonly interceptionMode: InterceptionMode | undefined;
  /** Set by smc's injector: the pod runs an injected sidecar (smc.dev/injected) with these probes (smc.dev/probes, unparsed). */
  readonly injected: boolean;
  readonly probesAnnotation: string | undefined;
}

/** EndpointSlice and core Endpoints (one per subset) normalise to this. */
export interface EndpointSetObj extends Base {
  readonly kind: 'EndpointSlice' | 'Endpoints';
  readonly serviceName: string;
  readonly ports: readonly { readonly name: string; readonly port: number; readonly protocol: string }[];
  readonly endpoints: readonly {
    readonly addresses: readonly string[];
    readonly ready: boolean;
    readonly targetRef: { readonly kind: string; readonly namespace: string; readonly name: string } | undefined;
  }[];
}

export interface SubjectRef { readonly namespace: string; readonly name: string }
export interface TrafficTargetRule {
  readonly kind: string;
  readonly name: string;
  /** Undefined: every match of the referenced route. */
  readonly matches: readonly string[] | undefined;
}
export interface TrafficTargetObj extends Base {
  readonly kind: 'TrafficTarget';
  readonly destination: SubjectRef;
  /** v1alpha1/v1alpha2 only: restricts every rule to this destination port. */
  readonly destinationPort: number | undefined;
  readonly sources: readonly SubjectRef[];
  readonly rules: readonly TrafficTargetRule[];
  /** Field name of the rules list in this version (`specs` or `spec.rules`), for messages. */
  readonly rulesPath: string;
}

export interface HeaderMatch { readonly name: string; readonly regex: string }
export interface HttpMatch {
  readonly name: string;
  readonly pathRegex: string | undefined;
  /** Undefined or containing "*": any method. */
  readonly methods: readonly string[] | undefined;
  readonly headers: readonly HeaderMatch[];
  /** Field path of this match, for messages. */
  readonly path: string;
}
export interface HttpRouteGroupObj extends Base {
  readonly kind: 'HTTPRouteGroup';
  readonly matches: readonly HttpMatch[];
}

export interface PortRouteObj extends Base {
  readonly kind: 'TCPRoute' | 'UDPRoute';
  readonly matchName: string | undefined;
  /** Undefined or empty: every port of the destination. */
  readonly ports: readonly number[] | undefined;
}

export interface TrafficSplitObj extends Base {
  readonly kind: 'TrafficSplit';
  readonly service: string;
  /** Weights in milli-units (v1alpha1 quantities exactly; later integers times 1000). */
  readonly backends: readonly { readonly service: string; readonly weightMilli: number }[];
  readonly matches: readonly { readonly kind: string; readonly name: string }[];
}

export interface MeshConfigObj extends Base {
  readonly kind: 'MeshConfig';
  readonly permissive: boolean | undefined;
  readonly trustDomain: string | undefined;
  readonly defaultInterceptionMode: InterceptionMode | undefined;
  readonly virtualIPRange: string | undefined;
  readonly accessLog: boolean | undefined;
}

export interface VirtualMachineObj extends Base {
  readonly kind: 'VirtualMachine';
  readonly serviceAccount: string;
  readonly addresses: readonly string[];
  readonly ports: readonly ContainerPort[];
  readonly workloadLabels: Readonly<Record<string, string>>;
  readonly interceptionMode: InterceptionMode | undefined;
}

/** A Gateway API reference to a parent (a Service for the mesh), defaults applied. */
export interface ParentRefObj {
  readonly group: string;
  readonly kind: string;
  readonly namespace: string;
  readonly name: string;
  readonly port: number | undefined;
  readonly sectionName: string | undefined;
}

export interface PathModifierObj {
  readonly type: 'ReplaceFullPath' | 'ReplacePrefixMatch';
  readonly replaceFullPath: string | undefined;
  readonly replacePrefixMatch: string | undefined;
}

/** A Gateway API filter as written (checked and translated in ir/gateway.ts). */
export interface RouteFilterObj {
  readonly type: string;
  readonly requestHeaderModifier?: HeaderModifierObj;
  readonly responseHeaderModifier?: HeaderModifierObj;
  readonly requestRedirect?: { readonly scheme: string | undefined; readonly hostname: string | undefined; readonly path: PathModifierObj | undefined; readonly port: number | undefined; readonly statusCode: number };
  readonly urlRewrite?: { readonly hostname: string | undefined; readonly path: PathModifierObj | undefined };
  readonly requestMirror?: {
    readonly backendRef: { readonly group: string; readonly kind: string; readonly namespace: string; readonly name: string; readonly port: number | undefined };
    /** Parts per million of the requests mirrored (from `percent` or `fraction`). */
    readonly millionths: number;
  };
  /** Present when the filter has a field smc does not carry out (its name): the route is refused rather than the field dropped. */
  readonly unsupported?: string;
}
export interface HeaderModifierObj {
  readonly set: readonly { readonly name: string; readonly value: string }[];
  readonly add: readonly { readonly name: string; readonly value: string }[];
  readonly remove: readonly string[];
}

export interface BackendRefObj {
  readonly group: string;
  readonly kind: string;
  /** Defaulted to the route's namespace. */
  readonly namespace: string;
  readonly name: string;
  readonly port: number | undefined;
  readonly weight: number;
  readonly filters: readonly RouteFilterObj[];
}

export interface RouteMatchObj {
  readonly path: { readonly type: 'Exact' | 'PathPrefix' | 'RegularExpression'; readonly value: string };
  /** A GRPCRoute's method match, from which `path` was made (its precedence counts its characters). */
  readonly grpc?: { readonly service: string | undefined; readonly method: string | undefined };
  readonly method: string | undefined;
  readonly headers: readonly { readonly type: 'Exact' | 'RegularExpression'; readonly name: string; readonly value: string }[];
  readonly queryParams: readonly { readonly type: 'Exact' | 'RegularExpression'; readonly name: string; readonly value: string }[];
}

export interface HttpRouteRuleObj {
  readonly name: string | undefined;
  /** Defaulted as the CRD does: no matches is one match of every path (PathPrefix "/"). */
  readonly matches: readonly RouteMatchObj[];
  readonly filters: readonly RouteFilterObj[];
  readonly backendRefs: readonly BackendRefObj[];
  readonly timeouts: { readonly request: string | undefined; readonly backendRequest: string | undefined };
  /** GEP-1731 (experimental channel). */
  readonly retry: { readonly codes: readonly number[]; readonly attempts: number | undefined; readonly backoff: string | undefined } | undefined;
}

/** An HTTPRoute, or a GRPCRoute read as the HTTP/2 route it is (its method matches made paths). */
export interface HttpRouteObj extends Base {
  readonly kind: 'HTTPRoute' | 'GRPCRoute';
  readonly parentRefs: readonly ParentRefObj[];
  readonly hostnames: readonly string[];
  readonly rules: readonly HttpRouteRuleObj[];
}

export interface ReferenceGrantObj extends Base {
  readonly kind: 'ReferenceGrant';
  readonly from: readonly { readonly group: string; readonly kind: string; readonly namespace: string }[];
  readonly to: readonly { readonly group: string; readonly kind: string; readonly name: string | undefined }[];
}

export type MeshObject =
  | NamespaceObj
  | ServiceObj
  | ServiceAccountObj
  | PodObj
  | EndpointSetObj
  | TrafficTargetObj
  | HttpRouteGroupObj
  | PortRouteObj
  | TrafficSplitObj
  | MeshConfigObj
  | VirtualMachineObj
  | HttpRouteObj
  | ReferenceGrantObj;
