import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { secretStorage } from '../src/adapters/ca/ca-storage.js';
import { openInternalCA } from '../src/adapters/ca/internal-ca.js';
import { signedBy } from '../src/adapters/ca/x509.js';
import { startKubeApi, type KubeApi } from './helpers/kube.js';

/** The internal CA's root kept in a Kubernetes Secret, against a real kube-apiserver. */
const state = () => mkdtempSync(join(tmpdir(), 'smc-state-'));
const secretData = (api: KubeApi) => (JSON.parse(api.kubectl(['get', 'secret', 'smc-ca', '-n', 'smc-system', '-o', 'json'])) as { type: string; data: Record<string, string> });

test('on Kubernetes the root lives in a Secret: created once, loaded again, never overwritten, rotated, with concurrent writers retried; smc bootstrap signs with it', async () => {
  const api = await startKubeApi();
  try {
    api.kubectl(['create', 'namespace', 'smc-system']);
    const storage = () => secretStorage({ namespace: 'smc-system', name: 'smc-ca', kubeconfig: api.kubeconfig });
    const logs: string[] = [];
    const a = await openInternalCA(state(), 'cluster.local', (l) => logs.push(l), storage());
    assert.ok(logs.some((l) => l.includes('created a new mesh root') && l.includes('Secret smc-system/smc-ca')));
    const stored = secretData(api);
    assert.deepEqual(Object.keys(stored.data).sort(), ['root.crt', 'root.key']);
    assert.equal(stored.type, 'Opaque');
    // Another controller (another state folder, same Secret) uses the same root.
    const b = await openInternalCA(state(), 'cluster.local', () => {}, storage());
    assert.equal(b.trustBundle(), a.trustBundle());
    // Two writers at once: both read the same resourceVersion, one meets a conflict and writes again on the fresh Secret.
    await Promise.all([storage().create({ 'probe-a.crt': 'a' }), storage().create({ 'probe-b.crt': 'b' })]);
    assert.ok(['probe-a.crt', 'probe-b.crt'].every((k) => k in secretData(api).data), 'neither write was lost');
    await assert.rejects(storage().create({ 'root.crt': 'x' }), /refusing to overwrite a root/);
    await b.rotation!.begin();
    await b.rotation!.switchSigner();
    await b.rotation!.finish();
    const keys = Object.keys(secretData(api).data).sort();
    assert.equal(keys.filter((k) => k.startsWith('retired-')).length, 2);
    assert.deepEqual(keys.filter((k) => k.startsWith('root')), ['root.crt', 'root.key']);
    const c = await openInternalCA(state(), 'cluster.local', () => {}, storage());
    assert.equal(c.trustBundle(), b.trustBundle());
    assert.notEqual(c.trustBundle(), a.trustBundle());

    // smc bootstrap signs the proxy certificate with the root in the Secret, records it in the cluster
    // (where every replica reads it) and keeps nothing of either locally.
    const dir = state();
    const bootstrap = () =>
      new Promise<{ code: number; stderr: string }>((resolve) =>
        execFile(process.execPath, ['dist/src/cli/main.js', 'bootstrap', '--identity', 'shop/web', '--xds-address', '127.0.0.1:15128', '--state', dir, '--ca-root-secret', 'smc-system/smc-ca', '--kubeconfig', api.kubeconfig, '-o', join(dir, 'out')], (err, _o, stderr) =>
          resolve({ code: err ? Number(err.code) : 0, stderr }),
        ),
      );
    const noCrd = await bootstrap();
    assert.equal(noCrd.code, 1, 'a missing CRD is the operator\'s to fix, not a crash');
    assert.match(noCrd.stderr, /^smc: cannot record proxy certificate \w+ \(ProxyCertificate objects in namespace smc-system\): the ProxyCertificate CRD is not installed \(kubectl apply -f deploy\/crds\/smc-proxycertificate\.yaml\)\n$/);
    assert.ok(!existsSync(join(dir, 'out', 'proxy.key')), 'no credentials the controller would refuse are left behind');
    api.kubectl(['apply', '-f', 'deploy/crds/smc-proxycertificate.yaml']);
    api.kubectl(['wait', '--for', 'condition=established', '--timeout', '60s', 'crd/proxycertificates.smc.dev']);
    const r = await bootstrap();
    assert.equal(r.code, 0, r.stderr);
    const recorded = JSON.parse(api.kubectl(['get', 'proxycertificates', '-n', 'smc-system', '-o', 'json'])) as { items: { metadata: { name: string }; spec: { identity: string; state: string; serial: string } }[] };
    assert.deepEqual(recorded.items.map((i) => [i.spec.identity, i.spec.state, i.metadata.name === i.spec.serial]), [['spiffe://cluster.local/ns/shop/sa/web', 'unclaimed', true]]);
    assert.ok(!existsSync(join(dir, 'proxy-certificates')), 'no record in the state folder');
    const bundle = readFileSync(join(dir, 'out', 'ca.crt'), 'utf8');
    const root = Buffer.from(secretData(api).data['root.crt']!, 'base64').toString('utf8');
    assert.ok(bundle.includes(root.trim()), 'the bundle holds the root of the Secret');
    assert.ok(await signedBy(readFileSync(join(dir, 'out', 'proxy.crt'), 'utf8'), bundle, new Date()));
    assert.ok(!existsSync(join(dir, 'ca')), 'nothing of the root in the state folder');

    // A half-deleted Secret is an error, not a new root.
    api.kubectl(['patch', 'secret', 'smc-ca', '-n', 'smc-system', '--type=json', '-p', '[{"op":"remove","path":"/data/root.key"}]']);
    await assert.rejects(openInternalCA(state(), 'cluster.local', () => {}, storage()), /Secret smc-system\/smc-ca is incomplete: root\.key is missing/);
  } finally {
    await api.stop();
  }
});
