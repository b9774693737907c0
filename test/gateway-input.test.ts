import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { compileIR } from '../src/compiler/compile.js';
import { explain } from '../src/compiler/explain.js';
import { identityOf } from '../src/compiler/ir/types.js';
import { formatMessage, type StatusEntry } from '../src/compiler/status.js';
import { yamlInputs } from './helpers/inputs.js';

/** Gateway API input is as strict as SMI's: what smc cannot carry out as written is refused, named, and routes nothing. */
const CASE = 'golden/gateway-http-route/input';
const files = () => readdirSync(CASE).sort().map((f) => readFileSync(join(CASE, f), 'utf8'));
const entryOf = (status: readonly StatusEntry[], kind: string, name: string) => {
  const e = status.find((s) => s.object.kind === kind && s.object.name === name);
  assert.ok(e, `no status for ${kind} ${name}`);
  return e;
};
const text = (e: StatusEntry) => e.messages.map((m) => `${m.severity}: ${formatMessage(m)}`).join('\n');
const routesOf = (texts: string[]) => compileIR(yamlInputs(...texts)).ir.routes.map((r) => `${r.namespace}/${r.name} -> ${r.serviceNamespace}/${r.service}`);

test('a misspelt field in an HTTPRoute rejects it with did-you-mean, instead of dropping a match condition', () => {
  const before = routesOf(files());
  assert.ok(before.includes('shop/web -> shop/web'));
  const typo = files().map((t) => t.replace('headers: [{name: X-Canary', 'header: [{name: X-Canary'));
  const after = compileIR(yamlInputs(...typo));
  const route = entryOf(after.status, 'HTTPRoute', 'web');
  assert.equal(route.state, 'Rejected');
  assert.match(text(route), /unknown field "spec\.rules\[1\]\.matches\[0\]\.header"; did you mean "headers"\?/);
  assert.ok(!after.ir.routes.some((r) => r.name === 'web' && r.namespace === 'shop'), 'the route is not applied at all');
});

test('what smc cannot carry out is refused, naming the field: an unsupported filter, a bad pattern, a bad duration, a backendRequest longer than the request, filters the specification does not allow together', () => {
  const cases: [string, (t: string) => string, RegExp, string?][] = [
    ['a CORS filter', (t) => t.replace('- type: ResponseHeaderModifier\n          responseHeaderModifier:\n            add: [{name: x-served-by, value: web-v2}]', '- type: CORS\n          cors: {allowOrigins: [https://shop.example]}'), /spec\.rules\[1\]\.filters\[1\]\.type: filter CORS is not supported by smc/],
    ['a mirror on a backendRef', (t) => t.replace('backendRefs: [{name: web-v2, port: 80}]\n      timeouts', 'backendRefs: [{name: web-v2, port: 80, filters: [{type: RequestMirror, requestMirror: {backendRef: {name: web-v1, port: 80}}}]}]\n      timeouts'), /spec\.rules\[1\]\.backendRefs\[0\]\.filters\[0\]\.type: a backendRef's filter may be RequestHeaderModifier or ResponseHeaderModifier in smc, got RequestMirror/],
    ['a redirect with backendRefs', (t) => t.replace("filters: [{type: RequestRedirect, requestRedirect: {scheme: https, hostname: new.example, statusCode: 301}}]", "filters: [{type: RequestRedirect, requestRedirect: {scheme: https, hostname: new.example, statusCode: 301}}]\n      backendRefs: [{name: web-v2, port: 80}]"), /a rule with a RequestRedirect answers the redirect itself: it takes no backendRefs/, 'web-v2-filters'],
    ['ReplacePrefixMatch without a PathPrefix match', (t) => t.replace('matches: [{path: {type: PathPrefix, value: /v1}}]', 'matches: [{path: {type: Exact, value: /v1}}]'), /ReplacePrefixMatch needs the rule to have exactly one match, of type PathPrefix/, 'web-v2-filters'],
    ['a retry backoff', (t) => t.replace('backoff: 100ms', 'backoff: soon'), /retry\.backoff: expected a duration such as 100ms/, 'web-v2-filters'],
    ['an RE2 pattern Envoy refuses', (t) => t.replace('value: "/items/[0-9]+"', 'value: "/items/(?=x)"'), /spec\.rules\[2\]\.matches\[0\]\.path\.value: expected an RE2 pattern/],
    ['a duration', (t) => t.replace('request: 10s,', 'request: 10 seconds,'), /spec\.rules\[1\]\.timeouts\.request: expected a duration such as 10s/],
    ['backendRequest over request', (t) => t.replace('backendRequest: 2500ms', 'backendRequest: 20s'), /backendRequest \(20s\) must not be longer than request \(10s\)/],
    ['a header set twice in one filter', (t) => t.replace('remove: [x-internal]', 'remove: [X-Route]'), /header "X-Route" is named twice in one filter/],
  ];
  for (const [what, edit, expected, name = 'web'] of cases) {
    const texts = files().map(edit);
    assert.notDeepEqual(texts, files(), `${what}: the edit applies`);
    const result = compileIR(yamlInputs(...texts));
    const route = entryOf(result.status, 'HTTPRoute', name);
    assert.equal(route.state, 'Rejected', `${what}: ${text(route)}`);
    assert.match(text(route), expected, what);
    assert.ok(!result.ir.routes.some((r) => r.name === name && r.namespace === 'shop'), `${what}: not applied`);
    // The rest of the mesh still compiles: the consumer route is untouched.
    assert.ok(result.ir.routes.some((r) => r.name === 'web-from-other'), `${what}: the other route stays`);
  }
});

test('a cross-namespace backend needs a ReferenceGrant in its namespace: without it, its share is answered 500 and the status says RefNotPermitted', () => {
  const texts = files().map((t) => t.replace(/---\napiVersion: gateway\.networking\.k8s\.io\/v1beta1\nkind: ReferenceGrant[\s\S]*?to: \[\{group: "", kind: Service\}\]\n/, ''));
  assert.notDeepEqual(texts, files());
  const result = compileIR(yamlInputs(...texts));
  const route = entryOf(result.status, 'HTTPRoute', 'web-from-other');
  assert.match(text(route), /spec\.rules\[0\]\.backendRefs\[0\]: RefNotPermitted: Service shop\/web-v2 is in another namespace and no ReferenceGrant there lets HTTPRoutes of other refer to it/);
  const rule = result.ir.routes.find((r) => r.name === 'web-from-other')!.rules[0]!;
  assert.deepEqual([rule.backends.length, rule.invalidWeight], [0, 1]);
  // Its status for its one parent, as the specification defines it: attached, but a reference not permitted.
  assert.deepEqual(route.parents?.map((p) => [p.parentRef.name, p.controllerName, ...p.conditions.map((c) => `${c.type}=${c.status}/${c.reason}`)]), [['web', 'smc.dev/mesh-controller', 'Accepted=True/Accepted', 'ResolvedRefs=False/RefNotPermitted']]);
});

test('status per parent: only Service parents are smc\'s to report; a missing Service or port is NoMatchingParent, a refused rule UnsupportedValue on every parent', () => {
  const { status } = compileIR(yamlInputs(...files()));
  const conditions = (name: string) => entryOf(status, 'HTTPRoute', name).parents?.map((p) => `${p.parentRef.namespace}/${p.parentRef.name}:${p.parentRef.port ?? ''} ${p.conditions.map((c) => `${c.type}=${c.status}/${c.reason}`).join(' ')}`);
  // shop/web names a Gateway too: not listed (its controller reports it).
  assert.deepEqual(conditions('web'), ['shop/web:80 Accepted=True/Accepted ResolvedRefs=False/BackendNotFound']);
  assert.deepEqual(conditions('cors'), ['shop/web-v1: Accepted=False/UnsupportedValue ResolvedRefs=True/ResolvedRefs']);
  const missing = files().map((t) => t.replace('parentRefs: [{group: "", kind: Service, name: web-v2}]', 'parentRefs: [{group: "", kind: Service, name: web-v9}, {group: "", kind: Service, name: web-v2, port: 81}]'));
  assert.deepEqual(compileIR(yamlInputs(...missing)).status.find((e) => e.object.name === 'web-v2-filters')?.parents?.map((p) => p.conditions[0]!.reason), ['NoMatchingParent', 'NoMatchingParent']);
});

test('smc explain follows the Gateway API routes in force: the rule that takes the request, its backends (a 500 share named), 404 when no rule matches, and the destination judging the request as it arrives', () => {
  const { ir, status } = compileIR(yamlInputs(...files()));
  const client = identityOf('cluster.local', 'shop', 'client');
  const ask = (path: string, extra: { method?: string; headers?: Record<string, string>; query?: Record<string, string> } = {}) =>
    explain(ir, { from: client, service: { namespace: 'shop', name: 'web' }, port: 80, request: { method: extra.method ?? 'GET', path, headers: extra.headers ?? {}, ...(extra.query ? { query: extra.query } : {}) } }, status);
  const health = ask('/healthz');
  assert.equal(health.verdict, 'allowed');
  assert.deepEqual([health.route?.rule, health.backends.map((b) => b.service)], ['HTTPRoute shop/web exact-health matches[0]', ['shop/web-v1']]);
  const canary = ask('/api/orders', { method: 'POST', headers: { 'x-canary': 'yes' }, query: { debug: 'true' } });
  assert.deepEqual([canary.route?.rule, canary.backends.map((b) => b.service)], ['HTTPRoute shop/web rules[1] matches[0]', ['shop/web-v2']]);
  const noQuery = ask('/api/orders', { method: 'POST', headers: { 'x-canary': 'yes' } });
  assert.equal(noQuery.verdict, 'denied', 'without the query parameter no rule matches');
  assert.match(noQuery.reasons.join('\n'), /no rule of the routes in force matches the request: the caller's sidecar answers 404/);
  const gone = ask('/gone/x');
  assert.equal(gone.verdict, 'partly allowed');
  assert.deepEqual(gone.backends.map((b) => [b.service, b.weight]), [['shop/web-v1', 1], ['(a backend that did not resolve: answered 500)', 1]]);
  // The consumer route, for a caller of "other".
  const outsider = explain(ir, { from: identityOf('cluster.local', 'other', 'outsider'), service: { namespace: 'shop', name: 'web' }, port: 80, request: { method: 'GET', path: '/healthz', headers: {} } }, status);
  assert.deepEqual([outsider.route?.routes, outsider.backends.map((b) => b.service)], [['HTTPRoute other/web-from-other'], ['shop/web-v2']]);
});

test('kinds are told apart by group: a Gateway API TCPRoute is not read as SMI\'s TCPRoute, and an SMI HTTPRouteGroup is not an HTTPRoute', () => {
  const gatewayTcp = 'apiVersion: gateway.networking.k8s.io/v1alpha2\nkind: TCPRoute\nmetadata: {name: all, namespace: shop}\nspec: {parentRefs: [{name: web, kind: Service, group: ""}], rules: [{backendRefs: [{name: web, port: 80}]}]}\n';
  const { status, ir } = compileIR(yamlInputs(...files(), gatewayTcp));
  const tcp = status.find((e) => e.object.kind === 'TCPRoute' && e.object.apiVersion.startsWith('gateway.networking.k8s.io'))!;
  assert.equal(tcp.state, 'Ignored');
  assert.match(text(tcp), /TCPRoute of gateway\.networking\.k8s\.io\/v1alpha2 is not a kind smc reads/);
  assert.ok(!ir.access.some((a) => a.grants.some((g) => g.grantedBy === 'shop/all')), 'it grants nothing');
});

test('smc compile --status text shows a route\'s status per parent, a line each', () => {
  const r = spawnSync(process.execPath, ['dist/src/cli/main.js', 'compile', CASE, '--status', 'text'], { encoding: 'utf8' });
  assert.match(r.stderr + r.stdout, /HTTPRoute shop\/web [\s\S]*?parent Service shop\/web:80: Accepted=True \(Accepted\), ResolvedRefs=False \(BackendNotFound\)/);
  assert.match(r.stderr + r.stdout, /parent Service shop\/web-v1: Accepted=False \(UnsupportedValue\), ResolvedRefs=True \(ResolvedRefs\)/);
});

test('a ReferenceGrant admits the kind of route it names: a GRPCRoute needs one from GRPCRoute, one from HTTPRoute does not do', () => {
  const grpc = readdirSync('golden/gateway-grpc-route/input').sort().map((f) => readFileSync(join('golden/gateway-grpc-route/input', f), 'utf8'));
  const consumer = (kind: string) => `apiVersion: v1\nkind: Namespace\nmetadata: {name: other, labels: {smc.dev/mesh: enabled}}\n---\napiVersion: gateway.networking.k8s.io/v1\nkind: GRPCRoute\nmetadata: {name: prices-from-other, namespace: other}\nspec:\n  parentRefs: [{group: "", kind: Service, name: prices, namespace: shop, port: 50051}]\n  rules: [{backendRefs: [{name: prices-v2, namespace: shop, port: 50051}]}]\n---\napiVersion: gateway.networking.k8s.io/v1beta1\nkind: ReferenceGrant\nmetadata: {name: from-other, namespace: shop}\nspec:\n  from: [{group: gateway.networking.k8s.io, kind: ${kind}, namespace: other}]\n  to: [{group: "", kind: Service}]\n`;
  const resolved = (kind: string) => entryOf(compileIR(yamlInputs(...grpc, consumer(kind))).status, 'GRPCRoute', 'prices-from-other').parents?.[0]?.conditions.find((c) => c.type === 'ResolvedRefs')?.reason;
  assert.equal(resolved('GRPCRoute'), 'ResolvedRefs');
  assert.equal(resolved('HTTPRoute'), 'RefNotPermitted');
});
