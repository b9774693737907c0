import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { parse, stringify } from 'yaml';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { TYPE_URL } from '../src/runtime/xds-types.js';
import { Client, open } from './helpers/ads-client.js';
import { applyBookstore, startKubeApi } from './helpers/kube.js';
import { freePort } from './helpers/tools.js';
import { GiveUp, waitFor } from './helpers/wait.js';

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
    env: { ...process.env, POD_NAME: name, POD_NAMESPACE: 'smc-system' },
  });
  let log = '';
  child.stderr!.on('data', (d: Buffer) => (log += d.toString()));
  await waitFor(`${name} to be ready`, async () => {
    if (child.exitCode !== null) throw new GiveUp(`${name} exited: ${log}`);
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

const IMAGE = 'registry.test/smc:1.2.3';

/** The JSON patch a replica's injector answers an AdmissionReview of `pod` with. */
function review(r: Replica, pod: Record<string, unknown>): Promise<unknown> {
  const body = JSON.stringify({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', request: { uid: '1', kind: { group: '', version: 'v1', kind: 'Pod' }, operation: 'CREATE', namespace: 'bookbuyer', object: pod } });
  return new Promise((resolve, reject) => {
    const req = request(`https://127.0.0.1:${r.webhook}/inject`, { method: 'POST', rejectUnauthorized: false, headers: { 'content-type': 'application/json' } }, (res) => {
      let text = '';
      res.on('data', (d: Buffer) => (text += d.toString()));
      res.on('end', () => {
        const answer = JSON.parse(text) as { response?: { allowed: boolean; patch?: string; status?: { message?: string } } };
        if (!answer.response?.patch) reject(new Error(`no patch: ${text}`));
        else resolve(JSON.parse(Buffer.from(answer.response.patch, 'base64').toString()));
      });
    });
    req.on('error', reject);
    req.end(body);
  });
}

test('two replicas serve the same versions and honour each other\'s proxy certificates; one leader writes status; killing it hands over within the lease time', { timeout: 180_000 }, async () => {
  const api = await startKubeApi();
  const replicas: Replica[] = [];
  const clients: grpc.Client[] = [];
  try {
    api.kubectl(['apply', '-f', 'deploy/controller.yaml']);
    // As shipped: two replicas electing a leader, updated one at a time with none missing, one kept through
    // voluntary disruptions, spread over nodes; each replica's state on its own emptyDir.
    const deployment = JSON.parse(api.kubectl(['get', 'deployment', 'smc-controller', '-n', 'smc-system', '-o', 'json'])) as { spec: { replicas: number; strategy: { type: string; rollingUpdate: { maxUnavailable: number } }; template: { metadata: { labels: Record<string, string> }; spec: { containers: { name: string; args: string[]; env: { name: string }[] }[]; volumes: { name: string; emptyDir?: object }[]; topologySpreadConstraints: { topologyKey: string }[] } } } };
    assert.equal(deployment.spec.replicas, 2);
    assert.deepEqual([deployment.spec.strategy.type, deployment.spec.strategy.rollingUpdate.maxUnavailable], ['RollingUpdate', 0]);
    const container = deployment.spec.template.spec.containers.find((c) => c.name === 'controller')!;
    assert.ok(container.args.includes('--leader-elect') && !container.args.some((a) => a.startsWith('--sidecar-image')), container.args.join(' '));
    assert.deepEqual(container.env.map((e) => e.name).sort(), ['POD_NAME', 'POD_NAMESPACE']);
    assert.ok(deployment.spec.template.spec.volumes.find((v) => v.name === 'state')?.emptyDir);
    assert.ok(deployment.spec.template.spec.topologySpreadConstraints.some((t) => t.topologyKey === 'kubernetes.io/hostname'));
    const pdb = JSON.parse(api.kubectl(['get', 'poddisruptionbudget', 'smc-controller', '-n', 'smc-system', '-o', 'json'])) as { spec: { minAvailable: number; selector: { matchLabels: Record<string, string> } } };
    assert.equal(pdb.spec.minAvailable, 1);
    assert.deepEqual(pdb.spec.selector.matchLabels, deployment.spec.template.metadata.labels);
    applyBookstore(api);
    const dir = mkdtempSync(join(tmpdir(), 'smc-ha-'));
    // Each replica's pod, as the Deployment would have made it: injected sidecars run the controller's own image.
    for (const name of ['smc-a', 'smc-b']) {
      api.kubectl(['apply', '-f', '-'], `apiVersion: v1\nkind: Pod\nmetadata: {name: ${name}, namespace: smc-system}\nspec: {containers: [{name: controller, image: ${IMAGE}}]}\n`);
    }
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

    // The injector of either replica gives a pod the image the controller runs.
    for (const r of replicas) {
      const patch = await review(r, { metadata: { name: 'shop-1', namespace: 'bookbuyer' }, spec: { serviceAccountName: 'bookbuyer', containers: [{ name: 'app', image: 'shop:1' }] } });
      const images = [...JSON.stringify(patch).matchAll(/"image":"([^"]+)"/g)].map((m) => m[1]).filter((i) => i !== 'shop:1');
      assert.ok(images.length >= 2 && images.every((i) => i === IMAGE), `injected images: ${JSON.stringify(images)}`);
    }
    // The injector as shipped (deploy/injector.yaml), reached at the follower's webhook port (as the Service would
    // send it there): the API server admits a pod through it, trusting the caBundle the leader keeps.
    const injector = parse(readFileSync('deploy/injector.yaml', 'utf8')) as { webhooks: { clientConfig: Record<string, unknown> }[] };
    for (const w of injector.webhooks) w.clientConfig = { url: `https://127.0.0.1:${follower.webhook}/inject` };
    api.kubectl(['apply', '-f', '-'], stringify(injector));
    const admitted = async (name: string) => {
      const pod = JSON.parse(api.kubectl(['create', '-o', 'json', '-f', '-'], JSON.stringify({ apiVersion: 'v1', kind: 'Pod', metadata: { name, namespace: 'bookbuyer' }, spec: { serviceAccountName: 'bookbuyer', containers: [{ name: 'app', image: 'shop:1' }] } }))) as { spec: { initContainers?: { name: string; image: string }[] } };
      return pod.spec.initContainers?.find((c) => c.name === 'smc-proxy')?.image;
    };
    await waitFor('the leader to fill the caBundle', () => {
      const config = JSON.parse(api.kubectl(['get', 'mutatingwebhookconfiguration', 'smc-sidecar-injector', '-o', 'json'])) as { webhooks: { clientConfig: { caBundle?: string } }[] };
      return config.webhooks.every((w) => w.clientConfig.caBundle) ? true : undefined;
    }, 20_000);
    assert.equal(await admitted('bookbuyer-2'), IMAGE);

    // Without POD_NAMESPACE/POD_NAME or --sidecar-image there is no image to inject: the controller says so and exits 2.
    const bare = await smc(['controller', '--source', 'kubernetes', '--kubeconfig', api.kubeconfig, '--state', join(dir, 'bare'), '--webhook-address', '127.0.0.1:0']);
    assert.equal(bare.code, 2, bare.stderr);
    assert.match(bare.stderr, /--webhook-address needs --sidecar-image, or POD_NAMESPACE and POD_NAME/);

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
    // With one replica down, pods are still admitted.
    assert.equal(await admitted('bookbuyer-3'), IMAGE, 'a pod created while a replica is down is injected');
    // The killed replica comes back on its state folder (a container restart keeps the pod's emptyDir):
    // a proxy that reconnects to it gets the configuration it had.
    const name = leader === replicas[0] ? 'smc-a' : 'smc-b';
    const restarted = await replica(api.kubeconfig, dir, name);
    replicas.push(restarted);
    const again = await firstClusters(restarted, pod, issued.body.nodeId);
    assert.ok('version' in again, 'refused' in again ? again.refused : '');
    clients.push(again.client);
    assert.equal(again.version, onFollower.version, 'the restarted replica serves the proxy the configuration it had');
    api.kubectl(['delete', 'pod', 'bookbuyer-1', '-n', 'bookbuyer', '--wait=false']);
    await waitFor('the deleted pod\'s stream to close', () => (onFollower.stream.error() ? true : undefined), 30_000).catch((e: Error) => assert.fail(`${e.message}\n${follower.log()}`));
    assert.match(onFollower.stream.error()!.details, /was revoked/);
  } finally {
    for (const c of clients) c.close();
    for (const r of replicas) r.child.kill('SIGKILL');
    await api.stop();
  }
});
