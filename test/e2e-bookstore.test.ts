import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import { connect as tcpConnect } from 'node:net';
import { startBookstoreLab, type BookstoreLab, type Results } from '../lab/bookstore.js';
import { waitFor } from './helpers/wait.js';

/**
 * The bookstore mesh for real (lab/bookstore.ts): six hosts in network
 * namespaces, each an application behind a real Envoy sidecar in transparent
 * mode, programmed by a controller from a watched folder. Every scenario
 * sends application traffic through the sidecars.
 */
const BOOKSTORE = 'http://bookstore.bookstore:14001';
const AS_BUYER = { 'user-agent': 'bookbuyer/1.0' };
const ok = (r: Results) => Object.entries(r).filter(([k]) => k.startsWith('200 ')).reduce((n, [, v]) => n + v, 0);
const total = (r: Results) => Object.values(r).reduce((n, v) => n + v, 0);

/** Rewrites one file of the watched policy folder and waits until every proxy has acknowledged what changed. */
async function edit(lab: BookstoreLab, file: string, change: (text: string) => string): Promise<number> {
  const path = join(lab.meshDir, file);
  const before = readFileSync(path, 'utf8');
  const after = change(before);
  assert.notEqual(after, before, `the edit of ${file} changes it`);
  const versions = () => JSON.stringify(lab.controller.cache.identities().map((id) => Object.values(lab.controller.cache.get(id)!.types).map((t) => t.version)));
  const was = versions();
  const t0 = Date.now();
  writeFileSync(path, after);
  await waitFor(`the change of ${file} to be compiled`, () => (versions() !== was ? true : undefined), 10_000);
  await waitFor(`every proxy to acknowledge the change of ${file}`, () => {
    const behind = lab.controller.proxies.list().filter((p) => Object.entries(p.types).some(([k, t]) => t.sent !== t.acked || t.sent !== lab.controller.cache.get(p.identity)?.types[k as 'cluster'].version));
    return behind.length === 0 ? true : undefined;
  }, 15_000);
  return Date.now() - t0;
}

/**
 * What the lab saw since log line `mark`, and the failure counters of the caller's and the callee's sidecars: printed
 * with a failed request, so that a failure on a busy CI machine explains itself.
 */
async function diagnose(lab: BookstoreLab, mark: number): Promise<string> {
  const filter = 'cx_connect_fail|cx_destroy_remote|connect_timeout|upstream_rq_retry|ssl\\..*(error|fail|expired)|listener_manager\\.(listener_added|listener_modified|listener_removed|listener_in_place_updated|total_filter_chains_draining)|no_filter_chain_match|downstream_cx_overflow';
  const stats = await Promise.all(['bookbuyer-1', 'bookstore-v1-1', 'bookstore-v2-1'].map(async (h) => `${h}:\n${await lab.envoyStats(h, filter).catch((e: Error) => e.message)}`));
  return `\nlog since the step began:\n${lab.logs.slice(mark).slice(-60).join('\n')}\nEnvoy counters:\n${stats.join('\n')}`;
}

const splitTo = (v1: number, v2: number) => (text: string) =>
  text.replace(/- \{service: bookstore-v1, weight: \d+\}\n(\s*)- \{service: bookstore-v2, weight: \d+\}/, `- {service: bookstore-v1, weight: ${v1}}\n$1- {service: bookstore-v2, weight: ${v2}}`);

test('the bookstore mesh in network namespaces: policy, splits, TCP routes and mTLS hold for real traffic through transparent sidecars', { timeout: 300_000 }, async (t) => {
  // Service certificates live 6 s: they are renewed every 4 s or so, under the traffic of every scenario.
  const lab = await startBookstoreLab({ serviceCertTtlMs: 6000 });
  try {
    await t.test('deny by default: bookbuyer is served, bookthief is not; permissive mode lets bookthief through and back out', async () => {
      const buyer = await lab.call('bookbuyer-1', { kind: 'http', url: `${BOOKSTORE}/buy-a-book`, headers: AS_BUYER, count: 20 });
      assert.equal(ok(buyer), 20, JSON.stringify(buyer));
      // By cluster IP, as the README says: with the service's name as Host, with the IP itself, and with another service's name:
      // the destination picks the service's routes, not the Host header.
      for (const headers of [{ ...AS_BUYER, host: 'bookstore.bookstore:14001' }, AS_BUYER, { ...AS_BUYER, host: 'bookwarehouse.bookwarehouse:14001' }]) {
        const byIp = await lab.call('bookbuyer-1', { kind: 'http', url: 'http://198.18.100.1:14001/buy-a-book', headers, count: 5 });
        assert.equal(ok(byIp), 5, `by cluster IP (${JSON.stringify(headers)}): ${JSON.stringify(byIp)}`);
      }
      const thief = await lab.call('bookthief-1', { kind: 'http', url: `${BOOKSTORE}/buy-a-book`, headers: { 'user-agent': 'bookbuyer/1.0' }, count: 20 });
      assert.equal(ok(thief), 0, JSON.stringify(thief));
      await edit(lab, '00-mesh.yaml', (s) => s.replace('permissive: false', 'permissive: true'));
      const let_in = await lab.call('bookthief-1', { kind: 'http', url: `${BOOKSTORE}/buy-a-book`, count: 20 });
      assert.equal(ok(let_in), 20, `permissive: ${JSON.stringify(let_in)}`);
      // mTLS both ways: the destination's sidecar vouches for the caller's SPIFFE ID, and names its own.
      const whoami = Object.keys(await lab.call('bookthief-1', { kind: 'http', url: `${BOOKSTORE}/whoami`, count: 1 }))[0]!;
      assert.match(whoami, /^200 By=spiffe:\/\/cluster\.local\/ns\/bookstore\/sa\/bookstore;Hash=[0-9a-f]+;URI=spiffe:\/\/cluster\.local\/ns\/bookthief\/sa\/bookthief$/);
      await edit(lab, '00-mesh.yaml', (s) => s.replace('permissive: true', 'permissive: false'));
      const out = await lab.call('bookthief-1', { kind: 'http', url: `${BOOKSTORE}/buy-a-book`, count: 20 });
      assert.equal(ok(out), 0, `permissive off again: ${JSON.stringify(out)}`);
    });

    await t.test('HTTPRouteGroup: the allowed path, method and header combinations are served; the others are denied', async () => {
      const one = async (path: string, method: string, headers: Record<string, string>) => Object.keys(await lab.call('bookbuyer-1', { kind: 'http', url: `${BOOKSTORE}${path}`, method, headers, count: 1 }))[0]!;
      assert.match(await one('/buy-a-book', 'GET', AS_BUYER), /^200 bookstore-v[12]$/);
      assert.match(await one('/books-bought', 'GET', {}), /^200 /, 'books-bought needs no header');
      assert.match(await one('/buy-a-book', 'GET', { 'user-agent': 'curl/8.0' }), /^403 /, 'the header is part of the match');
      assert.match(await one('/buy-a-book', 'POST', AS_BUYER), /^403 /, 'the method is part of the match');
      assert.match(await one('/sell-a-book', 'GET', AS_BUYER), /^403 /, 'a path no match names');
    });

    await t.test('TCPRoute: bookwarehouse reaches the database port, bookbuyer does not', async () => {
      const db = { kind: 'tcp' as const, host: 'mysql.bookwarehouse', port: 3306, payload: 'ping', count: 5 };
      assert.deepEqual(await lab.call('bookwarehouse-1', db), { 'echo:ping': 5 });
      const buyer = await lab.call('bookbuyer-1', db);
      assert.equal(buyer['echo:ping'], undefined, JSON.stringify(buyer));
    });

    await t.test('mTLS on the wire: a client outside the mesh cannot reach a mesh service\'s port; the server presents its SPIFFE ID', async () => {
      // From the root namespace, the bookstore pod's application port: captured to the sidecar's inbound, which wants mTLS.
      const plain = await new Promise<string>((resolve) => {
        const s = tcpConnect({ host: '198.18.2.10', port: 8080 }, () => s.write('GET /buy-a-book HTTP/1.1\r\nhost: bookstore\r\nuser-agent: bookbuyer/1.0\r\n\r\n'));
        let text = '';
        s.on('data', (d: Buffer) => (text += d.toString()));
        s.on('close', () => resolve(text));
        s.on('error', () => resolve(text));
        s.setTimeout(3000, () => s.destroy());
      });
      assert.doesNotMatch(plain, /bookstore-v1/, 'plain HTTP never reaches the application');
      // A TLS client that trusts the mesh root but has no mesh certificate: it sees the server's certificate (chained to the root), and is refused.
      const presented = await new Promise<{ san: string; answer: string; error: string }>((resolve) => {
        let san = '';
        let answer = '';
        const s = tlsConnect({ host: '198.18.2.10', port: 8080, ca: readFileSync(join(lab.state, 'ca', 'root.crt')), checkServerIdentity: (_h, cert) => void (san = cert.subjectaltname ?? '') }, () => {
          s.write('GET /buy-a-book HTTP/1.1\r\nhost: bookstore\r\nuser-agent: bookbuyer/1.0\r\n\r\n');
        });
        s.on('data', (d: Buffer) => (answer += d.toString()));
        s.on('close', () => resolve({ san, answer, error: '' }));
        s.on('error', (e) => resolve({ san, answer, error: e.message }));
        s.setTimeout(3000, () => s.destroy());
      });
      assert.equal(presented.san, 'URI:spiffe://cluster.local/ns/bookstore/sa/bookstore');
      assert.doesNotMatch(presented.answer, /bookstore-v1/, `without a mesh client certificate nothing is served (${presented.error})`);
    });

    await t.test('TrafficSplit: 100/0, 50/50, 0/100 and 1000/500 over 1,000 requests each, within 5 points; a zero weight gets exactly 0', async () => {
      for (const [v1, v2] of [[100, 0], [50, 50], [0, 100], [1000, 500]] as const) {
        const mark = lab.logs.length;
        await edit(lab, '40-policy.yaml', splitTo(v1, v2));
        const r = await lab.call('bookbuyer-1', { kind: 'http', url: `${BOOKSTORE}/buy-a-book`, headers: AS_BUYER, count: 1000 });
        assert.equal(total(r), 1000);
        if (ok(r) !== 1000) assert.fail(`${JSON.stringify(r)}${await diagnose(lab, mark)}`);
        const share = (r['200 bookstore-v1'] ?? 0) / 10;
        const expected = (100 * v1) / (v1 + v2);
        process.stdout.write(`split ${v1}/${v2}: bookstore-v1 ${share}% (expected ${expected.toFixed(1)}%)\n`);
        if (v1 === 0 || v2 === 0) assert.equal(share, expected, `a zero-weight backend receives nothing: ${JSON.stringify(r)}`);
        else assert.ok(Math.abs(share - expected) <= 5, `${share}% for v1, expected ${expected}% ±5`);
      }
    });

    await t.test('hybrid: bookstore-v1 is served by its pod and by a virtual machine (explicit mode, from smc vm bundle) at once', async () => {
      await edit(lab, '40-policy.yaml', splitTo(100, 0));
      await lab.addVirtualMachine({ name: 'bookstore-vm', namespace: 'bookstore', serviceAccount: 'bookstore', ip: '198.18.2.30', labels: { app: 'bookstore', version: 'v1' }, port: 8080, answer: 'bookstore-v1-vm' });
      const r = await waitFor('both the pod and the VM to serve bookstore-v1', async () => {
        const got = await lab.call('bookbuyer-1', { kind: 'http', url: `${BOOKSTORE}/buy-a-book`, headers: AS_BUYER, count: 100 });
        return got['200 bookstore-v1'] && got['200 bookstore-v1-vm'] ? got : undefined;
      }, 20_000);
      assert.equal(ok(r), 100, JSON.stringify(r));
      process.stdout.write(`hybrid: ${JSON.stringify(r)}\n`);
      // Policy holds on the VM as on the pod: bookthief is refused, a wrong method gets 403 from the VM's RBAC too.
      assert.equal(ok(await lab.call('bookthief-1', { kind: 'http', url: `${BOOKSTORE}/buy-a-book`, headers: AS_BUYER, count: 20 })), 0);
      const post = await lab.call('bookbuyer-1', { kind: 'http', url: `${BOOKSTORE}/buy-a-book`, method: 'POST', headers: AS_BUYER, count: 20 });
      assert.deepEqual(Object.keys(post).map((k) => k.split(' ')[0]), ['403'], JSON.stringify(post));
    });

    await t.test('live operations under continuous traffic fail no allowed request: shifting the split, renewing certificates, adding and removing an endpoint, rotating the root, restarting the controller', async () => {
      let running = true;
      const liveMark = lab.logs.length;
      const seen: Results = {};
      const renewedBefore = lab.logs.filter((l) => l.startsWith('ca: renewed')).length;
      const load = (async () => {
        while (running) {
          const r = await lab.call('bookbuyer-1', { kind: 'http', url: `${BOOKSTORE}/buy-a-book`, headers: AS_BUYER, count: 10 });
          for (const [k, v] of Object.entries(r)) seen[k] = (seen[k] ?? 0) + v;
        }
      })();
      try {
        const t1 = await edit(lab, '40-policy.yaml', splitTo(10, 90));
        const t2 = await edit(lab, '40-policy.yaml', splitTo(90, 10));
        process.stdout.write(`convergence: policy file written to every proxy acknowledging it: ${t1} ms, ${t2} ms\n`);
        await waitFor('a certificate renewal under the traffic', () => (lab.logs.filter((l) => l.startsWith('ca: renewed')).length > renewedBefore ? true : undefined), 10_000);
        // An endpoint joins (a second bookstore-v1 pod) and leaves again.
        await lab.addPod({ name: 'bookstore-v1-2', namespace: 'bookstore', serviceAccount: 'bookstore', ip: '198.18.2.11', labels: { app: 'bookstore', version: 'v1' }, port: 8080 });
        const endpointsOfV1 = () => Buffer.from(lab.controller.cache.get('spiffe://cluster.local/ns/bookbuyer/sa/bookbuyer')!.types.endpoint.resources.get('outbound|14001|bookstore-v1.bookstore')!.bytes).toString('latin1');
        await waitFor('the new endpoint to be sent to callers', () => (endpointsOfV1().includes('198.18.2.11') ? true : undefined), 10_000);
        await new Promise((r) => setTimeout(r, 1000));
        await lab.removePod('bookstore-v1-2');
        assert.ok(!endpointsOfV1().includes('198.18.2.11'));
        // The mesh root rotates with overlap, every proxy acknowledging each step.
        await lab.controller.rotateRoot({ ackTimeoutMs: 30_000 });
        // Every proxy connected before the restart (the pods' sidecars and the VM's) connects again; counting them
        // instead raced with the VM's proxy, which may reconnect before or after the first look.
        const connected = lab.controller.proxies.list().map((p) => p.nodeId);
        assert.ok(connected.length >= 7, `the pods' sidecars and the VM's proxy are connected: ${JSON.stringify(connected)}`);
        await lab.restartController();
        await waitFor('every proxy to reconnect', () => {
          const now = new Set(lab.controller.proxies.list().map((p) => p.nodeId));
          return connected.every((n) => now.has(n)) ? true : undefined;
        }, 30_000);
        await new Promise((r) => setTimeout(r, 1000));
      } finally {
        running = false;
        await load;
      }
      const failed = Object.entries(seen).filter(([k]) => !k.startsWith('200 '));
      process.stdout.write(`live: ${ok(seen)} allowed requests served during the changes\n`);
      if (failed.length > 0) assert.fail(`an allowed request failed: ${JSON.stringify(seen)}${await diagnose(lab, liveMark)}`);
      assert.ok(ok(seen) > 100, `traffic kept flowing: ${JSON.stringify(seen)}`);
    });

    await t.test('convergence: from writing a policy file to the first request that sees its effect (printed, not asserted)', async () => {
      await edit(lab, '40-policy.yaml', splitTo(100, 0));
      const t0 = Date.now();
      writeFileSync(join(lab.meshDir, '40-policy.yaml'), splitTo(0, 100)(readFileSync(join(lab.meshDir, '40-policy.yaml'), 'utf8')));
      for (;;) {
        const r = await lab.call('bookbuyer-1', { kind: 'http', url: `${BOOKSTORE}/buy-a-book`, headers: AS_BUYER, count: 1 });
        if (r['200 bookstore-v2']) break;
        assert.ok(Date.now() - t0 < 10_000, 'the change arrived within 10 s');
      }
      process.stdout.write(`convergence: ${Date.now() - t0} ms from writing 40-policy.yaml to the first request served by bookstore-v2\n`);
    });
  } finally {
    await lab.close();
  }
});
