/**
 * The controller bench's proxies, in a process of their own (so their cost
 * is not counted as the controller's): raw ADS streams (SotW) that behave as
 * Envoy does at the protocol level. Each stream subscribes to CDS and LDS
 * (wildcard), EDS for the clusters CDS named, and RDS for the route tables
 * its listeners name; it acknowledges every response. Driven by the parent over IPC:
 *   {connect: {port, nodes}}          -> {connected: ms}
 *   {expect: [[node, typeUrl], ...]}  -> {arrived: [[node, typeUrl, epochMs], ...]} once each (node, type) got a response after the message
 */
import { STREAM_LIMITS } from '../src/runtime/ads-server.js';
import * as grpc from '@grpc/grpc-js';
import { loadEnvoyProtos } from '../src/adapters/envoy-protos.js';
import { TYPE_URL } from '../src/runtime/xds-types.js';
import { Client } from '../test/helpers/ads-client.js';

const protos = loadEnvoyProtos();
const Cluster = protos.lookupType('envoy.config.cluster.v3.Cluster');
/** The route tables a listener's HTTP filters name (as Envoy subscribes RDS for them). */
function routeNames(bytes: Uint8Array, out: Set<string>): void {
  const walk = (v: unknown): void => {
    if (Array.isArray(v)) return v.forEach(walk);
    if (v === null || typeof v !== 'object') return;
    for (const [k, x] of Object.entries(v)) {
      if (k === 'routeConfigName' && typeof x === 'string') out.add(x);
      else walk(x);
    }
  };
  walk(protos.toJson('envoy.config.listener.v3.Listener', bytes));
}
// As many streams per connection as the ADS server allows (more would wait for a free one, forever); each
// client has a connection of its own (grpc-js would otherwise share one among clients of the same address).
const STREAMS_PER_CHANNEL = STREAM_LIMITS.streamsPerConnection;
const now = () => performance.timeOrigin + performance.now();

interface Response {
  versionInfo: string;
  nonce: string;
  typeUrl: string;
  resources: { type_url?: string; typeUrl?: string; value: Uint8Array }[];
}

let waiting: { pending: Set<string>; arrived: [string, string, number][] } | undefined;
const channels: grpc.Client[] = [];
const calls: grpc.ClientDuplexStream<unknown, Response>[] = [];

function proxy(channel: grpc.Client, node: string, onReady: () => void) {
  const call = (channel as unknown as { sotw: () => grpc.ClientDuplexStream<unknown, Response> }).sotw();
  calls.push(call);
  let edsNames: string[] = [];
  let rdsNames: string[] = [];
  let ready = false;
  let sawEndpoints = false;
  // Ready once it has its clusters and the endpoints of those that have any (a proxy that calls nobody has none).
  const check = () => {
    if (!ready && (sawEndpoints || edsNames.length === 0)) {
      ready = true;
      onReady();
    }
  };
  const subscribe = (typeUrl: string, resourceNames: string[], versionInfo = '', responseNonce = '') => call.write({ node: { id: node }, typeUrl, resourceNames, versionInfo, responseNonce });
  call.on('data', (r: Response) => {
    if (waiting) {
      const key = `${node}\u0000${r.typeUrl}`;
      if (waiting.pending.delete(key)) {
        waiting.arrived.push([node, r.typeUrl, now()]);
        if (waiting.pending.size === 0) {
          process.send!({ arrived: waiting.arrived });
          waiting = undefined;
        }
      }
    }
    if (r.typeUrl === TYPE_URL.cluster) {
      const names = r.resources.map((a) => (Cluster.decode(a.value) as unknown as { name: string }).name).sort();
      subscribe(TYPE_URL.cluster, [], r.versionInfo, r.nonce);
      // As Envoy: EDS for the EDS clusters CDS named (every cluster smc sends outbound is one).
      const eds = names.filter((n) => n.startsWith('outbound|'));
      if (eds.join('\n') !== edsNames.join('\n')) {
        edsNames = eds;
        subscribe(TYPE_URL.endpoint, edsNames);
      }
      check();
      return;
    }
    const names = r.typeUrl === TYPE_URL.endpoint ? edsNames : r.typeUrl === TYPE_URL.route ? rdsNames : [];
    subscribe(r.typeUrl, names, r.versionInfo, r.nonce);
    if (r.typeUrl === TYPE_URL.listener) {
      // As Envoy: RDS for the route tables the listeners name.
      const named = new Set<string>();
      for (const a of r.resources) routeNames(a.value, named);
      const rds = [...named].sort();
      if (rds.join('\n') !== rdsNames.join('\n')) {
        rdsNames = rds;
        subscribe(TYPE_URL.route, rdsNames);
      }
    }
    if (r.typeUrl === TYPE_URL.endpoint) {
      sawEndpoints = true;
      check();
    }
  });
  call.on('error', (e: Error) => {
    if (process.env.BENCH_DEBUG) process.stderr.write(`load client: ${node}: ${e.message}\n`);
  });
  subscribe(TYPE_URL.cluster, []);
  subscribe(TYPE_URL.listener, []);
}

process.on('message', (m: { connect?: { port: number; nodes: string[] }; expect?: [string, string][]; stop?: true }) => {
  if (m.connect) {
    const { port, nodes } = m.connect;
    const t0 = now();
    let left = nodes.length;
    nodes.forEach((node, i) => {
      if (i % STREAMS_PER_CHANNEL === 0) channels.push(new Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure(), { 'grpc.max_receive_message_length': 64 * 1024 * 1024, 'grpc.use_local_subchannel_pool': 1 }));
      proxy(channels[channels.length - 1]!, node, () => {
        if (--left === 0) process.send!({ connected: now() - t0 });
      });
    });
  }
  if (m.expect) {
    waiting = { pending: new Set(m.expect.map(([n, t]) => `${n}\u0000${t}`)), arrived: [] };
    process.send!({ expecting: m.expect.length });
  }
  if (m.stop) {
    for (const c of calls) c.cancel();
    for (const c of channels) c.close();
    process.exit(0);
  }
});
