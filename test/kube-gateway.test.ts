import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { loadEnvoyProtos } from '../src/adapters/envoy-protos.js';
import { TYPES } from '../src/compiler/envoy/codec.js';
import type { Controller } from '../src/runtime/controller.js';
import { applyBookstore, startingOnKubernetes, startKubeApi } from './helpers/kube.js';
import { waitFor } from './helpers/wait.js';

/**
 * Gateway API routes on Kubernetes: the upstream CRDs (fetched by the
 * project's script from the Go module proxy) applied to a real API server,
 * so their own validation runs; smc watches the routes, routes by them, and
 * writes each route's status per parent through the status subresource.
 */

const BOOKBUYER = 'spiffe://cluster.local/ns/bookbuyer/sa/bookbuyer';
const ROUTE_TABLE = 'outbound|14001|bookstore.bookstore';

const route = (backend: string, weight = 1) => ({
  apiVersion: 'gateway.networking.k8s.io/v1',
  kind: 'HTTPRoute',
  metadata: { name: 'bookstore', namespace: 'bookstore' },
  spec: {
    parentRefs: [
      { group: '', kind: 'Service', name: 'bookstore', port: 14001 },
      { name: 'some-gateway' },
    ],
    rules: [{ matches: [{ path: { type: 'Exact', value: '/books-bought' } }], backendRefs: [{ name: backend, port: 14001, weight }] }],
  },
});

interface RouteStatus {
  metadata: { generation: number };
  status?: { parents?: { parentRef: { name: string; kind?: string }; controllerName: string; conditions: { type: string; status: string; reason: string; observedGeneration?: number }[] }[] };
}

test('on Kubernetes: the Gateway API\'s own CRDs validate routes; smc routes by an HTTPRoute, follows its edits, and writes its status per parent (its Service parents only, on change)', { timeout: 180_000 }, async () => {
  const crds = execFileSync('bash', ['scripts/install-gateway-api.sh'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 10 * 60_000 }).trim();
  const api = await startKubeApi();
  let controller: Controller | undefined;
  try {
    api.kubectl(['create', 'namespace', 'smc-system']);
    applyBookstore(api);
    api.kubectl(['apply', '-f', crds]);
    api.kubectl(['wait', '--for', 'condition=established', '--timeout', '60s', 'crd', 'httproutes.gateway.networking.k8s.io', 'grpcroutes.gateway.networking.k8s.io', 'referencegrants.gateway.networking.k8s.io']);

    // The upstream schema refuses what it defines as invalid before smc sees it.
    assert.throws(() => api.kubectl(['apply', '-f', '-'], JSON.stringify(route('bookstore-v2', 2_000_000))), /weight|less than or equal to 1000000/);

    controller = await (await startingOnKubernetes(api.kubeconfig)).controller;
    const protos = loadEnvoyProtos();
    const table = () => {
      const r = controller!.cache.get(BOOKBUYER)?.types.route.resources.get(ROUTE_TABLE);
      return r ? JSON.stringify(protos.toJson(TYPES.route, r.bytes)) : '';
    };
    assert.doesNotMatch(table(), /HTTPRoute/, 'no route yet: the TrafficSplit decides');

    api.kubectl(['apply', '-f', '-'], JSON.stringify(route('bookstore-v2')));
    await waitFor('bookbuyer\'s route table to follow the HTTPRoute', () => (/HTTPRoute bookstore\/bookstore rules\[0\] matches\[0\].*outbound\|14001\|bookstore-v2\.bookstore/.test(table()) ? true : undefined), 20_000);

    const read = () => JSON.parse(api.kubectl(['get', 'httproute', 'bookstore', '-n', 'bookstore', '-o', 'json'])) as RouteStatus;
    const accepted = await waitFor('the route\'s status per parent', () => {
      const o = read();
      return o.status?.parents?.[0]?.conditions.some((c) => c.type === 'Programmed') ? o : undefined;
    }, 20_000);
    assert.deepEqual(
      accepted.status!.parents!.map((p) => [p.parentRef.kind, p.parentRef.name, p.controllerName, ...p.conditions.map((c) => `${c.type}=${c.status}/${c.reason}@${c.observedGeneration}`)]),
      [['Service', 'bookstore', 'smc.dev/mesh-controller', `Accepted=True/Accepted@${accepted.metadata.generation}`, `ResolvedRefs=True/ResolvedRefs@${accepted.metadata.generation}`, `Programmed=False/NoProxies@${accepted.metadata.generation}`]],
      'one entry, for the Service parent (with Programmed: no proxy is connected here); the Gateway parent is its own controller\'s to report',
    );

    // An edit: a backend that does not exist. The table and the status follow; the status is written for the new generation.
    api.kubectl(['apply', '-f', '-'], JSON.stringify(route('bookstore-v9')));
    await waitFor('the unresolved backend to be answered 500', () => (/HTTPRoute bookstore\/bookstore.*directResponse.*"status":500/.test(table()) ? true : undefined), 20_000);
    const unresolved = await waitFor('ResolvedRefs False (and Programmed, for the same generation)', () => {
      const o = read();
      const c = o.status?.parents?.[0]?.conditions.find((x) => x.type === 'ResolvedRefs');
      const settled = o.status?.parents?.[0]?.conditions.every((x) => x.observedGeneration === o.metadata.generation);
      return c?.status === 'False' && settled ? c : undefined;
    }, 20_000);
    assert.equal(unresolved.reason, 'BackendNotFound');

    // Written on change only: another controller's entry is kept, and nothing is written while nothing changes.
    const other = { parentRef: { name: 'some-gateway' }, controllerName: 'example.net/gateway', conditions: [{ type: 'Accepted', status: 'True', reason: 'Accepted', message: 'ok', observedGeneration: read().metadata.generation, lastTransitionTime: '2026-01-01T00:00:00Z' }] };
    const mine = read().status!.parents!;
    api.kubectl(['patch', 'httproute', 'bookstore', '-n', 'bookstore', '--subresource=status', '--type=merge', '-p', JSON.stringify({ status: { parents: [other, ...mine] } })]);
    const version = () => (JSON.parse(api.kubectl(['get', 'httproute', 'bookstore', '-n', 'bookstore', '-o', 'json'])) as { metadata: { resourceVersion: string } }).metadata.resourceVersion;
    const before = version();
    await new Promise((r) => setTimeout(r, 2000));
    assert.equal(version(), before, 'no write while nothing changed');
    api.kubectl(['apply', '-f', '-'], JSON.stringify(route('bookstore-v1')));
    const both = await waitFor('smc\'s entry for the new generation, beside the other controller\'s', () => {
      const o = read();
      const ours = o.status?.parents?.find((p) => p.controllerName === 'smc.dev/mesh-controller');
      return ours?.conditions[0]?.observedGeneration === o.metadata.generation ? o : undefined;
    }, 20_000);
    assert.deepEqual(both.status!.parents!.map((p) => p.controllerName).sort(), ['example.net/gateway', 'smc.dev/mesh-controller']);
  } finally {
    await controller?.close();
    await api.stop();
  }
});
