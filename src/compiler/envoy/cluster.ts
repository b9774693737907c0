import type { Upstream } from '../ir/reachability.js';
import type { PortProtocol } from '../ir/types.js';
import { TYPE_PREFIX } from './codec.js';
import { inboundClusterName, outboundClusterName, upstreamServerName } from './names.js';
import { ADS_CONFIG, commonTlsContext } from './sds.js';

/** Clusters: one EDS cluster per reachable upstream service port, one local cluster per inbound port. */

const HTTP_OPTIONS = 'envoy.extensions.upstreams.http.v3.HttpProtocolOptions';

function http2Options(protocol: PortProtocol) {
  if (protocol !== 'http2' && protocol !== 'grpc') return {};
  return {
    typedExtensionProtocolOptions: {
      [HTTP_OPTIONS]: { '@type': `${TYPE_PREFIX}${HTTP_OPTIONS}`, explicitHttpConfig: { http2ProtocolOptions: {} } },
    },
  };
}

/** An EDS cluster for one upstream service port, endpoints over ADS: all a proxyless gRPC client gets. */
export function edsCluster(u: Upstream) {
  return {
    name: outboundClusterName(u.service, u.port.port),
    type: 'EDS',
    edsClusterConfig: { edsConfig: ADS_CONFIG },
    connectTimeout: '5s',
    lbPolicy: 'ROUND_ROBIN',
  };
}

/**
 * Everything `outboundCluster` (and `edsCluster`) read of an upstream, as
 * text: equal keys make equal clusters, so the encode memo finds a cluster
 * many callers share without serialising it (see envoy/snapshot.ts).
 */
export function outboundClusterKey(u: Upstream, dataPlane: 'envoy' | 'proxyless'): string {
  return JSON.stringify([dataPlane, u.service.namespace, u.service.name, u.port.port, u.port.protocol, u.identities]);
}

export function outboundCluster(u: Upstream) {
  return {
    ...edsCluster(u),
    transportSocket: {
      name: 'envoy.transport_sockets.tls',
      typedConfig: {
        '@type': `${TYPE_PREFIX}envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext`,
        // The server must prove one of the identities this proxy may reach.
        commonTlsContext: commonTlsContext(u.identities),
        sni: upstreamServerName(u.service, u.port.port),
      },
    },
    ...http2Options(u.port.protocol),
  };
}

/** The local application behind the sidecar, on loopback. */
export function inboundCluster(port: number, protocol: PortProtocol) {
  return {
    name: inboundClusterName(port),
    type: 'STATIC',
    connectTimeout: '5s',
    loadAssignment: {
      clusterName: inboundClusterName(port),
      endpoints: [{ lbEndpoints: [{ endpoint: { address: { socketAddress: { address: '127.0.0.1', portValue: port } } } }] }],
    },
    ...http2Options(protocol),
  };
}
