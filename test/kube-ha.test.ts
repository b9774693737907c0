import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { TYPE_URL } from '../src/runtime/xds-types.js';
import { Client, open } from './helpers/ads-client.js';
import { applyBookstore, startKubeApi } from './helpers/kube.js';
import { freePort } from './helpers/tools.js';
import { waitFor } from './helpers/wait.js';

/** Two controller replicas against a real API server: both serve the same configuration, one leads, and killing it hands over. */
interface Replica {
  child: ChildProcess;
  xds: number;
  admin: number;
  log: () => string;
}

async function replica(kubeconfig: string, dir: string, name: string): Promise<Replica> {
  const [xds, admin] = [await freePort(), await freePort()];
  const child = spawn(process.execPath, ['dist/src/cli/main.js', 'controller', '--log-format', 'text', '--source', 'kubernetes', '--kubeconfig', kubeconfig, '--state', join(dir, name), '--ca-root-secret', 'smc-system/smc-ca', '--leader-elect', '--leader-lease', '3s', '--insecure-xds', '--xds-address', `127.0.0.1:${xds}`, '--admin-address', `127.0.0.1:${admin}`], {
    stdio: ['ignore', 'ignore', 'pipe'],
    env: { ...process.env, POD_NAME: name },
  });
  let log = '';
  child.stderr!.on('data', (d: Buffer) => (log += d.toString()));
  await waitFor(`${name} to be ready`, async () => {
    if (child.exitCode !== null) throw new Error(`${name} exited: ${log}`);
    return (await fetch(`http://127.0.0.1:${admin}/readyz`)).status === 200 ? true : undefined;
  }, 60_000);
  return { child, xds, admin, log: () => log };
}
const leaderOf = async (r: Replica) => ((await (await fetch(`http://127.0.0.1:${r.admin}/status/leader`)).json()) as { leader: boolean }).leader;
async function clusterVersion(r: Replica): Promise<string> {
  const client = new Client(`127.0.0.1:${r.xds}`, grpc.credentials.createInsecure());
  try {
    const s = open(client, 'sotw');
    s.send({ node: { id: 'bookbuyer/bookbuyer' }, typeUrl: TYPE_URL.cluster, resourceNames: [], versionInfo: '', responseNonce: '' });
    const v = (await s.next(5000)).versionInfo;
    s.call.cancel();
    return v;
  } finally {
    client.close();
  }
}

test('two replicas serve the same versions; one leader writes status; killing it hands over within the lease time', async () => {
  const api = await startKubeApi();
  const replicas: Replica[] = [];
  try {
    api.kubectl(['apply', '-f', 'deploy/controller.yaml']);
    applyBookstore(api);
    const dir = mkdtempSync(join(tmpdir(), 'smc-ha-'));
    replicas.push(await replica(api.kubeconfig, dir, 'smc-a'), await replica(api.kubeconfig, dir, 'smc-b'));
    assert.equal(await clusterVersion(replicas[0]!), await clusterVersion(replicas[1]!), 'a proxy may move between replicas without a config change');
    const leaders = await waitFor('one leader', async () => {
      const l = await Promise.all(replicas.map(leaderOf));
      return l.filter(Boolean).length === 1 ? l : undefined;
    }).catch((e: Error) => {
      throw new Error(`${e.message}\n${replicas.map((r) => r.log().split('\n').filter((x) => x.includes('leader')).join('\n')).join('\n')}`);
    });
    const [leader, follower] = leaders[0] ? [replicas[0]!, replicas[1]!] : [replicas[1]!, replicas[0]!];

    // The leader is killed outright; the follower takes the Lease once it expires.
    const killedAt = Date.now();
    leader.child.kill('SIGKILL');
    await waitFor('the follower to lead', async () => ((await leaderOf(follower)) ? true : undefined), 20_000);
    const handover = Date.now() - killedAt;
    process.stdout.write(`ha: the follower led ${handover} ms after the leader was killed (lease 3 s, renewed every 1 s)\n`);
    assert.ok(handover < 8000, `hand-over took ${handover} ms`);
    const lease = JSON.parse(api.kubectl(['get', 'lease', 'smc-controller-leader', '-n', 'smc-system', '-o', 'json'])) as { spec: { holderIdentity: string; leaseTransitions: number } };
    assert.equal(lease.spec.holderIdentity, follower === replicas[0] ? 'smc-a' : 'smc-b');
    assert.ok(lease.spec.leaseTransitions >= 1);

    // The new leader writes status.
    api.kubectl(['apply', '-f', '-'], 'apiVersion: split.smi-spec.io/v1alpha4\nkind: TrafficSplit\nmetadata: {name: typo, namespace: bookstore}\nspec: {service: bookstore, backends: [{service: bookstore-v1, weight: 1}], extra: true}\n');
    await waitFor('status from the new leader', () => {
      const o = JSON.parse(api.kubectl(['get', 'trafficsplit.split.smi-spec.io', 'typo', '-n', 'bookstore', '-o', 'json'])) as { status?: { conditions?: { reason: string }[] } };
      return o.status?.conditions?.[0]?.reason === 'Rejected' ? true : undefined;
    }, 10_000);
    assert.match(follower.log(), /leader: smc-[ab] is now the leader/);
  } finally {
    for (const r of replicas) r.child.kill('SIGKILL');
    await api.stop();
  }
});
