import { PROBE_PORT } from '../capture.js';
import { probePath, READY_PATH, type NamedProbe } from '../probes.js';
import { TYPE_PREFIX } from './codec.js';
import { ROUTER, typed } from './listener.js';
import { ADMIN_PORT } from './names.js';

/** The probe listener of an injected sidecar (see compiler/probes.ts) and the loopback clusters it uses. */

export const PROBE_LISTENER = 'probes';
export const ADMIN_READY_CLUSTER = 'probe|ready';
export const probeClusterName = (key: string): string => `probe|${key}`;

const loopback = (name: string, port: number) => ({
  name,
  type: 'STATIC',
  connectTimeout: '1s',
  loadAssignment: { clusterName: name, endpoints: [{ lbEndpoints: [{ endpoint: { address: { socketAddress: { address: '127.0.0.1', portValue: port } } } }] }] },
});

const HTTP_OPTIONS = 'envoy.extensions.upstreams.http.v3.HttpProtocolOptions';
// Checked often enough for kubelet's default period (10 s) to see a change within one probe.
// These clusters never carry traffic: without noTrafficInterval Envoy would check them only once a minute.
const ACTIVE_CHECK = { timeout: '1s', interval: '2s', noTrafficInterval: '2s', unhealthyThreshold: 1, healthyThreshold: 1 };

export function probeClusters(probes: readonly NamedProbe[]): object[] {
  return [
    // Only /ready of the admin port is reachable through the probe listener: the route rewrites to it exactly.
    loopback(ADMIN_READY_CLUSTER, ADMIN_PORT),
    ...probes.map(({ key, target }) => {
      const base = loopback(probeClusterName(key), target.port);
      if (target.kind === 'http') {
        // kubelet does not verify an HTTPS probe's certificate; neither does this hop on loopback.
        return target.tls ? { ...base, transportSocket: { name: 'envoy.transport_sockets.tls', typedConfig: typed('envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext') } } : base;
      }
      if (target.kind === 'tcp') return { ...base, healthChecks: [{ ...ACTIVE_CHECK, tcpHealthCheck: {} }] };
      return {
        ...base,
        // The authority defaults to the cluster's name, which holds "|": gRPC servers refuse it as the :authority of a request.
        healthChecks: [{ ...ACTIVE_CHECK, grpcHealthCheck: { ...(target.service ? { serviceName: target.service } : {}), authority: `127.0.0.1:${target.port}` } }],
        typedExtensionProtocolOptions: { [HTTP_OPTIONS]: { '@type': `${TYPE_PREFIX}${HTTP_OPTIONS}`, explicitHttpConfig: { http2ProtocolOptions: {} } } },
      };
    }),
  ];
}

/** Pods of one identity that declared the same probes, by their addresses. */
export interface ProbeChain {
  readonly addresses: readonly string[];
  readonly probes: readonly NamedProbe[];
}

/**
 * The probe listener. kubelet probes a pod at the pod's own address, so each
 * pod's probes are reachable only there: one filter chain per set of probes,
 * matched by the destination addresses of the pods that declared it (a pod's
 * annotation opens nothing on the other pods of its identity). Every address
 * answers the sidecar's own readiness; only GET and HEAD are forwarded.
 */
export function probeListener(chains: readonly ProbeChain[]) {
  const get = [{ name: ':method', stringMatch: { safeRegex: { regex: 'GET|HEAD' } } }];
  const ready = { name: 'ready', match: { path: READY_PATH, headers: get }, route: { cluster: ADMIN_READY_CLUSTER, prefixRewrite: '/ready', timeout: '1s' } };
  const unknown = { name: 'unknown', match: { prefix: '/' }, directResponse: { status: 404 } };
  const chain = (probes: readonly NamedProbe[], addresses?: readonly string[]) => {
    const routes = [
      ready,
      ...probes.flatMap(({ key, target }) => (target.kind === 'http' ? [{ name: key, match: { path: probePath(key), headers: get }, route: { cluster: probeClusterName(key), prefixRewrite: target.path, timeout: '0s' } }] : [])),
      unknown,
    ];
    // A TCP or gRPC probe is answered from the active health check of its port: healthy, 200; not (yet), 503.
    const checks = probes.flatMap(({ key, target }) =>
      target.kind === 'http'
        ? []
        : [{
            name: 'envoy.filters.http.health_check',
            typedConfig: typed('envoy.extensions.filters.http.health_check.v3.HealthCheck', {
              passThroughMode: false,
              headers: [{ name: ':path', stringMatch: { exact: probePath(key) } }, ...get],
              clusterMinHealthyPercentages: { [probeClusterName(key)]: { value: 100 } },
            }),
          }],
    );
    return {
      ...(addresses ? { filterChainMatch: { prefixRanges: addresses.map((a) => ({ addressPrefix: a, prefixLen: a.includes(':') ? 128 : 32 })) } } : {}),
      filters: [
        {
          name: 'envoy.filters.network.http_connection_manager',
          typedConfig: typed('envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager', {
            statPrefix: 'probes',
            routeConfig: { name: PROBE_LISTENER, virtualHosts: [{ name: PROBE_LISTENER, domains: ['*'], routes }] },
            httpFilters: [...checks, ROUTER],
          }),
        },
      ],
    };
  };
  return {
    name: PROBE_LISTENER,
    address: { socketAddress: { address: '0.0.0.0', portValue: PROBE_PORT } },
    filterChains: chains.filter((c) => c.probes.length > 0 && c.addresses.length > 0).map((c) => chain(c.probes, c.addresses)),
    // Any other address (a pod whose address is not known yet): the sidecar's readiness only.
    defaultFilterChain: chain([]),
  };
}
