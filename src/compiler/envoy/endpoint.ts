import type { Upstream } from '../ir/reachability.js';
import { INBOUND_PORT, outboundClusterName } from './names.js';

/**
 * The ClusterLoadAssignment of an outbound cluster: pod and VM endpoints
 * alike. A transparent-mode workload is dialled on its own port (iptables
 * hands the connection to its sidecar); an explicit-mode one, which has no
 * iptables, on its sidecar's inbound port.
 */
/** Everything `loadAssignment` reads of an upstream, as text (see `outboundClusterKey`). */
export function loadAssignmentKey(u: Upstream): string {
  return JSON.stringify([u.service.namespace, u.service.name, u.port.port, u.endpoints.map((e) => [e.address, e.port, e.interception])]);
}

export function loadAssignment(u: Upstream) {
  return {
    clusterName: outboundClusterName(u.service, u.port.port),
    endpoints: [
      {
        // One locality. gRPC's xDS clients require it to be set and to carry a weight.
        locality: {},
        loadBalancingWeight: 1,
        lbEndpoints: u.endpoints.map((e) => ({
          endpoint: { address: { socketAddress: { address: e.address, portValue: e.interception === 'explicit' ? INBOUND_PORT : e.port } } },
        })),
      },
    ],
  };
}
