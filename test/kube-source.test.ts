import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createKubernetesSource } from '../src/adapters/kubernetes-source.js';
import { startController, type Controller } from '../src/runtime/controller.js';
import { PUSH_ORDER } from '../src/compiler/envoy/codec.js';
import { testController } from './helpers/controller.js';
import { applyBookstore, startKubeApi } from './helpers/kube.js';
import { waitFor } from './helpers/wait.js';

/** The Kubernetes source against a real kube-apiserver and etcd on loopback (live controller). */
const BOOKBUYER = 'spiffe://cluster.local/ns/bookbuyer/sa/bookbuyer';
const BOOKSTORE_CLUSTER = 'outbound|14001|bookstore-v1.bookstore';

const meshVersions = (c: Controller) =>
  Object.fromEntries(c.cache.identities().map((id) => [id, PUSH_ORDER.filter((k) => k !== 'secret').map((k) => `${k}=${c.cache.get(id)!.types[k].version}`).join(' ')]));

test('the same objects through a real API server and in a folder give identical snapshots; changes, deletions and an API server killed and restarted are followed', async () => {
  const api = await startKubeApi();
  let kube: Controller | undefined;
  const folder = await testController('examples/bookstore');
  try {
    api.kubectl(['create', 'namespace', 'smc-system']);
    applyBookstore(api);
    const logs: string[] = [];
    kube = await startController({
      source: [],
      sources: [createKubernetesSource({ kubeconfig: api.kubeconfig, log: (l) => logs.push(l), retryMs: 200 })],
      stateDir: join(mkdtempSync(join(tmpdir(), 'smc-kube-state-')), 'state'),
      xdsHost: '127.0.0.1',
      xdsPort: 0,
      adminHost: '127.0.0.1',
      adminPort: 0,
      insecureXds: true,
      log: (l) => logs.push(l),
    });
    // Every proxy's configuration (secrets aside: each controller has its own CA) is the same, version for version.
    assert.deepEqual(meshVersions(kube), meshVersions(folder.controller));
    assert.ok(kube.cache.get(BOOKBUYER)!.types.cluster.resources.has(BOOKSTORE_CLUSTER));

    // Status goes back to the objects (the status subresource): accepted ones, and a rejected one with smc's reason.
    const conditionOf = (kind: string, ns: string, name: string) => {
      const o = JSON.parse(api.kubectl(['get', kind, name, '-n', ns, '-o', 'json'])) as { metadata: { resourceVersion: string }; status?: { conditions?: { type: string; status: string; reason: string; message: string }[] } };
      return { rv: o.metadata.resourceVersion, accepted: o.status?.conditions?.find((c) => c.type === 'Accepted') };
    };
    const accepted = await waitFor('status on the TrafficTarget', () => conditionOf('traffictarget.access.smi-spec.io', 'bookwarehouse', 'bookstore-access-bookwarehouse').accepted);
    assert.deepEqual([accepted.status, accepted.reason], ['True', 'Accepted']);
    api.kubectl(['apply', '-f', '-'], 'apiVersion: split.smi-spec.io/v1alpha4\nkind: TrafficSplit\nmetadata: {name: typo, namespace: bookstore}\nspec: {service: bookstore, backends: [{service: bookstore-v1, weight: 1}], extra: true}\n');
    const rejected = await waitFor('status on the rejected TrafficSplit', () => conditionOf('trafficsplit.split.smi-spec.io', 'bookstore', 'typo').accepted);
    assert.deepEqual([rejected.status, rejected.reason], ['False', 'Rejected']);
    assert.match(rejected.message, /unknown field "spec\.extra"/);
    const written = conditionOf('traffictarget.access.smi-spec.io', 'bookwarehouse', 'bookstore-access-bookwarehouse').rv;

    // A deletion through the API reaches the snapshots.
    api.kubectl(['delete', 'traffictarget.access.smi-spec.io', 'bookbuyer-access-bookstore', '-n', 'bookstore']);
    await waitFor('the deleted TrafficTarget to take its grant along', () => (kube!.cache.get(BOOKBUYER)!.types.cluster.resources.has(BOOKSTORE_CLUSTER) ? undefined : true), 10_000);

    // The API server dies (SIGKILL) and comes back: the informers start again and follow the next change.
    await api.restartApiServer();
    api.kubectl(['apply', '-f', 'examples/bookstore/40-policy.yaml']);
    await waitFor('the re-created TrafficTarget after the API server restart', () => (kube!.cache.get(BOOKBUYER)!.types.cluster.resources.has(BOOKSTORE_CLUSTER) ? true : undefined), 60_000);
    assert.ok(logs.some((l) => /kubernetes: watching .* stopped/.test(l)), 'the informers noticed the API server going away');

    // A new workload: a pod labelled for bookstore v1 joins as an endpoint.
    api.kubectl(['run', 'bookstore-v1-2', '-n', 'bookstore', '--image', 'bookstore:v1', '--labels', 'app=bookstore,version=v1', '--overrides', JSON.stringify({ spec: { serviceAccountName: 'bookstore', containers: [{ name: 'bookstore', image: 'bookstore:v1', ports: [{ name: 'web', containerPort: 8080 }] }] } })]);
    api.kubectl(['patch', 'pod', 'bookstore-v1-2', '-n', 'bookstore', '--subresource=status', '--type=merge', '-p', JSON.stringify({ status: { podIP: '198.18.2.11', podIPs: [{ ip: '198.18.2.11' }] } })]);
    await waitFor('the new pod as an endpoint', () => {
      const cla = kube!.cache.get(BOOKBUYER)!.types.endpoint.resources.get(BOOKSTORE_CLUSTER);
      return cla && Buffer.from(cla.bytes).includes('198.18.2.11') ? true : undefined;
    }, 10_000);
    // Declarative membership: a VirtualMachine backs bookstore-v1 beside its pods (hybrid), and leaves when deleted.
    const endpointsOfV1 = () => Buffer.from(kube!.cache.get(BOOKBUYER)!.types.endpoint.resources.get(BOOKSTORE_CLUSTER)?.bytes ?? new Uint8Array()).toString('latin1');
    api.kubectl(['apply', '-f', '-'], 'apiVersion: smc.dev/v1alpha1\nkind: VirtualMachine\nmetadata: {name: store-vm, namespace: bookstore}\nspec: {serviceAccount: bookstore, addresses: [198.18.3.10], ports: [{name: web, port: 8080}], labels: {app: bookstore, version: v1}, interceptionMode: explicit}\n');
    await waitFor('the VM as an endpoint beside the pods', () => (endpointsOfV1().includes('198.18.3.10') && endpointsOfV1().includes('198.18.2.10') ? true : undefined), 10_000);
    api.kubectl(['delete', 'virtualmachine.smc.dev', 'store-vm', '-n', 'bookstore']);
    await waitFor('the VM to leave', () => (endpointsOfV1().includes('198.18.3.10') ? undefined : true), 10_000);
    assert.ok(endpointsOfV1().includes('198.18.2.10'), 'the pods keep serving');

    // Status is written only when it changes: many compiles later, an untouched object was not written again.
    assert.equal(conditionOf('traffictarget.access.smi-spec.io', 'bookwarehouse', 'bookstore-access-bookwarehouse').rv, written);
  } finally {
    await kube?.close();
    await folder.controller.close();
    await api.stop();
  }
});

test('an informer that comes back after etcd compacted its history (410 Gone) lists again and loses no change', async () => {
  const api = await startKubeApi();
  let kube: Controller | undefined;
  try {
    api.kubectl(['create', 'namespace', 'smc-system']);
    applyBookstore(api);
    const logs: string[] = [];
    kube = await startController({
      source: [],
      // A long first retry: the API server is back before the informers are, so changes and a compaction happen in between.
      sources: [createKubernetesSource({ kubeconfig: api.kubeconfig, log: (l) => logs.push(l), retryMs: 10_000 })],
      stateDir: join(mkdtempSync(join(tmpdir(), 'smc-kube-state-')), 'state'),
      xdsHost: '127.0.0.1',
      xdsPort: 0,
      adminHost: '127.0.0.1',
      adminPort: 0,
      insecureXds: true,
      log: (l) => logs.push(l),
    });
    assert.ok(kube.cache.get(BOOKBUYER)!.types.cluster.resources.has(BOOKSTORE_CLUSTER));
    const down = Date.now();
    await api.restartApiServer();
    assert.ok(Date.now() - down < 9000, 'the API server came back before the informers retried');
    api.kubectl(['delete', 'traffictarget.access.smi-spec.io', 'bookbuyer-access-bookstore', '-n', 'bookstore']);
    // Compact etcd's history up to now: a watch resuming from before the deletion gets 410 Gone.
    const range = (await (await fetch(`${api.etcd}/v3/kv/range`, { method: 'POST', body: JSON.stringify({ key: Buffer.from('/').toString('base64') }) })).json()) as { header: { revision: string } };
    const compact = await fetch(`${api.etcd}/v3/kv/compaction`, { method: 'POST', body: JSON.stringify({ revision: range.header.revision, physical: true }) });
    assert.equal(compact.status, 200, await compact.text());
    await waitFor('the deletion made while no informer watched', () => (kube!.cache.get(BOOKBUYER)!.types.cluster.resources.has(BOOKSTORE_CLUSTER) ? undefined : true), 40_000);
    assert.ok(logs.some((l) => /watching TrafficTarget .* again/.test(l)), 'the TrafficTarget informer started again');
  } finally {
    await kube?.close();
    await api.stop();
  }
});
