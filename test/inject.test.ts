import { test } from 'node:test';
import assert from 'node:assert/strict';
import { injectPod, type InjectOptions } from '../src/output/inject.js';

const options: InjectOptions = { image: 'smc:test', xdsAddress: 'smc:15128', certificateUrl: 'https://smc:15130', trustBundle: 'PEM', defaultInterceptionMode: 'transparent', nativeSidecar: true };
const pod = (meta: object = {}, spec: object = {}) => ({ metadata: { name: 'p', namespace: 'shop', ...meta }, spec: { containers: [{ name: 'app', image: 'app' }], ...spec } });
const patched = (d: ReturnType<typeof injectPod>, path: string) => {
  assert.equal(d.action, 'inject');
  return (d as { patch: { path: string; value: unknown }[] }).patch.find((p) => p.path === path)!.value as { name: string; restartPolicy?: string; lifecycle?: unknown }[];
};

test('injection without native sidecars (clusters before 1.29): Envoy is the first container and holds the app until it is ready', () => {
  const d = injectPod(pod(), { ...options, nativeSidecar: false });
  const containers = patched(d, '/spec/containers');
  assert.deepEqual(containers.map((c) => c.name), ['smc-proxy', 'app']);
  assert.equal(containers[0]!.restartPolicy, undefined);
  assert.deepEqual(containers[0]!.lifecycle, { postStart: { exec: { command: ['smc', 'sidecar', '--wait-ready'] } } });
  assert.deepEqual(patched(d, '/spec/initContainers').map((c) => c.name), ['smc-capture']);
});

test('no sidecar for proxyless pods, host-network pods, or when told so; the mesh default mode applies otherwise', () => {
  assert.deepEqual(injectPod(pod({ annotations: { 'smc.dev/interception': 'proxyless' } }), options), { action: 'skip', reason: 'proxyless: the application speaks xDS itself' });
  assert.equal(injectPod(pod({}, { hostNetwork: true }), options).action, 'skip');
  assert.equal(injectPod(pod({ labels: { 'smc.dev/inject': 'false' } }), options).action, 'skip');
  assert.deepEqual(patched(injectPod(pod(), { ...options, defaultInterceptionMode: 'explicit' }), '/spec/initContainers').map((c) => c.name), ['smc-proxy']);
  assert.equal(injectPod(pod(), { ...options, defaultInterceptionMode: 'proxyless' }).action, 'skip');
  assert.deepEqual(injectPod({ metadata: {} }, options), { action: 'reject', message: 'expected a Pod with metadata and spec' });
});

test('an injected pod tells Prometheus where the sidecar\'s stats are, unless it already names its own metrics', () => {
  const annotationsOf = (d: ReturnType<typeof injectPod>) => {
    assert.equal(d.action, 'inject');
    const op = (d as { patch: { path: string; value: Record<string, string> }[] }).patch.find((o) => o.path === '/metadata/annotations')!;
    return op.value;
  };
  const plain = annotationsOf(injectPod(pod(), options));
  assert.equal(plain['prometheus.io/scrape'], 'true');
  assert.equal(plain['prometheus.io/port'], '15010');
  assert.equal(plain['prometheus.io/path'], '/stats/prometheus');
  const own = annotationsOf(injectPod(pod({ annotations: { 'prometheus.io/port': '9102' } }), options));
  assert.equal(own['prometheus.io/port'], '9102');
  assert.equal(own['prometheus.io/path'], undefined);
});
