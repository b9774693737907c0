/**
 * The xDS bootstrap of a proxyless gRPC application (the JSON that gRPC
 * libraries read from GRPC_XDS_BOOTSTRAP or GRPC_XDS_BOOTSTRAP_CONFIG).
 * gRPC's xDS clients can reach a control plane only with "insecure" or
 * "google_default" channel credentials: grpc-js-xds 1.14 has no way to
 * present a client certificate to the xDS server. So a proxyless workload
 * needs a controller started with --insecure-xds, and the CLI says so.
 */
export interface GrpcBootstrapOptions {
  readonly nodeId: string;
  readonly xdsHost: string;
  readonly xdsPort: number;
}

export function grpcXdsBootstrap(o: GrpcBootstrapOptions): object {
  const host = o.xdsHost.includes(':') ? `[${o.xdsHost}]` : o.xdsHost;
  return {
    xds_servers: [{ server_uri: `${host}:${o.xdsPort}`, channel_creds: [{ type: 'insecure' }], server_features: ['xds_v3'] }],
    node: { id: o.nodeId, cluster: o.nodeId.split('/')[0], locality: {} },
  };
}
