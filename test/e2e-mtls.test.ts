import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { request, createServer, type IncomingHttpHeaders } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from 'node:tls';
import { execFile } from 'node:child_process';
import { openInternalCA } from '../src/adapters/ca/internal-ca.js';
import { normalizeSerial } from '../src/adapters/ca/proxy-certificates.js';
import { certificateFacts } from '../src/adapters/ca/x509.js';
import { startEnvoy } from './helpers/envoy.js';
import { freePort } from './helpers/tools.js';
import { startTestController } from './helpers/controller.js';
import { sleep, waitFor } from './helpers/wait.js';

/**
 * Two real Envoy sidecars on loopback, programmed by smc: `client` (explicit
 * mode, its app calls 127.0.0.1:<service port>) and `web` (its sidecar's
 * inbound port 15003 in front of a small HTTP app). The mTLS between them
 * uses the certificates smc delivers over SDS.
 */
function mesh(appPort: number, servicePort: number): string {
  return [
    'apiVersion: v1\nkind: Namespace\nmetadata: {name: demo, labels: {smc.dev/mesh: enabled}}\n',
    `apiVersion: smc.dev/v1alpha1
kind: VirtualMachine
metadata: {name: web-vm, namespace: demo}
spec: {serviceAccount: web, addresses: [127.0.0.1], ports: [{name: http, port: ${appPort}}], labels: {app: web}, interceptionMode: explicit}
`,
    `apiVersion: smc.dev/v1alpha1
kind: VirtualMachine
metadata: {name: client-vm, namespace: demo}
spec: {serviceAccount: client, addresses: [127.0.0.1], interceptionMode: explicit}
`,
    `apiVersion: v1
kind: Service
metadata: {name: web, namespace: demo}
spec: {selector: {app: web}, ports: [{name: http, port: ${servicePort}, targetPort: http}]}
`,
    'apiVersion: specs.smi-spec.io/v1alpha4\nkind: TCPRoute\nmetadata: {name: everything, namespace: demo}\nspec: {}\n',
    `apiVersion: access.smi-spec.io/v1alpha3
kind: TrafficTarget
metadata: {name: client-to-web, namespace: demo}
spec:
  destination: {kind: ServiceAccount, name: web, namespace: demo}
  sources: [{kind: ServiceAccount, name: client, namespace: demo}]
  rules: [{kind: TCPRoute, name: everything}]
`,
  ].join('---\n');
}

/** One request through the client's sidecar; resolves with the status and what the app saw, or the error. */
function call(servicePort: number): Promise<{ status: number; body: string } | { error: string }> {
  return new Promise((resolve) => {
    const req = request({ host: '127.0.0.1', port: servicePort, path: '/hello', headers: { host: `web.demo:${servicePort}` }, agent: false, timeout: 5000 }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', (e) => resolve({ error: e.message }));
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.end();
  });
}

/** The serial of the certificate an Envoy presents (its admin /certs). */
async function presentedSerial(adminPort: number): Promise<string | undefined> {
  const certs = (await (await fetch(`http://127.0.0.1:${adminPort}/certs`)).json()) as { certificates: { cert_chain: { serial_number: string }[] }[] };
  return certs.certificates.flatMap((c) => c.cert_chain.map((x) => x.serial_number))[0];
}

test('two Envoys exchange HTTP over mTLS with SDS certificates from smc; a certificate of another CA is refused; rotation under load fails no request; after a controller restart traffic still flows; a root rotation with overlap fails no request', async () => {
  const appPort = await freePort();
  const servicePort = await freePort();
  const seen: IncomingHttpHeaders[] = [];
  const app = createServer((req, res) => {
    seen.push(req.headers);
    res.end('hello from web');
  }).listen(appPort, '127.0.0.1');
  const dir = mkdtempSync(join(tmpdir(), 'smc-e2e-'));
  mkdirSync(join(dir, 'mesh'));
  writeFileSync(join(dir, 'mesh', 'mesh.yaml'), mesh(appPort, servicePort));
  // Service certificates live 6 s, so they are renewed about every 4 s.
  const started = await startTestController(dir, { serviceCertTtlMs: 6000 });
  const { controller, state, logs } = started;
  let current = started;
  // Each is the proxy of its VirtualMachine (node NS/SA/vm:NAME): the VM's endpoints are served while it is connected.
  const web = await startEnvoy('demo/web', controller.xdsPort, dir, state, { instance: 'vm:web-vm' });
  const client = await startEnvoy('demo/client', controller.xdsPort, dir, state, { instance: 'vm:client-vm' });
  const diagnose = () => `\ncontroller:\n${logs.slice(-30).join('\n')}\nweb envoy:\n${web.stderr().slice(-1500)}\nclient envoy:\n${client.stderr().slice(-1500)}`;
  try {
    // 1. A call through both sidecars: the app sees the caller's verified SPIFFE ID.
    const first = await waitFor('a call through both sidecars to succeed', async () => {
      const r = await call(servicePort);
      return 'status' in r && r.status === 200 ? r : undefined;
    }).catch((e: Error) => {
      throw new Error(`${e.message}${diagnose()}`);
    });
    assert.equal(first.body, 'hello from web');
    assert.match(String(seen.at(-1)?.['x-forwarded-client-cert']), /URI=spiffe:\/\/cluster\.local\/ns\/demo\/sa\/client/);

    // 2. The inbound port refuses a client certificate from another CA, and accepts one from the mesh CA.
    const handshake = async (ca: Awaited<ReturnType<typeof openInternalCA>>) => {
      const cert = await ca.issue('spiffe://cluster.local/ns/demo/sa/client', { ttlMs: 3600_000 });
      return new Promise<string>((resolve) => {
        const s = connect({ host: '127.0.0.1', port: 15003, servername: `${servicePort}.web.demo.svc.cluster.local`, cert: cert.certificateChain, key: cert.privateKey, rejectUnauthorized: false });
        s.on('secureConnect', () => {
          // TLS 1.3: the server judges the client certificate after the handshake; a request shows the verdict.
          s.write(`GET /hello HTTP/1.1\r\nhost: web\r\n\r\n`);
        });
        s.on('data', (d: Buffer) => {
          resolve(`answered: ${d.toString().split('\r\n')[0]}`);
          s.destroy();
        });
        s.on('error', (e) => resolve(`refused: ${e.message}`));
        s.on('close', () => resolve('refused: closed'));
      });
    };
    const foreign = await handshake(await openInternalCA(mkdtempSync(join(tmpdir(), 'smc-other-ca-')), 'cluster.local'));
    assert.match(foreign, /^refused/, foreign);
    const own = await handshake(await openInternalCA(state, 'cluster.local'));
    assert.equal(own, 'answered: HTTP/1.1 200 OK', 'the same request with a mesh certificate is served');

    // 3. Rotation under load: requests without pause for 14 s while certificates are renewed every ~4 s.
    const serials = new Set<string>();
    const failures: string[] = [];
    let ok = 0;
    const end = Date.now() + 14_000;
    const sampler = (async () => {
      while (Date.now() < end) {
        const s = await presentedSerial(client.adminPort).catch(() => undefined);
        if (s) serials.add(s);
        await sleep(250);
      }
    })();
    while (Date.now() < end) {
      const r = await call(servicePort);
      if ('status' in r && r.status === 200) ok++;
      else failures.push(JSON.stringify(r));
    }
    await sampler;
    assert.deepEqual(failures, [], `${failures.length} failed of ${ok + failures.length}${diagnose()}`);
    assert.ok(ok > 100, `only ${ok} requests`);
    assert.ok(serials.size >= 3, `the client's certificate was rotated at least twice during the load (saw ${serials.size} serials)`);
    assert.ok(logs.filter((l) => l.includes('ca: renewed the certificate of spiffe://cluster.local/ns/demo/sa/client')).length >= 2);

    // 4. Restart: the controller comes back with the same root; the proxies reconnect and traffic keeps flowing.
    const root = readFileSync(join(state, 'ca', 'root.crt'), 'utf8');
    await controller.close();
    current = await startTestController(dir, { serviceCertTtlMs: 6000, xdsPort: controller.xdsPort });
    assert.equal(readFileSync(join(state, 'ca', 'root.crt'), 'utf8'), root);
    assert.ok(!current.logs.some((l) => l.includes('created a new mesh root')));
    await waitFor('both proxies to reconnect', () => (current.controller.proxies.list().length === 2 ? true : undefined)).catch((e: Error) => {
      throw new Error(`${e.message}${diagnose()}\nrestarted controller:\n${current.logs.join('\n')}`);
    });
    const after: string[] = [];
    for (let i = 0; i < 50; i++) {
      const r = await call(servicePort);
      if (!('status' in r) || r.status !== 200) after.push(JSON.stringify(r));
    }
    assert.deepEqual(after, [], 'calls after the restart');

    // 5. Root rotation with overlap, through the CLI, while requests flow without pause.
    const rotationFailures: string[] = [];
    let rotationOk = 0;
    let rotating = true;
    const load = (async () => {
      while (rotating) {
        const r = await call(servicePort);
        if ('status' in r && r.status === 200) rotationOk++;
        else rotationFailures.push(JSON.stringify(r));
      }
    })();
    const rotated = await new Promise<{ code: number; out: string }>((resolve) =>
      execFile(process.execPath, ['dist/src/cli/main.js', 'ca', 'rotate-root', '--admin', `127.0.0.1:${current.controller.adminPort}`, '--state', current.state], (err, stdout, stderr) => resolve({ code: err ? Number(err.code) : 0, out: stdout + stderr })),
    );
    // Keep the load on a little after the old root left the bundle.
    await sleep(2000);
    rotating = false;
    await load;
    assert.equal(rotated.code, 0, `${rotated.out}${diagnose()}\n${current.logs.slice(-20).join('\n')}`);
    assert.deepEqual(rotationFailures, [], `${rotationFailures.length} failed of ${rotationOk + rotationFailures.length} during the root rotation`);
    assert.ok(rotationOk > 20, `only ${rotationOk} requests during the rotation`);
    const newRoot = readFileSync(join(state, 'ca', 'root.crt'), 'utf8');
    assert.notEqual(newRoot, root, 'a new root signs');
    assert.equal(current.logs.filter((l) => /ca: root rotation [123]\/3/.test(l)).length, 3);
    // Both sidecars now hold a mesh trust bundle of the new root only.
    const newSerial = normalizeSerial(certificateFacts(newRoot).serial);
    for (const envoy of [client, web]) {
      const dump = (await (await fetch(`http://127.0.0.1:${envoy.adminPort}/config_dump?resource=dynamic_active_secrets`)).json()) as { configs: { name: string; secret: { validation_context?: { trusted_ca?: { inline_string?: string } } } }[] };
      const bundle = dump.configs.find((c) => c.name === 'trust-bundle')?.secret.validation_context?.trusted_ca?.inline_string ?? '';
      const serials = [...bundle.matchAll(/-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----/g)].map((m) => normalizeSerial(certificateFacts(m[0]).serial));
      assert.deepEqual(serials, [newSerial], 'the old root left the trust bundle');
    }
    // A proxy bootstrapped after the rotation can still open a stream on the running controller.
    const late = await startEnvoy('demo/client', current.controller.xdsPort, dir, state, { instance: 'vm:client-vm' });
    try {
      await waitFor('a sidecar bootstrapped after the rotation to connect', () => (current.controller.proxies.list().length === 3 ? true : undefined)).catch((e: Error) => {
        throw new Error(`${e.message}\n${current.logs.slice(-10).join('\n')}\n${late.stderr().slice(-1500)}`);
      });
    } finally {
      late.envoy.kill('SIGKILL');
    }
  } finally {
    web.envoy.kill('SIGKILL');
    client.envoy.kill('SIGKILL');
    await current.controller.close();
    app.close();
  }
});
