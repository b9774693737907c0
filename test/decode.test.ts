import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compileIR } from '../src/compiler/compile.js';
import { quantityToMilli } from '../src/compiler/decode/smi-split.js';
import { checkDocument } from '../src/compiler/decode/index.js';
import { formatMessage } from '../src/compiler/status.js';
import { objectInputs, yamlInputs } from './helpers/inputs.js';

const ns = { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'app', labels: { 'smc.dev/mesh': 'enabled' } } };
const MESH_NAMESPACE_YAML = 'apiVersion: v1\nkind: Namespace\nmetadata: {name: app, labels: {smc.dev/mesh: enabled}}\n';

function messagesFor(inputs: ReturnType<typeof objectInputs>, name: string): string[] {
  const entry = compileIR(inputs).status.find((s) => s.object.name === name);
  assert.ok(entry, `no status for ${name}`);
  return entry.messages.map(formatMessage);
}

test('a wrongly typed field is reported with its path, the expectation and the value', () => {
  const msgs = messagesFor(
    objectInputs(ns, {
      apiVersion: 'split.smi-spec.io/v1alpha2',
      kind: 'TrafficSplit',
      metadata: { name: 's', namespace: 'app' },
      spec: { service: 'web', backends: [{ service: 'a', weight: '80' }] },
    }),
    's',
  );
  assert.ok(msgs.includes('spec.backends[0].weight: expected non-negative integer, got "80"'), msgs.join('\n'));
});

test('a missing required field names the field', () => {
  const msgs = messagesFor(
    objectInputs(ns, { apiVersion: 'smc.dev/v1alpha1', kind: 'VirtualMachine', metadata: { name: 'vm', namespace: 'app' }, spec: { addresses: [] } }),
    'vm',
  );
  assert.ok(msgs.includes('spec.serviceAccount: expected non-empty string, got nothing'), msgs.join('\n'));
});

test('v1alpha1 weights are Kubernetes quantities converted to milli-units exactly', () => {
  assert.deepEqual(quantityToMilli('1'), { ok: true, milli: 1000 });
  assert.deepEqual(quantityToMilli(1), { ok: true, milli: 1000 });
  assert.deepEqual(quantityToMilli('1000m'), { ok: true, milli: 1000 });
  assert.deepEqual(quantityToMilli('500m'), { ok: true, milli: 500 });
  assert.deepEqual(quantityToMilli(0.25), { ok: true, milli: 250 });
  assert.deepEqual(quantityToMilli('2k'), { ok: true, milli: 2_000_000 });
  assert.deepEqual(quantityToMilli('1Ki'), { ok: true, milli: 1_024_000 });
  assert.deepEqual(quantityToMilli('15e-1'), { ok: true, milli: 1500 });
  assert.equal(quantityToMilli('1n').ok, false, 'nano is finer than milli');
  assert.equal(quantityToMilli('-1').ok, false);
  assert.equal(quantityToMilli('ten').ok, false);
});

test('headers as a map and as a list of single-key maps decode to the same matches', () => {
  const group = (headers: string) => `
apiVersion: specs.smi-spec.io/v1alpha4
kind: HTTPRouteGroup
metadata: {name: g, namespace: app}
spec:
  matches:
    - name: m
      headers: ${headers}
---
apiVersion: access.smi-spec.io/v1alpha3
kind: TrafficTarget
metadata: {name: t, namespace: app}
spec:
  destination: {kind: ServiceAccount, name: b}
  sources: [{kind: ServiceAccount, name: a}]
  rules: [{kind: HTTPRouteGroup, name: g}]
`;
  const asMap = compileIR(yamlInputs(MESH_NAMESPACE_YAML, group('{X-A: "1", x-b: "2"}'))).ir.access;
  const asList = compileIR(yamlInputs(MESH_NAMESPACE_YAML, group('[{x-b: "2"}, {X-A: "1"}]'))).ir.access;
  assert.deepEqual(asList, asMap);
  const grant = asMap.find((a) => a.destination.endsWith('/sa/b'))!.grants[0]!;
  assert.deepEqual(grant.http[0]!.headers, [{ name: 'x-a', regex: '1' }, { name: 'x-b', regex: '2' }]);
});

test('TrafficTarget v1alpha1 keeps destination.port: conversion never widens access', () => {
  const ir = compileIR(
    yamlInputs(
      MESH_NAMESPACE_YAML,
      `
apiVersion: specs.smi-spec.io/v1alpha1
kind: TCPRoute
metadata: {name: r, namespace: app}
---
apiVersion: access.smi-spec.io/v1alpha1
kind: TrafficTarget
metadata: {name: t, namespace: app}
destination: {kind: ServiceAccount, name: b, port: "8080"}
sources: [{kind: ServiceAccount, name: a}]
specs: [{kind: TCPRoute, name: r}]
`),
  ).ir;
  const grants = ir.access.flatMap((a) => a.grants);
  assert.equal(grants.length, 1);
  assert.deepEqual(grants[0]!.ports, [8080]);
});

test('a YAML syntax error names the file and line, and the other documents still count', () => {
  const result = compileIR(yamlInputs('apiVersion: v1\nkind: Namespace\nmetadata: {name: a', 'apiVersion: v1\nkind: Namespace\nmetadata: {name: b}\n'));
  const rejected = result.status.filter((s) => s.state === 'Rejected');
  assert.equal(rejected.length, 1);
  assert.equal(rejected[0]!.origin.source, 'test-0.yaml');
  assert.match(rejected[0]!.messages[0]!.message, /YAML syntax error/);
  assert.ok(result.status.some((s) => s.object.name === 'b' && s.state === 'Accepted'));
});

test('what a live source checks of a document (checkDocument) is what decoding says of its policy objects, alone or in a List; membership is not reported', () => {
  const meta = (name: string) => ({ name, namespace: 'app' });
  const documents: unknown[] = [
    { apiVersion: 'v1', kind: 'Pod', metadata: meta('p'), spec: { serviceAccountName: 'a', containers: [] }, status: { podIP: '10.0.0.1' } },
    { apiVersion: 'v1', kind: 'Pod', metadata: meta('bad'), spec: { serviceAccountName: 7 } },
    { apiVersion: 'v1', kind: 'Service', metadata: meta('s'), spec: { selector: { app: 's' }, ports: [{ port: 80 }] } },
    { apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice', metadata: meta('e'), endpoints: 'none' },
    { apiVersion: 'access.smi-spec.io/v1alpha3', kind: 'TrafficTarget', metadata: meta('tt'), spec: { destination: { kind: 'ServiceAccount', name: 'b', namespace: 'app' }, sources: [{ kind: 'ServiceAccount', name: 'a', namespace: 'app' }], rules: [{ kind: 'TCPRoute', name: 'all' }] } },
    { apiVersion: 'access.smi-spec.io/v1alpha3', kind: 'TrafficTarget', metadata: meta('typo'), spec: { destination: { kind: 'ServiceAccount', name: 'b', namespace: 'app' }, source: [], rules: [] } },
    { apiVersion: 'access.smi-spec.io/v1alpha3', kind: 'TrafficTargett', metadata: meta('kind') },
    { apiVersion: 'split.smi-spec.io/v1alpha4', kind: 'TrafficSplit', metadata: meta('sp'), spec: { service: 's', backends: [{ service: 's', weight: 'x' }] } },
    { apiVersion: 'specs.smi-spec.io/v1alpha4', kind: 'HTTPRouteGroup', metadata: meta('g'), spec: { matches: [{ name: 'm', pathRegex: '/x', method: ['GET'] }] } },
    { apiVersion: 'smc.dev/v1alpha1', kind: 'MeshConfig', metadata: { name: 'smc', namespace: 'smc-system' }, spec: { permissive: 'yes' } },
    { apiVersion: 'gateway.networking.k8s.io/v1', kind: 'HTTPRoute', metadata: meta('r'), spec: { parentRefs: [{ kind: 'Service', name: 's' }], extra: 1 } },
    { apiVersion: 'example.com/v1', kind: 'Widget', metadata: meta('w') },
    { kind: 'TrafficTarget', metadata: meta('no-version') },
    null,
    ['a', 'list'],
    'text',
  ];
  const withList = [...documents, { apiVersion: 'v1', kind: 'List', items: documents }];
  const origin = { source: 'mesh/app.yaml', document: 0, line: 1 };
  let reported = 0;
  for (const value of withList) {
    const alone = checkDocument({ origin, value });
    // In a List every item is decoded: its checks are the item's own, under its place in the List.
    const inList = checkDocument({ origin, value: { apiVersion: 'v1', kind: 'List', items: [value] } });
    const placed = alone.map((c) => ({ ...c, path: `items[0].${c.path}`, ...(c.problems ? { problems: c.problems.map((p) => ({ ...p, path: `items[0].${p.path}` })) } : {}) }));
    assert.deepEqual(inList, placed, JSON.stringify(value)?.slice(0, 120));
    reported += alone.length;
    const group = typeof value === 'object' && value !== null && 'apiVersion' in value ? String(value.apiVersion) : '';
    if (/^(v1|discovery\.k8s\.io\/v1|example\.com\/v1)$/.test(group) && (value as { kind: string }).kind !== 'List') assert.deepEqual(alone, [], 'membership and unknown groups are not reported');
  }
  const checks = checkDocument({ origin, value: withList.at(-1) });
  assert.deepEqual(
    checks.map((c) => [c.path, c.identity, c.problems === undefined ? 'accepted' : 'rejected']),
    [
      ['items[4].', 'access.smi-spec.io/TrafficTarget/app/tt', 'accepted'],
      ['items[5].', 'access.smi-spec.io/TrafficTarget/app/typo', 'rejected'],
      ['items[6].', 'access.smi-spec.io/TrafficTargett/app/kind', 'rejected'],
      ['items[7].', 'split.smi-spec.io/TrafficSplit/app/sp', 'rejected'],
      ['items[8].', 'specs.smi-spec.io/HTTPRouteGroup/app/g', 'rejected'],
      ['items[9].', 'smc.dev/MeshConfig/smc-system/smc', 'rejected'],
      ['items[10].', 'gateway.networking.k8s.io/HTTPRoute/app/r', 'rejected'],
    ],
  );
  assert.equal(reported, 2 * checks.length, 'each policy object is checked alone and in the List of all');
});
