import { meshIndex } from '../ir/index.js';
import type { Grant, Identity, MeshIR, PortProtocol } from '../ir/types.js';
import { TYPE_PREFIX } from './codec.js';
import {
  INBOUND_LISTENER,
  INBOUND_PORT,
  OUTBOUND_LISTENER,
  OUTBOUND_PORT,
  explicitListenerName,
  inboundClusterName,
  inboundRouteName,
  outboundRouteName,
  serviceRouteName,
  upstreamServerName,
} from './names.js';
import { isHttp, type Action, type OutboundService } from './outbound.js';
import { httpRbacFilter, networkRbacFilter } from './rbac.js';
import { ADS_CONFIG, commonTlsContext } from './sds.js';
import { groupBy } from '../group.js';

/** Listeners: inbound on 15003 (mTLS + RBAC), outbound on 15001 (transparent) or per upstream port (explicit). */

export const typed = (type: string, rest: object = {}) => ({ '@type': `${TYPE_PREFIX}${type}`, ...rest });

const ORIGINAL_DST = {
  name: 'envoy.filters.listener.original_dst',
  typedConfig: typed('envoy.extensions.filters.listener.original_dst.v3.OriginalDst'),
};
const TLS_INSPECTOR = {
  name: 'envoy.filters.listener.tls_inspector',
  typedConfig: typed('envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector'),
};
export const ROUTER = { name: 'envoy.filters.http.router', typedConfig: typed('envoy.extensions.filters.http.router.v3.Router') };

const socketAddress = (address: string, port: number) => ({ socketAddress: { address, portValue: port } });

/**
 * MeshConfig `accessLog: true`: every inbound request (and TCP connection)
 * is one JSON line on Envoy's stdout, naming the caller's SPIFFE ID, the
 * route (named after its HTTPRouteGroup match) and, for a denied one, the
 * RBAC's verdict (`rbac_access_denied_matched_policy[none]`).
 */
const INBOUND_HTTP_LOG = {
  time: '%START_TIME%',
  direction: 'inbound',
  caller: '%DOWNSTREAM_PEER_URI_SAN%',
  method: '%REQ(:METHOD)%',
  path: '%REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%',
  status: '%RESPONSE_CODE%',
  details: '%RESPONSE_CODE_DETAILS%',
  route: '%ROUTE_NAME%',
  upstream: '%UPSTREAM_HOST%',
  duration_ms: '%DURATION%',
};
const INBOUND_TCP_LOG = {
  time: '%START_TIME%',
  direction: 'inbound',
  caller: '%DOWNSTREAM_PEER_URI_SAN%',
  details: '%CONNECTION_TERMINATION_DETAILS%',
  upstream: '%UPSTREAM_HOST%',
  bytes_received: '%BYTES_RECEIVED%',
  bytes_sent: '%BYTES_SENT%',
  duration_ms: '%DURATION%',
};
const accessLog = (format: object) => [
  { name: 'envoy.access_loggers.stdout', typedConfig: typed('envoy.extensions.access_loggers.stream.v3.StdoutAccessLog', { logFormat: { jsonFormat: format } }) },
];

function httpConnectionManager(statPrefix: string, routeName: string, httpFilters: readonly object[], inbound: boolean, log = false) {
  return {
    name: 'envoy.filters.network.http_connection_manager',
    typedConfig: typed('envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager', {
      statPrefix,
      codecType: 'AUTO',
      rds: { configSource: ADS_CONFIG, routeConfigName: routeName },
      httpFilters: [...httpFilters, ROUTER],
      // The application learns the caller's verified SPIFFE ID from x-forwarded-client-cert.
      ...(inbound ? { forwardClientCertDetails: 'SANITIZE_SET', setCurrentClientCertDetails: { uri: true } } : {}),
      ...(log ? { accessLog: accessLog(INBOUND_HTTP_LOG) } : {}),
    }),
  };
}

function tcpProxy(statPrefix: string, action: Action, log = false) {
  return {
    name: 'envoy.filters.network.tcp_proxy',
    typedConfig: typed('envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy', {
      statPrefix,
      ...(action.kind === 'cluster' ? { cluster: action.cluster } : { weightedClusters: { clusters: action.clusters.map((c) => ({ name: c.cluster, weight: c.weight })) } }),
      ...(log ? { accessLog: accessLog(INBOUND_TCP_LOG) } : {}),
    }),
  };
}

/** One local port this identity serves, with what applies to it. */
export interface InboundPort {
  readonly port: number;
  readonly protocol: PortProtocol;
  readonly grants: readonly Grant[];
  /** TLS server names of explicit-mode callers for this port (see `upstreamServerName`). */
  readonly serverNames: readonly string[];
}

export function inboundPorts(ir: MeshIR, identity: Identity): InboundPort[] {
  const ports = new Map<number, { protocol: PortProtocol; serverNames: Set<string> }>();
  const named = new Set<string>();
  const index = meshIndex(ir);
  for (const { service: s, port: p, endpoint: e } of index.endpointsOf.get(identity) ?? []) {
    const entry = ports.get(e.port) ?? { protocol: p.protocol, serverNames: new Set<string>() };
    const sni = upstreamServerName(s, p.port);
    // A server name leads to one local port; should workloads disagree, the first port found keeps it.
    if (e.interception === 'explicit' && !named.has(sni)) {
      named.add(sni);
      entry.serverNames.add(sni);
    }
    ports.set(e.port, entry);
  }
  const grants = index.grantsTo.get(identity) ?? [];
  return [...ports.entries()]
    .sort((a, b) => a[0] - b[0])
    .map(([port, { protocol, serverNames }]) => ({
      port,
      protocol,
      grants: grants.filter((g) => g.ports === 'all' || g.ports.includes(port)),
      serverNames: [...serverNames].sort(),
    }));
}

/**
 * The inbound listener. Transparent callers arrive redirected by iptables and
 * are told apart by original destination port; explicit-mode workloads are
 * dialled on 15003 itself and told apart by TLS server name.
 */
export function inboundListener(settings: Pick<MeshIR['settings'], 'permissive' | 'trustDomain' | 'accessLog'>, ports: readonly InboundPort[]) {
  const { permissive, trustDomain, accessLog: log } = settings;
  const tls = {
    name: 'envoy.transport_sockets.tls',
    typedConfig: typed('envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext', {
      requireClientCertificate: true,
      // Any certificate of the mesh CA is accepted here; RBAC decides which identities may call.
      commonTlsContext: commonTlsContext([]),
    }),
  };
  const filters = (p: InboundPort) =>
    isHttp(p.protocol)
      ? [httpConnectionManager(`inbound_${p.port}`, inboundRouteName(p.port), [httpRbacFilter(p.grants, permissive, trustDomain)], true, log)]
      : [networkRbacFilter(`inbound_${p.port}`, p.grants, permissive, trustDomain), tcpProxy(`inbound_${p.port}`, { kind: 'cluster', cluster: inboundClusterName(p.port) }, log)];
  const chains: object[] = ports.map((p) => ({
    name: `inbound|${p.port}`,
    filterChainMatch: { destinationPort: p.port },
    transportSocket: tls,
    filters: filters(p),
  }));
  for (const p of ports)
    if (p.serverNames.length > 0)
      chains.push({ name: `inbound|${p.port}|sni`, filterChainMatch: { serverNames: p.serverNames }, transportSocket: tls, filters: filters(p) });
  const explicit = ports.some((p) => p.serverNames.length > 0);
  return {
    name: INBOUND_LISTENER,
    address: socketAddress('0.0.0.0', INBOUND_PORT),
    trafficDirection: 'INBOUND',
    listenerFilters: explicit ? [ORIGINAL_DST, TLS_INSPECTOR] : [ORIGINAL_DST],
    filterChains: chains,
  };
}

/** An outbound chain's filters: HTTP routed by the route configuration named `route`, TCP proxied to where the service's traffic goes. */
function outboundFilters(o: OutboundService, statPrefix: string, route: string): object[] {
  if (isHttp(o.protocol)) return [httpConnectionManager(statPrefix, route, [], false)];
  return [tcpProxy(statPrefix, o.fallback!)];
}

/**
 * Transparent mode: one listener on 15001 that receives the application's
 * redirected connections and picks a filter chain by original destination
 * (service cluster IP and port). Unknown destinations match no chain and are
 * closed: deny by default.
 *
 * `chainOf` gives the filter chain of a service port that keeps all its
 * cluster IPs, by the outbound service and the text of what it is made from
 * (`key`): a caller that keeps chains (a shared reach, a planning's callers
 * of one service) hands back the chain it made before, so it is encoded and
 * walked once.
 */
export function transparentListener(services: readonly OutboundService[], warn: (message: string) => void, chainOf: (o: OutboundService, key: () => string, make: () => object) => object = (_, __, make) => make()) {
  const chains: object[] = [];
  const used = new Set<string>();
  for (const o of services) {
    if (!isHttp(o.protocol) && o.fallback === undefined) continue;
    if (o.service.clusterIPs.length === 0) {
      warn(`${o.service.namespace}/${o.service.name}:${o.port.port}: headless service (no cluster IP) is not reachable through the transparent outbound listener`);
      continue;
    }
    const ips = o.service.clusterIPs.filter((ip) => !used.has(`${ip}:${o.port.port}`));
    for (const ip of ips) used.add(`${ip}:${o.port.port}`);
    if (ips.length === 0) continue;
    const chain = () => ({
      name: `outbound|${o.port.port}|${o.service.name}.${o.service.namespace}`,
      filterChainMatch: {
        destinationPort: o.port.port,
        prefixRanges: ips.map((ip) => ({ addressPrefix: ip, prefixLen: ip.includes(':') ? 128 : 32 })),
      },
      // The destination (cluster IP and port) names the service: its own route table, not the port's (serviceRouteName).
      filters: outboundFilters(o, `outbound_${o.port.port}_${o.service.name}.${o.service.namespace}`, serviceRouteName(o.service, o.port.port)),
    });
    if (ips.length !== o.service.clusterIPs.length) chains.push(chain());
    else chains.push(chainOf(o, () => JSON.stringify([o.port.port, o.service.name, o.service.namespace, o.service.clusterIPs, o.protocol, isHttp(o.protocol) ? null : o.fallback]), chain));
  }
  return {
    name: OUTBOUND_LISTENER,
    address: socketAddress('0.0.0.0', OUTBOUND_PORT),
    trafficDirection: 'OUTBOUND',
    listenerFilters: [ORIGINAL_DST],
    filterChains: chains,
  };
}

/**
 * Explicit mode: one listener on 127.0.0.1 per upstream service port. HTTP
 * services sharing a port share the listener (the Host header picks the
 * service); a TCP port can carry only one service, so the first by name wins.
 */
export function explicitListeners(services: readonly OutboundService[], warn: (message: string) => void) {
  const byPort = groupBy(services, (o) => o.port.port);
  const listeners: object[] = [];
  for (const [port, list] of [...byPort.entries()].sort((a, b) => a[0] - b[0])) {
    const http = list.filter((o) => isHttp(o.protocol));
    const tcp = list.filter((o) => !isHttp(o.protocol) && o.fallback !== undefined);
    const chosen = http.length > 0 ? undefined : tcp[0];
    const dropped = http.length > 0 ? tcp : tcp.slice(1);
    for (const o of dropped)
      warn(`${o.service.namespace}/${o.service.name}:${port}: explicit mode listens once per port on 127.0.0.1, and port ${port} is taken by ${chosen ? `${chosen.service.namespace}/${chosen.service.name}` : 'HTTP services'}`);
    if (http.length === 0 && chosen === undefined) continue;
    listeners.push({
      name: explicitListenerName(port),
      address: socketAddress('127.0.0.1', port),
      trafficDirection: 'OUTBOUND',
      filterChains: [{ filters: chosen ? outboundFilters(chosen, `explicit_${port}`, outboundRouteName(port)) : [httpConnectionManager(`explicit_${port}`, outboundRouteName(port), [], false)] }],
    });
  }
  return listeners;
}
