import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { meshUnits } from '../bench/controller.js';
import { controllerProcess } from './helpers/controller.js';
import { sleep } from './helpers/wait.js';

/** The admin port on a large mesh against clients that ask much (/explain) or read nothing (/mesh/events): items 7 and 8. */

/** The bench's generated mesh of `services` identities as a folder of JSON files, one per service. */
function meshFolder(services: number): string {
  const dir = mkdtempSync(join(tmpdir(), 'smc-admin-load-'));
  mkdirSync(join(dir, 'mesh'));
  for (const [name, unit] of meshUnits(services)) writeFileSync(join(dir, 'mesh', name.replace(/\.yaml$/, '.json')), unit.documents.map((d) => JSON.stringify(d.value)).join('\n---\n'));
  return dir;
}

const controller = (dir: string) => controllerProcess(['--source', join(dir, 'mesh'), '--state', join(dir, 'state'), '--push-window', '0'], ['--max-old-space-size=512']);

const healthz = async (admin: number) => {
  const t0 = Date.now();
  await fetch(`http://127.0.0.1:${admin}/healthz`);
  return Date.now() - t0;
};

test('on a 2,000-identity mesh: 50 concurrent /explain keep /healthz fast; 16 /mesh/events pages that never read cost one graph each while the graph changes', { timeout: 300_000 }, async () => {
  const dir = meshFolder(2000);
  const c = await controller(dir);
  try {
    // 50 clients asking /explain without pause for 6 s, and the liveness probe meanwhile.
    const query = `http://127.0.0.1:${c.admin}/explain?from=ns-0/svc-1&to=svc-0.ns-0:80`;
    const end = Date.now() + 6000;
    const statuses: number[] = [];
    const explains = Array.from({ length: 50 }, async () => {
      while (Date.now() < end) statuses.push(await fetch(query).then((r) => r.status, () => 0));
    });
    const probes: number[] = [];
    while (Date.now() < end) {
      probes.push(await healthz(c.admin));
      await sleep(100);
    }
    await Promise.all(explains);
    probes.sort((a, b) => a - b);
    const median = probes[Math.floor(probes.length / 2)]!;
    process.stdout.write(`50 clients asking /explain for 6 s: ${statuses.filter((s) => s === 200).length} answered, ${statuses.filter((s) => s === 503).length} told to retry; /healthz median ${median} ms, slowest ${probes.at(-1)} ms\n`);
    assert.ok(statuses.every((s) => s === 200 || s === 503), `${statuses.filter((s) => s !== 200 && s !== 503).length} requests failed otherwise`);
    assert.ok(statuses.includes(200));
    assert.ok(median < 1000, `/healthz median ${median} ms (the liveness probe waits 1 s)`);

    // 16 pages that never read, while the graph changes every second.
    const stalled = Array.from({ length: 16 }, () => {
      const s = connect({ port: c.admin, host: '127.0.0.1' });
      s.on('error', () => undefined);
      s.write(`GET /mesh/events HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`);
      s.pause();
      return s;
    });
    const before = c.rss() / 1048576;
    for (let i = 0; i < 30; i++) {
      // A new workload each second: the graph grows and changes.
      const name = `extra-${i}`;
      const pod = { apiVersion: 'v1', kind: 'Pod', metadata: { name, namespace: 'ns-0', labels: { app: name } }, spec: { serviceAccountName: name, containers: [{ name, ports: [{ containerPort: 8080 }] }] }, status: { podIP: `10.200.0.${i + 1}` } };
      writeFileSync(join(dir, 'mesh', `${name}.json`), JSON.stringify(pod));
      await sleep(1000);
    }
    const after = c.rss() / 1048576;
    process.stdout.write(`16 stalled /mesh/events pages over 30 graph changes: RSS ${Math.round(before)} -> ${Math.round(after)} MiB\n`);
    assert.equal(c.exited(), undefined, 'the controller lives');
    assert.ok(after - before < 250, `RSS grew by ${Math.round(after - before)} MiB`);
    assert.ok((await healthz(c.admin)) < 1000);
    for (const s of stalled) s.destroy();
  } finally {
    await c.stop();
  }
});
