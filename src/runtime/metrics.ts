import client from 'prom-client';
import { SMC_VERSION } from '../cli/version.js';

/**
 * The control plane's Prometheus metrics, in one registry per server. One
 * label scheme: `type` is an xDS type as smc names it (cluster, endpoint,
 * listener, route, secret), `identity` a SPIFFE ID, `state` an input state.
 * Process and Node.js runtime metrics (CPU, memory, event-loop lag, GC) are
 * the client library's standard ones, under their standard names.
 */
export interface Metrics {
  readonly registry: client.Registry;
  readonly connected: client.Gauge;
  readonly blocked: client.Gauge;
  readonly pushes: client.Counter<'type'>;
  readonly pushDuration: client.Histogram;
  readonly convergence: client.Histogram<'type'>;
  /** Input objects by kind and state, as of the last compile. */
  readonly inputs: client.Gauge<'kind' | 'state'>;
  /** Read at scrape time: when each identity's service certificate expires. */
  certificateExpiry: () => ReadonlyMap<string, Date>;
  readonly nacks: client.Counter<'type'>;
  readonly staleRequests: client.Counter<'type'>;
  readonly bytesSent: client.Counter<'type'>;
  /** Connections to the xDS port whose TLS handshake failed, by reason (an OpenSSL or Node error code). */
  readonly handshakeFailures: client.Counter<'reason'>;
  /** Changes a source found by reconciling, without an event of its watch. */
  readonly sourceDrift: client.Counter<'source'>;
  /** Compiles run (the first, and one per batch of input changes). */
  readonly compiles: client.Counter;
  /** How long each recompute of the Programmed conditions took. */
  readonly programmedDuration: client.Histogram;
  /** Accepted policy objects whose Programmed condition is not True, by kind and reason. */
  readonly notProgrammed: client.Gauge<'kind' | 'reason'>;
  /** Read at scrape time: status writes each source made so far, by the kind of object. */
  statusWrites: () => ReadonlyMap<string, number>;
}

export function createMetrics(): Metrics {
  const registry = new client.Registry();
  const opts = { registers: [registry] };
  client.collectDefaultMetrics({ register: registry });
  new client.Gauge({ name: 'smc_build_info', help: 'Always 1; labels name the build', labelNames: ['version', 'node'], ...opts }).set({ version: SMC_VERSION, node: process.version }, 1);
  const metrics: Metrics = {
    registry,
    certificateExpiry: () => new Map(),
    inputs: new client.Gauge({ name: 'smc_inputs', help: 'Input objects by kind and state (Accepted, PartiallyAccepted, Rejected, Ignored) as of the last compile', labelNames: ['kind', 'state'], ...opts }),
    connected: new client.Gauge({ name: 'smc_xds_connected_proxies', help: 'ADS streams open now', ...opts }),
    blocked: new client.Gauge({ name: 'smc_xds_blocked_streams', help: 'ADS streams whose proxy is not reading what it was sent (write waiting on flow control)', ...opts }),
    pushes: new client.Counter({ name: 'smc_xds_pushes_total', help: 'xDS responses sent, by type', labelNames: ['type'], ...opts }),
    pushDuration: new client.Histogram({ name: 'smc_xds_push_duration_seconds', help: 'Time to compute and write the responses of one push to one proxy', buckets: [0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5], ...opts }),
    convergence: new client.Histogram({ name: 'smc_xds_convergence_seconds', help: 'Time from sending a response to its acknowledgement by the proxy, by type', labelNames: ['type'], buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30], ...opts }),
    nacks: new client.Counter({ name: 'smc_xds_nacks_total', help: 'Responses rejected by proxies, by type', labelNames: ['type'], ...opts }),
    staleRequests: new client.Counter({ name: 'smc_xds_stale_requests_total', help: 'Requests ignored because their nonce was not the latest', labelNames: ['type'], ...opts }),
    handshakeFailures: new client.Counter({ name: 'smc_xds_handshake_failures_total', help: 'Connections to the xDS port whose mutual-TLS handshake failed, by reason (no certificate, unknown CA, expired, not TLS...)', labelNames: ['reason'], ...opts }),
    compiles: new client.Counter({ name: 'smc_compiles_total', help: 'Compiles run: the first, then one per batch of input changes (a source change that smc does not read, such as a pod status condition, runs none)', ...opts }),
    sourceDrift: new client.Counter({ name: 'smc_source_drift_total', help: 'Changes a source found by its periodic reconcile rather than by its watch (a watch that misses events shows here)', labelNames: ['source'], ...opts }),
    programmedDuration: new client.Histogram({ name: 'smc_programmed_duration_seconds', help: 'Time to work out every policy object\'s Programmed condition again (after a publish, a push, an ACK or NACK; at most every 250 ms)', buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10], ...opts }),
    notProgrammed: new client.Gauge({ name: 'smc_inputs_not_programmed', help: 'Accepted policy objects not yet in force on every connected proxy they shape, by kind and reason (Pending, Rejected, NoProxies)', labelNames: ['kind', 'reason'], ...opts }),
    statusWrites: () => new Map(),
    bytesSent: new client.Counter({ name: 'smc_xds_bytes_sent_total', help: 'Encoded resource bytes sent, by type', labelNames: ['type'], ...opts }),
  };
  new client.Counter({
    name: 'smc_status_writes_total',
    help: 'Status writes to the objects of the sources (the Kubernetes API server), by kind of object; bounded in rate, and made only when what smc says of an object changed',
    labelNames: ['kind'],
    ...opts,
    collect() {
      this.reset();
      for (const [kind, n] of metrics.statusWrites()) this.inc({ kind }, n);
    },
  });
  new client.Gauge({
    name: 'smc_certificate_expiry_seconds',
    help: 'Seconds until the service certificate of each identity expires (renewed at two thirds of its life)',
    labelNames: ['identity'],
    ...opts,
    collect() {
      this.reset();
      const now = Date.now();
      for (const [identity, notAfter] of metrics.certificateExpiry()) this.set({ identity }, Math.round((notAfter.getTime() - now) / 1000));
    },
  });
  return metrics;
}

/** Sets `smc_inputs` from a compile's status: one series per kind and state seen. */
export function countInputs(metrics: Metrics, entries: readonly { readonly object: { readonly kind: string }; readonly state: string }[]): void {
  const counts = new Map<string, { kind: string; state: string; n: number }>();
  for (const e of entries) {
    const kind = e.object.kind || '(unreadable)';
    const key = `${kind} ${e.state}`;
    const c = counts.get(key) ?? { kind, state: e.state, n: 0 };
    c.n++;
    counts.set(key, c);
  }
  metrics.inputs.reset();
  for (const c of counts.values()) metrics.inputs.set({ kind: c.kind, state: c.state }, c.n);
}

/** Sets `smc_inputs_not_programmed` from the latest Programmed conditions. */
export function countNotProgrammed(metrics: Metrics, conditions: ReadonlyMap<string, { readonly status: string; readonly reason: string }>): void {
  const counts = new Map<string, { kind: string; reason: string; n: number }>();
  for (const [key, c] of conditions) {
    if (c.status === 'True') continue;
    const kind = key.slice(0, key.indexOf(' '));
    const k = `${kind} ${c.reason}`;
    const e = counts.get(k) ?? { kind, reason: c.reason, n: 0 };
    e.n++;
    counts.set(k, e);
  }
  metrics.notProgrammed.reset();
  for (const e of counts.values()) metrics.notProgrammed.set({ kind: e.kind, reason: e.reason }, e.n);
}
