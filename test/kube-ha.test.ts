import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { TYPE_URL } from '../src/runtime/xds-types.js';
import { Client, open } from './helpers/ads-client.js';
import { applyBookstore, startKubeApi } from './helpers/kube.js';
import { freePort } from './helpers/tools.js';
import { waitFor } from './helpers/wait.js';

/**
 * Two controller replicas against a real API server, with mutual TLS on the
 * xDS port: both serve the same configuration and share the proxy
 * certificates' records, one leads, and killing it hands over.
 */
interface Replica {
  child: ChildProcess;
  xds: number;
  admin: number;
  webhook: number;
  log: () => string;
}
interface Credentials {
  ca: Buffer;
  key: Buffer;
  cert: Buffer;
}

async function replica(kubeconfig: string, dir: string, name: string): Promise<Replica> {
  const [xds, admin, webhook] = [await freePort(), await freePort(), await freePort()];
  const child = spawn(process.execPath, ['dist/src/cli/main.js', 'controller', '--log-format', 'text', '--source', 'kubernetes', '--kubeconfig', kubeconfig, '--state', join(dir, name), '--ca-root-secret', 'smc-system/smc-ca', '--leader-elect', '--leader-lease', '3s', '--xds-address', `127.0.0.1:${xds}`, '--admin-address', `127.0.0.1:${admin}`, '--webhook-address', `127.0.0.1:${webhook}`, '--sidecar-xds-address', `127.0.0.1:${xds}`, '--sidecar-certificate-url', `https://127.0.0.1:${webhook}`], {
    stdio: ['ignore', 'ignore', 'pipe'],
    env: { ...process.env, POD_NAME: name },
  });
  let log = '';
  child.stderr!.on('data', (d: Buffer) => (log += d.toString()));
  await waitFor(`${name} to be ready`, async () => {
    if (child.exitCode !== null) throw new Error(`${name} exited: ${log}`);
    return (await fetch(`http://127.0.0.1:${admin}/readyz`)).status === 200 ? true : undefined;
  }, 60_000);
  return { child, xds, admin, webhook, log: () => log };
}
const leaderOf = async (r: Replica) => ((await (await fetch(`http://127.0.0.1:${r.admin}/status/leader`)).json()) as { leader: boolean }).leader;
/** The first CDS response of a stream opened with `creds` as `nodeId`, or the error that refused it. */
async function firstClusters(r: Replica, creds: Credentials, nodeId: string): Promise<{ version: string; stream: ReturnType<typeof open>; client: grpc.Client } | { refused: string }> {
  const client = new Client(`localhost:${r.xds}`, grpc.credentials.createSsl(creds.ca, creds.key, creds.cert));
  const s = open(client, 'sotw');
  s.send({ node: { id: nodeId }, typeUrl: TYPE_URL.cluster, resourceNames: [], versionInfo: '', responseNonce: '' });
  try {
    return { version: (await s.next(5000)).versionInfo, stream: s, client };
  } catch (e) {
    client.close();
    return { refused: s.error()?.details ?? (e as Error).message };
  }
}
const smc = (args: string[]) =>
  new Promise<{ code: number; stdout: string; stderr: string }>((resolve) =>
    execFile(process.execPath, ['dist/src/cli/main.js', ...args], (err, stdout, stderr) => resolve({ code: err ? Number(err.code) : 0, stdout, stderr })),
  );
function postToken(r: Replica, token: string): Promise<{ status: number; body: { certificateChain: string; privateKey: string; trustBundle: string; nodeId: string } }> {
  return new Promise((resolve, reject) => {
    const req = request(`https://127.0.0.1:${r.webhook}/v1/proxy-certificate`, { method: 'POST', rejectUnauthorized: false, headers: { 'content-type': 'application/json' } }, (res) => {
      let text = '';
      res.on('data', (d: Buffer) => (text += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) }));
    });
    req.on('error', reject);
    req.end(JSON.stringify({ token }));
  });
}

test('two replicas serve the same versions and honour each other\'s proxy certificates; one leader writes status; killing it hands over within the lease time', { timeout: 180_000 }, async () => {
  const api = await startKubeApi();
  const replicas: Replica[] = [];
  const clients: grpc.Client[] = [];
  try {
    api.kubectl(['apply', '-f', 'deploy/controller.yaml']);
    applyBookstore(api);
    const dir = mkdtempSync(join(tmpdir(), 'smc-ha-'));
    replicas.push(await replica(api.kubeconfig, dir, 'smc-a'), await replica(api.kubeconfig, dir, 'smc-b'));
    const leaders = await waitFor('one leader', async () => {
      const l = await Promise.all(replicas.map(leaderOf));
      return l.filter(Boolean).length === 1 ? l : undefined;
    }).catch((e: Error) => {
      throw new Error(`${e.message}\n${replicas.map((r) => r.log().split('\n').filter((x) => x.includes('leader')).join('\n')).join('\n')}`);
    });
    const [leader, follower] = leaders[0] ? [replicas[0]!, replicas[1]!] : [replicas[1]!, replicas[0]!];
    // The leader keeps its Lease: it renews it (every second here), and nobody takes over.
    const leaseNow = () => (JSON.parse(api.kubectl(['get', 'lease', 'smc-controller-leader', '-n', 'smc-system', '-o', 'json'])) as { spec: { holderIdentity: string; renewTime: string; leaseTransitions: number } }).spec;
    const held = leaseNow();
    await new Promise((r) => setTimeout(r, 2500));
    const renewed = leaseNow();
    assert.deepEqual([renewed.holderIdentity, renewed.leaseTransitions], [held.holderIdentity, held.leaseTransitions], 'the Lease stayed with its holder');
    assert.ok(Date.parse(renewed.renewTime) > Date.parse(held.renewTime), `the holder renewed its Lease\n${leader.log().split('\n').filter((l) => l.includes('leader:')).slice(-3).join('\n')}`);
    assert.ok(await leaderOf(leader), 'still the leader');

    // An injected pod's certificate, issued by the leader, opens a stream on the follower too.
    const token = api.kubectl(['create', 'token', 'bookbuyer', '-n', 'bookbuyer', '--audience', 'smc', '--bound-object-kind', 'Pod', '--bound-object-name', 'bookbuyer-1', '--duration', '10m']).trim();
    const issued = await postToken(leader, token);
    assert.equal(issued.status, 200, JSON.stringify(issued.body));
    const pod: Credentials = { ca: Buffer.from(issued.body.trustBundle), key: Buffer.from(issued.body.privateKey), cert: Buffer.from(issued.body.certificateChain) };
    const onFollower = await firstClusters(follower, pod, issued.body.nodeId);
    assert.ok('version' in onFollower, `the follower refused the leader's pod certificate: ${'refused' in onFollower ? onFollower.refused : ''}`);
    clients.push(onFollower.client);
    const onLeader = await firstClusters(leader, pod, issued.body.nodeId);
    assert.ok('version' in onLeader, 'refused' in onLeader ? onLeader.refused : '');
    clients.push(onLeader.client);
    assert.equal(onFollower.version, onLeader.version, 'a proxy may move between replicas without a config change');
    const stolen = await firstClusters(follower, pod, 'bookbuyer/bookbuyer/elsewhere');
    assert.ok('refused' in stolen && /belongs to node bookbuyer\/bookbuyer\/bookbuyer-1/.test(stolen.refused), JSON.stringify(stolen));

    // A bootstrap certificate made elsewhere (smc bootstrap --ca-root-secret) is recorded in the cluster:
    // claimed through one replica, it is that node's on the other; revoked with smc certs, its stream closes.
    const kube = ['--ca-root-secret', 'smc-system/smc-ca', '--kubeconfig', api.kubeconfig];
    const b = await smc(['bootstrap', '--identity', 'bookbuyer/bookbuyer', '--xds-address', `127.0.0.1:${follower.xds}`, '--state', join(dir, 'operator'), '-o', join(dir, 'vm'), ...kube]);
    assert.equal(b.code, 0, b.stderr);
    const vm: Credentials = { ca: readFileSync(join(dir, 'vm', 'ca.crt')), key: readFileSync(join(dir, 'vm', 'proxy.key')), cert: readFileSync(join(dir, 'vm', 'proxy.crt')) };
    const claimed = await firstClusters(follower, vm, 'bookbuyer/bookbuyer/vm-1');
    assert.ok('version' in claimed, 'refused' in claimed ? claimed.refused : '');
    clients.push(claimed.client);
    const second = await firstClusters(leader, vm, 'bookbuyer/bookbuyer/vm-2');
    assert.ok('refused' in second && /belongs to node bookbuyer\/bookbuyer\/vm-1/.test(second.refused), JSON.stringify(second));
    const records = JSON.parse((await smc(['certs', 'list', '-o', 'json', ...kube])).stdout) as { proxyCertificates: { serial: string; state: string; claimedBy?: string; pod?: string }[] };
    assert.deepEqual(records.proxyCertificates.map((r) => [r.state, r.claimedBy, r.pod?.split('/').slice(0, 2).join('/')]).sort(), [['claimed', 'bookbuyer/bookbuyer/bookbuyer-1', 'bookbuyer/bookbuyer-1'], ['claimed', 'bookbuyer/bookbuyer/vm-1', undefined]].sort());
    const vmSerial = records.proxyCertificates.find((r) => r.claimedBy === 'bookbuyer/bookbuyer/vm-1')!.serial;
    assert.match(api.kubectl(['get', 'proxycertificates', '-n', 'smc-system']), new RegExp(`${vmSerial}\\s+spiffe://cluster.local/ns/bookbuyer/sa/bookbuyer\\s+claimed`));
    const revoked = await smc(['certs', 'revoke', '--serial', vmSerial, ...kube]);
    assert.equal(revoked.code, 0, revoked.stderr);
    await waitFor('the revoked certificate\'s stream on the follower to close', () => (claimed.stream.error() ? true : undefined), 10_000);
    assert.match(claimed.stream.error()!.details, /was revoked/);
    assert.equal(onFollower.stream.error(), undefined, 'the pod\'s stream is untouched');

    // The leader is killed outright; the follower takes the Lease once it expires.
    const killedAt = Date.now();
    leader.child.kill('SIGKILL');
    await waitFor('the follower to lead', async () => ((await leaderOf(follower)) ? true : undefined), 20_000).catch((e: Error) => assert.fail(`${e.message}\n${follower.log().slice(-3000)}`));
    const handover = Date.now() - killedAt;
    process.stdout.write(`ha: the follower led ${handover} ms after the leader was killed (lease 3 s, renewed every 1 s)\n`);
    assert.ok(handover < 8000, `hand-over took ${handover} ms`);
    const lease = JSON.parse(api.kubectl(['get', 'lease', 'smc-controller-leader', '-n', 'smc-system', '-o', 'json'])) as { spec: { holderIdentity: string; leaseTransitions: number } };
    assert.equal(lease.spec.holderIdentity, follower === replicas[0] ? 'smc-a' : 'smc-b');
    assert.ok(lease.spec.leaseTransitions >= 1);

    // The new leader writes status.
    api.kubectl(['apply', '-f', '-'], 'apiVersion: split.smi-spec.io/v1alpha4\nkind: TrafficSplit\nmetadata: {name: typo, namespace: bookstore}\nspec: {service: bookstore, backends: [{service: bookstore-v1, weight: 0}]}\n');
    await waitFor('status from the new leader', () => {
      const o = JSON.parse(api.kubectl(['get', 'trafficsplit.split.smi-spec.io', 'typo', '-n', 'bookstore', '-o', 'json'])) as { status?: { conditions?: { reason: string }[] } };
      return o.status?.conditions?.[0]?.reason === 'Rejected' ? true : undefined;
    }, 10_000);
    assert.match(follower.log(), /leader: smc-[ab] is now the leader/);

    // The pod goes: the new leader revokes the certificate the old one issued, and its stream closes.
    assert.equal(onFollower.stream.error(), undefined, 'the pod\'s stream outlived the hand-over');
    api.kubectl(['delete', 'pod', 'bookbuyer-1', '-n', 'bookbuyer', '--wait=false']);
    await waitFor('the deleted pod\'s stream to close', () => (onFollower.stream.error() ? true : undefined), 30_000).catch((e: Error) => assert.fail(`${e.message}\n${follower.log()}`));
    assert.match(onFollower.stream.error()!.details, /was revoked/);
  } finally {
    for (const c of clients) c.close();
    for (const r of replicas) r.child.kill('SIGKILL');
    await api.stop();
  }
});
