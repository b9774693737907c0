import { anchoredPathRegex, fullMatch } from '../regex.js';
import { meshIndex } from './index.js';
import type { Grant, HttpMatchIR, Identity, MeshIR, PortProtocol } from './types.js';

/**
 * The meaning of the access IR as one function: may `source` send this to
 * `destination` on destination workload port `port`? The Envoy translation
 * must agree with it; property tests hold them to that.
 */
export interface HttpRequest {
  readonly method: string;
  /** Path without the query string. */
  readonly path: string;
  /** Lower-case names. */
  readonly headers: Readonly<Record<string, string>>;
  /** Query parameters (Gateway API routes match them; SMI never does). */
  readonly query?: Readonly<Record<string, string>>;
}

export function meshIdentities(ir: MeshIR): ReadonlySet<Identity> {
  return meshIndex(ir).identitySet;
}

/**
 * Whether a grant opens a destination port that carries `protocol`: its
 * ports include it, and an HTTP grant opens only ports that carry HTTP (an
 * HTTP rule never opens a TCP port). Reachability, the inbound RBAC and the
 * tests' oracle all decide with this one function.
 */
export function grantOpens(g: Grant, port: number, protocol: PortProtocol | undefined): boolean {
  if (g.ports !== 'all' && !g.ports.includes(port)) return false;
  return g.protocol === 'tcp' || protocol === undefined || protocol !== 'tcp';
}

/** Grants that apply to this pair and port (with `protocol`, only those that open a port carrying it; HTTP details aside). */
export function applicableGrants(ir: MeshIR, source: Identity, destination: Identity, port: number, protocol?: PortProtocol): Grant[] {
  return (meshIndex(ir).grantsTo.get(destination) ?? []).filter((g) => g.source === source && grantOpens(g, port, protocol));
}

/**
 * `request` undefined asks about raw TCP: only a TCP grant (or permissive
 * mode between mesh identities) allows it.
 */
export function isAllowed(ir: MeshIR, source: Identity, destination: Identity, port: number, request?: HttpRequest): boolean {
  if (ir.settings.permissive) {
    const ids = meshIdentities(ir);
    return ids.has(source) && ids.has(destination);
  }
  return applicableGrants(ir, source, destination, port).some(
    (g) => g.protocol === 'tcp' || (request !== undefined && g.http.some((m) => httpMatches(m, request))),
  );
}

export function httpMatches(m: HttpMatchIR, r: HttpRequest): boolean {
  if (m.methods !== undefined && !m.methods.includes(r.method)) return false;
  if (!fullMatch(anchoredPathRegex(m.pathRegex), r.path)) return false;
  return m.headers.every((h) => {
    const v = r.headers[h.name];
    return v !== undefined && fullMatch(h.regex, v);
  });
}
