import type { ServiceIR } from '../ir/types.js';

/** Resource names and sidecar ports, in one place so every reference closes by construction. */

/** Sidecar ports (the OSM conventions, see architecture.md). */
export const ADMIN_PORT = 15000;
export const OUTBOUND_PORT = 15001;
export const INBOUND_PORT = 15003;
export const STATS_PORT = 15010;

export const outboundClusterName = (s: Pick<ServiceIR, 'namespace' | 'name'>, port: number): string =>
  `outbound|${port}|${s.name}.${s.namespace}`;

export const inboundClusterName = (port: number): string => `inbound|${port}|local`;

/**
 * Route configuration shared by every HTTP upstream on one service port;
 * virtual hosts tell services apart by the Host header (explicit mode's
 * local listeners, proxyless clients).
 */
export const outboundRouteName = (port: number): string => `outbound|${port}`;

/**
 * Route configuration of one service port as the transparent listener
 * reaches it: the connection's original destination (the service's cluster
 * IP and port) already names the service, so its table holds that service
 * alone, whatever the Host header says.
 */
export const serviceRouteName = (s: Pick<ServiceIR, 'namespace' | 'name'>, port: number): string => `outbound|${port}|${s.name}.${s.namespace}`;

/** Route configuration of one inbound (local application) port. */
export const inboundRouteName = (port: number): string => `inbound|${port}`;

export const INBOUND_LISTENER = 'inbound';
export const OUTBOUND_LISTENER = 'outbound';
/** Explicit mode: the local listener the application calls for one upstream port. */
export const explicitListenerName = (port: number): string => `outbound|${port}|explicit`;

/**
 * SDS name of the proxy's own certificate. The same name for every identity
 * (each proxy is only ever sent its own), so resources that refer to it, such
 * as the cluster of a service many proxies call, are identical across proxies
 * and the runtime stores them once.
 */
export const IDENTITY_SECRET = 'identity';

/** SDS name of the trust bundle (the mesh roots). */
export const TRUST_BUNDLE_SECRET = 'trust-bundle';

export const serviceHost = (s: Pick<ServiceIR, 'namespace' | 'name'>): string => `${s.name}.${s.namespace}.svc.cluster.local`;

/**
 * The TLS server name a caller sends for one service port. An explicit-mode
 * destination (no iptables) is dialled on its inbound port, and this name is
 * how its inbound listener tells which local port the call is for.
 */
export const upstreamServerName = (s: Pick<ServiceIR, 'namespace' | 'name'>, port: number): string => `${port}.${serviceHost(s)}`;
