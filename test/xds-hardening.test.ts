import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { connect } from 'node:http2';
import { connect as netConnect, type Socket } from 'node:net';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { loadEnvoyProtos } from '../src/adapters/envoy-protos.js';
import { openInternalCA } from '../src/adapters/ca/internal-ca.js';
import { syncState } from '../src/runtime/proxy-status.js';
import { TYPE_URL } from '../src/runtime/xds-types.js';
import { Client, open } from './helpers/ads-client.js';
import { controllerProcess, testController } from './helpers/controller.js';
import { sleep, waitFor } from './helpers/wait.js';

/** The xDS port against clients that misbehave on purpose (hardening, items 6-10). */
const BIN = 'dist/src/cli/main.js';
const protos = loadEnvoyProtos();
const CDS = TYPE_URL.cluster;
const ESC = String.fromCharCode(27);
const EDS = TYPE_URL.endpoint;
const smc = (args: string[]) =>
  new Promise<{ code: number; stdout: string; stderr: string }>((resolve) =>
    execFile(process.execPath, [BIN, ...args], { maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => resolve({ code: err ? Number(err.code) : 0, stdout, stderr })),
  );

/** `smc bootstrap` for NS/SA into DIR/NAME: the proxy certificate, its key and the CA bundle. */
function bootstrap(identity: string, state: string, out: string, xdsPort: number) {
  const b = spawnSync(process.execPath, [BIN, 'bootstrap', '--identity', identity, '--xds-address', `127.0.0.1:${xdsPort}`, '--state', state, '-o', out], { encoding: 'utf8' });
  assert.equal(b.status, 0, b.stderr);
  return { ca: readFileSync(join(out, 'ca.crt')), key: readFileSync(join(out, 'proxy.key')), cert: readFileSync(join(out, 'proxy.crt')) };
}
const tlsClient = (port: number, c: ReturnType<typeof bootstrap>) => new Client(`localhost:${port}`, grpc.credentials.createSsl(c.ca, c.key, c.cert));
const serialOf = async (state: string) => {
  const list = JSON.parse((await smc(['certs', 'list', '--state', state, '-o', 'json'])).stdout) as { proxyCertificates: { serial: string; claimedBy?: string }[] };
  return list.proxyCertificates;
};

/** A controller over DIR/mesh with its state in DIR/state, in its own process. */
const controllerOver = (dir: string, nodeArgs: string[] = []) => controllerProcess(['--source', join(dir, 'mesh'), '--state', join(dir, 'state'), '--push-window', '0'], nodeArgs);
const meshDir = () => {
  const dir = mkdtempSync(join(tmpdir(), 'smc-hard-'));
  cpSync('examples/bookstore', join(dir, 'mesh'), { recursive: true });
  return dir;
};

test('a client that floods requests and never reads is cut off under a 384 MiB heap cap; the controller lives and serves other proxies', async () => {
  const dir = meshDir();
  // The mesh CA first (what the controller's first start would make): smc bootstrap signs only for an existing one.
  await openInternalCA(join(dir, 'state'), 'cluster.local');
  const attackerCert = bootstrap('bookbuyer/bookbuyer', join(dir, 'state'), join(dir, 'attacker'), 1);
  const goodCert = bootstrap('bookbuyer/bookbuyer', join(dir, 'state'), join(dir, 'good'), 1);
  const ctl = await controllerOver(dir, ['--max-old-space-size=384']);
  const request = protos.lookupType('envoy.service.discovery.v3.DiscoveryRequest');
  const frame = (value: object) => {
    const body = request.encode(request.fromObject(value)).finish();
    const header = Buffer.alloc(5);
    header.writeUInt32BE(body.length, 1);
    return Buffer.concat([header, body]);
  };
  try {
    // A raw HTTP/2 client with a valid proxy certificate that never reads: it grants the
    // controller no flow-control window, so every response waits, and it keeps sending.
    const session = connect(`https://localhost:${ctl.xds}`, { ca: attackerCert.ca, key: attackerCert.key, cert: attackerCert.cert, settings: { initialWindowSize: 0 } });
    session.on('error', (e) => process.stdout.write(`flood session error: ${e.message}\n`));
    const stream = session.request({ ':method': 'POST', ':path': '/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources', 'content-type': 'application/grpc', te: 'trailers' });
    stream.pause();
    let ended = false;
    stream.on('close', () => {
      ended = true;
      process.stdout.write(`flood stream closed: rst code ${stream.rstCode}\n`);
    });
    stream.on('error', (e) => {
      ended = true;
      process.stdout.write(`flood stream error: ${e.message}\n`);
    });
    stream.write(frame({ node: { id: 'bookbuyer/bookbuyer/attacker' }, typeUrl: CDS }));
    const names = (i: number) => Array.from({ length: 400 }, (_, j) => `outbound|${i}|padding-to-make-each-request-large-${j}.bookstore`);
    const started = Date.now();
    let sent = 0;
    // Bounded: 20 s at most, or until the controller cuts the stream.
    while (!ended && Date.now() - started < 20_000 && ctl.exited() === undefined) {
      // Each request changes the EDS subscription, so each one calls for a response the client never reads.
      if (!stream.write(frame({ typeUrl: EDS, resourceNames: names(sent++) }))) await Promise.race([new Promise((r) => stream.once('drain', r)), sleep(200)]);
    }
    const hwm = ctl.exited() === undefined ? ctl.peakRss() : undefined;
    process.stdout.write(`flood: ${sent} requests in ${Date.now() - started} ms; controller peak RSS ${hwm ? `${Math.round(hwm / 1048576)} MiB` : 'unknown (it exited)'}\n`);
    session.destroy();
    assert.equal(ctl.exited(), undefined, `the controller died: ${ctl.log().slice(-2000)}`);
    assert.ok(ended, `the flooding stream was closed by the controller: ${ctl.log().slice(-1500)}`);
    assert.match(ctl.log(), /closing the stream of bookbuyer\/bookbuyer\/attacker .*: sent more than 1000 requests without reading the responses/);

    // Another proxy is served afterwards.
    const client = tlsClient(ctl.xds, goodCert);
    const s = open(client, 'sotw');
    s.send({ node: { id: 'bookbuyer/bookbuyer/good' }, typeUrl: CDS, resourceNames: [], versionInfo: '', responseNonce: '' });
    assert.equal((await s.next(5000)).resources.length, 3);
    s.call.end();
    client.close();
  } finally {
    await ctl.stop();
  }
});

test('revoking a proxy certificate closes the streams it opened within a second, and its keys stop flowing', async () => {
  const { controller, dir, state, logs } = await testController('examples/bookstore');
  const cert = bootstrap('bookbuyer/bookbuyer', state, join(dir, 'bb'), controller.xdsPort);
  const client = tlsClient(controller.xdsPort, cert);
  try {
    const s = open(client, 'sotw');
    s.send({ node: { id: 'bookbuyer/bookbuyer/pod-1' }, typeUrl: TYPE_URL.secret, resourceNames: ['identity'], versionInfo: '', responseNonce: '' });
    assert.equal((await s.next()).resources.length, 1, 'the stream receives its identity\'s key');
    const [record] = await serialOf(state);
    const revokedAt = Date.now();
    const r = await smc(['certs', 'revoke', '--serial', record!.serial, '--state', state]);
    assert.equal(r.code, 0, r.stderr);
    const closedAfter = await waitFor('the revoked stream to be closed', () => (s.error() ? Date.now() - revokedAt : undefined), 5000);
    process.stdout.write(`revocation: the open stream was closed ${closedAfter} ms after 'smc certs revoke' returned\n`);
    assert.equal(s.error()?.code, grpc.status.PERMISSION_DENIED);
    assert.match(s.error()?.details ?? '', /was revoked/);
    assert.ok(closedAfter < 2000, `closed after ${closedAfter} ms`);
    assert.ok(logs.some((l) => /closed 1 stream\(s\) of revoked proxy certificate/.test(l)));
    assert.equal(controller.proxies.list().length, 0, 'no stream of that certificate remains');
  } finally {
    client.close();
    await controller.close();
  }
});

test('one certificate, one node: a second node id presenting a claimed certificate is refused and named in the log', async () => {
  const { controller, dir, state, logs } = await testController('examples/bookstore');
  const cert = bootstrap('bookbuyer/bookbuyer', state, join(dir, 'bb'), controller.xdsPort);
  const client = tlsClient(controller.xdsPort, cert);
  const hello = (id: string) => ({ node: { id }, typeUrl: CDS, resourceNames: [], versionInfo: '', responseNonce: '' });
  try {
    const first = open(client, 'sotw');
    first.send(hello('bookbuyer/bookbuyer/pod-1'));
    await first.next();
    const other = open(client, 'sotw');
    other.send(hello('bookbuyer/bookbuyer/pod-2'));
    await assert.rejects(other.next(2000));
    assert.equal(other.error()?.code, grpc.status.PERMISSION_DENIED);
    assert.match(other.error()?.details ?? '', /belongs to node bookbuyer\/bookbuyer\/pod-1; node bookbuyer\/bookbuyer\/pod-2 may not use it/);
    assert.ok(logs.some((l) => l.includes('refused stream') && l.includes('node bookbuyer/bookbuyer/pod-2 may not use it')));
    // The node that claimed it reconnects as before.
    first.call.end();
    const again = open(client, 'sotw');
    again.send(hello('bookbuyer/bookbuyer/pod-1'));
    assert.equal((await again.next()).resources.length, 3);
    again.call.end();
  } finally {
    client.close();
    await controller.close();
  }
});

test('node ids and NACK messages are escaped and bounded in the log, in proxy status and in smc proxy-status', async () => {
  const { controller, logs } = await testController('examples/bookstore', { insecureXds: true });
  const client = new Client(`127.0.0.1:${controller.xdsPort}`, grpc.credentials.createInsecure());
  try {
    const forged = open(client, 'sotw');
    forged.send({ node: { id: 'bookbuyer/bookbuyer/x\n2026-12-01T00:00:00Z ca: root rotated \u001b[31mOK\u001b[0m' }, typeUrl: CDS, resourceNames: [], versionInfo: '', responseNonce: '' });
    await assert.rejects(forged.next(2000));
    assert.equal(forged.error()?.code, grpc.status.INVALID_ARGUMENT);

    const s = open(client, 'sotw');
    s.send({ node: { id: 'bookbuyer/bookbuyer' }, typeUrl: CDS, resourceNames: [], versionInfo: '', responseNonce: '' });
    const cds = await s.next();
    const hostile = `bad cluster\n2026-12-01T00:00:00Z controller: all good \u001b[2J\u202e${'A'.repeat(1024 * 1024)}`;
    s.send({ typeUrl: CDS, resourceNames: [], versionInfo: '', responseNonce: cds.nonce, errorDetail: { code: 3, message: hostile } });
    await waitFor('the NACK to be recorded', () => controller.proxies.list()[0]?.types.cluster?.nack);
    const nack = controller.proxies.list()[0]!.types.cluster!.nack!.message;
    assert.ok(nack.length < 700, `stored NACK text is bounded (${nack.length} characters)`);
    assert.match(nack, /^bad cluster\\n2026-12-01T00:00:00Z controller: all good \\x1b\[2J\\u202eA+… \(\d+ more characters\)$/);
    for (const line of logs) {
      assert.ok(!/[\n\u202e]/.test(line) && !line.includes(ESC), `a log line carries raw control characters: ${JSON.stringify(line.slice(0, 200))}`);
      assert.ok(line.length < 2000, 'a log line stays bounded');
    }
    assert.ok(logs.some((l) => l.includes('node.id "bookbuyer/bookbuyer/x\\n2026-12-01T00:00:00Z ca: root rotated \\x1b[31mOK\\x1b[0m"')), logs.join('\n'));
    const ps = await smc(['proxy-status', '--admin', `127.0.0.1:${controller.adminPort}`]);
    assert.equal(ps.code, 1);
    assert.ok(!ps.stdout.includes(ESC) && !ps.stdout.includes('\u202e'), 'no raw escape reaches the terminal');
    assert.equal(ps.stdout.split('\n').filter((l) => l.includes('NACK:')).length, 1, 'the NACK is one line');
    s.call.end();
  } finally {
    client.close();
    await controller.close();
  }
});

test('SotW: a proxy whose last upstream goes away un-watches EDS; it is not left STALE on a response it will never acknowledge', async () => {
  const { controller, dir } = await testController('examples/bookstore', { insecureXds: true, pushWindowMs: 0 });
  const client = new Client(`127.0.0.1:${controller.xdsPort}`, grpc.credentials.createInsecure());
  try {
    const s = open(client, 'sotw');
    s.send({ node: { id: 'bookbuyer/bookbuyer' }, typeUrl: CDS, resourceNames: [], versionInfo: '', responseNonce: '' });
    const cds = await s.next();
    s.send({ typeUrl: CDS, resourceNames: [], versionInfo: cds.versionInfo, responseNonce: cds.nonce });
    const names = cds.resources.map((r) => r.name);
    // The raw client names clusters by their resource names (cluster names equal assignment names).
    const clusterNames = [...controller.cache.get('spiffe://cluster.local/ns/bookbuyer/sa/bookbuyer')!.types.endpoint.resources.keys()];
    assert.equal(names.length, clusterNames.length);
    s.send({ typeUrl: EDS, resourceNames: clusterNames, versionInfo: '', responseNonce: '' });
    const eds = await s.next();
    s.send({ typeUrl: EDS, resourceNames: clusterNames, versionInfo: eds.versionInfo, responseNonce: eds.nonce });
    await waitFor('EDS to be acknowledged', () => (controller.proxies.list()[0]?.types.endpoint?.acked === eds.versionInfo ? true : undefined));

    // Bookbuyer loses its only grant: its upstreams vanish.
    const policy = join(dir, 'mesh', '40-policy.yaml');
    writeFileSync(policy, readFileSync(policy, 'utf8').replace('    - {kind: ServiceAccount, name: bookbuyer, namespace: bookbuyer}\n', '    - {kind: ServiceAccount, name: bookthief, namespace: bookthief}\n'));
    await controller.reload();
    const emptied = await s.next();
    assert.equal(emptied.typeUrl, CDS);
    assert.equal(emptied.resources.length, 0);
    // As Envoy does: it un-watches EDS with the nonce it last saw, racing our (empty) EDS push, which it never acknowledges.
    s.send({ typeUrl: CDS, resourceNames: [], versionInfo: emptied.versionInfo, responseNonce: emptied.nonce });
    s.send({ typeUrl: EDS, resourceNames: [], versionInfo: eds.versionInfo, responseNonce: eds.nonce });
    await sleep(300);
    const record = controller.proxies.list()[0]!;
    assert.notEqual(syncState(record.types.endpoint), 'STALE', JSON.stringify(record.types.endpoint));
    const ps = await smc(['proxy-status', '--admin', `127.0.0.1:${controller.adminPort}`, '-o', 'json']);
    assert.equal(ps.code, 0, `every proxy is in sync: ${ps.stdout}`);
    // What did arrive for EDS is the one push that raced the un-watch: empty, and never to be acknowledged.
    const rest: { typeUrl: string; resources: unknown[] }[] = [];
    while (!(await s.quiet(200))) rest.push(await s.next());
    assert.deepEqual(rest.filter((r) => r.typeUrl === EDS).map((r) => r.resources.length), [0]);
    s.call.end();
  } finally {
    client.close();
    await controller.close();
  }
});

test('caps per client certificate: streams beyond 8 are refused, and its streams together subscribe to at most 200,000 names; the controller stays small under a 384 MiB heap', async () => {
  const dir = meshDir();
  await openInternalCA(join(dir, 'state'), 'cluster.local');
  const cert = bootstrap('bookbuyer/bookbuyer', join(dir, 'state'), join(dir, 'bb'), 1);
  const ctl = await controllerOver(dir, ['--max-old-space-size=384']);
  const client = tlsClient(ctl.xds, cert);
  const hello = { node: { id: 'bookbuyer/bookbuyer/pod-1' }, typeUrl: CDS, resourceNames: [], versionInfo: '', responseNonce: '' };
  try {
    // 40 streams of one certificate: 8 are served, the rest refused.
    const streams = Array.from({ length: 40 }, () => open(client, 'sotw'));
    for (const s of streams) s.send(hello);
    await waitFor('every stream to be answered or refused', () => (streams.every((s) => s.error() !== undefined || s.call.readable) ? true : undefined));
    await sleep(1500);
    const refused = streams.filter((s) => s.error()?.code === grpc.status.RESOURCE_EXHAUSTED);
    assert.equal(refused.length, 32, `${refused.length} of 40 streams refused`);
    assert.match(refused[0]!.error()!.details, /this client certificate holds 8 streams open already \(at most 8\)/);
    // Names: one stream may subscribe 150,000; a second of the same certificate adding 100,000 is cut off.
    const names = (n: number, prefix: string) => Array.from({ length: n }, (_, i) => `${prefix}-${i}`);
    const served = streams.filter((s) => s.error() === undefined);
    served[0]!.send({ typeUrl: EDS, resourceNames: names(150_000, 'a'), versionInfo: '', responseNonce: '' });
    await sleep(1500);
    assert.equal(served[0]!.error(), undefined, 'within its bound');
    served[1]!.send({ typeUrl: EDS, resourceNames: names(100_000, 'b'), versionInfo: '', responseNonce: '' });
    await waitFor('the second stream to be cut off', () => served[1]!.error(), 10_000);
    assert.equal(served[1]!.error()!.code, grpc.status.RESOURCE_EXHAUSTED);
    assert.match(served[1]!.error()!.details, /the streams of this client certificate subscribe to more than 200000 resource names/);
    const rss = ctl.peakRss() / 1048576;
    process.stdout.write(`caps per certificate: 32 of 40 streams refused; peak RSS ${Math.round(rss)} MiB\n`);
    assert.ok(rss < 700, `peak RSS ${Math.round(rss)} MiB`);
    assert.equal(ctl.exited(), undefined);
  } finally {
    client.close();
    await ctl.stop();
  }
});

test('a NACK repeated thousands of times is logged once; the metric counts NACKs', async () => {
  const { controller, logs } = await testController('examples/bookstore', { insecureXds: true });
  const client = new Client(`127.0.0.1:${controller.xdsPort}`, grpc.credentials.createInsecure());
  try {
    const s = open(client, 'sotw');
    s.send({ node: { id: 'bookbuyer/bookbuyer' }, typeUrl: CDS, resourceNames: [], versionInfo: '', responseNonce: '' });
    const cds = await s.next();
    for (let i = 0; i < 3000; i++) s.send({ typeUrl: CDS, resourceNames: [], versionInfo: '', responseNonce: cds.nonce, errorDetail: { code: 3, message: 'rejected' } });
    await waitFor('every NACK to be counted', async () => {
      const m = await (await fetch(`http://127.0.0.1:${controller.adminPort}/metrics`)).text();
      const n = Number(/smc_xds_nacks_total\{type="cluster"\} (\d+)/.exec(m)?.[1] ?? 0);
      return n >= 1 ? n : undefined;
    });
    await sleep(500);
    assert.equal(logs.filter((l) => l.includes('NACKed cluster')).length, 1, 'one line for the storm');
  } finally {
    client.close();
    await controller.close();
  }
});

test('a restored proxy-certificates folder is followed: revocations in it, and made after, close open streams; a record deleted by hand closes its streams at the next periodic check', async () => {
  const { controller, dir, state, logs } = await testController('examples/bookstore', { recheckStreamsMs: 1000 });
  const records = join(state, 'proxy-certificates');
  const stream = (cert: ReturnType<typeof bootstrap>, node: string) => {
    const client = tlsClient(controller.xdsPort, cert);
    const s = open(client, 'sotw');
    s.send({ node: { id: node }, typeUrl: TYPE_URL.secret, resourceNames: ['identity'], versionInfo: '', responseNonce: '' });
    return { client, s };
  };
  const a = stream(bootstrap('bookbuyer/bookbuyer', state, join(dir, 'a'), controller.xdsPort), 'bookbuyer/bookbuyer/a');
  const b = stream(bootstrap('bookbuyer/bookbuyer', state, join(dir, 'b'), controller.xdsPort), 'bookbuyer/bookbuyer/b');
  const c = stream(bootstrap('bookbuyer/bookbuyer', state, join(dir, 'c'), controller.xdsPort), 'bookbuyer/bookbuyer/c');
  try {
    for (const x of [a, b, c]) assert.equal((await x.s.next()).resources.length, 1);
    const serialOfNode = async (node: string) => (await serialOf(state)).find((r) => r.claimedBy === node)!.serial;
    const [serialA, serialB, serialC] = [await serialOfNode('bookbuyer/bookbuyer/a'), await serialOfNode('bookbuyer/bookbuyer/b'), await serialOfNode('bookbuyer/bookbuyer/c')];
    // A backup in which a's certificate is revoked, restored over the folder (rm, then copy back).
    const backup = join(dir, 'backup');
    cpSync(records, backup, { recursive: true });
    const file = join(backup, `${serialA}.json`);
    writeFileSync(file, JSON.stringify({ ...JSON.parse(readFileSync(file, 'utf8')), state: 'revoked', revokedAt: new Date().toISOString() }));
    rmSync(records, { recursive: true });
    cpSync(backup, records, { recursive: true });
    await waitFor('the revocation in the restored folder to close a\'s stream', () => a.s.error(), 5000);
    // A revocation made after the restore reaches the controller too.
    assert.equal((await smc(['certs', 'revoke', '--serial', serialB, '--state', state])).code, 0);
    await waitFor('b\'s stream to close', () => b.s.error(), 5000);
    assert.match(b.s.error()!.details, /was revoked/);
    // A record removed by hand (no revocation event): the periodic check closes c's stream.
    rmSync(join(records, `${serialC}.json`));
    await waitFor('c\'s stream to close', () => c.s.error(), 5000);
    assert.match(c.s.error()!.details, /is no longer recorded/);
    assert.ok(logs.some((l) => l.includes('found open by the periodic check')));
  } finally {
    for (const x of [a, b, c]) x.client.close();
    await controller.close();
  }
});

test('the xDS port holds at most 1,024 connections from one address: more are closed at once, and proxies from elsewhere still connect', async () => {
  const { controller, logs } = await testController('examples/bookstore');
  const sockets: Socket[] = [];
  try {
    // In batches, each connected (or closed) before the next: 1,100 at once would overflow the listen backlog on a busy machine.
    for (let batch = 0; batch < 11; batch++) {
      const opened = Array.from({ length: 100 }, () => {
        const s = netConnect(controller.xdsPort, '127.0.0.1');
        s.on('error', () => undefined);
        sockets.push(s);
        return new Promise<void>((resolve) => {
          s.once('connect', () => resolve());
          s.once('close', () => resolve());
        });
      });
      await Promise.all(opened);
    }
    await waitFor('the excess to be closed', () => (sockets.filter((s) => s.destroyed || s.readyState === 'closed').length >= 76 ? true : undefined), 20_000);
    assert.ok(logs.some((l) => /xds: closed a connection from 127\.0\.0\.1: 1024 connections from it are open \(at most 1024\)/.test(l)), logs.filter((l) => l.includes('xds:')).slice(0, 5).join('\n'));
    // Another address is not held up.
    const other = await new Promise<boolean>((resolve) => {
      const s = netConnect({ port: controller.xdsPort, host: '127.0.0.1', localAddress: '127.0.0.2' }, () => {
        s.destroy();
        resolve(true);
      });
      s.on('error', () => resolve(false));
    });
    assert.ok(other);
  } finally {
    for (const s of sockets) s.destroy();
    await controller.close();
  }
});
