import client from 'prom-client';

/** The control plane's Prometheus metrics, in one registry per server. */
export interface Metrics {
  readonly registry: client.Registry;
  readonly connected: client.Gauge;
  readonly blocked: client.Gauge;
  readonly pushes: client.Counter<'type'>;
  readonly pushDuration: client.Histogram;
  readonly convergence: client.Histogram;
  readonly nacks: client.Counter<'type'>;
  readonly staleRequests: client.Counter<'type'>;
  readonly bytesSent: client.Counter<'type'>;
}

export function createMetrics(): Metrics {
  const registry = new client.Registry();
  const opts = { registers: [registry] };
  return {
    registry,
    connected: new client.Gauge({ name: 'smc_xds_connected_proxies', help: 'ADS streams open now', ...opts }),
    blocked: new client.Gauge({ name: 'smc_xds_blocked_streams', help: 'ADS streams whose proxy is not reading what it was sent (write waiting on flow control)', ...opts }),
    pushes: new client.Counter({ name: 'smc_xds_pushes_total', help: 'xDS responses sent, by type', labelNames: ['type'], ...opts }),
    pushDuration: new client.Histogram({ name: 'smc_xds_push_duration_seconds', help: 'Time to compute and write the responses of one push to one proxy', buckets: [0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5], ...opts }),
    convergence: new client.Histogram({ name: 'smc_xds_convergence_seconds', help: 'Time from a snapshot change to its acknowledgement by a proxy', buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30], ...opts }),
    nacks: new client.Counter({ name: 'smc_xds_nacks_total', help: 'Responses rejected by proxies, by type', labelNames: ['type'], ...opts }),
    staleRequests: new client.Counter({ name: 'smc_xds_stale_requests_total', help: 'Requests ignored because their nonce was not the latest', labelNames: ['type'], ...opts }),
    bytesSent: new client.Counter({ name: 'smc_xds_bytes_sent_total', help: 'Encoded resource bytes sent, by type', labelNames: ['type'], ...opts }),
  };
}
