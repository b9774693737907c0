import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from 'node:tls';
import { openInternalCA } from '../src/adapters/ca/internal-ca.js';
import { startEnvoy } from './helpers/envoy.js';
import { freePort } from './helpers/tools.js';
import { startTestController } from './helpers/controller.js';
import { waitFor } from './helpers/wait.js';

/**
 * MeshConfig `accessLog: true` in real Envoy: each inbound request is one
 * JSON line naming the caller and the route it matched (named after the
 * HTTPRouteGroup match, so after the rule that allowed it), and a denied one
 * says the RBAC found no policy.
 */
function mesh(appPort: number, servicePort: number): string {
  return [
    'apiVersion: smc.dev/v1alpha1\nkind: MeshConfig\nmetadata: {name: smc, namespace: smc-system}\nspec: {accessLog: true}\n',
    'apiVersion: v1\nkind: Namespace\nmetadata: {name: demo, labels: {smc.dev/mesh: enabled}}\n',
    `apiVersion: smc.dev/v1alpha1
kind: VirtualMachine
metadata: {name: web-vm, namespace: demo}
spec: {serviceAccount: web, addresses: [127.0.0.1], ports: [{name: http, port: ${appPort}}], labels: {app: web}, interceptionMode: explicit}
`,
    `apiVersion: v1
kind: Service
metadata: {name: web, namespace: demo}
spec: {selector: {app: web}, ports: [{name: http, port: ${servicePort}, targetPort: http}]}
`,
    'apiVersion: specs.smi-spec.io/v1alpha4\nkind: HTTPRouteGroup\nmetadata: {name: routes, namespace: demo}\nspec: {matches: [{name: hello, pathRegex: /hello, methods: [GET]}]}\n',
    `apiVersion: access.smi-spec.io/v1alpha3
kind: TrafficTarget
metadata: {name: client-to-web, namespace: demo}
spec:
  destination: {kind: ServiceAccount, name: web, namespace: demo}
  sources: [{kind: ServiceAccount, name: client, namespace: demo}]
  rules: [{kind: HTTPRouteGroup, name: routes}]
`,
  ].join('---\n');
}

type Line = { direction: string; caller: string; method: string; path: string; status: number | string; details: string; route: string };

test('with accessLog, the destination sidecar logs each request as JSON: caller, route (the rule that allowed it), or the RBAC denial', async () => {
  const appPort = await freePort();
  const servicePort = await freePort();
  const app = createServer((_req, res) => res.end('hello')).listen(appPort, '127.0.0.1');
  const dir = mkdtempSync(join(tmpdir(), 'smc-accesslog-'));
  mkdirSync(join(dir, 'mesh'));
  writeFileSync(join(dir, 'mesh', 'mesh.yaml'), mesh(appPort, servicePort));
  const { controller, state } = await startTestController(dir);
  const web = await startEnvoy('demo/web', controller.xdsPort, dir, state, { instance: 'vm:web-vm' });
  try {
    const ca = await openInternalCA(state, 'cluster.local');
    // A request straight to the web sidecar's inbound port, as a caller of the given identity.
    const ask = async (account: string, path: string) => {
      const cert = await ca.issue(`spiffe://cluster.local/ns/demo/sa/${account}`, { ttlMs: 3600_000 });
      return new Promise<string>((resolve) => {
        const s = connect({ host: '127.0.0.1', port: 15003, servername: `${servicePort}.web.demo.svc.cluster.local`, cert: cert.certificateChain, key: cert.privateKey, rejectUnauthorized: false });
        s.on('secureConnect', () => s.write(`GET ${path} HTTP/1.1\r\nhost: web\r\nconnection: close\r\n\r\n`));
        let answer = '';
        s.on('data', (d: Buffer) => (answer += d.toString()));
        s.on('close', () => resolve(answer.split('\r\n')[0] ?? ''));
        s.on('error', (e) => resolve(`error: ${e.message}`));
      });
    };
    await waitFor('the web sidecar to serve the allowed request', async () => ((await ask('client', '/hello')) === 'HTTP/1.1 200 OK' ? true : undefined), 20_000).catch((e: Error) => {
      throw new Error(`${e.message}\n${web.stderr().slice(-2000)}`);
    });
    assert.equal(await ask('intruder', '/hello'), 'HTTP/1.1 403 Forbidden');
    assert.equal(await ask('client', '/other'), 'HTTP/1.1 403 Forbidden');

    const lines = () => web.stdout().split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Line);
    await waitFor('three access log lines', () => (lines().length >= 3 ? true : undefined));
    const allowed = lines().find((l) => Number(l.status) === 200)!;
    assert.deepEqual({ direction: allowed.direction, caller: allowed.caller, method: allowed.method, path: allowed.path, route: allowed.route }, {
      direction: 'inbound',
      caller: 'spiffe://cluster.local/ns/demo/sa/client',
      method: 'GET',
      path: '/hello',
      route: 'demo/routes#hello',
    });
    const denied = lines().filter((l) => Number(l.status) === 403);
    assert.deepEqual(denied.map((l) => [l.caller, l.path, l.details]).sort(), [
      ['spiffe://cluster.local/ns/demo/sa/client', '/other', 'rbac_access_denied_matched_policy[none]'],
      ['spiffe://cluster.local/ns/demo/sa/intruder', '/hello', 'rbac_access_denied_matched_policy[none]'],
    ]);
  } finally {
    web.envoy.kill('SIGKILL');
    app.close();
    await controller.close();
  }
});
