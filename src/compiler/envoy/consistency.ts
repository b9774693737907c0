import { TYPES, type ProtoCodec } from './codec.js';
import type { Snapshot } from './snapshot.js';

/**
 * The references inside a snapshot close: every EDS cluster has its
 * ClusterLoadAssignment and every ClusterLoadAssignment belongs to a cluster.
 * (Listener -> route and SDS checks join as those resources are added.)
 * A violation is a compiler bug, never a user error.
 */
export function inconsistencies(snapshot: Snapshot, codec: ProtoCodec): string[] {
  const problems: string[] = [];
  const clusters = snapshot.types.cluster.resources.map((r) => codec.toJson(TYPES.cluster, r.bytes) as { name: string; type?: string });
  const eds = new Set(clusters.filter((c) => c.type === 'EDS').map((c) => c.name));
  const assignments = new Set(snapshot.types.endpoint.resources.map((r) => r.name));
  for (const name of eds) if (!assignments.has(name)) problems.push(`${snapshot.identity}: EDS cluster ${name} has no ClusterLoadAssignment`);
  for (const name of assignments) if (!eds.has(name)) problems.push(`${snapshot.identity}: ClusterLoadAssignment ${name} belongs to no EDS cluster`);
  return problems;
}
