import { meshIndex } from '../compiler/ir/index.js';
import { accountOf, compareStrings, policyName, type MeshIR } from '../compiler/ir/types.js';

/**
 * The mesh as a graph for people: identities (with their workloads and the
 * sync state of their proxies), who may call whom (per port, by which rule,
 * on which routes) and how traffic splits. What the admin page draws; built
 * from the same IR as the proxies' configuration.
 */
export type ProxyState = 'SYNCED' | 'STALE' | 'NACK' | 'NOT SENT';

export interface GraphProxy {
  readonly nodeId: string;
  readonly state: ProxyState;
  /** The proxy's last rejection, already escaped and bounded. */
  readonly nack?: string;
}

export interface GraphIdentity {
  /** `ns/sa` */
  readonly id: string;
  readonly workloads: readonly string[];
  readonly proxies: readonly GraphProxy[];
}

export interface GraphGrant {
  readonly policy: string;
  readonly protocol: 'tcp' | 'http';
  readonly ports: readonly number[] | 'all';
  /** HTTPRouteGroup matches (`ns/name#match`); empty for TCP. */
  readonly routes: readonly string[];
}

export interface GraphEdge {
  readonly from: string;
  readonly to: string;
  readonly grants: readonly GraphGrant[];
}

export interface GraphSplit {
  readonly name: string;
  /** `ns/name` of the root service. */
  readonly service: string;
  readonly backends: readonly { readonly service: string; readonly weight: number; readonly percent: number }[];
}

/** A Gateway API route attached to a Service. */
export interface GraphRoute {
  /** `HTTPRoute ns/name` or `GRPCRoute ns/name` */
  readonly name: string;
  /** `ns/name` of the Service it routes. */
  readonly service: string;
  readonly port?: number;
  /** `all` (a producer route), or the namespace whose callers follow it (a consumer route). */
  readonly callers: string;
  /** `ns/name:port` of every backend its rules name. */
  readonly backends: readonly string[];
}

export interface MeshGraph {
  readonly permissive: boolean;
  readonly identities: readonly GraphIdentity[];
  readonly edges: readonly GraphEdge[];
  readonly splits: readonly GraphSplit[];
  readonly routes: readonly GraphRoute[];
}

export function meshGraph(ir: MeshIR, proxies: readonly { identity: string; nodeId: string; state: ProxyState; nack?: string }[]): MeshGraph {
  const index = meshIndex(ir);
  const ids = new Set<string>(index.identities);
  for (const a of ir.access) for (const g of a.grants) {
    ids.add(a.destination);
    ids.add(g.source);
  }
  const proxiesOf = new Map<string, GraphProxy[]>();
  for (const p of proxies) {
    const list = proxiesOf.get(p.identity) ?? [];
    list.push({ nodeId: p.nodeId, state: p.state, ...(p.nack ? { nack: p.nack } : {}) });
    proxiesOf.set(p.identity, list);
  }
  const identities = [...ids].sort(compareStrings).map((id) => ({
    id: accountOf(id),
    workloads: (index.workloadsOf.get(id) ?? []).map((w) => `${w.kind} ${w.namespace}/${w.name}`).sort(compareStrings),
    proxies: (proxiesOf.get(id) ?? []).sort((a, b) => compareStrings(a.nodeId, b.nodeId)),
  }));
  const edges: GraphEdge[] = [];
  for (const a of ir.access) {
    const bySource = new Map<string, GraphGrant[]>();
    for (const g of a.grants) {
      const list = bySource.get(g.source) ?? [];
      list.push({ policy: policyName(g), protocol: g.protocol, ports: g.ports, routes: g.http.map((m) => m.from) });
      bySource.set(g.source, list);
    }
    for (const [source, grants] of bySource) edges.push({ from: accountOf(source), to: accountOf(a.destination), grants });
  }
  edges.sort((x, y) => compareStrings(x.from, y.from) || compareStrings(x.to, y.to));
  const splits = [...index.splitOf.values()].map((s) => {
    const total = s.backends.reduce((n, b) => n + b.weight, 0);
    return {
      name: s.from,
      service: `${s.namespace}/${s.service}`,
      backends: s.backends.map((b) => ({ service: `${s.namespace}/${b.service}`, weight: b.weight, percent: total === 0 ? 0 : Math.round((1000 * b.weight) / total) / 10 })),
    };
  });
  const routes = ir.routes.map((r) => ({
    name: `${r.kind} ${r.namespace}/${r.name}`,
    service: `${r.serviceNamespace}/${r.service}`,
    ...(r.port !== undefined ? { port: r.port } : {}),
    // Producer routes apply to every caller; consumer routes to callers of their own namespace.
    callers: r.namespace === r.serviceNamespace ? 'all' : r.namespace,
    backends: [...new Set(r.rules.flatMap((rule) => rule.backends.map((b) => `${b.namespace}/${b.service}:${b.port}`)))],
  }));
  return { permissive: ir.settings.permissive, identities, edges, splits, routes };
}
