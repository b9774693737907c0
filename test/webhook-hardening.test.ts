import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { controllerProcess } from './helpers/controller.js';
import { startKubeApi, type KubeApi } from './helpers/kube.js';
import { freePort } from './helpers/tools.js';
import { sleep, waitFor } from './helpers/wait.js';

/** The webhook and admin ports against anyone who can reach them (hardening, second round: items 1-4, 6, 11). */

/** The deployment's memory limit (deploy/controller.yaml) and the heap the controller runs with under it. */
const MEMORY_LIMIT = 1024 * 1024 * 1024;
const HEAP_MB = 512;

/** A controller with its webhook, on a real API server, in its own process under the deployment's heap. */
async function webhookController(api: KubeApi) {
  const webhook = await freePort();
  const state = join(mkdtempSync(join(tmpdir(), 'smc-webhook-hard-')), 'state');
  const c = await controllerProcess(['--source', 'kubernetes', '--kubeconfig', api.kubeconfig, '--state', state, '--webhook-address', `127.0.0.1:${webhook}`, '--sidecar-image', 'smc:test', '--sidecar-certificate-url', `https://127.0.0.1:${webhook}`], [`--max-old-space-size=${HEAP_MB}`]);
  return { ...c, webhook };
}

/**
 * An HTTPS POST to the webhook port (its certificate is the mesh CA's; a test client does not check it), from
 * `localAddress`, on a connection of its own (a connection kept alive may be closed by the server as it is reused).
 */
function post(port: number, path: string, body: string | Buffer, localAddress = '127.0.0.1'): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest({ host: '127.0.0.1', port, path, method: 'POST', localAddress, agent: false, rejectUnauthorized: false, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (d: Buffer) => chunks.push(d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

const review = (pod: object) => JSON.stringify({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', request: { uid: 'u-1', kind: { group: '', version: 'v1', kind: 'Pod' }, operation: 'CREATE', namespace: 'shop', object: pod } });
const pod = (extra: { annotations?: Record<string, string>; spec?: Record<string, unknown> } = {}) => ({
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: { name: 'web-1', namespace: 'shop', annotations: extra.annotations ?? {} },
  spec: { containers: [{ name: 'web', image: 'app', ports: [{ containerPort: 8080 }] }], ...extra.spec },
});

function meshNamespace(api: KubeApi) {
  api.kubectl(['apply', '-f', 'deploy/crds']);
  api.kubectl(['create', 'namespace', 'shop']);
  api.kubectl(['label', 'namespace', 'shop', 'smc.dev/mesh=enabled']);
  api.kubectl(['create', 'serviceaccount', 'web', '-n', 'shop']);
}

test('one hostile review gets a short, escaped refusal; 150 large reviews at once are answered or told to retry; the controller stays under the deployment\'s memory limit', { timeout: 300_000 }, async () => {
  const api = await startKubeApi();
  meshNamespace(api);
  const c = await webhookController(api);
  try {
    // ",x" two million times: every bad part used to become a message of its own (a 244 MB answer).
    const hostile = review(pod({ annotations: { 'traffic.smc.dev/exclude-inbound-ports': `80\u202e\u0085,${',x'.repeat(2_000_000)}` } }));
    assert.ok(hostile.length > 3_800_000);
    const r = await post(c.webhook, '/inject', hostile);
    assert.equal(r.status, 200);
    assert.ok(r.text.length < 4096, `the answer is ${r.text.length} bytes`);
    const message = (text: string) => (JSON.parse(text) as { response: { allowed: boolean; status: { message: string } } }).response.status.message;
    assert.match(message(r.text), /exclude-inbound-ports"\]: expected a comma-separated list of ports \(1-65535\), got 4000005 characters \(at most 400000\)/);
    // A smaller one (0.1 MB) used to get 6 MB back: now the first few bad parts, escaped, and a count.
    const small = await post(c.webhook, '/inject', review(pod({ annotations: { 'traffic.smc.dev/exclude-outbound-ports': `80\u202e\u0085${',x'.repeat(50_000)}` } })));
    assert.ok(small.text.length < 4096, `the answer is ${small.text.length} bytes`);
    assert.match(message(small.text), /got "80\\u202e\\x85", "x", "x" and 49998 more/);
    const refusals = await waitFor('both refusals in the log', () => {
      const l = c.log().split('\n').filter((x) => x.includes('webhook: refused pod shop/web-1'));
      return l.length === 2 ? l : undefined;
    });
    for (const line of refusals) {
      assert.ok(line.length < 2048, `one log line of ${line.length} characters`);
      assert.doesNotMatch(line, /[\u202e\u0085]/, 'no raw bidi override or C1 control in the log');
    }

    // 150 reviews of 3.9 MB at once: bounded work, the rest wait or are told to retry; nobody is killed.
    const big = review(pod({ annotations: { note: 'y'.repeat(3_900_000) } }));
    const answers = await Promise.all(Array.from({ length: 150 }, () => post(c.webhook, '/inject', big).catch((e: Error) => ({ status: 0, text: e.message }))));
    const byStatus = new Map<number, number>();
    for (const a of answers) byStatus.set(a.status, (byStatus.get(a.status) ?? 0) + 1);
    const errors = [...new Set(answers.filter((a) => a.status === 0).map((a) => a.text))];
    process.stdout.write(`150 reviews of 3.9 MB at once (errors: ${errors.join('; ')}): ${[...byStatus].map(([s, n]) => `${n} x ${s}`).join(', ')}; controller peak RSS ${Math.round(c.peakRss() / 1048576)} MiB\n`);
    // Injected, told to retry, or (on a machine too busy to finish 150 TLS handshakes in 10 s) refused at the handshake.
    assert.deepEqual([...byStatus.keys()].filter((s) => s !== 200 && s !== 429 && s !== 0), [], 'every review is injected or refused');
    assert.ok((byStatus.get(200) ?? 0) > 0, 'some were injected');
    assert.equal(c.exited(), undefined, 'the controller lives');
    assert.ok(c.peakRss() < MEMORY_LIMIT, `peak RSS ${c.peakRss()} under the deployment's limit`);
    assert.equal((await fetch(`http://127.0.0.1:${c.admin}/healthz`)).status, 200);
  } finally {
    await c.stop();
    await api.stop();
  }
});

test('a review nested a million levels deep is a 400; a pod using the injector\'s names or probing the sidecar\'s ports is refused, saying why', { timeout: 120_000 }, async () => {
  const api = await startKubeApi();
  meshNamespace(api);
  const c = await webhookController(api);
  try {
    const deep = await post(c.webhook, '/inject', `${'['.repeat(1_000_000)}${']'.repeat(1_000_000)}`);
    assert.equal(deep.status, 400);
    assert.match(deep.text, /nests deeper than 100 levels/);
    const refused = async (p: object) => (JSON.parse((await post(c.webhook, '/inject', review(p))).text) as { response: { allowed: boolean; status?: { message: string } } }).response;
    const taken = await refused(pod({ spec: { initContainers: [{ name: 'smc-capture', image: 'x' }], volumes: [{ name: 'smc-token', emptyDir: {} }] } }));
    assert.equal(taken.allowed, false);
    assert.match(taken.status!.message, /container smc-capture, volume smc-token: the names .* are reserved for the sidecar injector/);
    const admin = await refused(pod({ spec: { containers: [{ name: 'web', image: 'app', livenessProbe: { httpGet: { path: '/quitquitquit', port: 15000 } } }] } }));
    assert.equal(admin.allowed, false);
    assert.match(admin.status!.message, /spec\.containers\[0\]\.livenessProbe: port 15000 is one of the sidecar's own ports/);
  } finally {
    await c.stop();
    await api.stop();
  }
});

test('idle and excess connections: each address holds a bounded number, silent ones are closed, and probes from elsewhere still answer', { timeout: 120_000 }, async () => {
  const api = await startKubeApi();
  meshNamespace(api);
  const c = await webhookController(api);
  const sockets: Socket[] = [];
  try {
    for (const port of [c.admin, c.webhook]) {
      for (let i = 0; i < 300; i++) {
        const s = connect(port, '127.0.0.1');
        s.on('error', () => undefined);
        sockets.push(s);
      }
    }
    await sleep(1000);
    const open = () => sockets.filter((s) => !s.destroyed && s.readyState === 'open').length;
    assert.ok(open() <= 128 + 256, `${open()} of 600 idle connections from one address are still open`);
    // kubelet's probe, from another address, is not held up by them.
    const status = await new Promise<number>((resolve, reject) => {
      const req = httpRequest({ host: '127.0.0.1', port: c.admin, path: '/healthz', localAddress: '127.0.0.2' }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on('error', reject);
      req.end();
    });
    assert.equal(status, 200);
    // A connection that sends nothing is closed once its first request is overdue.
    await waitFor('every silent connection to be closed', () => (open() === 0 ? true : undefined), 20_000);
    assert.match(c.log(), /admin: closed a connection from 127\.0\.0\.1: 128 connections from it are open \(at most 128\)/);
  } finally {
    for (const s of sockets) s.destroy();
    await c.stop();
    await api.stop();
  }
});

/** A JWT with the claims a pod's token has, signed by nobody: the shape passes, only a TokenReview can tell. */
const forged = () => `${Buffer.from('{"alg":"RS256"}').toString('base64url')}.${Buffer.from(JSON.stringify({ aud: ['smc'], exp: Math.floor(Date.now() / 1000) + 600, 'kubernetes.io': { namespace: 'shop', pod: { name: 'web-1', uid: 'x' } } })).toString('base64url')}.c2ln`;

test('proxy certificates: junk tokens cost no TokenReview, a flood from one address cannot starve a real sidecar, and an API server that does not answer is a 503 to retry', { timeout: 180_000 }, async () => {
  const api = await startKubeApi();
  meshNamespace(api);
  api.kubectl(['apply', '-f', '-'], 'apiVersion: v1\nkind: Pod\nmetadata: {name: web-1, namespace: shop}\nspec: {serviceAccountName: web, containers: [{name: web, image: app}]}\n');
  const c = await webhookController(api);
  try {
    const junk = await post(c.webhook, '/v1/proxy-certificate', JSON.stringify({ token: 'not-a-jwt' }));
    assert.equal(junk.status, 403);
    assert.match(junk.text, /not a JWT/);
    const expired = `${forged().split('.')[0]}.${Buffer.from(JSON.stringify({ aud: 'smc', exp: 1, 'kubernetes.io': { pod: { name: 'a', uid: 'b' } } })).toString('base64url')}.c2ln`;
    assert.match((await post(c.webhook, '/v1/proxy-certificate', JSON.stringify({ token: expired }))).text, /has expired/);

    // 200 forged tokens from one address at once, and a real sidecar from another.
    const token = api.kubectl(['create', 'token', 'web', '-n', 'shop', '--audience', 'smc', '--bound-object-kind', 'Pod', '--bound-object-name', 'web-1', '--duration', '10m']).trim();
    const flood = Array.from({ length: 200 }, () => post(c.webhook, '/v1/proxy-certificate', JSON.stringify({ token: forged() })).catch(() => ({ status: 0, text: '' })));
    await sleep(50);
    const t0 = Date.now();
    const real = await post(c.webhook, '/v1/proxy-certificate', JSON.stringify({ token }), '127.0.0.2');
    const took = Date.now() - t0;
    const flooded = await Promise.all(flood);
    const counts = new Map<number, number>();
    for (const f of flooded) counts.set(f.status, (counts.get(f.status) ?? 0) + 1);
    process.stdout.write(`proxy certificates: the real sidecar was answered ${real.status} in ${took} ms during a flood of 200 (${[...counts].map(([s, n]) => `${n} x ${s}`).join(', ')})\n`);
    assert.equal(real.status, 200, real.text);
    assert.ok((counts.get(429) ?? 0) > 150, 'the flood from one address is mostly told to retry at once');

    // The API server goes away: a well-formed token cannot be reviewed; the sidecar is told to retry.
    await api.restartApiServer(async () => {
      const down = await post(c.webhook, '/v1/proxy-certificate', JSON.stringify({ token }), '127.0.0.3');
      assert.equal(down.status, 503, down.text);
      assert.match(down.text, /TokenReview failed: .*retry/);
    });
  } finally {
    await c.stop();
    await api.stop();
  }
});
