import { TYPE_PREFIX } from '../compiler/envoy/codec.js';
import { ADMIN_PORT, STATS_PORT } from '../compiler/envoy/names.js';
import { RE2_MAX_PROGRAM_SIZE } from '../compiler/regex.js';

/**
 * Envoy's runtime as every bootstrap smc writes sets it: the RE2 program-size
 * limit the compiler checks patterns against (Envoy's default, 100, refuses
 * ordinary patterns such as `/x/[a-z0-9]{1,64}/[a-z]{1,64}`).
 */
export const LAYERED_RUNTIME = {
  layers: [
    {
      name: 'smc',
      staticLayer: {
        're2.max_program_size.error_level': RE2_MAX_PROGRAM_SIZE,
        're2.max_program_size.warn_level': RE2_MAX_PROGRAM_SIZE,
      },
    },
  ],
};

/**
 * The Envoy bootstrap of a sidecar managed by smc: everything comes over one
 * ADS stream to the control plane, over mutual TLS with the proxy's
 * bootstrap certificate; the control plane must prove its own SPIFFE ID.
 */
export interface AdsBootstrapOptions {
  readonly nodeId: string;
  readonly xdsHost: string;
  readonly xdsPort: number;
  readonly adminPort?: number;
  /** Where Prometheus scrapes the sidecar's own stats (default 15010; 0: none). */
  readonly statsPort?: number;
  /** Incremental xDS instead of state of the world. */
  readonly delta?: boolean;
  /** Undefined: plaintext to a control plane started with --insecure-xds. */
  readonly tls?: { certificateChain: string; privateKey: string; trustBundle: string; controlPlaneIdentity: string };
}

export const XDS_CLUSTER = 'smc-xds';

export const STATS_LISTENER = 'smc-stats';
const ADMIN_CLUSTER = 'smc-admin';

/**
 * The sidecar's Prometheus endpoint: a listener on every address that serves
 * the admin's /stats/prometheus and nothing else of the admin port (which
 * stays on loopback: it can change the proxy).
 */
function statsResources(statsPort: number, adminPort: number): { listener: object; cluster: object } {
  return {
    listener: {
      name: STATS_LISTENER,
      address: { socketAddress: { address: '0.0.0.0', portValue: statsPort } },
      filterChains: [
        {
          filters: [
            {
              name: 'envoy.filters.network.http_connection_manager',
              typedConfig: {
                '@type': `${TYPE_PREFIX}envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager`,
                statPrefix: STATS_LISTENER,
                routeConfig: {
                  virtualHosts: [
                    {
                      name: STATS_LISTENER,
                      domains: ['*'],
                      routes: [
                        { match: { path: '/stats/prometheus' }, route: { cluster: ADMIN_CLUSTER } },
                        { match: { prefix: '/' }, directResponse: { status: 404, body: { inlineString: 'only /stats/prometheus is served here\n' } } },
                      ],
                    },
                  ],
                },
                httpFilters: [{ name: 'envoy.filters.http.router', typedConfig: { '@type': `${TYPE_PREFIX}envoy.extensions.filters.http.router.v3.Router` } }],
              },
            },
          ],
        },
      ],
    },
    cluster: {
      name: ADMIN_CLUSTER,
      type: 'STATIC',
      connectTimeout: '1s',
      loadAssignment: { clusterName: ADMIN_CLUSTER, endpoints: [{ lbEndpoints: [{ endpoint: { address: { socketAddress: { address: '127.0.0.1', portValue: adminPort } } } }] }] },
    },
  };
}

export function adsBootstrap(o: AdsBootstrapOptions): object {
  const isIp = /^[\d.]+$|:/.test(o.xdsHost);
  const ads = { ads: {}, resourceApiVersion: 'V3' };
  const stats = (o.statsPort ?? STATS_PORT) === 0 ? undefined : statsResources(o.statsPort ?? STATS_PORT, o.adminPort ?? ADMIN_PORT);
  return {
    node: { id: o.nodeId, cluster: o.nodeId.split('/')[0] },
    admin: { address: { socketAddress: { address: '127.0.0.1', portValue: o.adminPort ?? ADMIN_PORT } } },
    layeredRuntime: LAYERED_RUNTIME,
    dynamicResources: {
      adsConfig: {
        apiType: o.delta ? 'DELTA_GRPC' : 'GRPC',
        transportApiVersion: 'V3',
        setNodeOnFirstMessageOnly: true,
        grpcServices: [{ envoyGrpc: { clusterName: XDS_CLUSTER } }],
      },
      cdsConfig: ads,
      ldsConfig: ads,
    },
    staticResources: {
      ...(stats ? { listeners: [stats.listener] } : {}),
      clusters: [
        ...(stats ? [stats.cluster] : []),
        {
          name: XDS_CLUSTER,
          type: isIp ? 'STATIC' : 'STRICT_DNS',
          connectTimeout: '5s',
          loadAssignment: {
            clusterName: XDS_CLUSTER,
            endpoints: [{ lbEndpoints: [{ endpoint: { address: { socketAddress: { address: o.xdsHost, portValue: o.xdsPort } } } }] }],
          },
          typedExtensionProtocolOptions: {
            'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': {
              '@type': `${TYPE_PREFIX}envoy.extensions.upstreams.http.v3.HttpProtocolOptions`,
              explicitHttpConfig: { http2ProtocolOptions: {} },
            },
          },
          ...(o.tls
            ? {
                transportSocket: {
                  name: 'envoy.transport_sockets.tls',
                  typedConfig: {
                    '@type': `${TYPE_PREFIX}envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext`,
                    commonTlsContext: {
                      tlsCertificates: [{ certificateChain: { filename: o.tls.certificateChain }, privateKey: { filename: o.tls.privateKey } }],
                      validationContext: {
                        trustedCa: { filename: o.tls.trustBundle },
                        matchTypedSubjectAltNames: [{ sanType: 'URI', matcher: { exact: o.tls.controlPlaneIdentity } }],
                      },
                      alpnProtocols: ['h2'],
                    },
                  },
                },
              }
            : {}),
        },
      ],
    },
  };
}
