import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { PROXY_UID } from '../src/compiler/capture.js';
import { Client, open } from './helpers/ads-client.js';
import { envoyForAnyUser } from './helpers/envoy.js';
import { createTestNetwork } from '../lab/netns.js';
import { waitFor } from './helpers/wait.js';

const SMC = resolve('dist/src/cli/main.js');
const APP = resolve('dist/lab/app.js');
/** The shared memory region Envoy's hot restart makes with the default base id. */
const LEFTOVER_SHM = '/dev/shm/envoy_shared_memory_0';
import { request } from 'node:https';
import { parse, stringify } from 'yaml';
import type { Controller, WebhookSettings } from '../src/runtime/controller.js';
import { kubernetesIdentity } from '../src/adapters/kubernetes-identity.js';
import { controllerOnKubernetes, startKubeApi, type KubeApi } from './helpers/kube.js';
import { freePort } from './helpers/tools.js';

type Container = { name: string; restartPolicy?: string; args?: string[]; securityContext?: Record<string, unknown>; livenessProbe?: Record<string, unknown>; readinessProbe?: Record<string, unknown>; startupProbe?: Record<string, unknown>; env?: { name: string; value?: string }[] };
type Pod = { metadata: { name: string; annotations?: Record<string, string> }; spec: { initContainers?: Container[]; containers: Container[]; volumes?: { name: string }[] } };

/** deploy/injector.yaml as shipped, pointed at the controller on loopback (caBundle left for the controller to fill). */
function registerInjector(api: KubeApi, url: string): void {
  const config = parse(readFileSync('deploy/injector.yaml', 'utf8')) as { webhooks: { clientConfig: Record<string, unknown> }[] };
  for (const w of config.webhooks) w.clientConfig = { url: `${url}/inject` };
  api.kubectl(['apply', '-f', '-'], stringify(config));
}

async function injectingController(api: KubeApi, o: { host?: string; logs?: string[]; insecureXds?: boolean } = {}): Promise<{ controller: Controller; url: string }> {
  const host = o.host ?? '127.0.0.1';
  const port = await freePort();
  const url = `https://${host}:${port}`;
  registerInjector(api, url);
  const webhook: WebhookSettings = { host, port, image: 'smc:test', sidecarXdsAddress: `${host}:15128`, certificateUrl: url, nativeSidecar: true, kubernetes: kubernetesIdentity({ kubeconfig: api.kubeconfig }) };
  const controller = await controllerOnKubernetes(api.kubeconfig, { log: (l) => o.logs?.push(l), webhook, ...(o.host ? { xdsHost: o.host } : {}), insecureXds: o.insecureXds ?? true });
  return { controller, url };
}

const meshNamespace = (api: KubeApi, ns: string, sa: string) => {
  api.kubectl(['create', 'namespace', ns]);
  api.kubectl(['label', 'namespace', ns, 'smc.dev/mesh=enabled']);
  api.kubectl(['create', 'serviceaccount', sa, '-n', ns]);
};

test('the injector, registered from deploy/injector.yaml with the real API server, injects pods as the API server stores them', { timeout: 180_000 }, async () => {
  const api = await startKubeApi();
  let controller: Controller | undefined;
  try {
    meshNamespace(api, 'shop', 'web');
    api.kubectl(['create', 'namespace', 'plain']);
    const logs: string[] = [];
    const started = await injectingController(api, { logs });
    controller = started.controller;
    // The controller filled in the caBundle: the API server trusts the webhook port from now on.
    const config = JSON.parse(api.kubectl(['get', 'mutatingwebhookconfiguration', 'smc-sidecar-injector', '-o', 'json'])) as { webhooks: { clientConfig: { caBundle?: string } }[] };
    assert.match(Buffer.from(config.webhooks[0]!.clientConfig.caBundle ?? '', 'base64').toString(), /BEGIN CERTIFICATE/);

    const create = async (doc: object) => JSON.parse(await api.kubectlAsync(['create', '-o', 'json', '-f', '-'], JSON.stringify(doc))) as Pod;
    const pod = (name: string, spec: object, meta: object = {}, ns = 'shop') => ({ apiVersion: 'v1', kind: 'Pod', metadata: { name, namespace: ns, ...meta }, spec: { serviceAccountName: 'web', ...spec } });
    const app = (name: string, extra: object = {}) => ({ name, image: 'app', ...extra });

    // A pod as a Deployment's template makes it: generateName, probes of every kind, an init container, two containers, annotations of its own.
    const web = await create({
      ...pod('', {
        initContainers: [app('migrate')],
        containers: [
          app('web', {
            ports: [{ name: 'http', containerPort: 8080 }],
            livenessProbe: { httpGet: { path: '/healthz', port: 'http' }, periodSeconds: 7 },
            readinessProbe: { tcpSocket: { port: 8080 } },
            startupProbe: { grpc: { port: 9090 } },
          }),
          app('worker', { readinessProbe: { exec: { command: ['true'] } } }),
        ],
      }),
      metadata: { generateName: 'web-7d9f-', namespace: 'shop', annotations: { 'team.example/owner': 'shop', 'traffic.smc.dev/exclude-outbound-ports': '5432' } },
    });
    assert.match(web.metadata.name, /^web-7d9f-/);
    assert.deepEqual(web.spec.initContainers!.map((c) => c.name), ['smc-capture', 'smc-proxy', 'migrate'], 'capture, then the proxy, then the pod\'s own init containers (which get the mesh)');
    const [capture, proxy] = web.spec.initContainers!;
    assert.equal(proxy!.restartPolicy, 'Always', 'a native sidecar');
    assert.deepEqual(capture!.args, ['capture', '--apply', '--proxy-uid', '1500', '--exclude-outbound-ports', '5432']);
    assert.deepEqual(capture!.securityContext, { runAsUser: 0, runAsNonRoot: false, allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { add: ['NET_ADMIN', 'NET_RAW'], drop: ['ALL'] } });
    assert.equal(proxy!.securityContext!.runAsUser, 1500);
    assert.equal(proxy!.securityContext!.runAsNonRoot, true);
    assert.match(proxy!.env!.find((e) => e.name === 'SMC_TRUST_BUNDLE')!.value!, /BEGIN CERTIFICATE/);
    assert.deepEqual(web.spec.containers.map((c) => c.name), ['web', 'worker']);
    const w = web.spec.containers[0]!;
    const probes = JSON.parse(web.metadata.annotations!['smc.dev/probes']!) as Record<string, { kind: string; port: number; path?: string }>;
    for (const [kind, target] of [['livenessProbe', 'http'], ['readinessProbe', 'tcp'], ['startupProbe', 'grpc']] as const) {
      const get = (w[kind] as { httpGet: { port: number; path: string } }).httpGet;
      assert.equal(get.port, 15904, `${kind} goes to the sidecar's probe port`);
      const key = get.path.replace('/smc/probe/', '');
      assert.equal(probes[key]?.kind, target, `${kind} is recorded for the compiler`);
    }
    assert.equal((w.livenessProbe as { periodSeconds: number }).periodSeconds, 7, 'the probe keeps its timing');
    assert.deepEqual(Object.values(probes).find((p) => p.kind === 'http'), { kind: 'http', port: 8080, path: '/healthz', tls: false }, 'a named port is resolved');
    assert.deepEqual(web.spec.containers[1]!.readinessProbe, { exec: { command: ['true'] }, failureThreshold: 3, periodSeconds: 10, successThreshold: 1, timeoutSeconds: 1 }, 'an exec probe runs in its container: untouched');
    assert.equal(web.metadata.annotations!['team.example/owner'], 'shop', 'the pod\'s own annotations stay');
    assert.deepEqual(web.spec.volumes!.map((v) => v.name).sort(), ['smc-proxy', 'smc-token']);

    // A Job's pod: restartPolicy Never; the native sidecar lets it finish (the API server accepts the shape).
    const job = await create(pod('report-x1', { restartPolicy: 'Never', containers: [app('report')] }, { labels: { 'job-name': 'report' } }));
    assert.equal(job.spec.initContainers!.find((c) => c.name === 'smc-proxy')!.restartPolicy, 'Always');

    // Explicit mode: no capture.
    const explicit = await create(pod('explicit-1', { containers: [app('a', { readinessProbe: { tcpSocket: { port: 80 } } })] }, { annotations: { 'smc.dev/interception': 'explicit' } }));
    assert.deepEqual(explicit.spec.initContainers!.map((c) => c.name), ['smc-proxy']);
    assert.deepEqual(explicit.spec.containers[0]!.readinessProbe!.tcpSocket, { port: 80 }, 'explicit mode captures nothing: probes stay');

    // Nothing at all: opted out by annotation, by label (never sent), outside the mesh, already injected.
    for (const untouched of [
      await create(pod('opt-out-1', { containers: [app('a')] }, { annotations: { 'smc.dev/inject': 'disabled' } })),
      await create(pod('opt-out-2', { containers: [app('a')] }, { labels: { 'smc.dev/inject': 'disabled' } })),
      await create(pod('outside-1', { containers: [app('a')] }, {}, 'plain')),
    ]) {
      assert.equal(untouched.spec.initContainers, undefined, untouched.metadata.name);
      assert.equal(untouched.metadata.annotations?.['smc.dev/injected'], undefined);
    }
    const again = await create({ apiVersion: 'v1', kind: 'Pod', metadata: { name: 'again-1', namespace: 'shop', annotations: web.metadata.annotations }, spec: { ...web.spec, volumes: web.spec.volumes } });
    assert.deepEqual(again.spec.initContainers!.map((c) => c.name), ['smc-capture', 'smc-proxy', 'migrate'], 'injecting an injected pod changes nothing');

    // Bad annotations are refused with the field and what was expected.
    await assert.rejects(create(pod('bad-1', { containers: [app('a')] }, { annotations: { 'traffic.smc.dev/exclude-outbound-ports': '5432,postgres' } })), /smc sidecar injector: metadata\.annotations\["traffic\.smc\.dev\/exclude-outbound-ports"\]: expected a comma-separated list of ports \(1-65535\), got "postgres"/);
    await assert.rejects(create(pod('bad-2', { containers: [app('a')] }, { annotations: { 'smc.dev/inject': 'yes' } })), /expected "enabled" or "disabled", got "yes"/);
    assert.ok(logs.some((l) => /webhook: injected pod shop\/web-7d9f-\*: native sidecar, transparent \(capture init container\), 3 probe\(s\)/.test(l)), logs.join('\n'));

    // Malformed AdmissionReviews get a clear 400 and the port keeps serving.
    const ca = Buffer.from(config.webhooks[0]!.clientConfig.caBundle!, 'base64').toString();
    const post = (body: string, type = 'application/json') =>
      new Promise<{ status: number; text: string }>((resolve, reject) => {
        const req = request(`${started.url}/inject`, { method: 'POST', ca, headers: { 'content-type': type } }, (res) => {
          let text = '';
          res.on('data', (d: Buffer) => (text += d.toString()));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
        });
        req.on('error', reject);
        req.end(body);
      });
    assert.deepEqual(await post('{"apiVersion":"admission.k8s.io/v1beta1","kind":"AdmissionReview"}'), { status: 400, text: '{"error":"expected an AdmissionReview of apiVersion admission.k8s.io/v1 (set admissionReviewVersions: [v1] in the webhook configuration)"}' });
    assert.equal((await post('{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{}}')).status, 400);
    assert.equal((await post('{not json')).status, 400);
    assert.equal((await post('x'.repeat(5 * 1024 * 1024)).catch(() => ({ status: 413, text: '' }))).status, 413);
    const odd = await post(JSON.stringify({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', request: { uid: 'u1', kind: { group: '', kind: 'Pod' }, operation: 'CREATE', namespace: 'shop', object: { metadata: {}, spec: { containers: 'no' } } } }));
    assert.equal(odd.status, 200);
    assert.match(odd.text, /"allowed":false.*spec\.containers: expected a list of containers/);
    assert.ok((await create(pod('after-1', { containers: [app('a')] }))).spec.initContainers, 'still injecting');
  } finally {
    await controller?.close();
    await api.stop();
  }
});

test('an injected pod\'s sidecar trades its pod-bound token for its proxy certificate, runs real Envoy behind the capture rules, answers its probes, and loses its certificate with the pod', { timeout: 240_000 }, async () => {
  const api = await startKubeApi();
  const net = await createTestNetwork();
  let controller: Controller | undefined;
  const dir = mkdtempSync(join(tmpdir(), 'smc-sidecar-'));
  let leftover = false;
  try {
    const host = await net.addHost('web');
    chmodSync(dir, 0o755);
    api.kubectl(['apply', '-f', 'deploy/crds']);
    meshNamespace(api, 'shop', 'web');
    const logs: string[] = [];
    const started = await injectingController(api, { host: net.gateway, insecureXds: false, logs });
    controller = started.controller;
    const c = controller;
    const stored = JSON.parse(await api.kubectlAsync(['create', '-o', 'json', '-f', '-'], JSON.stringify({
      apiVersion: 'v1', kind: 'Pod', metadata: { name: 'web-1', namespace: 'shop', labels: { app: 'web' } },
      spec: { serviceAccountName: 'web', containers: [{ name: 'web', image: 'app', ports: [{ containerPort: 8080 }], livenessProbe: { httpGet: { path: '/healthz', port: 8080 } }, readinessProbe: { tcpSocket: { port: 8080 } }, startupProbe: { grpc: { port: 9090 } } }] },
    }))) as Pod;
    api.kubectl(['patch', 'pod', 'web-1', '-n', 'shop', '--subresource=status', '--type=merge', '-p', JSON.stringify({ status: { podIP: host.address, podIPs: [{ ip: host.address }] } })]);
    const [capture, proxy] = stored.spec.initContainers!;
    const probePath = (p: Record<string, unknown> | undefined) => (p as { httpGet: { path: string } }).httpGet.path;

    // What the kubelet would do: the capture init container, the projected token, the sidecar as uid 1500, the app.
    await host.run(process.execPath, [SMC, ...capture!.args!]);
    const tokenFile = join(dir, 'token');
    writeFileSync(tokenFile, api.kubectl(['create', 'token', 'web', '-n', 'shop', '--audience', 'smc', '--bound-object-kind', 'Pod', '--bound-object-name', 'web-1', '--duration', '10m']).trim());
    const proxyDir = join(dir, 'proxy');
    mkdirSync(proxyDir);
    chownSync(proxyDir, PROXY_UID, PROXY_UID);
    chmodSync(tokenFile, 0o644);
    // What an Envoy killed outright leaves behind (its hot-restart region): the sidecar must start anyway.
    if (!existsSync(LEFTOVER_SHM)) {
      writeFileSync(LEFTOVER_SHM, '');
      leftover = true;
    }
    const appProcess = host.start(process.execPath, [APP, 'http', 'web', '8080'], { uid: 1000 });
    const grpcHealth = host.start(process.execPath, [APP, 'grpc-health', '9090'], { uid: 1000 });
    const sidecar = host.start(process.execPath, [SMC, 'sidecar', '--xds-address', `${net.gateway}:${c.xdsPort}`, '--certificate-url', started.url, '--token-file', tokenFile, '--dir', proxyDir, '--envoy', envoyForAnyUser()], { uid: PROXY_UID, env: { ...process.env, SMC_TRUST_BUNDLE: proxy!.env!.find((e) => e.name === 'SMC_TRUST_BUNDLE')!.value! } });
    let sidecarLog = '';
    sidecar.stderr!.on('data', (d: Buffer) => (sidecarLog += d.toString()));
    await waitFor('the sidecar to connect and acknowledge its configuration', () => {
      const p = c.proxies.list().find((x) => x.nodeId === 'shop/web/web-1');
      return p && p.types.listener?.acked !== undefined && p.types.listener.acked === p.types.listener.sent ? p : undefined;
    }, 30_000).catch((e: Error) => assert.fail(`${e.message}\n${JSON.stringify(c.proxies.list(), null, 1)}\n${sidecarLog}`));
    assert.match(sidecarLog, /node shop\/web\/web-1 \(spiffe:\/\/cluster\.local\/ns\/shop\/sa\/web\)/);

    // kubelet's view: the probe port answers from outside the pod (the capture leaves it alone).
    const probe = async (path: string, method = 'GET') => (await fetch(`http://${host.address}:15904${path}`, { method }).catch(() => undefined))?.status;
    assert.equal(await probe('/smc/ready'), 200, 'the sidecar is ready: the app would start now');
    assert.equal(await probe(probePath(stored.spec.containers[0]!.livenessProbe)), 200, 'the HTTP probe reaches the app\'s /healthz through the sidecar');
    await waitFor('the TCP probe to pass', async () => ((await probe(probePath(stored.spec.containers[0]!.readinessProbe))) === 200 ? true : undefined), 15_000);
    await waitFor('the gRPC probe to pass (Envoy\'s gRPC health check of the app says SERVING)', async () => ((await probe(probePath(stored.spec.containers[0]!.startupProbe))) === 200 ? true : undefined), 15_000);
    assert.equal(await probe('/stats'), 404, 'nothing else of the admin port is reachable');
    assert.equal(await probe(probePath(stored.spec.containers[0]!.livenessProbe), 'POST'), 404, 'only GET and HEAD are forwarded');
    assert.equal(await probe('/smc/ready', 'POST'), 404);
    assert.equal(await probe(probePath(stored.spec.containers[0]!.livenessProbe), 'HEAD'), 200);
    appProcess.kill('SIGKILL');
    grpcHealth.kill('SIGKILL');
    let seen: unknown[] = [];
    await waitFor('every probe to fail once the app is gone', async () => {
      seen = [await probe(probePath(stored.spec.containers[0]!.livenessProbe)), await probe(probePath(stored.spec.containers[0]!.readinessProbe)), await probe(probePath(stored.spec.containers[0]!.startupProbe))];
      return seen.every((s) => s === 503) ? true : undefined;
    }, 15_000).catch((e: Error) => assert.fail(`${e.message}: ${JSON.stringify(seen)}`));

    // No other credential works: a token not bound to a pod, or for another audience, is refused.
    const post = (token: string) => postCertificateRequest(started.url, token, readFileSync(join(proxyDir, 'ca.crt'), 'utf8'));
    const unbound = await post(api.kubectl(['create', 'token', 'web', '-n', 'shop', '--audience', 'smc']).trim());
    assert.equal(unbound.status, 403);
    assert.match(unbound.text, /not bound to a pod/);
    const otherAudience = await post(api.kubectl(['create', 'token', 'web', '-n', 'shop', '--bound-object-kind', 'Pod', '--bound-object-name', 'web-1']).trim());
    assert.equal(otherAudience.status, 403);
    // The certificate the pod was given is claimed by its node id: another node presenting it is refused.
    const client = new Client(`${net.gateway}:${c.xdsPort}`, grpc.credentials.createSsl(readFileSync(join(proxyDir, 'ca.crt')), readFileSync(join(proxyDir, 'proxy.key')), readFileSync(join(proxyDir, 'proxy.crt'))), { 'grpc.ssl_target_name_override': 'localhost' });
    try {
      const s = open(client, 'sotw');
      s.send({ node: { id: 'shop/web/web-2' }, typeUrl: 'type.googleapis.com/envoy.config.cluster.v3.Cluster', resourceNames: [], versionInfo: '', responseNonce: '' });
      await assert.rejects(s.next(3000));
      assert.match(s.error()?.details ?? '', /belongs to node shop\/web\/web-1; node shop\/web\/web-2 may not use it/);
    } finally {
      client.close();
    }

    // The pod goes: its certificate is revoked and the sidecar's stream closed.
    await api.kubectlAsync(['delete', 'pod', 'web-1', '-n', 'shop', '--grace-period=0', '--force']);
    await waitFor('the certificate of the deleted pod to be revoked', () => (logs.some((l) => /revoked proxy certificate .* \(pod shop\/web-1 is gone\)/.test(l)) && !c.proxies.list().some((p) => p.nodeId === 'shop/web/web-1') ? true : undefined), 30_000);
    const gone = await post(readFileSync(tokenFile, 'utf8'));
    assert.equal(gone.status, 403, 'the pod\'s own token dies with the pod');
  } finally {
    if (leftover) rmSync(LEFTOVER_SHM, { force: true });
    await controller?.close();
    await net.close();
    await api.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});

function postCertificateRequest(url: string, token: string, ca: string): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = request(`${url}/v1/proxy-certificate`, { method: 'POST', ca, headers: { 'content-type': 'application/json' }, checkServerIdentity: () => undefined }, (res) => {
      let text = '';
      res.on('data', (d: Buffer) => (text += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
    });
    req.on('error', reject);
    req.end(JSON.stringify({ token }));
  });
}
