import { ADS_CONFIG } from './sds.js';
import { ROUTER, typed } from './listener.js';
import { outboundRouteName, serviceHost } from './names.js';
import { isHttp, type OutboundService } from './outbound.js';

/**
 * Proxyless gRPC: a workload with no sidecar whose gRPC library is the xDS
 * client (`xds:///<name>` targets). What it receives is the subset of the
 * sidecar shapes such clients accept:
 * - per reachable HTTP/gRPC service port, Listeners named `<svc>.<ns>:<port>`
 *   and `<svc>.<ns>.svc.cluster.local:<port>` (the names applications dial)
 *   that hold an `api_listener` HTTP connection manager: RDS over ADS, with
 *   the router as the only (so last) filter. The route tables are the
 *   sidecar's, so splits and HTTPRouteGroup matches apply unchanged;
 * - EDS clusters over ADS, round robin, and localities with a weight;
 * - no Secrets: these clients reject SDS (they take certificates from
 *   certificate-provider plugins in their own bootstrap).
 * What it gives up, by design of the clients rather than of smc: traffic is
 * plaintext and policy is enforced only by the caller, which is told of
 * nothing it may not reach; there is no inbound enforcement on a proxyless
 * server. A sidecar's mTLS cannot reach a proxyless server and a proxyless
 * client cannot reach a sidecar, so each side is given only endpoints of its
 * own kind (the snapshot's warnings name what was left out).
 */
const HCM = 'envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager';

export const proxylessListenerNames = (o: OutboundService): string[] => [
  `${o.service.name}.${o.service.namespace}:${o.port.port}`,
  `${serviceHost(o.service)}:${o.port.port}`,
];

export function proxylessListeners(services: readonly OutboundService[], warn: (message: string) => void) {
  const listeners: object[] = [];
  for (const o of services) {
    if (!isHttp(o.protocol)) {
      warn(`${o.service.namespace}/${o.service.name}:${o.port.port}: a TCP port is not reachable by a proxyless gRPC client`);
      continue;
    }
    for (const name of proxylessListenerNames(o)) {
      listeners.push({
        name,
        apiListener: {
          apiListener: typed(HCM, { statPrefix: name, rds: { configSource: ADS_CONFIG, routeConfigName: outboundRouteName(o.port.port) }, httpFilters: [ROUTER] }),
        },
      });
    }
  }
  return listeners;
}
