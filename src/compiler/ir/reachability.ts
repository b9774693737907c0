import { meshIdentities } from './query.js';
import type { Endpoint, Grant, Identity, MeshIR, ServiceIR, ServicePortIR } from './types.js';

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

export function upstreamsOf(ir: MeshIR, proxy: Identity): Upstream[] {
  const inMesh = meshIdentities(ir);
  // This proxy's grants, indexed by destination once, rather than searched per endpoint.
  const mine = new Map<Identity, Grant[]>();
  for (const a of ir.access) {
    const grants = a.grants.filter((g) => g.source === proxy);
    if (grants.length > 0) mine.set(a.destination, grants);
  }
  const reachable = (e: Endpoint) =>
    ir.settings.permissive
      ? inMesh.has(proxy) && inMesh.has(e.identity)
      : (mine.get(e.identity) ?? []).some((g) => g.ports === 'all' || g.ports.includes(e.port));
  const out: Upstream[] = [];
  for (const service of ir.services) {
    for (const port of service.ports) {
      const endpoints = port.endpoints.filter(reachable);
      if (endpoints.length === 0) continue;
      out.push({ service, port, endpoints, identities: [...new Set(endpoints.map((e) => e.identity))].sort() });
    }
  }
  return out;
}
