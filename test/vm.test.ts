import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chownSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { PROXY_UID } from '../src/compiler/capture.js';
import { startController, type Controller } from '../src/runtime/controller.js';
import { envoyForAnyUser } from './helpers/envoy.js';
import { createTestNetwork, type TestHost } from '../lab/netns.js';
import { sleep, waitFor } from './helpers/wait.js';

const SMC = resolve('dist/src/cli/main.js');
const APP = resolve('dist/lab/app.js');
const smc = (...args: string[]) => spawnSync(process.execPath, [SMC, ...args], { encoding: 'utf8' });

/** Two VMs: web (transparent, serves HTTP on 8080) and caller (explicit, calls web through its local port). */
function mesh(web: string, caller: string): string {
  return `apiVersion: v1
kind: Namespace
metadata: {name: demo, labels: {smc.dev/mesh: enabled}}
---
apiVersion: smc.dev/v1alpha1
kind: VirtualMachine
metadata: {name: web-vm, namespace: demo}
spec: {serviceAccount: web, addresses: [${web}], ports: [{name: http, port: 8080}], labels: {app: web}, interceptionMode: transparent}
---
apiVersion: smc.dev/v1alpha1
kind: VirtualMachine
metadata: {name: caller-vm, namespace: demo}
spec: {serviceAccount: caller, addresses: [${caller}], interceptionMode: explicit}
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: demo}
spec: {selector: {app: web}, ports: [{name: http, port: 8080, targetPort: http}]}
---
apiVersion: specs.smi-spec.io/v1alpha4
kind: HTTPRouteGroup
metadata: {name: all, namespace: demo}
spec: {matches: [{name: everything, pathRegex: ".*", methods: ["*"]}]}
---
apiVersion: access.smi-spec.io/v1alpha3
kind: TrafficTarget
metadata: {name: caller-to-web, namespace: demo}
spec:
  destination: {kind: ServiceAccount, name: web, namespace: demo}
  sources: [{kind: ServiceAccount, name: caller, namespace: demo}]
  rules: [{kind: HTTPRouteGroup, name: all, matches: [everything]}]
`;
}

/** Does what the bundle's README says on `host`: make the folder Envoy's, then run the systemd unit's commands (ExecStartPre as root, ExecStart as User). */
function startFromBundle(host: TestHost, bundle: string) {
  for (const f of readdirSync(bundle)) chownSync(join(bundle, f), PROXY_UID, PROXY_UID);
  chownSync(bundle, PROXY_UID, PROXY_UID);
  const unit = readFileSync(join(bundle, 'smc-envoy.service'), 'utf8');
  const line = (key: string) => unit.split('\n').find((l) => l.startsWith(`${key}=`))?.slice(key.length + 1);
  const uid = Number(line('User'));
  const [cmd, ...args] = line('ExecStart')!.split(' ');
  return {
    uid,
    async capture() {
      const pre = line('ExecStartPre');
      assert.ok(pre?.startsWith('+'), 'the capture script runs with full privileges');
      const [preCmd, ...preArgs] = pre!.slice(1).split(' ');
      await host.run(preCmd!, preArgs);
    },
    start: () => {
      const envoy = host.start(cmd!, args, { uid });
      let log = '';
      envoy.stderr!.on('data', (d: Buffer) => (log = (log + d.toString()).slice(-5000)));
      return { envoy, log: () => log };
    },
  };
}

test('VM onboarding: smc vm bundle brings up real Envoy in a network namespace from its systemd unit; a VM\'s endpoints are served only while its proxy is connected (status says why not), with a grace period; a revoked bundle is replaced by running it again', { timeout: 180_000 }, async () => {
  const net = await createTestNetwork();
  const dir = mkdtempSync(join(tmpdir(), 'smc-vm-'));
  let controller: Controller | undefined;
  const logs: string[] = [];
  try {
    const [webHost, callerHost] = [await net.addHost('web'), await net.addHost('caller')];
    mkdirSync(join(dir, 'mesh'));
    writeFileSync(join(dir, 'mesh', 'mesh.yaml'), mesh(webHost.address, callerHost.address));
    const state = join(dir, 'state');
    const graceMs = 2000;
    controller = await startController({ source: [join(dir, 'mesh')], stateDir: state, xdsHost: net.gateway, xdsPort: 0, adminHost: '127.0.0.1', adminPort: 0, insecureXds: false, vmGraceMs: graceMs, log: (l) => logs.push(l) });
    const c = controller;
    const xds = `${net.gateway}:${c.xdsPort}`;
    const bundle = (name: string) => {
      const out = join(dir, name);
      const r = smc('vm', 'bundle', '--name', name, '--namespace', 'demo', '--source', join(dir, 'mesh'), '--xds-address', xds, '--state', state, '-o', out, '--install-dir', out, '--envoy-path', envoyForAnyUser());
      assert.equal(r.status, 0, r.stderr);
      return out;
    };
    const webBundle = bundle('web-vm');
    const callerBundle = bundle('caller-vm');
    assert.deepEqual(readdirSync(webBundle).sort(), ['README.md', 'bootstrap.json', 'ca.crt', 'capture.sh', 'proxy.crt', 'proxy.key', 'smc-envoy.service']);
    assert.equal(statSync(join(webBundle, 'proxy.key')).mode & 0o777, 0o600);
    assert.equal(readFileSync(join(callerBundle, 'ports.txt'), 'utf8').split('\n')[1], '8080 web.demo', 'explicit mode: the local port the application calls');
    assert.match(readFileSync(join(webBundle, 'bootstrap.json'), 'utf8'), /"id": "demo\/web\/vm:web-vm"/);

    const CALLER = 'spiffe://cluster.local/ns/demo/sa/caller';
    const webEndpointSent = () => [...(c.cache.get(CALLER)?.types.endpoint.resources.values() ?? [])].some((r) => Buffer.from(r.bytes).toString('latin1').includes(webHost.address));
    const webStatus = async () => {
      const doc = (await (await fetch(`http://127.0.0.1:${c.adminPort}/status/inputs`)).json()) as { objects: { object: string; messages?: string[] }[] };
      return (doc.objects.find((o) => o.object === 'VirtualMachine demo/web-vm')?.messages ?? []).join('\n');
    };
    // Past the start-up grace, no proxy of web-vm is connected: its endpoint is withheld, and the status says why.
    await waitFor('the start-up grace to end and web-vm to be withheld', () => (!webEndpointSent() ? true : undefined), 10_000);
    assert.match(await webStatus(), /endpoints withheld: no proxy is connected as node demo\/web\/vm:web-vm/);

    // The web VM, as its README says: capture (ExecStartPre, root), the app, Envoy as uid 1500 (ExecStart).
    const web = startFromBundle(webHost, webBundle);
    assert.equal(web.uid, PROXY_UID);
    await web.capture();
    webHost.start(process.execPath, [APP, 'http', 'web', '8080'], { uid: 1000 });
    let webEnvoy = web.start();
    const callerEnvoy = startFromBundle(callerHost, callerBundle).start();
    await waitFor('both VM proxies to connect', () => (c.proxies.list().filter((p) => p.nodeId.includes('/vm:')).length === 2 ? true : undefined), 30_000).catch((e: Error) => assert.fail(`${e.message}\n${webEnvoy.log()}\n${callerEnvoy.log()}\n${logs.join('\n')}`));
    await waitFor('web-vm\'s endpoint to be sent once its proxy is connected', () => (webEndpointSent() ? true : undefined), 10_000);
    const get = () => callerHost.run(process.execPath, [APP, 'get', 'http://127.0.0.1:8080/hello', 'web.demo:8080'], { uid: 1000 });
    const served = await waitFor('the caller to reach web through both sidecars', async () => {
      const r = await get();
      return r.startsWith('200') ? r : undefined;
    }, 20_000).catch(async (e: Error) => assert.fail(`${e.message}: ${await get()}\n${webEnvoy.log()}`));
    assert.equal(served, '200 web', 'mTLS from the caller VM\'s Envoy to the web VM\'s inbound (captured), then its app');

    // Its proxy goes: the endpoint stays for the grace period, then is withheld.
    webEnvoy.envoy.kill('SIGKILL');
    const gone = Date.now();
    await waitFor('the stream to close', () => (c.proxies.list().some((p) => p.nodeId === 'demo/web/vm:web-vm') ? undefined : true), 10_000);
    await sleep(graceMs / 4);
    assert.ok(webEndpointSent(), 'still sent within the grace period');
    await waitFor('the endpoint to be withheld after the grace period', () => (webEndpointSent() ? undefined : true), 10_000);
    assert.ok(Date.now() - gone >= graceMs * 0.9, `withheld after ${Date.now() - gone} ms, not before the grace of ${graceMs} ms`);

    // Its certificate is revoked: the old bundle is shut out; running the command again gives one that works.
    assert.equal(smc('certs', 'revoke', '--identity', 'demo/web', '--state', state).status, 0);
    const oldCert = readFileSync(join(webBundle, 'proxy.crt'), 'utf8');
    webEnvoy = web.start();
    await sleep(1500);
    assert.ok(!c.proxies.list().some((p) => p.nodeId === 'demo/web/vm:web-vm'), 'a revoked bundle cannot connect');
    webEnvoy.envoy.kill('SIGKILL');
    bundle('web-vm');
    assert.notEqual(readFileSync(join(webBundle, 'proxy.crt'), 'utf8'), oldCert, 'a fresh certificate');
    webEnvoy = startFromBundle(webHost, webBundle).start();
    await waitFor('the new bundle to connect and serve again', async () => ((await get()).startsWith('200') ? true : undefined), 30_000);
  } finally {
    await controller?.close();
    await net.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
