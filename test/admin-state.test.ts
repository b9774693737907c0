import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { request } from 'node:http';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openProxyCertificates } from '../src/adapters/ca/proxy-certificates.js';
import { testController } from './helpers/controller.js';
import { freePort } from './helpers/tools.js';
import { waitFor } from './helpers/wait.js';

/** The admin port and the state folder (hardening, items 11-15). */
const BIN = 'dist/src/cli/main.js';
const smc = (args: string[]) =>
  new Promise<{ code: number; stdout: string; stderr: string }>((resolve) =>
    execFile(process.execPath, [BIN, ...args], (err, stdout, stderr) => resolve({ code: err ? Number(err.code) : 0, stdout, stderr })),
  );

/** An HTTP request with exactly the headers given (fetch would not let a test forge Host). */
function raw(port: number, method: string, path: string, headers: Record<string, string>, body = '') {
  return new Promise<{ status: number; body: string }>((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, method, path, headers, setHost: false }, (res) => {
      let text = '';
      res.on('data', (d: Buffer) => (text += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

test('the admin port: a cross-site or token-less POST cannot rotate the root; a foreign Host is refused; the CLI with --state can', async () => {
  const { controller, state } = await testController('examples/bookstore');
  const port = controller.adminPort;
  try {
    const host = `127.0.0.1:${port}`;
    // What a web page can send: a simple cross-site POST, no credentials.
    const csrf = await raw(port, 'POST', '/ca/rotate-root', { host, origin: 'http://evil.example', 'content-type': 'text/plain' }, 'x');
    assert.equal(csrf.status, 401, csrf.body);
    const wrongToken = await raw(port, 'POST', '/ca/rotate-root', { host, authorization: 'Bearer 0000' });
    assert.equal(wrongToken.status, 401);
    assert.deepEqual(readdirSync(join(state, 'ca')).filter((n) => n.startsWith('next-root')), [], 'no rotation began');
    // DNS rebinding: a name the operator did not allow, even for a read.
    assert.equal((await raw(port, 'GET', '/status/proxies', { host: `evil.example:${port}` })).status, 421);
    assert.equal((await raw(port, 'GET', '/status/proxies', { host: `localhost:${port}` })).status, 200);
    assert.equal((await raw(port, 'GET', '/status/proxies', { host: `[::1]:${port}` })).status, 200);
    // No Host at all: Node refuses it (400) before smc sees it; either way, not served.
    assert.ok([400, 421].includes((await raw(port, 'GET', '/metrics', {})).status), 'no Host at all');
    // The token file is private to the state folder's owner; the CLI presents it.
    assert.equal(statSync(join(state, 'admin-token')).mode & 0o777, 0o600);
    const noState = await smc(['ca', 'rotate-root', '--admin', host, '--state', join(state, 'nope')]);
    assert.equal(noState.code, 2);
    assert.match(noState.stderr, /no admin token/);
    const rotated = await smc(['ca', 'rotate-root', '--admin', host, '--state', state]);
    assert.equal(rotated.code, 0, rotated.stderr);
    assert.ok(readdirSync(join(state, 'ca')).some((n) => n.startsWith('retired-')), 'the rotation ran');
  } finally {
    await controller.close();
  }
});

test('one damaged proxy-certificate record is reported by name; listing and revoking the others still work', async () => {
  const state = mkdtempSync(join(tmpdir(), 'smc-certs-'));
  const store = openProxyCertificates(state);
  const at = new Date();
  await store.recordIssued({ serial: 'aa01', identity: 'spiffe://cluster.local/ns/a/sa/one', issuedAt: at, notAfter: at });
  await store.recordIssued({ serial: 'bb02', identity: 'spiffe://cluster.local/ns/b/sa/two', issuedAt: at, notAfter: at });
  const good = readFileSync(join(state, 'proxy-certificates', 'aa01.json'), 'utf8');
  writeFileSync(join(state, 'proxy-certificates', 'cc03.json'), good.slice(0, 40)); // truncated
  const list = await smc(['certs', 'list', '--state', state]);
  assert.equal(list.code, 1, 'a damaged record makes the listing incomplete: exit 1');
  assert.match(list.stderr, /cc03\.json is damaged/);
  assert.match(list.stdout, /aa01\s+spiffe:\/\/cluster\.local\/ns\/a\/sa\/one\s+UNCLAIMED/);
  assert.match(list.stdout, /bb02\s+spiffe:\/\/cluster\.local\/ns\/b\/sa\/two\s+UNCLAIMED/);
  const bySerial = await smc(['certs', 'revoke', '--serial', 'aa01', '--state', state]);
  assert.equal(bySerial.code, 0, bySerial.stderr);
  const byIdentity = await smc(['certs', 'revoke', '--identity', 'b/two', '--state', state]);
  assert.match(byIdentity.stdout, /revoked bb02/);
  assert.equal(byIdentity.code, 1, 'a record that could not be read may be of that identity: not all is known revoked');
  assert.match(byIdentity.stderr, /cc03\.json is damaged.*it is NOT revoked/);
  const json = JSON.parse((await smc(['certs', 'list', '--state', state, '-o', 'json'])).stdout) as { proxyCertificates: { serial: string; state: string }[]; problems: string[] };
  assert.deepEqual(json.proxyCertificates.map((r) => [r.serial, r.state]), [['aa01', 'revoked'], ['bb02', 'revoked']]);
  assert.equal(json.problems.length, 1);
});

test('a port in use is a one-line startup error, and no mesh CA is created', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'smc-port-'));
  cpSync('examples/bookstore', join(dir, 'mesh'), { recursive: true });
  const busy = createServer();
  const port = await new Promise<number>((resolve) => busy.listen(0, '127.0.0.1', () => resolve((busy.address() as { port: number }).port)));
  try {
    for (const [flag, other] of [['--xds-address', '--admin-address'], ['--admin-address', '--xds-address']] as const) {
      const state = join(dir, `state${flag}`);
      const r = await smc(['controller', '--source', join(dir, 'mesh'), '--state', state, flag, `127.0.0.1:${port}`, other, `127.0.0.1:${await freePort()}`]);
      assert.equal(r.code, 1, r.stderr);
      assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
      assert.match(r.stderr, new RegExp(`^smc: 127\\.0\\.0\\.1:${port} is in use \\(${flag}\\)`));
      assert.doesNotMatch(r.stderr, /internal error|at .*\.js:\d+/);
      assert.equal(existsSync(join(state, 'ca')), false, 'no CA root was created');
      assert.equal(existsSync(join(state, 'controller.lock')), false, 'the lock was released');
    }
  } finally {
    busy.close();
  }
});

test('two controllers on one state folder: the second names the first and exits; once the first is gone the folder can be used again', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'smc-lock-'));
  cpSync('examples/bookstore', join(dir, 'mesh'), { recursive: true });
  const state = join(dir, 'state');
  const args = async () => ['controller', '--log-format', 'text', '--source', join(dir, 'mesh'), '--state', state, '--xds-address', `127.0.0.1:${await freePort()}`, '--admin-address', `127.0.0.1:${await freePort()}`];
  const first = spawn(process.execPath, [BIN, ...(await args())], { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  first.stderr.on('data', (d: Buffer) => (log += d.toString()));
  try {
    await waitFor('the first controller to serve', () => (log.includes('controller: xDS') ? true : undefined));
    const second = await smc(await args());
    assert.equal(second.code, 1, second.stderr);
    assert.match(second.stderr, new RegExp(`state folder .* is in use by another controller: pid ${first.pid} on .*started`));
    assert.doesNotMatch(second.stderr, /internal error/);
    // A controller killed outright leaves its lock behind: the next start takes it over.
    first.kill('SIGKILL');
    await new Promise((r) => first.once('exit', r));
    const third = spawn(process.execPath, [BIN, ...(await args())], { stdio: ['ignore', 'ignore', 'pipe'] });
    let log3 = '';
    third.stderr.on('data', (d: Buffer) => (log3 += d.toString()));
    await waitFor('the third controller to serve', () => (log3.includes('controller: xDS') ? true : undefined));
    assert.match(log3, /taking over the lock .* of a controller that is gone \(pid \d+\)/);
    third.kill('SIGTERM');
    await new Promise((r) => third.once('exit', r));
    assert.equal(existsSync(join(state, 'controller.lock')), false, 'a clean stop releases the lock');
  } finally {
    if (first.exitCode === null && first.signalCode === null) first.kill('SIGKILL');
  }
});

test('the admin port serves reads to IP addresses and localhost, and to names given with --admin-allowed-host', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'smc-host-'));
  cpSync('examples/bookstore', join(dir, 'mesh'), { recursive: true });
  mkdirSync(join(dir, 'state'));
  const admin = await freePort();
  const child = spawn(process.execPath, [BIN, 'controller', '--source', join(dir, 'mesh'), '--state', join(dir, 'state'), '--xds-address', `127.0.0.1:${await freePort()}`, '--admin-address', `127.0.0.1:${admin}`, '--admin-allowed-host', 'smc-controller.smc-system.svc'], { stdio: 'ignore' });
  try {
    await waitFor('readiness', async () => ((await raw(admin, 'GET', '/readyz', { host: `127.0.0.1:${admin}` })).status === 200 ? true : undefined));
    assert.equal((await raw(admin, 'GET', '/healthz', { host: `smc-controller.smc-system.svc:${admin}` })).status, 200);
    assert.equal((await raw(admin, 'GET', '/healthz', { host: `other.smc-system.svc:${admin}` })).status, 421);
  } finally {
    child.kill('SIGKILL');
  }
});
