import { PUSH_ORDER, type ProtoCodec, type ResourceKind } from '../compiler/envoy/codec.js';
import type { Snapshot } from '../compiler/envoy/snapshot.js';
import { compareStrings } from '../compiler/ir/types.js';
import { configDump } from '../output/config-dump.js';
import type { SnapshotCache } from './cache.js';
import { syncState, type ProxyRegistry } from './proxy-status.js';

/**
 * GET /status/proxy-config?node=NODE: what the controller serves one
 * connected proxy, in the shape of Envoy's /config_dump (the same as
 * `smc compile` writes; private keys redacted), with, per type, the version
 * served, what was sent and acknowledged, and the last NACK.
 */
export function proxyConfigDocument(node: string | null, proxies: ProxyRegistry, cache: SnapshotCache, codec: ProtoCodec): { code: number; body: unknown } {
  if (!node) return { code: 400, body: { error: 'give the proxy: ?node=NODE_ID (smc proxy-status lists them)' } };
  const streams = proxies.list().filter((p) => p.nodeId === node);
  if (streams.length === 0) return { code: 404, body: { error: 'no proxy with this node id is connected (smc proxy-status lists them)' } };
  const identity = streams[0]!.identity;
  const cached = cache.get(identity);
  if (!cached) return { code: 404, body: { error: 'nothing is served to this proxy identity (it has no workload in the mesh)' } };
  const types = Object.fromEntries(PUSH_ORDER.map((k) => [k, { version: cached.types[k].version, resources: [...cached.types[k].resources.values()].sort((a, b) => compareStrings(a.name, b.name)) }])) as unknown as Snapshot['types'];
  const snapshot: Snapshot = { identity, dataPlane: 'envoy', types, warnings: [] };
  const status = (k: ResourceKind) => Object.fromEntries(streams.map((p) => [`${p.variant} stream ${p.stream}`, { state: syncState(p.types[k]), ...p.types[k] }]));
  return {
    code: 200,
    body: {
      nodeId: node,
      identity,
      types: Object.fromEntries(PUSH_ORDER.map((k) => [k, { version: cached.types[k].version, resources: cached.types[k].resources.size, streams: status(k) }])),
      config_dump: configDump(snapshot, codec),
    },
  };
}
