import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadEnvoyProtos } from '../src/adapters/envoy-protos.js';
import { compile } from '../src/compiler/compile.js';
import type { MeshInputs } from '../src/compiler/inputs.js';
import { startCompilerThread } from '../src/runtime/compiler-thread.js';

/** The controller compiles in a worker thread: the event loop that serves ADS keeps running, and the result is the compiler's, byte for byte. */
function mesh(services: number): MeshInputs {
  const docs: unknown[] = [{ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'big', labels: { 'smc.dev/mesh': 'enabled' } } }];
  for (let i = 0; i < services; i++) {
    docs.push({ apiVersion: 'v1', kind: 'Pod', metadata: { name: `p${i}`, namespace: 'big', labels: { app: `s${i}` } }, spec: { serviceAccountName: `s${i}`, containers: [{ name: 'c', ports: [{ containerPort: 8080 }] }] }, status: { podIP: `10.${Math.floor(i / 250)}.${i % 250}.1` } });
    docs.push({ apiVersion: 'v1', kind: 'Service', metadata: { name: `s${i}`, namespace: 'big' }, spec: { selector: { app: `s${i}` }, ports: [{ port: 80, targetPort: 8080 }] } });
  }
  docs.push({ apiVersion: 'smc.dev/v1alpha1', kind: 'MeshConfig', metadata: { name: 'm', namespace: 'big' }, spec: { permissive: true } });
  return { documents: docs.map((value, document) => ({ origin: { source: 'gen', document, line: 0 }, value })), problems: [] };
}

test('a large compile runs off the event loop, and gives exactly what the compiler gives in-process', async () => {
  const inputs = mesh(150);
  const thread = startCompilerThread();
  try {
    let ticks = 0;
    const timer = setInterval(() => ticks++, 5);
    const compiled = await thread.compile(inputs);
    const snapshots = await thread.snapshots({ trustBundle: '', identities: [] });
    clearInterval(timer);
    // Permissive, 150 identities that each reach every service: a second of work or more, during which timers kept firing.
    assert.ok(ticks >= 5, `the event loop ran ${ticks} timer ticks while the worker compiled`);
    const local = compile(inputs, loadEnvoyProtos());
    assert.deepEqual(compiled.status, local.status);
    assert.deepEqual(compiled.ir, local.ir);
    assert.equal(snapshots.length, local.snapshots.length);
    snapshots.forEach((s, i) => {
      const l = local.snapshots[i]!;
      assert.equal(s.identity, l.identity);
      for (const kind of ['cluster', 'endpoint', 'listener', 'route', 'secret'] as const) {
        assert.equal(s.types[kind].version, l.types[kind].version);
        assert.deepEqual(s.types[kind].resources.map((r) => Buffer.from(r.bytes).toString('base64')), l.types[kind].resources.map((r) => Buffer.from(r.bytes).toString('base64')));
      }
    });
    // A failure in the worker is an error of the call, not a crash.
    const fresh = startCompilerThread();
    await assert.rejects(fresh.snapshots({ trustBundle: '', identities: [] }), /before any compile/);
    await fresh.close();
  } finally {
    await thread.close();
  }
});
