import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { applyBookstore, kubeconfigWithToken, startKubeApi } from './helpers/kube.js';

/** smc analyze against a real API server: every object's status, read only, exit codes scripts can trust. */
const smc = (args: string[]) =>
  new Promise<{ code: number; stdout: string; stderr: string }>((resolve) =>
    execFile(process.execPath, ['dist/src/cli/main.js', ...args], (err, stdout, stderr) => resolve({ code: err ? Number(err.code) : 0, stdout, stderr })),
  );

test('smc analyze reads a live cluster read only and prints every object\'s status: 0 when all is accepted, 1 with a rejected object (named, with its reason), 3 when a kind cannot be listed', { timeout: 120_000 }, async () => {
  const api = await startKubeApi();
  try {
    api.kubectl(['create', 'namespace', 'smc-system']);
    applyBookstore(api);
    const clean = await smc(['analyze', '--kubeconfig', api.kubeconfig]);
    assert.equal(clean.code, 0, clean.stderr + clean.stdout);
    assert.match(clean.stdout, /^\d+ objects: \d+ accepted, 0 partly accepted, 0 rejected, \d+ ignored$/m);
    // Namespaces outside the mesh are said (a warning), accepted objects with nothing to say are not listed by default.
    assert.match(clean.stdout, /^Accepted +Namespace default {2}\(kubernetes:/m);
    assert.doesNotMatch(clean.stdout, /TrafficTarget bookstore\/bookbuyer-access-bookstore/);
    assert.match((await smc(['analyze', '--kubeconfig', api.kubeconfig, '--all'])).stdout, /^Accepted +TrafficTarget bookstore\/bookbuyer-access-bookstore /m);

    api.kubectl(['apply', '-f', '-'], 'apiVersion: split.smi-spec.io/v1alpha4\nkind: TrafficSplit\nmetadata: {name: nothing, namespace: bookstore}\nspec: {service: bookstore, backends: [{service: bookstore-v1, weight: 0}]}\n');
    const rejected = await smc(['analyze', '--kubeconfig', api.kubeconfig]);
    assert.equal(rejected.code, 1);
    assert.match(rejected.stdout, /^Rejected +TrafficSplit bookstore\/nothing {2}\(kubernetes:split\.smi-spec\.io\/v1alpha4\/TrafficSplit\/bookstore\/nothing/m);
    assert.match(rejected.stdout, /error: spec\.backends: every weight is 0/);
    const json = JSON.parse((await smc(['analyze', '--kubeconfig', api.kubeconfig, '--status', 'json'])).stdout) as { objects: { object: string; state: string; messages?: string[] }[] };
    assert.equal(json.objects.find((o) => o.object === 'TrafficSplit bookstore/nothing')?.state, 'Rejected');
    // Read only: no status was written, no CA root made.
    const split = JSON.parse(api.kubectl(['get', 'trafficsplit.split.smi-spec.io', 'nothing', '-n', 'bookstore', '-o', 'json'])) as { status?: unknown };
    assert.equal(split.status, undefined);
    assert.throws(() => api.kubectl(['get', 'secret', 'smc-ca', '-n', 'smc-system']));

    // A reader that may not list pods: named, exit 3, within the timeout.
    api.kubectl(['create', 'serviceaccount', 'reader', '-n', 'smc-system']);
    api.kubectl(['create', 'clusterrole', 'reader', '--verb=get,list,watch', '--resource=namespaces,services,serviceaccounts,endpointslices.discovery.k8s.io,traffictargets.access.smi-spec.io,httproutegroups.specs.smi-spec.io,tcproutes.specs.smi-spec.io,udproutes.specs.smi-spec.io,trafficsplits.split.smi-spec.io,meshconfigs.smc.dev,virtualmachines.smc.dev']);
    api.kubectl(['create', 'clusterrolebinding', 'reader', '--clusterrole=reader', '--serviceaccount=smc-system:reader']);
    const limited = kubeconfigWithToken(api, api.kubectl(['create', 'token', 'reader', '-n', 'smc-system']).trim(), 'reader');
    const forbidden = await smc(['analyze', '--kubeconfig', limited, '--timeout', '5s']);
    assert.equal(forbidden.code, 3, forbidden.stdout);
    assert.match(forbidden.stderr, /^smc analyze: the cluster could not be read within 5s: .*Pod \(v1\): cannot be listed: HTTP 403/m);
  } finally {
    await api.stop();
  }
});
