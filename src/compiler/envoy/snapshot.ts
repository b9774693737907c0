import { createHash } from 'node:crypto';
import { inboundPortsOf, upstreamsOf } from '../ir/reachability.js';
import { compareStrings, type Identity, type MeshIR } from '../ir/types.js';
import { PUSH_ORDER, TYPES, type ProtoCodec, type ResourceKind } from './codec.js';
import { inboundCluster, outboundCluster } from './cluster.js';
import { loadAssignment } from './endpoint.js';

/**
 * A proxy identity's complete Envoy configuration: resources by type, each
 * type versioned by a hash of its encoded bytes, so the same inputs in any
 * order give byte-identical snapshots and the same versions.
 */
export interface EncodedResource {
  readonly name: string;
  readonly bytes: Uint8Array;
}

export interface ResourceSet {
  readonly version: string;
  /** Sorted by name. */
  readonly resources: readonly EncodedResource[];
}

export interface Snapshot {
  readonly identity: Identity;
  readonly types: Readonly<Record<ResourceKind, ResourceSet>>;
}

type Named = { name?: string; clusterName?: string };

function encodeSet(codec: ProtoCodec, kind: ResourceKind, items: readonly Named[]): ResourceSet {
  const resources = items
    .map((json) => ({ name: (json.name ?? json.clusterName)!, bytes: codec.encode(TYPES[kind], json) }))
    .sort((a, b) => compareStrings(a.name, b.name));
  const hash = createHash('sha256');
  for (const r of resources) {
    hash.update(r.name);
    hash.update('\0');
    hash.update(r.bytes);
    hash.update('\0');
  }
  return { version: hash.digest('hex').slice(0, 16), resources };
}

export function buildSnapshot(ir: MeshIR, identity: Identity, codec: ProtoCodec): Snapshot {
  const upstreams = upstreamsOf(ir, identity);
  const inbound = inboundPortsOf(ir, identity);
  const clusters = [...upstreams.map((u) => outboundCluster(identity, u)), ...inbound.map((p) => inboundCluster(p.port, p.protocol))];
  const endpoints = upstreams.map(loadAssignment);
  const sets: Record<ResourceKind, readonly Named[]> = { cluster: clusters, endpoint: endpoints, listener: [], route: [], secret: [] };
  const types = Object.fromEntries(PUSH_ORDER.map((k) => [k, encodeSet(codec, k, sets[k])])) as Record<ResourceKind, ResourceSet>;
  return { identity, types };
}

/** One snapshot per identity that has a workload, sorted by identity. */
export function buildSnapshots(ir: MeshIR, codec: ProtoCodec): Snapshot[] {
  const identities = [...new Set(ir.workloads.map((w) => w.identity))].sort(compareStrings);
  return identities.map((id) => buildSnapshot(ir, id, codec));
}
