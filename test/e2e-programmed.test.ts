import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { createServer as createHttpServer, request, type IncomingHttpHeaders } from 'node:http';
import { createServer as createTcpServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startEnvoy } from './helpers/envoy.js';
import { freePort } from './helpers/tools.js';
import { startTestController } from './helpers/controller.js';
import { sleep, waitFor } from './helpers/wait.js';
import { execFile } from 'node:child_process';

/** `smc ARGS` in a process of its own (the controller runs in this one and must go on answering); its exit code and output. */
function smc(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, ['dist/src/cli/main.js', ...args], { encoding: 'utf8', timeout: 60_000 }, (err, stdout, stderr) => resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }));
  });
}

/**
 * The Programmed condition against real Envoys on loopback: `client` (an
 * explicit-mode VM: its sidecar listens on 127.0.0.1:<service port> for each
 * service it may call) and `web` (a VM whose sidecar serves a small app).
 * Each object's condition is read from /status/inputs as an operator would.
 */
const base = (appPort: number, webPort: number) => `apiVersion: v1
kind: Namespace
metadata: {name: demo, labels: {smc.dev/mesh: enabled}}
---
apiVersion: smc.dev/v1alpha1
kind: VirtualMachine
metadata: {name: web-vm, namespace: demo}
spec: {serviceAccount: web, addresses: [127.0.0.1], ports: [{name: http, port: ${appPort}}], labels: {app: web}, interceptionMode: explicit}
---
apiVersion: smc.dev/v1alpha1
kind: VirtualMachine
metadata: {name: client-vm, namespace: demo}
spec: {serviceAccount: client, addresses: [127.0.0.1], interceptionMode: explicit}
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: demo}
spec: {selector: {app: web}, ports: [{name: http, port: ${webPort}, targetPort: http}]}
---
apiVersion: specs.smi-spec.io/v1alpha4
kind: TCPRoute
metadata: {name: route-web, namespace: demo}
spec: {}
---
apiVersion: access.smi-spec.io/v1alpha3
kind: TrafficTarget
metadata: {name: client-to-web, namespace: demo}
spec:
  destination: {kind: ServiceAccount, name: web, namespace: demo}
  sources: [{kind: ServiceAccount, name: client, namespace: demo}]
  rules: [{kind: TCPRoute, name: route-web}]
`;

/** A producer route on web that sets a header: it shapes the callers' route tables only. */
const headerRoute = (webPort: number, value: string) => `apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: web-headers, namespace: demo}
spec:
  parentRefs: [{group: "", kind: Service, name: web, port: ${webPort}}]
  rules:
    - filters: [{type: RequestHeaderModifier, requestHeaderModifier: {set: [{name: x-programmed, value: "${value}"}]}}]
      backendRefs: [{name: web, port: ${webPort}}]
`;

/** A service the client may call, backed by a pod that has no sidecar here: the client's sidecar must listen on its port. */
const api = (apiPort: number) => `apiVersion: v1
kind: Pod
metadata: {name: api-0, namespace: demo, labels: {app: api}}
spec: {serviceAccountName: api, containers: [{name: app, ports: [{name: http, containerPort: 8080}]}]}
status: {podIP: 198.18.0.10}
---
apiVersion: v1
kind: Service
metadata: {name: api, namespace: demo}
spec: {selector: {app: api}, ports: [{name: http, port: ${apiPort}, targetPort: http}]}
---
apiVersion: specs.smi-spec.io/v1alpha4
kind: TCPRoute
metadata: {name: route-api, namespace: demo}
spec: {}
---
apiVersion: access.smi-spec.io/v1alpha3
kind: TrafficTarget
metadata: {name: client-to-api, namespace: demo}
spec:
  destination: {kind: ServiceAccount, name: api, namespace: demo}
  sources: [{kind: ServiceAccount, name: client, namespace: demo}]
  rules: [{kind: TCPRoute, name: route-api}]
`;

interface Programmed {
  status: string;
  reason: string;
  message: string;
  proxies: number;
  programmed: number;
  pending?: { node: string; kind: string; resources: string[]; waitingMs: number }[];
  rejected?: { node: string; kind: string; resource: string; message: string }[];
}

async function conditions(adminPort: number): Promise<Map<string, Programmed | undefined>> {
  const doc = (await (await fetch(`http://127.0.0.1:${adminPort}/status/inputs`)).json()) as { objects: { object: string; programmed?: Programmed }[] };
  return new Map(doc.objects.map((o) => [o.object, o.programmed]));
}

/** One request through the client's sidecar to `port`; the headers the app saw, or the error. */
function call(port: number): Promise<{ status: number; headers: IncomingHttpHeaders } | { error: string }> {
  return new Promise((resolve) => {
    const req = request({ host: '127.0.0.1', port, path: '/', headers: { host: `web.demo:${port}` }, agent: false, timeout: 5000 }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => {
        try {
          resolve({ status: res.statusCode ?? 0, headers: JSON.parse(body) as IncomingHttpHeaders });
        } catch {
          resolve({ status: res.statusCode ?? 0, headers: {} });
        }
      });
    });
    req.on('error', (e) => resolve({ error: e.message }));
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.end();
  });
}

for (const delta of [false, true]) {
  test(`Programmed with real Envoy (${delta ? 'delta' : 'state of the world'} ADS): True once every proxy took an object, Pending naming a proxy that stopped reading, Rejected for exactly the objects behind a resource Envoy refused, and the rest of the changes still arrive`, () => scenario(delta));
}

async function scenario(delta: boolean) {
  const [appPort, webPort, apiPort] = [await freePort(), await freePort(), await freePort()];
  const app = createHttpServer((req, res) => res.end(JSON.stringify(req.headers))).listen(appPort, '127.0.0.1');
  const dir = mkdtempSync(join(tmpdir(), 'smc-programmed-'));
  mkdirSync(join(dir, 'mesh'));
  writeFileSync(join(dir, 'mesh', 'base.yaml'), base(appPort, webPort));
  writeFileSync(join(dir, 'mesh', 'route.yaml'), headerRoute(webPort, 'one'));
  const { controller, state, logs } = await startTestController(dir, { programmedIntervalMs: 100 });
  const web = await startEnvoy('demo/web', controller.xdsPort, dir, state, { instance: 'vm:web-vm', delta });
  const client = await startEnvoy('demo/client', controller.xdsPort, dir, state, { instance: 'vm:client-vm', delta });
  const clientNode = 'demo/client/vm:client-vm';
  let blocker: ReturnType<typeof createTcpServer> | undefined;
  const diagnose = async () => `\nconditions: ${JSON.stringify([...(await conditions(controller.adminPort).catch(() => new Map()))], null, 1)}\ncontroller:\n${logs.slice(-20).join('\n')}\nclient envoy:\n${client.stderr().slice(-1500)}`;
  const until = async <T>(what: string, f: (c: Map<string, Programmed | undefined>) => T | undefined, ms = 30_000) =>
    waitFor(what, async () => f(await conditions(controller.adminPort)), ms).catch(async (e: Error) => {
      throw new Error(`${e.message}${await diagnose()}`);
    });
  try {
    // 1. Everything taken: each object says on how many proxies it is programmed.
    const settled = await until('every object programmed', (c) => (['TrafficTarget demo/client-to-web', 'TCPRoute demo/route-web', 'HTTPRoute demo/web-headers'].every((k) => c.get(k)?.status === 'True') ? c : undefined));
    assert.equal(settled.get('TrafficTarget demo/client-to-web')?.message, 'programmed on 2 of 2 proxies', 'the TrafficTarget shapes its destination (RBAC) and its source (what it may call)');
    assert.equal(settled.get('TCPRoute demo/route-web')?.proxies, 2, 'a route a TrafficTarget names shapes what the TrafficTarget shapes');
    assert.equal(settled.get('HTTPRoute demo/web-headers')?.message, 'programmed on 1 of 1 proxies', 'a producer route shapes its callers only');
    assert.equal(settled.get('Service demo/web'), undefined, 'core kinds carry no Programmed condition');
    const first = await waitFor('a call through the sidecars with the route header', async () => {
      const r = await call(webPort);
      return 'status' in r && r.status === 200 && r.headers['x-programmed'] === 'one' ? r : undefined;
    });
    assert.equal(first.headers['x-programmed'], 'one');
    // smc explain says of each object it names whether it is in force.
    const explained = await smc('explain', '--admin', `127.0.0.1:${controller.adminPort}`, '--from', 'demo/client', '--to', `web.demo:${webPort}`);
    assert.equal(explained.code, 0, explained.stderr);
    assert.match(explained.stdout, /allowed by TrafficTarget demo\/client-to-web spec\.rules\[0\] — programmed on 2 of 2 proxies\n/);
    assert.match(explained.stdout, /routed by HTTPRoute demo\/web-headers: .* — programmed on 1 of 1 proxies\n/);

    // 2. A proxy that stops reading: an edit of the route it carries stays Pending, naming it, for as long as it does not answer.
    client.envoy.kill('SIGSTOP');
    writeFileSync(join(dir, 'mesh', 'route.yaml'), headerRoute(webPort, 'two'));
    const pending = await until('the edited route to be Pending on the stopped proxy', (c) => (c.get('HTTPRoute demo/web-headers')?.reason === 'Pending' ? c : undefined));
    const route = pending.get('HTTPRoute demo/web-headers')!;
    assert.equal(route.status, 'False');
    assert.deepEqual(route.pending?.map((p) => [p.node, p.kind]), [[clientNode, 'route']], JSON.stringify(route));
    assert.match(route.message, /^programmed on 0 of 1 proxies; waiting for 1 to acknowledge \(the longest [\d.]+ m?s: demo\/client\/vm:client-vm, route\)$/);
    await sleep(1500);
    const still = await conditions(controller.adminPort);
    assert.equal(still.get('HTTPRoute demo/web-headers')?.reason, 'Pending', 'still Pending while the proxy does not read');
    assert.ok((still.get('HTTPRoute demo/web-headers')?.pending?.[0]?.waitingMs ?? 0) >= 1000, 'the wait grows');
    // Untouched objects keep their condition, though the route table they share with the edit is not taken yet.
    assert.equal(still.get('TrafficTarget demo/client-to-web')?.status, 'True', JSON.stringify(still.get('TrafficTarget demo/client-to-web')));
    assert.equal(still.get('TCPRoute demo/route-web')?.status, 'True');
    // smc status lists what is not in force, and says so in its exit code.
    const admin = `127.0.0.1:${controller.adminPort}`;
    const listed = await smc('status', '--admin', admin);
    assert.equal(listed.code, 1, listed.stderr);
    assert.match(listed.stdout, /^OBJECT\s+PROGRAMMED\s+REASON\s+PROXIES\nHTTPRoute demo\/web-headers\s+False\s+Pending\s+0\/1\n/);
    assert.match(listed.stdout, new RegExp(`HTTPRoute demo/web-headers: waiting [\\d.]+ m?s for demo/client/vm:client-vm to take route outbound\\|${webPort}\\n`));
    assert.doesNotMatch(listed.stdout, /TrafficTarget/, 'programmed objects are not listed without --all');
    const waited = smc('status', '--admin', admin, '--wait', '30s');
    client.envoy.kill('SIGCONT');
    const done = await waited;
    assert.equal(done.code, 0, `${done.stdout}${done.stderr}`);
    assert.equal(done.stdout, 'every policy object is programmed on every connected proxy it shapes\n');
    await until('the route programmed once the proxy reads again', (c) => (c.get('HTTPRoute demo/web-headers')?.status === 'True' ? true : undefined));
    const second = await waitFor('the new header through the sidecars', async () => {
      const r = await call(webPort);
      return 'status' in r && r.headers['x-programmed'] === 'two' ? r : undefined;
    });
    assert.equal(second.headers['x-programmed'], 'two');

    // 3. A NACK: the client's sidecar cannot listen on the api port (something else holds it there), a thing the compiler cannot know.
    blocker = createTcpServer(() => undefined).listen(apiPort, '127.0.0.1');
    await new Promise((r) => blocker!.once('listening', r));
    writeFileSync(join(dir, 'mesh', 'api.yaml'), api(apiPort));
    const rejected = await until('the api objects Rejected', (c) => (c.get('TrafficTarget demo/client-to-api')?.reason === 'Rejected' && c.get('TCPRoute demo/route-api')?.reason === 'Rejected' ? c : undefined));
    const tt = rejected.get('TrafficTarget demo/client-to-api')!;
    assert.equal(tt.status, 'False');
    assert.equal(tt.rejected?.length, 1, JSON.stringify(tt));
    assert.deepEqual([tt.rejected![0]!.node, tt.rejected![0]!.kind, tt.rejected![0]!.resource], [clientNode, 'listener', `outbound|${apiPort}|explicit`]);
    assert.match(tt.rejected![0]!.message, new RegExp(`127\\.0\\.0\\.1:${apiPort}`), 'Envoy\'s own words, naming the address it could not bind');
    assert.match(tt.message, new RegExp(`^rejected by 1 of 1 proxies: demo/client/vm:client-vm rejected listener outbound\\|${apiPort}\\|explicit: `));
    // Exactly the objects behind that listener: the others stay as they were.
    for (const k of ['TrafficTarget demo/client-to-web', 'TCPRoute demo/route-web', 'HTTPRoute demo/web-headers']) assert.equal(rejected.get(k)?.status, 'True', `${k}: ${JSON.stringify(rejected.get(k))}`);
    const why = await smc('explain', '--admin', `127.0.0.1:${controller.adminPort}`, '--from', 'demo/client', '--to', `api.demo:${apiPort}`);
    assert.match(why.stdout, new RegExp(`allowed by TrafficTarget demo/client-to-api spec\\.rules\\[0\\] — not on demo/client/vm:client-vm: NACK of listener outbound\\|${apiPort}\\|explicit: .*Address already in use\\n`), why.stdout);
    const json = await smc('status', '--admin', `127.0.0.1:${controller.adminPort}`, '-o', 'json');
    assert.equal(json.code, 1);
    assert.deepEqual((JSON.parse(json.stdout) as { objects: { object: string; programmed: Programmed }[] }).objects.map((o) => [o.object, o.programmed.reason]).sort(), [['TCPRoute demo/route-api', 'Rejected'], ['TrafficTarget demo/client-to-api', 'Rejected']]);

    // 4. The NACK costs that resource only: later changes keep reaching the proxy, and the api objects stay Rejected.
    writeFileSync(join(dir, 'mesh', 'route.yaml'), headerRoute(webPort, 'three'));
    const third = await waitFor('a later change to reach the proxy that NACKed', async () => {
      const r = await call(webPort);
      return 'status' in r && r.headers['x-programmed'] === 'three' ? r : undefined;
    }).catch(async (e: Error) => {
      throw new Error(`${e.message}${await diagnose()}`);
    });
    assert.equal(third.status, 200);
    const after = await until('the edited route programmed beside the rejected listener', (c) => (c.get('HTTPRoute demo/web-headers')?.status === 'True' ? c : undefined));
    assert.equal(after.get('TrafficTarget demo/client-to-api')?.reason, 'Rejected');
    const metrics = await (await fetch(`http://127.0.0.1:${controller.adminPort}/metrics`)).text();
    assert.match(metrics, /smc_inputs_not_programmed\{kind="TrafficTarget",reason="Rejected"\} 1/);
    assert.match(metrics, /smc_inputs_not_programmed\{kind="TCPRoute",reason="Rejected"\} 1/);

    // 5. A TrafficTarget that names another route (to the same effect): the route it names now is the one programmed.
    writeFileSync(join(dir, 'mesh', 'base.yaml'), `${base(appPort, webPort).replace('rules: [{kind: TCPRoute, name: route-web}]', 'rules: [{kind: TCPRoute, name: route-web2}]')}---
apiVersion: specs.smi-spec.io/v1alpha4
kind: TCPRoute
metadata: {name: route-web2, namespace: demo}
spec: {}
`);
    const renamed = await until('the newly named route programmed', (c) => (c.get('TCPRoute demo/route-web2')?.status === 'True' ? c : undefined));
    assert.equal(renamed.get('TCPRoute demo/route-web2')?.proxies, 2, 'it shapes what the TrafficTarget shapes');
    assert.equal(renamed.get('TCPRoute demo/route-web')?.reason, 'NoProxies', 'the route no TrafficTarget names any more carries nothing');

    // 6. A proxy that leaves: what only it carried has no proxies.
    client.envoy.kill('SIGKILL');
    const gone = await until('the client-only route without proxies', (c) => (c.get('HTTPRoute demo/web-headers')?.reason === 'NoProxies' ? c : undefined));
    assert.equal(gone.get('TrafficTarget demo/client-to-web')?.message, 'programmed on 1 of 1 proxies');
  } finally {
    client.envoy.kill('SIGCONT');
    client.envoy.kill('SIGKILL');
    web.envoy.kill('SIGKILL');
    blocker?.close();
    app.close();
    await controller.close();
  }
}
