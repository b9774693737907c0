import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { secretStorage } from '../src/adapters/ca/ca-storage.js';
import { kubernetesIdentity } from '../src/adapters/kubernetes-identity.js';
import { openInternalCA } from '../src/adapters/ca/internal-ca.js';
import type { Controller } from '../src/runtime/controller.js';
import { applyBookstore, controllerOnKubernetes, kubeconfigWithToken, startingOnKubernetes, startKubeApi } from './helpers/kube.js';
import { waitFor } from './helpers/wait.js';

/** deploy/controller.yaml's roles are exactly what the controller needs: run it with a token bound to them, on a real API server. */
const SA = 'system:serviceaccount:smc-system:smc-controller';

const controllerAs = (kubeconfig: string, logs: string[], stateDir?: string) =>
  controllerOnKubernetes(kubeconfig, { log: (l) => logs.push(l), ca: { kind: 'internal', rootSecret: { namespace: 'smc-system', name: 'smc-ca', kubeconfig } }, ...(stateDir ? { stateDir } : {}) });

test('the controller runs with a token bound to exactly the deployed roles: it reads, writes status and keeps its CA root; nothing more is allowed, and a missing permission shows', async () => {
  const api = await startKubeApi();
  let controller: Controller | undefined;
  let stopLimited = () => {};
  try {
    api.kubectl(['apply', '-f', 'deploy/controller.yaml']);
    applyBookstore(api);
    const token = api.kubectl(['create', 'token', 'smc-controller', '-n', 'smc-system']).trim();
    const logs: string[] = [];
    // A mesh from an earlier version: its root in the Secret, a proxy-certificate record in its state folder. The record moves to the cluster.
    await openInternalCA(mkdtempSync(join(tmpdir(), 'smc-deploy-root-')), 'cluster.local', () => {}, secretStorage({ namespace: 'smc-system', name: 'smc-ca', kubeconfig: api.kubeconfig }));
    const state = join(mkdtempSync(join(tmpdir(), 'smc-deploy-')), 'state');
    mkdirSync(join(state, 'proxy-certificates'), { recursive: true });
    const old = { serial: 'abc123', identity: 'spiffe://cluster.local/ns/bookbuyer/sa/bookbuyer', issuedAt: '2026-01-01T00:00:00.000Z', notAfter: '2027-01-01T00:00:00.000Z', state: 'claimed', claimedAt: '2026-01-02T00:00:00.000Z', claimedBy: 'bookbuyer/bookbuyer/vm-1' };
    writeFileSync(join(state, 'proxy-certificates', 'abc123.json'), JSON.stringify(old));
    controller = await controllerAs(kubeconfigWithToken(api, token, 'smc-controller'), logs, state);
    const moved = JSON.parse(api.kubectl(['get', 'proxycertificate.smc.dev', 'abc123', '-n', 'smc-system', '-o', 'json'])) as { spec: unknown };
    assert.deepEqual(moved.spec, old, 'the record moved as it was, its claim included');
    assert.ok(existsSync(join(state, 'proxy-certificates.moved', 'abc123.json')) && !existsSync(join(state, 'proxy-certificates')), 'the folder is kept, renamed');
    assert.deepEqual(controller.cache.identities().length, 5, 'every identity of the bookstore mesh');
    await waitFor('status written with the deployed role', () => {
      const o = JSON.parse(api.kubectl(['get', 'traffictarget.access.smi-spec.io', 'bookbuyer-access-bookstore', '-n', 'bookstore', '-o', 'json'])) as { status?: { conditions?: { status: string }[] } };
      return o.status?.conditions?.[0]?.status === 'True' ? true : undefined;
    });
    assert.ok(JSON.parse(api.kubectl(['get', 'secret', 'smc-ca', '-n', 'smc-system', '-o', 'json'])).data['root.crt'], 'the CA root is in its Secret');
    assert.deepEqual(logs.filter((l) => /forbidden/i.test(l)), [], 'no request was forbidden');

    // Nothing beyond what it uses.
    const can = (...args: string[]) => api.kubectl(['auth', 'can-i', ...args, '--as', SA]).trim() === 'yes' ? 'yes' : 'no';
    const canNot = (...args: string[]) => {
      try {
        return can(...args);
      } catch {
        return 'no'; // kubectl auth can-i exits 1 on "no"
      }
    };
    assert.equal(canNot('watch', 'pods', '-A'), 'yes');
    // The injector's configuration: watched by name (the caBundle is filled in as soon as it is applied), no other.
    api.kubectl(['apply', '-f', 'deploy/injector.yaml']);
    const changes: string[] = [];
    const stopWatch = kubernetesIdentity({ kubeconfig: kubeconfigWithToken(api, token, 'smc-controller') }).watchWebhookConfiguration('smc-sidecar-injector', () => changes.push('change'), (m) => changes.push(m));
    try {
      await waitFor('the injector configuration to be seen with the deployed role', () => (changes.length > 0 ? true : undefined), 10_000);
      assert.deepEqual(changes, ['change'], 'seen, and nothing forbidden');
    } finally {
      stopWatch();
    }
    assert.equal(canNot('list', 'mutatingwebhookconfigurations'), 'no', 'only its own webhook configuration');
    assert.equal(canNot('update', 'proxycertificates.smc.dev', '-n', 'smc-system'), 'yes', 'replicas share proxy-certificate records');
    for (const denied of [['list', 'secrets', '-A'], ['get', 'secret', 'other', '-n', 'smc-system'], ['create', 'pods', '-n', 'bookstore'], ['patch', 'traffictargets.access.smi-spec.io', '-n', 'bookstore'], ['delete', 'trafficsplits.split.smi-spec.io', '-n', 'bookstore'], ['create', 'leases.coordination.k8s.io', '-n', 'bookstore'], ['update', 'leases.coordination.k8s.io/other', '-n', 'smc-system'], ['delete', 'proxycertificates.smc.dev', '-n', 'smc-system'], ['create', 'proxycertificates.smc.dev', '-n', 'bookstore']]) {
      assert.equal(canNot(...denied), 'no', `the controller may not ${denied.join(' ')}`);
    }

    // A role missing one permission (pods) shows at once in the log.
    api.kubectl(['create', 'serviceaccount', 'limited', '-n', 'smc-system']);
    api.kubectl(['create', 'clusterrole', 'limited', '--verb=get,list,watch', '--resource=namespaces,services,serviceaccounts,endpointslices.discovery.k8s.io,traffictargets.access.smi-spec.io,httproutegroups.specs.smi-spec.io,tcproutes.specs.smi-spec.io,udproutes.specs.smi-spec.io,trafficsplits.split.smi-spec.io,meshconfigs.smc.dev,virtualmachines.smc.dev']);
    api.kubectl(['create', 'clusterrolebinding', 'limited', '--clusterrole=limited', '--serviceaccount=smc-system:limited']);
    api.kubectl(['create', 'rolebinding', 'limited-ca', '--role=smc-controller', '--serviceaccount=smc-system:limited', '-n', 'smc-system']);
    // It does not start serving without the pods: /readyz says which kind it cannot list, and why.
    const limitedKubeconfig = kubeconfigWithToken(api, api.kubectl(['create', 'token', 'limited', '-n', 'smc-system']).trim(), 'limited');
    const limited = await startingOnKubernetes(limitedKubeconfig, { ca: { kind: 'internal', rootSecret: { namespace: 'smc-system', name: 'smc-ca', kubeconfig: limitedKubeconfig } } });
    stopLimited = () => limited.abort.abort();
    const waiting = await waitFor('/readyz to name the forbidden kind', async () => {
      const r = await limited.readyz();
      return r.status === 503 && /HTTP 403/.test(r.body) ? r.body : undefined;
    });
    assert.match(waiting, /Pod \(v1\): cannot be listed: HTTP 403: pods is forbidden/);
    assert.ok(limited.logs.some((l) => /watching Pod \(v1\) stopped .*forbidden/i.test(l)), limited.logs.join('\n'));
  } finally {
    stopLimited();
    await controller?.close();
    await api.stop();
  }
});
