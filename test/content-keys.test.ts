import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { edsCluster, outboundCluster, outboundClusterKey } from '../src/compiler/envoy/cluster.js';
import { loadAssignment, loadAssignmentKey } from '../src/compiler/envoy/endpoint.js';
import type { Upstream } from '../src/compiler/ir/reachability.js';
import type { Endpoint } from '../src/compiler/ir/types.js';

/**
 * The encode memo finds outbound clusters and endpoint assignments by the
 * key of their inputs, without serialising them: two upstreams with equal
 * keys must make byte-for-byte the same resource, or one proxy would be sent
 * another's. Upstreams are drawn from small sets so that keys collide often,
 * with what a key leaves out (cluster IPs, port names, workloads) drawn freely.
 */
const pick = <T>(...xs: T[]) => fc.constantFrom(...xs);
const endpoint: fc.Arbitrary<Endpoint> = fc.record({
  address: pick('198.18.0.1', '198.18.0.2'),
  port: pick(8080, 9090),
  workload: fc.string({ maxLength: 6 }),
  identity: pick('spiffe://cluster.local/ns/a/sa/x', 'spiffe://cluster.local/ns/a/sa/y'),
  interception: pick('transparent' as const, 'explicit' as const, 'proxyless' as const),
});
const upstream: fc.Arbitrary<Upstream> = fc
  .record({
    namespace: pick('a', 'b'),
    name: pick('web', 'db'),
    clusterIPs: fc.array(pick('198.19.0.1', '198.19.0.2'), { maxLength: 2 }),
    port: pick(80, 443),
    portName: fc.string({ maxLength: 4 }),
    targetPort: fc.oneof(fc.integer({ min: 1, max: 65535 }), fc.string({ maxLength: 4 })),
    protocol: pick('http' as const, 'http2' as const, 'grpc' as const, 'tcp' as const),
    endpoints: fc.array(endpoint, { maxLength: 2 }),
    identities: fc.array(pick('spiffe://cluster.local/ns/a/sa/x', 'spiffe://cluster.local/ns/a/sa/y'), { maxLength: 2 }),
  })
  .map((r) => {
    const port = { name: r.portName, port: r.port, targetPort: r.targetPort, protocol: r.protocol, endpoints: r.endpoints };
    const service = { namespace: r.namespace, name: r.name, clusterIPs: r.clusterIPs, ports: [port], identities: r.identities };
    return { service, port, endpoints: r.endpoints, identities: r.identities };
  });

/** `u` with every field its keys leave out drawn anew: the same keys, by construction. */
const reshuffled = (u: Upstream): fc.Arbitrary<Upstream> =>
  fc
    .record({
      clusterIPs: fc.array(pick('198.19.0.1', '198.19.0.2'), { maxLength: 2 }),
      portName: fc.string({ maxLength: 4 }),
      targetPort: fc.oneof(fc.integer({ min: 1, max: 65535 }), fc.string({ maxLength: 4 })),
      workloads: fc.array(fc.string({ maxLength: 6 }), { minLength: u.endpoints.length, maxLength: u.endpoints.length }),
      owners: fc.array(pick('spiffe://cluster.local/ns/a/sa/x', 'spiffe://cluster.local/ns/b/sa/z'), { minLength: u.endpoints.length, maxLength: u.endpoints.length }),
    })
    .map((r) => {
      const endpoints = u.endpoints.map((e, i) => ({ ...e, workload: r.workloads[i]!, identity: r.owners[i]! }));
      const port = { ...u.port, name: r.portName, targetPort: r.targetPort, endpoints };
      return { service: { ...u.service, clusterIPs: r.clusterIPs, ports: [port] }, port, endpoints, identities: u.identities };
    });

test('property: upstreams with the same cluster key make the same cluster, and with the same endpoints key the same assignment', () => {
  const check = (u: Upstream, v: Upstream, dataPlane: 'envoy' | 'proxyless') => {
    const make = dataPlane === 'envoy' ? outboundCluster : edsCluster;
    if (outboundClusterKey(u, dataPlane) === outboundClusterKey(v, dataPlane)) assert.equal(JSON.stringify(make(v)), JSON.stringify(make(u)));
    if (loadAssignmentKey(u) === loadAssignmentKey(v)) assert.equal(JSON.stringify(loadAssignment(v)), JSON.stringify(loadAssignment(u)));
  };
  fc.assert(
    fc.property(
      upstream.chain((u) => fc.tuple(fc.constant(u), reshuffled(u), upstream)),
      pick('envoy' as const, 'proxyless' as const),
      ([u, same, other], dataPlane) => {
        // Only what the keys leave out differs: the resources must not depend on it.
        assert.equal(outboundClusterKey(same, dataPlane), outboundClusterKey(u, dataPlane));
        check(u, same, dataPlane);
        // Any two upstreams whose keys happen to be equal.
        check(u, other, dataPlane);
      },
    ),
    { numRuns: 2000 },
  );
});
