import type { Upstream } from '../ir/reachability.js';
import { compareStrings, type HttpMatchIR, type MeshIR, type PortProtocol, type ServiceIR, type ServicePortIR } from '../ir/types.js';
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
}

export const isHttp = (p: PortProtocol): boolean => p !== 'tcp';

export function outboundServices(ir: MeshIR, upstreams: readonly Upstream[]): OutboundService[] {
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
  }
  const ordered = [...candidates].filter((k) => index.service.has(k)).sort((a, b) => compareServices(index.service.get(a)!, index.service.get(b)!));
  const out: OutboundService[] = [];
  for (const key of ordered) {
    const service = index.service.get(key)!;
    const split = index.splitOf.get(key);
    for (const port of service.ports) {
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
