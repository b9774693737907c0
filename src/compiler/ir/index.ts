import type { Endpoint, Grant, Identity, MeshIR, ServiceIR, ServicePortIR, SplitIR, Workload } from './types.js';

/**
 * The mesh IR indexed once, so that no per-proxy step scans the mesh:
 * building every proxy's configuration costs what that proxy's own
 * neighbourhood holds, not the size of the mesh. Built on first use and kept
 * for the life of the IR value (which is immutable).
 */
export interface MeshIndex {
  /** Identities that have a workload, sorted. */
  readonly identities: readonly Identity[];
  readonly identitySet: ReadonlySet<Identity>;
  readonly workloadsOf: ReadonlyMap<Identity, readonly Workload[]>;
  /** Grants whose destination is the key. */
  readonly grantsTo: ReadonlyMap<Identity, readonly Grant[]>;
  /** source -> destination -> grants from that source to that destination. */
  readonly grantsFrom: ReadonlyMap<Identity, ReadonlyMap<Identity, readonly Grant[]>>;
  /** Endpoints of each identity, in IR order (service, port, endpoint). */
  readonly endpointsOf: ReadonlyMap<Identity, readonly IndexedEndpoint[]>;
  /** `ns/name` -> service. */
  readonly service: ReadonlyMap<string, ServiceIR>;
  /** `ns/name` -> its position in `ir.services` (the order output follows). */
  readonly serviceOrder: ReadonlyMap<string, number>;
  /** `ns/name` of a root service -> its effective split (the first the IR lists). */
  readonly splitOf: ReadonlyMap<string, SplitIR>;
  /** `ns/name` of a backend -> the roots whose split names it. */
  readonly splitRootsOf: ReadonlyMap<string, readonly string[]>;
  /** Namespaces in the mesh. */
  readonly namespaceSet: ReadonlySet<string>;
  /** `ns/name` of every pod in the mesh. */
  readonly podSet: ReadonlySet<string>;
}

export interface IndexedEndpoint {
  readonly service: ServiceIR;
  readonly port: ServicePortIR;
  readonly endpoint: Endpoint;
  /** Position in IR order (service, port, endpoint): output built from several identities' endpoints sorts by it. */
  readonly order: number;
}

export const serviceKey = (s: { readonly namespace: string; readonly name: string }): string => `${s.namespace}/${s.name}`;

const cache = new WeakMap<MeshIR, MeshIndex>();

export function meshIndex(ir: MeshIR): MeshIndex {
  const known = cache.get(ir);
  if (known) return known;
  const push = <K, V>(m: Map<K, V[]>, k: K, v: V) => {
    const list = m.get(k);
    if (list) list.push(v);
    else m.set(k, [v]);
  };
  const workloadsOf = new Map<Identity, Workload[]>();
  for (const w of ir.workloads) push(workloadsOf, w.identity, w);
  const grantsTo = new Map<Identity, readonly Grant[]>();
  const grantsFrom = new Map<Identity, Map<Identity, Grant[]>>();
  for (const a of ir.access) {
    grantsTo.set(a.destination, a.grants);
    for (const g of a.grants) {
      let bySource = grantsFrom.get(g.source);
      if (!bySource) grantsFrom.set(g.source, (bySource = new Map()));
      push(bySource, a.destination, g);
    }
  }
  const endpointsOf = new Map<Identity, IndexedEndpoint[]>();
  const service = new Map<string, ServiceIR>();
  const serviceOrder = new Map<string, number>();
  let order = 0;
  ir.services.forEach((s, i) => {
    service.set(serviceKey(s), s);
    serviceOrder.set(serviceKey(s), i);
    for (const port of s.ports) for (const endpoint of port.endpoints) push(endpointsOf, endpoint.identity, { service: s, port, endpoint, order: order++ });
  });
  const splitOf = new Map<string, SplitIR>();
  const splitRootsOf = new Map<string, string[]>();
  for (const s of ir.splits) {
    const root = `${s.namespace}/${s.service}`;
    if (splitOf.has(root)) continue;
    splitOf.set(root, s);
    for (const b of s.backends) push(splitRootsOf, `${s.namespace}/${b.service}`, root);
  }
  const identities = [...workloadsOf.keys()].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  const podSet = new Set(ir.workloads.filter((w) => w.kind === 'Pod').map((w) => `${w.namespace}/${w.name}`));
  const index: MeshIndex = { identities, identitySet: new Set(identities), workloadsOf, grantsTo, grantsFrom, endpointsOf, service, serviceOrder, splitOf, splitRootsOf, namespaceSet: new Set(ir.namespaces), podSet };
  cache.set(ir, index);
  return index;
}
