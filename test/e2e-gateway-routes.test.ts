import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startBookstoreLab, type BookstoreLab, type Results } from '../lab/bookstore.js';
import { waitFor } from './helpers/wait.js';

/**
 * Gateway API HTTPRoutes on a mesh Service (GEP-1294), with real Envoy
 * sidecars and real traffic in network namespaces: the bookstore lab with
 * routes added to its watched folder. bookbuyer may call bookstore (GET
 * /buy-a-book as bookbuyer, GET /books-bought); bookstore-v1 and
 * bookstore-v2 answer with their names.
 */

const BOOKSTORE = 'http://bookstore.bookstore:14001';
const AS_BUYER = { 'user-agent': 'bookbuyer/1.0' };

/** Writes (or, with undefined, removes) one file of the watched folder and waits until every proxy has acknowledged what changed. */
async function put(lab: BookstoreLab, file: string, text: string | undefined): Promise<void> {
  const path = join(lab.meshDir, file);
  const versions = () => JSON.stringify(lab.controller.cache.identities().map((id) => Object.values(lab.controller.cache.get(id)!.types).map((t) => t.version)));
  const was = versions();
  if (text === undefined) rmSync(path);
  else writeFileSync(path, text);
  await waitFor(`the change of ${file} to be compiled`, () => (versions() !== was ? true : undefined), 10_000);
  await waitFor(`every proxy to acknowledge the change of ${file}`, () => {
    const behind = lab.controller.proxies.list().filter((p) => Object.entries(p.types).some(([k, t]) => t.sent !== t.acked || t.sent !== lab.controller.cache.get(p.identity)?.types[k as 'cluster'].version));
    return behind.length === 0 ? true : undefined;
  }, 15_000);
}

const ROUTE = (healthBackend: string) => `apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: bookstore, namespace: bookstore}
spec:
  parentRefs: [{group: "", kind: Service, name: bookstore, port: 14001}]
  rules:
    - matches: [{path: {type: Exact, value: /books-bought}}]
      backendRefs: [{name: ${healthBackend}, port: 14001}]
    - matches: [{path: {type: RegularExpression, value: "/books-bought/[0-9]+"}, method: GET}]
      backendRefs: [{name: bookstore-v1, port: 14001}]
    - matches:
        - path: {type: PathPrefix, value: /buy-a-book}
          queryParams: [{name: pin, value: v1}]
          headers: [{name: User-Agent, type: RegularExpression, value: "bookbuyer/.*"}]
      backendRefs: [{name: bookstore-v1, port: 14001}]
    - matches: [{path: {type: PathPrefix, value: /buy-a-book}}]
      backendRefs:
        - {name: bookstore-v2, port: 14001, weight: 1}
        - {name: bookstore-v3, port: 14001, weight: 1}
`;

const FILTERS = `apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: bookstore, namespace: bookstore}
spec:
  parentRefs: [{group: "", kind: Service, name: bookstore, port: 14001}]
  rules:
    - matches: [{path: {type: PathPrefix, value: /books-bought/old}}]
      filters: [{type: RequestRedirect, requestRedirect: {hostname: shelf.example, path: {type: ReplacePrefixMatch, replacePrefixMatch: /books-bought/new}, statusCode: 301}}]
    - matches: [{path: {type: Exact, value: /books-bought/secure}}]
      filters: [{type: RequestRedirect, requestRedirect: {scheme: https}}]
    - matches: [{path: {type: PathPrefix, value: /books-bought/v1}}]
      filters:
        - {type: URLRewrite, urlRewrite: {hostname: rewritten.example, path: {type: ReplacePrefixMatch, replacePrefixMatch: /books-bought/v2}}}
        - {type: RequestHeaderModifier, requestHeaderModifier: {set: [{name: x-route, value: filtered}], remove: [x-secret]}}
        - {type: ResponseHeaderModifier, responseHeaderModifier: {add: [{name: x-served-by, value: filters}]}}
      backendRefs: [{name: bookstore-v2, port: 14001}]
    - matches: [{path: {type: PathPrefix, value: /books-bought/mirror}}]
      filters: [{type: RequestMirror, requestMirror: {backendRef: {name: bookstore-v1, port: 14001}}}]
      backendRefs: [{name: bookstore-v2, port: 14001}]
    - matches: [{path: {type: PathPrefix, value: /books-bought/flaky}}]
      backendRefs: [{name: bookstore-v2, port: 14001}]
      retry: {codes: [503], attempts: 2, backoff: 10ms}
    - matches: [{path: {type: PathPrefix, value: /books-bought/slow}}]
      backendRefs: [{name: bookstore-v2, port: 14001}]
      timeouts: {request: 500ms}
    - matches: [{path: {type: PathPrefix, value: /books-bought/tagged}}]
      backendRefs:
        - {name: bookstore-v1, port: 14001, filters: [{type: RequestHeaderModifier, requestHeaderModifier: {set: [{name: x-backend, value: one}]}}]}
        - {name: bookstore-v2, port: 14001, filters: [{type: RequestHeaderModifier, requestHeaderModifier: {set: [{name: x-backend, value: two}]}}]}
    - matches: [{path: {type: PathPrefix, value: /books-bought/half}}]
      filters: [{type: RequestMirror, requestMirror: {backendRef: {name: bookstore-v1, port: 14001}, percent: 50}}]
      backendRefs:
        - {name: bookstore-v1, port: 14001, weight: 0}
        - {name: bookstore-v2, port: 14001, weight: 1}
    - matches: [{path: {type: PathPrefix, value: /books-bought/attempt}}]
      backendRefs: [{name: bookstore-v2, port: 14001}]
      timeouts: {request: 3s, backendRequest: 300ms}
    - matches: [{path: {type: Exact, value: /books-bought}}]
      backendRefs: [{name: bookstore-v1, port: 14001}]
`;

const CONSUMER = `apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: bookstore-for-buyers, namespace: bookbuyer}
spec:
  parentRefs: [{group: "", kind: Service, name: bookstore, namespace: bookstore}]
  rules:
    - backendRefs: [{name: bookstore-v1, namespace: bookstore, port: 14001}]
---
apiVersion: gateway.networking.k8s.io/v1beta1
kind: ReferenceGrant
metadata: {name: routes-of-bookbuyer, namespace: bookstore}
spec:
  from: [{group: gateway.networking.k8s.io, kind: HTTPRoute, namespace: bookbuyer}]
  to: [{group: "", kind: Service}]
`;

const PRICES = `apiVersion: v1
kind: ServiceAccount
metadata: {name: prices, namespace: bookstore}
---
apiVersion: v1
kind: Service
metadata: {name: prices, namespace: bookstore}
spec:
  selector: {app: prices}
  clusterIP: 198.18.100.50
  ports: [{name: grpc, port: 50051, targetPort: 50051, appProtocol: grpc}]
---
apiVersion: v1
kind: Service
metadata: {name: prices-v1, namespace: bookstore}
spec:
  selector: {app: prices, version: v1}
  clusterIP: 198.18.100.51
  ports: [{name: grpc, port: 50051, targetPort: 50051, appProtocol: grpc}]
---
apiVersion: v1
kind: Service
metadata: {name: prices-v2, namespace: bookstore}
spec:
  selector: {app: prices, version: v2}
  clusterIP: 198.18.100.52
  ports: [{name: grpc, port: 50051, targetPort: 50051, appProtocol: grpc}]
---
apiVersion: specs.smi-spec.io/v1alpha4
kind: TCPRoute
metadata: {name: prices-all, namespace: bookstore}
spec: {}
---
apiVersion: access.smi-spec.io/v1alpha3
kind: TrafficTarget
metadata: {name: bookbuyer-access-prices, namespace: bookstore}
spec:
  destination: {kind: ServiceAccount, name: prices, namespace: bookstore}
  rules: [{kind: TCPRoute, name: prices-all}]
  sources: [{kind: ServiceAccount, name: bookbuyer, namespace: bookbuyer}]
`;

const GRPC_ROUTE = `apiVersion: gateway.networking.k8s.io/v1
kind: GRPCRoute
metadata: {name: prices, namespace: bookstore}
spec:
  parentRefs: [{group: "", kind: Service, name: prices, port: 50051}]
  rules:
    - matches: [{method: {service: shop.Prices}}]
      backendRefs: [{name: prices-v1, port: 50051}]
    - matches: [{method: {service: shop.Prices, method: Quote}}]
      filters: [{type: RequestHeaderModifier, requestHeaderModifier: {set: [{name: x-route, value: quote}]}}]
      backendRefs: [{name: prices-v2, port: 50051}]
    - matches:
        - method: {service: shop.Prices}
          headers: [{name: x-tier, value: gold}]
      backendRefs: [{name: prices-v2, port: 50051}]
    - matches: [{method: {type: RegularExpression, method: "Stream.*"}}]
      backendRefs:
        - {name: prices-v1, port: 50051, weight: 1}
        - {name: prices-v2, port: 50051, weight: 1}
`;

const only = (r: Results) => Object.keys(r).join(', ');
/** Results keyed by answer for 200s (who served) and by status code alone otherwise (Envoy's own bodies vary). */
const byStatus = (r: Results): Results => {
  const out: Results = {};
  for (const [k, n] of Object.entries(r)) {
    const key = k.startsWith('200 ') ? k : k.split(' ')[0]!;
    out[key] = (out[key] ?? 0) + n;
  }
  return out;
};

test('Gateway API routes on a Service, with real Envoy and real traffic: matches, weights with an unresolved share, no match, cluster IP vs pod IP, filters, consumer over producer, live edits, GRPCRoute', { timeout: 240_000 }, async (t) => {
  const lab = await startBookstoreLab();
  try {
    const call = (url: string, count: number, headers: Record<string, string> = {}) => lab.call('bookbuyer-1', { kind: 'http', url, headers, count });

    await t.test('a producer route decides each request by its matches, in the specification\'s precedence', async () => {
      await put(lab, '50-routes.yaml', ROUTE('bookstore-v2'));
      assert.deepEqual(await call(`${BOOKSTORE}/books-bought`, 20), { '200 bookstore-v2': 20 }, 'the Exact match');
      assert.deepEqual(await call(`${BOOKSTORE}/books-bought/42`, 10), { '200 bookstore-v1': 10 }, 'a RegularExpression path and a method');
      assert.deepEqual(byStatus(await lab.call('bookbuyer-1', { kind: 'http', url: `${BOOKSTORE}/books-bought/42`, method: 'POST', count: 5 })), { '404': 5 }, 'another method: no rule matches');
      assert.deepEqual(byStatus(await call(`${BOOKSTORE}/books-bought/4x`, 5)), { '404': 5 }, 'the pattern matches the whole path');
      assert.deepEqual(await call(`${BOOKSTORE}/buy-a-book?pin=v1`, 20, AS_BUYER), { '200 bookstore-v1': 20 }, 'path, header and query parameter, ahead of the shorter match of the same path');
      // The header is matched as the route says: without it the request falls to the next rule.
      const noHeader = await call(`${BOOKSTORE}/buy-a-book?pin=v1`, 10, { 'user-agent': 'bookbuyer/1.0 (other)', 'x-no': '1' });
      assert.equal(noHeader['200 bookstore-v1'] ?? 0, 10, `a user agent that still matches the pattern: ${only(noHeader)}`);
      const wrongQuery = await call(`${BOOKSTORE}/buy-a-book?pin=v2`, 40, AS_BUYER);
      assert.equal(wrongQuery['200 bookstore-v1'] ?? 0, 0, `another query value is not the v1 rule: ${only(wrongQuery)}`);
    });

    await t.test('weights: the share of a backend that does not resolve is answered 500, the rest reaches its backend', async () => {
      const r = byStatus(await call(`${BOOKSTORE}/buy-a-book`, 400, AS_BUYER));
      assert.equal((r['200 bookstore-v2'] ?? 0) + (r['500'] ?? 0), 400, `only v2 and 500: ${JSON.stringify(r)}`);
      const served = r['200 bookstore-v2'] ?? 0;
      assert.ok(Math.abs(served - 200) <= 40, `about half of 400 served by v2 (weights 1:1), got ${JSON.stringify(r)}`);
    });

    await t.test('a request no rule matches is answered 404 by the caller\'s sidecar', async () => {
      assert.deepEqual(byStatus(await call(`${BOOKSTORE}/sell-a-book`, 10, AS_BUYER)), { '404': 10 });
    });

    await t.test('the route applies to traffic addressed to the Service (its cluster IP, whatever the Host header), not to a pod\'s address', async () => {
      assert.deepEqual(await call('http://198.18.100.1:14001/books-bought', 10, { host: 'elsewhere.example' }), { '200 bookstore-v2': 10 }, 'the cluster IP, by address, with another Host header');
      // smc's sidecars carry no traffic addressed to a pod (there is no filter chain for pod addresses): the connection is
      // closed, and what matters here is that the Service's route did not take it to v2.
      const byPod = byStatus(await call('http://198.18.2.10:8080/books-bought', 10));
      assert.equal(byPod['200 bookstore-v2'] ?? 0, 0, `bookstore-v1's pod by its IP is not routed by the Service's route: ${JSON.stringify(byPod)}`);
    });

    await t.test('a live edit of the route moves its traffic', async () => {
      await put(lab, '50-routes.yaml', ROUTE('bookstore-v1'));
      assert.deepEqual(await call(`${BOOKSTORE}/books-bought`, 20), { '200 bookstore-v1': 20 });
    });

    await t.test('filters: redirects, a rewrite with header modifiers, backend-level header filters, mirrors (all, and 50 percent), a weight of 0, a retry, timeouts', async () => {
      await put(lab, '50-routes.yaml', FILTERS);
      const one = async (path: string, headers: Record<string, string> = {}, showHeaders: string[] = []) => Object.keys(await lab.call('bookbuyer-1', { kind: 'http', url: `${BOOKSTORE}${path}`, headers, showHeaders, count: 1 }));
      assert.deepEqual(await one('/books-bought/old/x?q=1', {}, ['location']), ['301  [location=http://shelf.example:14001/books-bought/new/x?q=1]'], 'a redirect keeps the request\'s port and query; the prefix is replaced');
      // The scheme's own port, spelled out: Envoy cannot leave it out of Location (see redirectAction).
      assert.deepEqual(await one('/books-bought/secure', {}, ['location']), ['302  [location=https://bookstore.bookstore:443/books-bought/secure]'], 'a scheme without a port: that scheme\'s own port');
      assert.deepEqual(
        await one('/books-bought/v1/abc', { 'x-echo': 'host,x-route,x-secret', 'x-secret': 'hidden' }, ['x-served-by']),
        ['200 bookstore-v2 GET /books-bought/v2/abc host=rewritten.example x-route=filtered x-secret= [x-served-by=filters]'],
        'path and host rewritten, request headers set and removed, a response header added',
      );
      assert.deepEqual(await call(`${BOOKSTORE}/books-bought/mirror`, 10, { 'x-count': 'mirrored' }), { '200 bookstore-v2': 10 }, 'the answers are the backend\'s');
      await waitFor('bookstore-v1 to have seen the 10 mirrored requests', async () => ((await one('/books-bought', { 'x-read-count': 'mirrored' }))[0] === '200 bookstore-v1 count=10' ? true : undefined), 5000);
      // A backendRef's own filter applies to what is sent to that backend only.
      const tagged = await call(`${BOOKSTORE}/books-bought/tagged`, 40, { 'x-echo': 'x-backend' });
      assert.deepEqual(Object.keys(tagged).sort(), ['200 bookstore-v1 GET /books-bought/tagged x-backend=one', '200 bookstore-v2 GET /books-bought/tagged x-backend=two'], JSON.stringify(tagged));
      // A weight of 0 sends nothing; a mirror of 50 percent copies about half.
      assert.deepEqual(await call(`${BOOKSTORE}/books-bought/half`, 200, { 'x-count': 'half' }), { '200 bookstore-v2': 200 }, 'bookstore-v1 has weight 0');
      const half = await waitFor('the mirrored half to arrive', async () => {
        const [answer] = await one('/books-bought', { 'x-read-count': 'half' });
        const n = Number(/count=(\d+)/.exec(answer ?? '')?.[1] ?? 0);
        return n >= 60 ? n : undefined;
      }, 5000);
      assert.ok(half >= 60 && half <= 140, `about 100 of 200 mirrored, got ${half}`);
      assert.deepEqual(await one('/books-bought/flaky', { 'x-fail-first': 'a:2' }), ['200 bookstore-v2'], 'two 503s retried (attempts: 2)');
      assert.deepEqual(await one('/books-bought/flaky', { 'x-fail-first': 'b:3' }), ['503 bookstore-v2 failing 3'], 'a third 503 is the answer');
      assert.deepEqual(byStatus(await call(`${BOOKSTORE}/books-bought/slow`, 3, { 'x-delay-ms': '1500' })), { '504': 3 }, 'the request timeout (500ms) answers 504');
      assert.deepEqual(await call(`${BOOKSTORE}/books-bought/slow`, 3), { '200 bookstore-v2': 3 });
      assert.deepEqual(byStatus(await call(`${BOOKSTORE}/books-bought/attempt`, 3, { 'x-delay-ms': '1000' })), { '504': 3 }, 'backendRequest (300ms) bounds the attempt, within a longer request timeout (3s)');
      assert.deepEqual(await call(`${BOOKSTORE}/books-bought/attempt`, 3), { '200 bookstore-v2': 3 });
    });

    await t.test('a consumer route in bookbuyer\'s namespace replaces the producer route for bookbuyer', async () => {
      await put(lab, '51-consumer.yaml', CONSUMER);
      assert.deepEqual(await call(`${BOOKSTORE}/buy-a-book`, 40, AS_BUYER), { '200 bookstore-v1': 40 }, 'no 500 share: the producer route does not apply to bookbuyer');
      assert.deepEqual(byStatus(await call(`${BOOKSTORE}/sell-a-book`, 5, AS_BUYER)), { '403': 5 }, 'the consumer route matches every path; access is still the TrafficTarget\'s');
    });

    await t.test('without routes the TrafficSplit is in force again', async () => {
      await put(lab, '51-consumer.yaml', undefined);
      await put(lab, '50-routes.yaml', undefined);
      assert.ok(!existsSync(join(lab.meshDir, '50-routes.yaml')));
      const r = await call(`${BOOKSTORE}/buy-a-book`, 200, AS_BUYER);
      assert.equal((r['200 bookstore-v1'] ?? 0) + (r['200 bookstore-v2'] ?? 0), 200, JSON.stringify(r));
      assert.ok((r['200 bookstore-v1'] ?? 0) > 150, `the 90/10 split: ${JSON.stringify(r)}`);
    });

    await t.test('GRPCRoute: service and method matches, header matches, GRPCRoute precedence, weights, a header filter; an unmatched method is UNIMPLEMENTED', async () => {
      // Services with no endpoint yet change no proxy's configuration: written, not waited for.
      writeFileSync(join(lab.meshDir, '60-prices.yaml'), PRICES);
      await lab.addPod({ name: 'prices-v1-1', namespace: 'bookstore', serviceAccount: 'prices', ip: '198.18.2.41', labels: { app: 'prices', version: 'v1' }, port: 50051, listFirst: true });
      await lab.addPod({ name: 'prices-v2-1', namespace: 'bookstore', serviceAccount: 'prices', ip: '198.18.2.42', labels: { app: 'prices', version: 'v2' }, port: 50051 });
      const grpcCall = (method: string, count: number, metadata: Record<string, string> = {}) => lab.call('bookbuyer-1', { kind: 'grpc', target: '198.18.100.50:50051', method, metadata, count });
      await waitFor('both prices pods to answer through the Service', async () => {
        const r = await grpcCall('/shop.Prices/Get', 20);
        return r['OK prices-v1'] && r['OK prices-v2'] ? true : undefined;
      }, 20_000);
      await put(lab, '61-grpc-route.yaml', GRPC_ROUTE);
      assert.deepEqual(await grpcCall('/shop.Prices/Get', 20), { 'OK prices-v1': 20 }, 'the service match');
      assert.deepEqual(await grpcCall('/shop.Prices/Quote', 10), { 'OK prices-v2 x-route=quote': 10 }, 'service and method: more characters of method, ahead of the service match; the header filter applied');
      assert.deepEqual(await grpcCall('/shop.Prices/Get', 10, { 'x-tier': 'gold' }), { 'OK prices-v2': 10 }, 'a header match, ahead of the same service without one');
      const streamed = await grpcCall('/shop.Stock/StreamQuotes', 200);
      assert.equal((streamed['OK prices-v1'] ?? 0) + (streamed['OK prices-v2'] ?? 0), 200, JSON.stringify(streamed));
      assert.ok(Math.abs((streamed['OK prices-v1'] ?? 0) - 100) <= 30, `a RegularExpression method match split 1:1: ${JSON.stringify(streamed)}`);
      assert.deepEqual(await grpcCall('/shop.Stock/Get', 5), { 'ERROR UNIMPLEMENTED': 5 }, 'no rule matches: 404, which gRPC reads as UNIMPLEMENTED');
    });
  } finally {
    await lab.close();
  }
});
