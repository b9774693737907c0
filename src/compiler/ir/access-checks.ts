import type { TrafficTargetObj } from '../model.js';
import { warning, type StatusCollector } from '../status.js';
import { identityOf, type DestinationAccess, type MeshSettings, type PortProtocol, type ServiceIR } from './types.js';

/**
 * Mistakes that are legal SMI but almost certainly not what the author
 * meant: a TrafficTarget whose only rules are HTTP, aimed at a port that
 * carries TCP. HTTP rules never open a TCP port, so it grants nothing there.
 */
export function warnHttpOnTcp(
  targets: readonly TrafficTargetObj[],
  access: readonly DestinationAccess[],
  services: readonly ServiceIR[],
  settings: MeshSettings,
  status: StatusCollector,
): void {
  const grantsTo = new Map(access.map((a) => [a.destination, a.grants]));
  // Each identity's ports (first service found wins), gathered in one pass over the mesh.
  const portsOf = new Map<string, Map<number, { protocol: PortProtocol; service: string }>>();
  for (const s of services)
    for (const p of s.ports)
      for (const e of p.endpoints) {
        let ports = portsOf.get(e.identity);
        if (!ports) portsOf.set(e.identity, (ports = new Map()));
        if (!ports.has(e.port)) ports.set(e.port, { protocol: p.protocol, service: `${s.namespace}/${s.name}` });
      }
  for (const tt of targets) {
    const from = `${tt.meta.namespace}/${tt.meta.name}`;
    const destination = identityOf(settings.trustDomain, tt.meta.namespace, tt.destination.name);
    const grants = (grantsTo.get(destination) ?? []).filter((g) => g.grantedBy === from);
    if (grants.length === 0 || grants.some((g) => g.protocol !== 'http')) continue;
    const ports = portsOf.get(destination) ?? new Map<number, { protocol: PortProtocol; service: string }>();
    const relevant = tt.destinationPort !== undefined ? [...ports.entries()].filter(([port]) => port === tt.destinationPort) : [...ports.entries()];
    const tcp = relevant.filter(([, p]) => p.protocol === 'tcp');
    if (tcp.length === 0 || tcp.length < relevant.length) continue;
    const list = tcp.map(([port, p]) => `${port} (service ${p.service})`).join(', ');
    status.add(
      tt.key,
      warning(tt.rulesPath, `only HTTP rules, but the destination's port ${list} carries TCP: HTTP rules do not open a TCP port, so this grants nothing there (add a TCPRoute rule)`),
    );
  }
}
