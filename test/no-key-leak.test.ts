import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { cpSync, mkdtempSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { TYPE_URL } from '../src/runtime/xds-types.js';
import { Client, open } from './helpers/ads-client.js';
import { freePort } from './helpers/tools.js';
import { waitFor } from './helpers/wait.js';

/**
 * Private keys travel only to their identity over the mTLS xDS stream. This
 * runs the real `smc` processes, makes keys flow (a proxy receives its SDS
 * secrets), then searches every output channel for key material: the
 * controller's log, the admin endpoints (status, inputs, metrics), and every
 * CLI output (compile to files and stdout, status, proxy-status, certs).
 */
const BIN = 'dist/src/cli/main.js';
const run = (args: string[]) =>
  new Promise<string>((resolve) => execFile(process.execPath, [BIN, ...args], { maxBuffer: 64 * 1024 * 1024 }, (_err, stdout, stderr) => resolve(`${stdout}\n${stderr}`)));

function walk(dir: string): string[] {
  return readdirSync(dir).flatMap((n) => (statSync(join(dir, n)).isDirectory() ? walk(join(dir, n)) : [join(dir, n)]));
}

/** Distinctive pieces of a PEM key's body: any of them in an output means the key leaked. */
function fingerprints(pem: string): string[] {
  const body = pem.replace(/-----[^-]+-----/g, '').replace(/\s/g, '');
  return [body.slice(20, 60), body.slice(-60, -20)];
}

test('no private key reaches logs, status, metrics or any CLI output', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'smc-leak-'));
  cpSync('examples/bookstore', join(dir, 'mesh'), { recursive: true });
  const state = join(dir, 'state');
  const [xdsPort, adminPort] = [await freePort(), await freePort()];
  const controller = spawn(process.execPath, [BIN, 'controller', '--source', join(dir, 'mesh'), '--state', state, '--xds-port', String(xdsPort), '--admin-port', String(adminPort), '--push-window', '0'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  controller.stdout.on('data', (d: Buffer) => (log += d.toString()));
  controller.stderr.on('data', (d: Buffer) => (log += d.toString()));
  const outputs: [string, string][] = [];
  try {
    await waitFor('the controller to be ready', async () => ((await fetch(`http://127.0.0.1:${adminPort}/readyz`)).ok ? true : undefined));
    outputs.push(['smc bootstrap', await run(['bootstrap', '--identity', 'bookbuyer/bookbuyer', '--xds-address', `127.0.0.1:${xdsPort}`, '--state', state, '-o', join(dir, 'bb')])]);
    // A proxy receives its secrets: the key is on the wire, to its owner only.
    const creds = grpc.credentials.createSsl(readFileSync(join(dir, 'bb', 'ca.crt')), readFileSync(join(dir, 'bb', 'proxy.key')), readFileSync(join(dir, 'bb', 'proxy.crt')));
    const client = new Client(`localhost:${xdsPort}`, creds);
    const s = open(client, 'sotw');
    s.send({ node: { id: 'bookbuyer/bookbuyer' }, typeUrl: TYPE_URL.secret, resourceNames: ['identity', 'trust-bundle'], versionInfo: '', responseNonce: '' });
    const secrets = await s.next(5000);
    assert.equal(secrets.resources.length, 2);
    s.send({ typeUrl: TYPE_URL.secret, resourceNames: ['identity', 'trust-bundle'], versionInfo: 'x', responseNonce: secrets.nonce, errorDetail: { code: 3, message: 'testing that a NACK is logged without content' } });
    await waitFor('the NACK to be recorded', async () => ((await (await fetch(`http://127.0.0.1:${adminPort}/status/proxies`)).text()).includes('testing that a NACK') ? true : undefined));
    for (const path of ['/status/proxies', '/status/inputs', '/metrics', '/healthz', '/readyz']) outputs.push([`admin ${path}`, await (await fetch(`http://127.0.0.1:${adminPort}${path}`)).text()]);
    outputs.push(['smc proxy-status', await run(['proxy-status', '--admin', `127.0.0.1:${adminPort}`])]);
    outputs.push(['smc proxy-status -o json', await run(['proxy-status', '--admin', `127.0.0.1:${adminPort}`, '-o', 'json'])]);
    outputs.push(['smc certs list', await run(['certs', 'list', '--state', state, '-o', 'json'])]);
    s.call.end();
    client.close();
  } finally {
    controller.kill('SIGTERM');
    await new Promise((r) => controller.once('exit', r));
  }
  outputs.push(['controller log', log]);
  outputs.push(['smc compile --identity', await run(['compile', join(dir, 'mesh'), '--identity', 'bookbuyer/bookbuyer'])]);
  outputs.push(['smc compile --status json', await run(['compile', join(dir, 'mesh'), '--status', 'json'])]);
  outputs.push(['smc compile -o --bootstrap (stdout)', await run(['compile', join(dir, 'mesh'), '-o', join(dir, 'out'), '--bootstrap'])]);
  for (const f of walk(join(dir, 'out')).filter((f) => !f.endsWith('.key'))) outputs.push([`compile file ${f}`, readFileSync(f, 'utf8')]);

  // Every key smc made: service keys it serves, the proxy key, the root key, the compile's throwaway keys.
  const keys = [
    ...readFileSync(join(state, 'issued', 'certificates.jsonl'), 'utf8').split('\n').filter((l) => l !== '').map((l) => (JSON.parse(l) as { privateKey: string }).privateKey),
    readFileSync(join(dir, 'bb', 'proxy.key'), 'utf8'),
    readFileSync(join(state, 'ca', 'root.key'), 'utf8'),
    ...walk(join(dir, 'out')).filter((f) => f.endsWith('.key')).map((f) => readFileSync(f, 'utf8')),
  ];
  assert.ok(keys.length >= 8, `${keys.length} keys`);
  assert.ok(log.includes('issued the certificate of'), 'the log does talk about certificates');
  for (const [name, text] of outputs) {
    assert.ok(text.length > 0, `${name} printed something`);
    assert.ok(!/PRIVATE KEY/.test(text), `${name} holds a PEM private key`);
    for (const key of keys) for (const f of fingerprints(key)) assert.ok(!text.includes(f), `${name} holds key material`);
  }
});
