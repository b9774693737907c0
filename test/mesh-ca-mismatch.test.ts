import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { appendFileSync, existsSync, mkdtempSync } from 'node:fs';
import { connect as netConnect } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openInternalCA } from '../src/adapters/ca/internal-ca.js';
import { testController } from './helpers/controller.js';
import { waitFor } from './helpers/wait.js';

/** Credentials of the wrong mesh are refused where they are made, and seen where they are used. */

const BIN = 'dist/src/cli/main.js';
const smc = (...args: string[]) => spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8' });

test('smc bootstrap and smc vm bundle refuse a state folder with no mesh CA, naming the flag, and write nothing', async () => {
  const { controller, dir } = await testController('examples/bookstore');
  try {
    const empty = mkdtempSync(join(tmpdir(), 'smc-no-ca-'));
    const out = join(empty, 'out');
    const b = smc('bootstrap', '--identity', 'bookbuyer/bookbuyer', '--xds-address', `127.0.0.1:${controller.xdsPort}`, '--state', join(empty, 'state'), '-o', out);
    assert.equal(b.status, 1, b.stderr);
    assert.match(b.stderr, /no mesh CA in .*state\/ca: this command signs for an existing mesh.*--state.*--ca-root-secret/);
    assert.ok(!existsSync(join(empty, 'state', 'ca', 'root.key')), 'no new root was made');
    assert.ok(!existsSync(join(out, 'proxy.key')), 'no credentials were written');
    appendFileSync(join(dir, 'mesh', '50-vm.yaml'), 'apiVersion: smc.dev/v1alpha1\nkind: VirtualMachine\nmetadata: {name: vm-1, namespace: bookbuyer}\nspec: {serviceAccount: bookbuyer, addresses: [198.18.5.5], interceptionMode: explicit}\n');
    const v = smc('vm', 'bundle', '--name', 'vm-1', '--namespace', 'bookbuyer', '--source', join(dir, 'mesh'), '--xds-address', `127.0.0.1:${controller.xdsPort}`, '--state', join(empty, 'state'), '-o', join(empty, 'bundle'));
    assert.equal(v.status, 1, v.stderr);
    assert.match(v.stderr, /no mesh CA in .*: this command signs for an existing mesh/);
    // With the controller's state folder, it works.
    assert.equal(smc('bootstrap', '--identity', 'bookbuyer/bookbuyer', '--xds-address', `127.0.0.1:${controller.xdsPort}`, '--state', join(dir, 'state'), '-o', join(empty, 'good')).status, 0);
  } finally {
    await controller.close();
  }
});

test('failed handshakes on the xDS port are logged at warn with the peer and the reason (unknown CA, no certificate, expired, not TLS), rate-limited, and counted', async () => {
  const { controller, state, logs } = await testController('examples/bookstore');
  const attempt = (options: { cert?: string; key?: string }) =>
    new Promise<void>((resolve) => {
      const s = tlsConnect({ host: '127.0.0.1', port: controller.xdsPort, rejectUnauthorized: false, ALPNProtocols: ['h2'], ...options });
      s.on('secureConnect', () => s.write('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'));
      s.on('error', () => resolve());
      s.on('close', () => resolve());
      s.setTimeout(3000, () => s.destroy());
    });
  try {
    // Another mesh's CA (what a bootstrap with the wrong --state made before it was refused).
    const other = await openInternalCA(mkdtempSync(join(tmpdir(), 'smc-other-ca-')), 'cluster.local');
    const foreign = await other.issue('spiffe://cluster.local/ns/bookbuyer/sa/bookbuyer', { ttlMs: 3600_000 });
    await attempt({ cert: foreign.certificateChain, key: foreign.privateKey });
    await attempt({});
    // This mesh's CA, but a certificate whose life is over.
    const mine = await openInternalCA(state, 'cluster.local');
    const expired = await mine.issue('spiffe://cluster.local/ns/bookbuyer/sa/bookbuyer', { ttlMs: 1000 });
    await new Promise((r) => setTimeout(r, 2500));
    await attempt({ cert: expired.certificateChain, key: expired.privateKey });
    await new Promise<void>((resolve) => {
      const s = netConnect(controller.xdsPort, '127.0.0.1', () => s.write('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'));
      s.on('close', () => resolve());
      s.on('error', () => resolve());
    });
    const lines = await waitFor('four kinds of failure in the log', () => {
      const l = logs.filter((x) => x.includes('TLS handshake from 127.0.0.1 failed'));
      return l.length >= 4 ? l : undefined;
    }, 10_000);
    const text = lines.join('\n');
    assert.match(text, /unknown CA: the client certificate is not signed by this mesh's CA/);
    assert.match(text, /no client certificate/);
    assert.match(text, /the client certificate has expired/);
    assert.match(text, /not TLS/);
    // A flood of the same failure costs one line a minute.
    for (let i = 0; i < 30; i++) await attempt({});
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(logs.filter((x) => x.includes('no client certificate')).length, 1);
    const metrics = await (await fetch(`http://127.0.0.1:${controller.adminPort}/metrics`)).text();
    const total = metrics.split('\n').filter((l) => l.startsWith('smc_xds_handshake_failures_total{')).reduce((n, l) => n + Number(l.split(' ').pop()), 0);
    assert.ok(total >= 34, `counted ${total} failed handshakes`);
  } finally {
    await controller.close();
  }
});
