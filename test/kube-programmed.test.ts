import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as k8s from '@kubernetes/client-node';
import type { Controller } from '../src/runtime/controller.js';
import { startEnvoy } from './helpers/envoy.js';
import { applyBookstore, controllerOnKubernetes, startKubeApi } from './helpers/kube.js';
import { freePort } from './helpers/tools.js';
import { waitFor } from './helpers/wait.js';

/**
 * The Programmed condition in the API server: written through the status
 * subresource beside Accepted, on change only, and bounded in rate; a real
 * Envoy (bookbuyer's sidecar) is the proxy that takes or does not take the
 * configuration.
 */
interface Condition {
  type: string;
  status: string;
  reason: string;
  message: string;
  observedGeneration?: number;
}
interface Obj {
  kind: string;
  metadata: { name: string; namespace: string; generation: number; resourceVersion: string };
  status?: { conditions?: Condition[] };
}

test('on Kubernetes: Programmed is written beside Accepted (Pending for a proxy that does not read, then True), untouched objects are not written, and a burst of 100 edits costs a bounded number of writes', { timeout: 240_000 }, async (t) => {
  const api = await startKubeApi();
  let controller: Controller | undefined;
  let envoy: Awaited<ReturnType<typeof startEnvoy>> | undefined;
  try {
    api.kubectl(['create', 'namespace', 'smc-system']);
    applyBookstore(api);
    const adminPort = await freePort();
    const state = join(mkdtempSync(join(tmpdir(), 'smc-kube-programmed-')), 'state');
    controller = await controllerOnKubernetes(api.kubeconfig, { adminPort, stateDir: state, programmedIntervalMs: 100, pendingWriteDelayMs: 1500 });
    envoy = await startEnvoy('bookbuyer/bookbuyer', controller.xdsPort, mkdtempSync(join(tmpdir(), 'smc-kube-envoy-')), state, { insecure: true, instance: 'bookbuyer-1' });
    const get = (kind: string, name: string, ns: string) => JSON.parse(api.kubectl(['get', kind, name, '-n', ns, '-o', 'json'])) as Obj;
    const condition = (o: Obj, type: string) => o.status?.conditions?.find((c) => c.type === type);
    const split = () => get('trafficsplit', 'bookstore-split', 'bookstore');
    const policies = () => (JSON.parse(api.kubectl(['get', 'trafficsplits,traffictargets,httproutegroups,tcproutes', '-A', '-o', 'json'])) as { items: Obj[] }).items;
    const writes = async () => {
      const text = await (await fetch(`http://127.0.0.1:${adminPort}/metrics`)).text();
      return [...text.matchAll(/^smc_status_writes_total\{kind="[^"]+"\} (\d+)/gm)].reduce((n, m) => n + Number(m[1]), 0);
    };

    // 1. Written beside Accepted: the split and the TrafficTarget bookbuyer uses are programmed on its sidecar; what no connected proxy carries says so.
    await waitFor('Programmed True on the split, written in the API server', () => (condition(split(), 'Programmed')?.status === 'True' ? true : undefined), 60_000).catch((e: Error) => {
      throw new Error(`${e.message}: ${JSON.stringify(split().status)}\n${envoy?.stderr().slice(-1000)}`);
    });
    const s1 = split();
    assert.equal(condition(s1, 'Accepted')?.status, 'True');
    assert.deepEqual(condition(s1, 'Programmed'), { ...condition(s1, 'Programmed'), status: 'True', reason: 'Programmed', message: 'every connected proxy it shapes has acknowledged it', observedGeneration: s1.metadata.generation });
    await waitFor('the rest written', () => {
      const tt = get('traffictarget', 'bookbuyer-access-bookstore', 'bookstore');
      const warehouse = get('traffictarget', 'bookstore-access-bookwarehouse', 'bookwarehouse');
      return condition(tt, 'Programmed')?.status === 'True' && condition(warehouse, 'Programmed')?.reason === 'NoProxies' ? true : undefined;
    }, 20_000);
    assert.match(api.kubectl(['get', 'traffictarget', 'bookstore-access-bookwarehouse', '-n', 'bookwarehouse', '-o', 'jsonpath={.status.conditions[?(@.type=="Programmed")].message}']), /^no connected proxy carries it$/);

    // 2. A proxy that does not read: an edit is written Pending once it has lasted, then True at the new generation.
    envoy.envoy.kill('SIGSTOP');
    api.kubectl(['patch', 'trafficsplit', 'bookstore-split', '-n', 'bookstore', '--type=json', '-p', JSON.stringify([{ op: 'replace', path: '/spec/backends/0/weight', value: 80 }])]);
    const pending = await waitFor('Pending written for the edit bookbuyer has not taken', () => {
      const c = condition(split(), 'Programmed');
      return c?.reason === 'Pending' ? c : undefined;
    }, 20_000);
    assert.equal(pending.status, 'False');
    envoy.envoy.kill('SIGCONT');
    await waitFor('True again, for the new generation', () => {
      const o = split();
      const c = condition(o, 'Programmed');
      return c?.status === 'True' && c.observedGeneration === o.metadata.generation ? true : undefined;
    }, 20_000);

    // 3. A burst of 100 edits of the split, as fast as the API server takes them.
    const before = new Map(policies().map((o) => [`${o.kind} ${o.metadata.namespace}/${o.metadata.name}`, o.metadata.resourceVersion]));
    const kc = new k8s.KubeConfig();
    kc.loadFromFile(api.kubeconfig);
    const custom = kc.makeApiClient(k8s.CustomObjectsApi);
    const writesBefore = await writes();
    const started = Date.now();
    for (let i = 1; i <= 100; i++) {
      await custom.patchNamespacedCustomObject({ group: 'split.smi-spec.io', version: 'v1alpha4', namespace: 'bookstore', plural: 'trafficsplits', name: 'bookstore-split', body: [{ op: 'replace', path: '/spec/backends/0/weight', value: i }] });
    }
    const edited = Date.now();
    const last = await waitFor('both conditions written for the last edit', () => {
      const o = split();
      const ok = ['Accepted', 'Programmed'].every((type) => condition(o, type)?.status === 'True' && condition(o, type)?.observedGeneration === o.metadata.generation);
      return ok ? o : undefined;
    }, 60_000);
    const settled = Date.now();
    const burstWrites = (await writes()) - writesBefore;
    const seconds = (settled - started) / 1000;
    t.diagnostic(`100 edits in ${edited - started} ms, settled ${settled - edited} ms later: ${burstWrites} status writes, ${(burstWrites / seconds).toFixed(1)} per second over ${seconds.toFixed(1)} s`);
    // One object edited: at most one write a second for it (the latest status wins), and one at the end.
    assert.ok(burstWrites <= Math.ceil(seconds) + 2, `${burstWrites} writes in ${seconds} s`);
    assert.ok(burstWrites >= 1, 'the last edit is written');
    assert.equal(condition(last, 'Accepted')?.observedGeneration, last.metadata.generation);
    // The objects the burst did not touch were not written at all.
    for (const o of policies()) {
      const key = `${o.kind} ${o.metadata.namespace}/${o.metadata.name}`;
      if (key === 'TrafficSplit bookstore/bookstore-split') continue;
      assert.equal(o.metadata.resourceVersion, before.get(key), `${key} was written during the burst`);
    }
  } finally {
    envoy?.envoy.kill('SIGCONT');
    envoy?.envoy.kill('SIGKILL');
    await controller?.close();
    await api.stop();
  }
});
