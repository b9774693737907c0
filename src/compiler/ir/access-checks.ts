import type { TrafficTargetObj } from '../model.js';
import { warning, type StatusCollector } from '../status.js';
import type { Grant, PortProtocol, ServiceIR } from './types.js';
import { PatchedTable } from '../keyed.js';

/**
 * The ports of an identity's endpoints, as JSON text of `[port, protocol,
 * service]` entries in the order found (for each port, the first service
 * that has it, in mesh order): text, so that the same ports compare equal from
 * one build to the next.
 */
export type IdentityPorts = string;

/** `IdentityPorts` of every identity with endpoints among `services`. */
export function identityPorts(services: readonly ServiceIR[]): Map<string, IdentityPorts> {
  return new Map([...portsFound(services)].map(([id, ports]) => [id, JSON.stringify([...ports.values()])]));
}

/**
 * `identityPorts(services)` given `previous`, the identityPorts of the same services before `replaced` (before ->
 * after) were put at their places: only the identities with endpoints in a replaced service, before or after, are
 * looked for again.
 */
export function patchIdentityPorts(previous: ReadonlyMap<string, IdentityPorts>, services: readonly ServiceIR[], replaced: ReadonlyMap<ServiceIR, ServiceIR>): ReadonlyMap<string, IdentityPorts> {
  const ids = new Set<string>();
  for (const [a, b] of replaced) for (const id of [...a.identities, ...b.identities]) ids.add(id);
  if (ids.size === 0) return previous;
  const found = portsFound(services, ids);
  let out: PatchedTable<IdentityPorts> | undefined;
  for (const id of ids) {
    const ports = found.get(id);
    const text = ports && JSON.stringify([...ports.values()]);
    if (text === previous.get(id)) continue;
    out ??= new PatchedTable(previous);
    if (text === undefined) out.remove(id);
    else out.put(id, text);
  }
  // (Ports found the same are the very table they were.)
  return out ?? previous;
}

/** Per identity (of `only`, when given), its endpoints' ports: for each, the first service that has it. */
function portsFound(services: readonly ServiceIR[], only?: ReadonlySet<string>): Map<string, Map<number, [number, PortProtocol, string]>> {
  const portsOf = new Map<string, Map<number, [number, PortProtocol, string]>>();
  for (const s of services) {
    if (only && !s.identities.some((id) => only.has(id))) continue;
    for (const p of s.ports)
      for (const e of p.endpoints) {
        if (only && !only.has(e.identity)) continue;
        let ports = portsOf.get(e.identity);
        if (!ports) portsOf.set(e.identity, (ports = new Map()));
        if (!ports.has(e.port)) ports.set(e.port, [e.port, p.protocol, `${s.namespace}/${s.name}`]);
      }
  }
  return portsOf;
}

/**
 * Mistakes that are legal SMI but almost certainly not what the author
 * meant: a TrafficTarget whose only rules are HTTP, aimed at a port that
 * carries TCP. HTTP rules never open a TCP port, so it grants nothing there.
 */
export function warnHttpOnTcp(tt: TrafficTargetObj, grants: readonly Grant[], ports: IdentityPorts | undefined, status: StatusCollector): void {
  if (grants.length === 0 || grants.some((g) => g.protocol !== 'http')) return;
  const entries = ports === undefined ? [] : (JSON.parse(ports) as [number, PortProtocol, string][]);
  const relevant = tt.destinationPort !== undefined ? entries.filter(([port]) => port === tt.destinationPort) : entries;
  const tcp = relevant.filter(([, protocol]) => protocol === 'tcp');
  if (tcp.length === 0 || tcp.length < relevant.length) return;
  const list = tcp.map(([port, , service]) => `${port} (service ${service})`).join(', ');
  status.add(
    tt.key,
    warning(tt.rulesPath, `only HTTP rules, but the destination's port ${list} carries TCP: HTTP rules do not open a TCP port, so this grants nothing there (add a TCPRoute rule)`),
  );
}
