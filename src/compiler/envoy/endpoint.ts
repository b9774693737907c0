import type { Upstream } from '../ir/reachability.js';
import { outboundClusterName } from './names.js';

/** The ClusterLoadAssignment of an outbound cluster: pod and VM endpoints alike. */
export function loadAssignment(u: Upstream) {
  return {
    clusterName: outboundClusterName(u.service, u.port.port),
    endpoints: [
      {
        // One locality; grpc-js-xds requires a weight on it.
        loadBalancingWeight: 1,
        lbEndpoints: u.endpoints.map((e) => ({
          endpoint: { address: { socketAddress: { address: e.address, portValue: e.port } } },
        })),
      },
    ],
  };
}
