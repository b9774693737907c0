import { compareIndexed, meshIndex, serviceKey, type IndexedEndpoint } from './index.js';
import { grantOpens } from './query.js';
import type { Endpoint, Identity, MeshIR, ServiceIR, ServicePortIR } from './types.js';

/**
 * What one proxy identity may call: every service port with at least one
 * endpoint whose identity grants this proxy access on the endpoint's port
 * (deny by default), keeping only those endpoints. A proxy never learns of
 * endpoints it may not reach.
 */
export interface Upstream {
  readonly service: ServiceIR;
  readonly port: ServicePortIR;
  readonly endpoints: readonly Endpoint[];
  /** Identities of `endpoints`: what the proxy verifies in the server's certificate. */
  readonly identities: readonly Identity[];
}

/** A service's upstreams in a permissive mesh: each port with the endpoints whose identity is in the mesh. */
export function permissiveUpstreams(service: ServiceIR, inMesh: (identity: Identity) => boolean): Upstream[] {
  const out: Upstream[] = [];
  for (const port of service.ports) {
    const endpoints = port.endpoints.filter((e) => inMesh(e.identity));
    if (endpoints.length > 0) out.push({ service, port, endpoints, identities: [...new Set(endpoints.map((e) => e.identity))].sort() });
  }
  return out;
}

export function upstreamsOf(ir: MeshIR, proxy: Identity): Upstream[] {
  const index = meshIndex(ir);
  // Permissive: every in-mesh endpoint, so the whole mesh is this proxy's neighbourhood.
  if (ir.settings.permissive) {
    if (!index.identitySet.has(proxy)) return [];
    const inMesh = (identity: Identity) => index.identitySet.has(identity);
    return ir.services.flatMap((service) => permissiveUpstreams(service, inMesh));
  }
  return upstreamsIn(ir, proxy);
}

/** Some services (`namespace/name`), and the identities of their endpoints. */
export interface ServiceSelection {
  readonly services: ReadonlySet<string>;
  readonly identities: ReadonlySet<Identity>;
}

/**
 * Deny by default: only the endpoints of identities that grant this proxy
 * something, on a granted port. Of some services alone, when given: the
 * upstreams of a proxy whose others are known not to have changed (a pod of
 * these services moved).
 */
export function upstreamsIn(ir: MeshIR, proxy: Identity, only?: ServiceSelection): Upstream[] {
  const index = meshIndex(ir);
  const granted: IndexedEndpoint[] = [];
  for (const [destination, grants] of index.grantsFrom.get(proxy) ?? []) {
    if (only && !only.identities.has(destination)) continue;
    for (const e of index.endpointsOf.get(destination) ?? []) {
      if (only && !only.services.has(serviceKey(e.service))) continue;
      // A proxy learns only of what it may reach: an HTTP-only grant does not make a TCP port reachable.
      if (grants.some((g) => grantOpens(g, e.endpoint.port, e.port.protocol))) granted.push(e);
    }
  }
  granted.sort(compareIndexed);
  const out: Upstream[] = [];
  for (const e of granted) {
    const last = out[out.length - 1];
    if (last && last.port === e.port) (last.endpoints as Endpoint[]).push(e.endpoint);
    else out.push({ service: e.service, port: e.port, endpoints: [e.endpoint], identities: [] });
  }
  return out.map((u) => ({ ...u, identities: [...new Set(u.endpoints.map((e) => e.identity))].sort() }));
}
