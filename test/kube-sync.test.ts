import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Controller } from '../src/runtime/controller.js';
import { applyBookstore, kubeconfigWithToken, startingOnKubernetes, startKubeApi, type KubeApi } from './helpers/kube.js';
import { waitFor } from './helpers/wait.js';

/** A list that fails is never "nothing there": the controller publishes nothing until every kind has listed. */

const BOOKBUYER = 'spiffe://cluster.local/ns/bookbuyer/sa/bookbuyer';
const BOOKSTORE_CLUSTER = 'outbound|14001|bookstore-v1.bookstore';

/** A service account whose ClusterRole reads everything smc watches but `withheld`. */
function limitedAccount(api: KubeApi, name: string, withheld: string): string {
  const resources = ['namespaces', 'services', 'pods', 'serviceaccounts', 'endpointslices.discovery.k8s.io', 'traffictargets.access.smi-spec.io', 'httproutegroups.specs.smi-spec.io', 'tcproutes.specs.smi-spec.io', 'udproutes.specs.smi-spec.io', 'trafficsplits.split.smi-spec.io', 'meshconfigs.smc.dev', 'virtualmachines.smc.dev'];
  api.kubectl(['create', 'serviceaccount', name, '-n', 'smc-system']);
  api.kubectl(['create', 'clusterrole', name, '--verb=get,list,watch', `--resource=${resources.filter((r) => r !== withheld).join(',')}`]);
  api.kubectl(['create', 'clusterrolebinding', name, `--clusterrole=${name}`, `--serviceaccount=smc-system:${name}`]);
  return kubeconfigWithToken(api, api.kubectl(['create', 'token', name, '-n', 'smc-system']).trim(), name);
}

test('a kind that cannot be listed (403) keeps the controller unready and publishing nothing, /readyz names it; once it lists, the mesh is served whole', async () => {
  const api = await startKubeApi();
  let controller: Controller | undefined;
  const c = await (async () => {
    api.kubectl(['create', 'namespace', 'smc-system']);
    applyBookstore(api);
    return startingOnKubernetes(limitedAccount(api, 'no-targets', 'traffictargets.access.smi-spec.io'));
  })();
  try {
    const waiting = await waitFor('/readyz to name the kind', async () => {
      const r = await c.readyz();
      // Once every other kind has listed, only the forbidden one is named.
      return r.status === 503 && r.body.includes('HTTP 403') && !r.body.includes('not listed yet') ? r.body : undefined;
    });
    assert.match(waiting, /waiting for kubernetes: TrafficTarget \(access\.smi-spec\.io\/v1alpha3\): cannot be listed: HTTP 403/);
    assert.doesNotMatch(waiting, /Pod|HTTPRouteGroup/, 'the kinds that listed are not named');
    await new Promise((r) => setTimeout(r, 1000));
    assert.ok(!c.logs.some((l) => l.includes('published')), 'nothing was published without the TrafficTargets');
    // The permission arrives: the controller lists, and starts with every grant.
    api.kubectl(['patch', 'clusterrole', 'no-targets', '--type=json', '-p', JSON.stringify([{ op: 'add', path: '/rules/-', value: { apiGroups: ['access.smi-spec.io'], resources: ['traffictargets'], verbs: ['get', 'list', 'watch'] } }])]);
    controller = await c.controller;
    assert.equal((await c.readyz()).status, 200);
    assert.ok(controller.cache.get(BOOKBUYER)!.types.cluster.resources.has(BOOKSTORE_CLUSTER), 'bookbuyer\'s grant is there from the first publish');
  } finally {
    c.abort.abort();
    await controller?.close();
    await api.stop();
  }
});

test('an API server that does not answer at start keeps the controller unready; a CRD that is not installed is reported, and its kind is picked up once applied', async () => {
  const api = await startKubeApi();
  let controller: Controller | undefined;
  let c: Awaited<ReturnType<typeof startingOnKubernetes>> | undefined;
  try {
    api.kubectl(['create', 'namespace', 'smc-system']);
    applyBookstore(api);
    api.kubectl(['delete', 'crd', 'udproutes.specs.smi-spec.io']);
    await api.restartApiServer(async () => {
      c = await startingOnKubernetes(api.kubeconfig);
      const down = await waitFor('/readyz while the API server is down', async () => {
        const r = await c!.readyz();
        return r.status === 503 && r.body.includes('cannot be listed') ? r.body : undefined;
      });
      assert.match(down, /Namespace \(v1\): cannot be listed/);
    });
    controller = await c!.controller;
    assert.ok(controller.cache.get(BOOKBUYER)!.types.cluster.resources.has(BOOKSTORE_CLUSTER));
    assert.ok(c!.logs.some((l) => /UDPRoute is not served by the API server \(its CRD is not installed/.test(l)), c!.logs.join('\n'));
    // The CRD applied later: its objects count (each gets a status entry).
    api.kubectl(['apply', '-f', 'deploy/crds']);
    api.kubectl(['wait', '--for', 'condition=established', '--timeout', '60s', 'crd', '--all']);
    api.kubectl(['apply', '-f', '-'], 'apiVersion: specs.smi-spec.io/v1alpha4\nkind: UDPRoute\nmetadata: {name: dns, namespace: bookstore}\nspec: {matches: {ports: [53]}}\n');
    await waitFor('the UDPRoute to be read', async () => {
      const inputs = (await (await fetch(`http://127.0.0.1:${controller!.adminPort}/status/inputs`)).json()) as { objects: { object: string }[] };
      return inputs.objects.some((o) => o.object === 'UDPRoute bookstore/dns') ? true : undefined;
    }, 60_000);
  } finally {
    c?.abort.abort();
    await controller?.close();
    await api.stop();
  }
});

test('on Kubernetes, a new version of a policy object that smc rejects keeps the accepted one in force, and its condition says so', async () => {
  const api = await startKubeApi();
  let controller: Controller | undefined;
  try {
    api.kubectl(['create', 'namespace', 'smc-system']);
    applyBookstore(api);
    controller = await (await startingOnKubernetes(api.kubeconfig)).controller;
    const served = controller.cache.get(BOOKBUYER)!;
    assert.ok(served.types.cluster.resources.has(BOOKSTORE_CLUSTER));
    // A value the CRD's schema leaves to smc (headers are a map or a list of maps): the API server stores it, smc refuses it.
    const group = JSON.parse(api.kubectl(['get', 'httproutegroup.specs.smi-spec.io', 'bookstore-service-routes', '-n', 'bookstore', '-o', 'json'])) as { spec: { matches: Record<string, unknown>[] } };
    const match = group.spec.matches.find((m) => m.pathRegex === '/books-bought')!;
    match.headers = { 'x-count': 1 };
    api.kubectl(['patch', 'httproutegroup.specs.smi-spec.io', 'bookstore-service-routes', '-n', 'bookstore', '--type=merge', '-p', JSON.stringify({ spec: { matches: group.spec.matches } })]);
    const condition = await waitFor('the Rejected condition', () => {
      const o = JSON.parse(api.kubectl(['get', 'httproutegroup.specs.smi-spec.io', 'bookstore-service-routes', '-n', 'bookstore', '-o', 'json'])) as { status?: { conditions?: { status: string; reason: string; message: string }[] } };
      const c = o.status?.conditions?.[0];
      return c?.reason === 'Rejected' ? c : undefined;
    });
    assert.equal(condition.status, 'False');
    assert.match(condition.message, /headers: expected map of header name to pattern.*the version accepted at .* stays in force/);
    assert.equal(controller.cache.get(BOOKBUYER), served, 'bookbuyer is served what it was');
  } finally {
    await controller?.close();
    await api.stop();
  }
});
