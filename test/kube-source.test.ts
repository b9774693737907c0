import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Controller } from '../src/runtime/controller.js';
import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PUSH_ORDER } from '../src/compiler/envoy/codec.js';
import { testController } from './helpers/controller.js';
import { applyBookstore, controllerOnKubernetes, startKubeApi } from './helpers/kube.js';
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
    kube = await controllerOnKubernetes(api.kubeconfig, { log: (l) => logs.push(l) });
    // Every proxy's configuration (secrets aside: each controller has its own CA) is the same, version for version.
    assert.deepEqual(meshVersions(kube), meshVersions(folder.controller));
    assert.ok(kube.cache.get(BOOKBUYER)!.types.cluster.resources.has(BOOKSTORE_CLUSTER));

    // Status goes back to the objects (the status subresource): accepted ones, and a rejected one with smc's reason.
    const conditionOf = (kind: string, ns: string, name: string) => {
      const o = JSON.parse(api.kubectl(['get', kind, name, '-n', ns, '-o', 'json'])) as { metadata: { resourceVersion: string }; status?: { conditions?: { type: string; status: string; reason: string; message: string }[] } };
      return { rv: o.metadata.resourceVersion, accepted: o.status?.conditions?.find((c) => c.type === 'Accepted'), programmed: o.status?.conditions?.find((c) => c.type === 'Programmed') };
    };
    const accepted = await waitFor('status on the TrafficTarget', () => conditionOf('traffictarget.access.smi-spec.io', 'bookwarehouse', 'bookstore-access-bookwarehouse').accepted);
    assert.deepEqual([accepted.status, accepted.reason], ['True', 'Accepted']);
    // kubectl get shows it in the CRD's columns.
    assert.match(api.kubectl(['get', 'traffictarget.access.smi-spec.io', '-n', 'bookwarehouse']), /\nbookstore-access-bookwarehouse\s+bookwarehouse\s+True\s+Accepted\s+\d+s\n/);
    api.kubectl(['apply', '-f', '-'], 'apiVersion: split.smi-spec.io/v1alpha4\nkind: TrafficSplit\nmetadata: {name: typo, namespace: bookstore}\nspec: {service: bookstore, backends: [{service: bookstore-v1, weight: 0}]}\n');
    const rejected = await waitFor('status on the rejected TrafficSplit', () => conditionOf('trafficsplit.split.smi-spec.io', 'bookstore', 'typo').accepted);
    assert.deepEqual([rejected.status, rejected.reason], ['False', 'Rejected']);
    assert.match(rejected.message, /every weight is 0/);
    // Its whole status (Programmed too, written up to a second after Accepted: one write per object per second).
    const written = (await waitFor('the TrafficTarget\'s Programmed condition', () => {
      const c = conditionOf('traffictarget.access.smi-spec.io', 'bookwarehouse', 'bookstore-access-bookwarehouse');
      return c.programmed ? c : undefined;
    })).rv;

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
    // Pod status churn smc does not read (conditions, container statuses): the source delivers no change, and nothing is compiled.
    const compiles = async () => Number(/^smc_compiles_total (\d+)/m.exec(await (await fetch(`http://127.0.0.1:${kube!.adminPort}/metrics`)).text())?.[1]);
    const compiledBefore = await compiles();
    for (let i = 0; i < 5; i++) {
      const conditions = [{ type: 'Ready', status: i % 2 === 0 ? 'False' : 'True', lastTransitionTime: new Date(Date.UTC(2026, 0, 1, 0, 0, i)).toISOString() }];
      api.kubectl(['patch', 'pod', 'bookstore-v1-2', '-n', 'bookstore', '--subresource=status', '--type=merge', '-p', JSON.stringify({ status: { conditions, containerStatuses: [{ name: 'bookstore', image: 'bookstore:v1', imageID: '', ready: i % 2 === 1, restartCount: i, started: true, state: { running: { startedAt: '2026-01-01T00:00:00Z' } } }] } })]);
      // A pod the informer first had from its list (the typed client's objects, whose timestamps are Dates) and now from a watch event (the API server's text): the same object.
      api.kubectl(['patch', 'pod', 'bookthief-1', '-n', 'bookthief', '--subresource=status', '--type=merge', '-p', JSON.stringify({ status: { conditions } })]);
      // (kubectl runs synchronously: the controller sees each write while the test waits.)
      await new Promise((r) => setTimeout(r, 300));
    }
    // A change smc reads after them: once it is in, the status writes before it were seen (and compiled nothing).
    api.kubectl(['label', 'pod', 'bookstore-v1-2', '-n', 'bookstore', 'smc.dev/test=marker']);
    await waitFor('the labelled pod to be compiled', async () => ((await compiles()) > compiledBefore ? true : undefined), 10_000);
    await new Promise((r) => setTimeout(r, 500));
    assert.equal(await compiles(), compiledBefore + 1, 'five status writes and a label: one compile, for the label');
    // Declarative membership: a VirtualMachine backs bookstore-v1 beside its pods (hybrid), and leaves when deleted.
    const endpointsOfV1 = () => Buffer.from(kube!.cache.get(BOOKBUYER)!.types.endpoint.resources.get(BOOKSTORE_CLUSTER)?.bytes ?? new Uint8Array()).toString('latin1');
    api.kubectl(['apply', '-f', '-'], 'apiVersion: smc.dev/v1alpha1\nkind: VirtualMachine\nmetadata: {name: store-vm, namespace: bookstore}\nspec: {serviceAccount: bookstore, addresses: [198.18.4.10], ports: [{name: web, port: 8080}], labels: {app: bookstore, version: v1}, interceptionMode: explicit}\n');
    await waitFor('the VM as an endpoint beside the pods', () => (endpointsOfV1().includes('198.18.4.10') && endpointsOfV1().includes('198.18.2.10') ? true : undefined), 10_000);
    api.kubectl(['delete', 'virtualmachine.smc.dev', 'store-vm', '-n', 'bookstore']);
    await waitFor('the VM to leave', () => (endpointsOfV1().includes('198.18.4.10') ? undefined : true), 10_000);
    assert.ok(endpointsOfV1().includes('198.18.2.10'), 'the pods keep serving');

    // Status is written only when it changes: many compiles later, an untouched object was not written again.
    assert.equal(conditionOf('traffictarget.access.smi-spec.io', 'bookwarehouse', 'bookstore-access-bookwarehouse').rv, written);
  } finally {
    await kube?.close();
    await folder.controller.close();
    await api.stop();
  }
});

test('objects written in older SMI versions are decoded in the version they were written in: the same snapshots as those files in a folder', async () => {
  const OLD = 'test/fixtures/bookstore-policy-old-versions.yaml';
  const api = await startKubeApi();
  let kube: Controller | undefined;
  const mesh = mkdtempSync(join(tmpdir(), 'smc-old-'));
  cpSync('examples/bookstore', mesh, { recursive: true });
  rmSync(join(mesh, '40-policy.yaml'));
  cpSync(OLD, join(mesh, '40-policy.yaml'));
  const folder = await testController(mesh);
  try {
    api.kubectl(['create', 'namespace', 'smc-system']);
    applyBookstore(api);
    api.kubectl(['delete', '-f', 'examples/bookstore/40-policy.yaml']);
    api.kubectl(['create', '-f', OLD]);
    kube = await controllerOnKubernetes(api.kubeconfig);
    const problems = async (c: Controller) =>
      ((await (await fetch(`http://127.0.0.1:${c.adminPort}/status/inputs`)).json()) as { objects: { object: string; state: string; messages?: string[] }[] }).objects.filter((o) => o.state !== 'Accepted');
    assert.deepEqual(await problems(folder.controller), [], 'every old-version object is accepted from the folder');
    await waitFor('the same snapshots as the folder', () => (JSON.stringify(meshVersions(kube!)) === JSON.stringify(meshVersions(folder.controller)) ? true : undefined), 10_000).catch(async () =>
      assert.fail(JSON.stringify(await problems(kube!), null, 1)),
    );
    assert.ok(kube.cache.get(BOOKBUYER)!.types.cluster.resources.has(BOOKSTORE_CLUSTER), 'the v1alpha1 TrafficTarget grants bookbuyer');
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
    // A long first retry: the API server is back before the informers are, so changes and a compaction happen in between.
    kube = await controllerOnKubernetes(api.kubeconfig, { log: (l) => logs.push(l), retryMs: 10_000 });
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

test('every kind, changed through the API server, changes what the proxies it concerns receive', async () => {
  const api = await startKubeApi();
  let kube: Controller | undefined;
  try {
    api.kubectl(['create', 'namespace', 'smc-system']);
    applyBookstore(api);
    kube = await controllerOnKubernetes(api.kubeconfig);
    const id = (ns: string, sa: string) => `spiffe://cluster.local/ns/${ns}/sa/${sa}`;
    const versions = (identity: string) => {
      const s = kube!.cache.get(identity);
      return s ? PUSH_ORDER.filter((k) => k !== 'secret').map((k) => s.types[k].version).join(' ') : 'absent';
    };
    const changes = async (what: string, identity: string, act: () => void) => {
      const before = versions(identity);
      act();
      await waitFor(`${what} to change ${identity}`, () => (versions(identity) !== before ? true : undefined), 10_000);
    };
    const patch = (kind: string, ns: string, name: string, p: object) => api.kubectl(['patch', kind, name, '-n', ns, '--type=merge', '-p', JSON.stringify(p)]);
    await changes('an HTTPRouteGroup update', id('bookstore', 'bookstore'), () =>
      patch('httproutegroup.specs.smi-spec.io', 'bookstore', 'bookstore-service-routes', { spec: { matches: [{ name: 'buy-a-book', pathRegex: '/buy', methods: ['GET'] }, { name: 'books-bought', pathRegex: '/books-bought', methods: ['GET'] }] } }),
    );
    await changes('a TCPRoute update', id('bookwarehouse', 'mysql'), () => patch('tcproute.specs.smi-spec.io', 'bookwarehouse', 'mysql', { spec: { matches: { ports: [3307] } } }));
    await changes('a TrafficSplit update', id('bookbuyer', 'bookbuyer'), () =>
      patch('trafficsplit.split.smi-spec.io', 'bookstore', 'bookstore-split', { spec: { backends: [{ service: 'bookstore-v1', weight: 50 }, { service: 'bookstore-v2', weight: 50 }] } }),
    );
    await changes('a Service deletion', id('bookbuyer', 'bookbuyer'), () => api.kubectl(['delete', 'service', 'bookstore-v2', '-n', 'bookstore']));
    // An EndpointSlice is the authority for pods: one that says the pod is not ready takes its endpoint away.
    await changes('an EndpointSlice', id('bookstore', 'bookstore'), () =>
      api.kubectl(['apply', '-f', '-'], JSON.stringify({ apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice', metadata: { name: 'bookwarehouse-1', namespace: 'bookwarehouse', labels: { 'kubernetes.io/service-name': 'bookwarehouse' } }, addressType: 'IPv4', ports: [{ name: 'http', port: 8080 }], endpoints: [{ addresses: ['198.18.3.10'], conditions: { ready: false }, targetRef: { kind: 'Pod', name: 'bookwarehouse-1', namespace: 'bookwarehouse' } }] })),
    );
    await changes('a MeshConfig update (permissive)', id('bookthief', 'bookthief'), () => patch('meshconfig.smc.dev', 'smc-system', 'smc', { spec: { permissive: true } }));
    await changes('a Namespace losing its mesh label', id('bookthief', 'bookthief'), () => api.kubectl(['label', 'namespace', 'bookthief', 'smc.dev/mesh-']));
    assert.equal(versions(id('bookthief', 'bookthief')), 'absent', 'bookthief left the mesh');
    // A ServiceAccount: a TrafficTarget naming an account that does not exist warns until it does.
    api.kubectl(['apply', '-f', '-'], 'apiVersion: access.smi-spec.io/v1alpha3\nkind: TrafficTarget\nmetadata: {name: auditor-reads, namespace: bookstore}\nspec:\n  destination: {kind: ServiceAccount, name: bookstore, namespace: bookstore}\n  rules: [{kind: HTTPRouteGroup, name: bookstore-service-routes}]\n  sources: [{kind: ServiceAccount, name: auditor, namespace: bookstore}]\n');
    const message = () => (JSON.parse(api.kubectl(['get', 'traffictarget.access.smi-spec.io', 'auditor-reads', '-n', 'bookstore', '-o', 'json'])) as { status?: { conditions?: { message: string }[] } }).status?.conditions?.[0]?.message;
    await waitFor('the warning about the missing account', () => (/service account bookstore\/auditor/.test(message() ?? '') ? true : undefined), 10_000);
    api.kubectl(['create', 'serviceaccount', 'auditor', '-n', 'bookstore']);
    await waitFor('the warning to go once the account exists', () => (message() !== undefined && !/service account bookstore\/auditor/.test(message()!) ? true : undefined), 10_000);
  } finally {
    await kube?.close();
    await api.stop();
  }
});
