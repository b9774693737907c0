import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { Client, open } from './helpers/ads-client.js';
import { TYPE_URL } from '../src/runtime/xds-types.js';
import { waitFor } from './helpers/wait.js';

/**
 * The controller's log as a machine reads it: stderr is not a terminal, so
 * every event is one JSON line with a level and the fields of what it is
 * about; --log-level filters by severity.
 */

type Event = { level: string; time: string; msg: string; component?: string; nodeId?: string; identity?: string; type?: string; version?: string };

function startController(args: string[]) {
  const state = mkdtempSync(join(tmpdir(), 'smc-logs-'));
  const p = spawn(process.execPath, ['dist/src/cli/main.js', 'controller', '--source', 'examples/bookstore', '--state', state, '--xds-address', '127.0.0.1:0', '--admin-address', '127.0.0.1:0', '--insecure-xds', ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
  const lines: string[] = [];
  let partial = '';
  p.stderr.on('data', (d: Buffer) => {
    const text = partial + d.toString();
    const parts = text.split('\n');
    partial = parts.pop()!;
    lines.push(...parts);
  });
  return { p, lines };
}

test('not on a terminal, the controller logs JSON lines with level, component and the fields of the event; --log-level debug adds each push', async () => {
  const { p, lines } = startController(['--log-level', 'debug']);
  try {
    const events = () => lines.map((l) => JSON.parse(l) as Event);
    const listening = await waitFor('the controller to say where xDS is served', () => events().find((e) => /^xDS .* on 127\.0\.0\.1:\d+/.test(e.msg)));
    assert.equal(listening.component, 'controller');
    assert.equal(listening.level, 'info');
    assert.match(listening.time, /^\d{4}-\d\d-\d\dT/);
    const port = Number(/on 127\.0\.0\.1:(\d+)/.exec(listening.msg)![1]);
    assert.ok(events().some((e) => e.level === 'warn' && e.msg.includes('--insecure-xds')), 'the insecure mode is a warning');
    const issued = events().find((e) => e.component === 'ca' && e.msg.startsWith('issued the certificate of'));
    assert.ok(issued, 'certificate issuance is logged');
    assert.ok(!lines.join('\n').includes('PRIVATE KEY'));

    const client = new Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
    const s = open(client, 'sotw');
    s.send({ node: { id: 'bookbuyer/bookbuyer' }, typeUrl: TYPE_URL.cluster, resourceNames: [], versionInfo: '', responseNonce: '' });
    const r = await s.next(5000);
    s.send({ typeUrl: TYPE_URL.cluster, resourceNames: [], versionInfo: r.versionInfo, responseNonce: r.nonce, errorDetail: { code: 3, message: 'bad "cluster"\nsecond line' } });
    const nack = await waitFor('the NACK to be logged', () => events().find((e) => e.msg.includes('NACKed')));
    assert.deepEqual({ level: nack.level, component: nack.component, nodeId: nack.nodeId, identity: nack.identity, type: nack.type, version: nack.version }, {
      level: 'warn',
      component: 'xds',
      nodeId: 'bookbuyer/bookbuyer',
      identity: 'spiffe://cluster.local/ns/bookbuyer/sa/bookbuyer',
      type: 'cluster',
      version: r.versionInfo,
    });
    const connected = events().find((e) => e.msg.includes('connected over state-of-the-world'));
    assert.equal(connected?.nodeId, 'bookbuyer/bookbuyer');
    const sent = events().find((e) => e.level === 'debug' && e.type === 'cluster' && e.nodeId === 'bookbuyer/bookbuyer');
    assert.equal(sent?.version, r.versionInfo, 'each push is a debug event naming type and version');
    // One event per line, whatever the proxy sent: every line parses.
    for (const l of lines) JSON.parse(l);
    s.call.end();
    client.close();
  } finally {
    p.kill('SIGTERM');
  }
});

test('--log-level warn leaves out info; a bad --log-level is a usage error', async () => {
  const { p, lines } = startController(['--log-level', 'warn']);
  try {
    await waitFor('the insecure-mode warning', () => lines.find((l) => l.includes('--insecure-xds')));
    await new Promise((r) => setTimeout(r, 500));
    const levels = new Set(lines.map((l) => (JSON.parse(l) as Event).level));
    assert.deepEqual([...levels], ['warn']);
  } finally {
    p.kill('SIGTERM');
  }
  const bad = spawn(process.execPath, ['dist/src/cli/main.js', 'controller', '--log-level', 'loud'], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  bad.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const code = await new Promise((resolve) => bad.on('close', resolve));
  assert.equal(code, 2);
  assert.match(err, /--log-level expects debug, info, warn, error, got "loud"/);
});
