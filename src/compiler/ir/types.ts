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

export interface MeshIR {
  readonly settings: MeshSettings;
  /** Namespaces in the mesh. */
  readonly namespaces: readonly string[];
  readonly workloads: readonly Workload[];
  readonly services: readonly ServiceIR[];
  /** One entry per identity that has a workload or is granted to; sorted by destination. */
  readonly access: readonly DestinationAccess[];
  readonly splits: readonly SplitIR[];
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
