import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn, spawnSync, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import * as grpc from '@grpc/grpc-js';
import { loadEnvoyProtos } from '../src/adapters/envoy-protos.js';
import { TYPES } from '../src/compiler/envoy/codec.js';
import type { Controller } from '../src/runtime/controller.js';
import { startTestController } from './helpers/controller.js';
import { syncState } from '../src/runtime/proxy-status.js';
import { asSnapshot, withResources } from './helpers/snapshots.js';
import { waitFor } from './helpers/wait.js';

/**
 * A real proxyless gRPC client (@grpc/grpc-js-xds, in its own process)
 * dials xds:///prices.shop:50051 and smc routes it to real gRPC backends on
 * loopback, split by a TrafficSplit.
 */
const BIN = 'dist/src/cli/main.js';
const WHO = '/smc.test.Who/Name';
const CALLS = 1000;

async function backend(name: string): Promise<{ port: number; server: grpc.Server }> {
  const server = new grpc.Server();
  const raw = (b: Buffer) => b;
  server.addService(
    { Name: { path: WHO, requestStream: false, responseStream: false, requestSerialize: raw, requestDeserialize: raw, responseSerialize: raw, responseDeserialize: raw } },
    { Name: (_call: unknown, cb: grpc.sendUnaryData<Buffer>) => cb(null, Buffer.from(name)) },
  );
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
  );
  return { port, server };
}

function mesh(ports: { v1: number; v2: number }, weights: { v1: number; v2: number }): string {
  const vm = (version: string, port: number) => `apiVersion: smc.dev/v1alpha1
kind: VirtualMachine
metadata: {name: prices-${version}, namespace: shop}
spec:
  serviceAccount: prices
  addresses: [127.0.0.1]
  ports: [{name: grpc, port: ${port}}]
  labels: {app: prices, version: ${version}}
  interceptionMode: proxyless
`;
  const service = (name: string, selector: string) => `apiVersion: v1
kind: Service
metadata: {name: ${name}, namespace: shop}
spec:
  selector: {${selector}}
  ports: [{name: grpc, port: 50051, targetPort: grpc, appProtocol: grpc}]
`;
  return [
    'apiVersion: v1\nkind: Namespace\nmetadata: {name: shop, labels: {smc.dev/mesh: enabled}}\n',
    `apiVersion: smc.dev/v1alpha1
kind: VirtualMachine
metadata: {name: checkout, namespace: shop}
spec: {serviceAccount: checkout, addresses: [127.0.0.1], interceptionMode: proxyless}
`,
    vm('v1', ports.v1),
    vm('v2', ports.v2),
    service('prices', 'app: prices'),
    service('prices-v1', 'app: prices, version: v1'),
    service('prices-v2', 'app: prices, version: v2'),
    `apiVersion: split.smi-spec.io/v1alpha4
kind: TrafficSplit
metadata: {name: prices, namespace: shop}
spec:
  service: prices
  backends: [{service: prices-v1, weight: ${weights.v1}}, {service: prices-v2, weight: ${weights.v2}}]
`,
    'apiVersion: specs.smi-spec.io/v1alpha4\nkind: TCPRoute\nmetadata: {name: everything, namespace: shop}\nspec: {}\n',
    `apiVersion: access.smi-spec.io/v1alpha3
kind: TrafficTarget
metadata: {name: checkout-to-prices, namespace: shop}
spec:
  destination: {kind: ServiceAccount, name: prices, namespace: shop}
  sources: [{kind: ServiceAccount, name: checkout, namespace: shop}]
  rules: [{kind: TCPRoute, name: everything}]
`,
  ].join('---\n');
}

/** The client process: `calls(n)` answers how many calls each backend served. */
function grpcClient(bootstrap: string, target: string) {
  const child: ChildProcessWithoutNullStreams = spawn(process.execPath, ['dist/test/helpers/xds-grpc-client.js', target], {
    env: { ...process.env, GRPC_XDS_BOOTSTRAP: bootstrap },
  });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
  return {
    async calls(n: number): Promise<Record<string, number>> {
      child.stdin.write(`call ${n}\n`);
      const next = await lines.next();
      if (next.done) throw new Error(`the gRPC client exited: ${stderr}`);
      return JSON.parse(next.value as string) as Record<string, number>;
    },
    stop: () => child.kill(),
  };
}

function checkoutRecord(controller: Controller) {
  return controller.proxies.list().find((p) => p.nodeId.startsWith('shop/checkout'));
}

/** Waits until the client has acknowledged exactly the versions the cache holds for it. */
async function synced(controller: Controller, identity: string): Promise<void> {
  await waitFor('the proxyless client to ACK the current versions', () => {
    const record = checkoutRecord(controller);
    const snapshot = controller.cache.get(identity);
    if (!record || !snapshot) return undefined;
    for (const kind of ['cluster', 'endpoint', 'listener', 'route'] as const) {
      if (syncState(record.types[kind]) !== 'SYNCED' || record.types[kind]?.acked !== snapshot.types[kind].version) return undefined;
    }
    return true;
  });
}

function share(counts: Record<string, number>, name: string): number {
  const total = Object.values(counts).reduce((a, b) => a + b, 0);
  return (100 * (counts[name] ?? 0)) / total;
}

test('grpc-js-xds: xds:/// routing through smc, an 80/20 split over 1,000 calls, a live split change, and a NACKed resource', async () => {
  const v1 = await backend('v1');
  const v2 = await backend('v2');
  const dir = mkdtempSync(join(tmpdir(), 'smc-proxyless-'));
  mkdirSync(join(dir, 'mesh'));
  const meshFile = join(dir, 'mesh', 'mesh.yaml');
  writeFileSync(meshFile, mesh({ v1: v1.port, v2: v2.port }, { v1: 80, v2: 20 }));
  // grpc-js-xds cannot present a client certificate to a control plane (its channel_creds are insecure or google_default).
  const { controller, logs } = await startTestController(dir, { insecureXds: true });
  const identity = 'spiffe://cluster.local/ns/shop/sa/checkout';
  const b = spawnSync(process.execPath, [BIN, 'bootstrap', '--identity', 'shop/checkout', '--instance', 'app-1', '--xds-address', `127.0.0.1:${controller.xdsPort}`, '--proxyless', '--insecure-xds', '-o', join(dir, 'client')], { encoding: 'utf8' });
  assert.equal(b.status, 0, b.stderr);
  const client = grpcClient(join(dir, 'client', 'grpc-bootstrap.json'), 'xds:///prices.shop:50051');
  try {
    // 1. Routed through smc, split 80/20. One call first, so a broken setup fails in seconds rather than after 1,000 timeouts.
    const probe = await client.calls(1);
    assert.ok(probe['v1'] === 1 || probe['v2'] === 1, `the first call reaches a backend: ${JSON.stringify(probe)}\n${logs.join('\n')}`);
    const first = await client.calls(CALLS);
    assert.deepEqual(Object.keys(first).sort(), ['v1', 'v2'], `every call answered by a backend: ${JSON.stringify(first)}`);
    assert.ok(Math.abs(share(first, 'v1') - 80) <= 5, `80/20 expected, got ${JSON.stringify(first)}`);
    await synced(controller, identity);
    const admin = (await (await fetch(`http://127.0.0.1:${controller.adminPort}/status/proxies`)).json()) as { proxies: { nodeId: string; types: Record<string, { state: string }> }[] };
    const shown = admin.proxies.find((p) => p.nodeId === 'shop/checkout/app-1');
    assert.ok(shown, 'the proxyless client is listed in /status/proxies');
    assert.equal(shown.types['route']?.state, 'SYNCED');

    // 2. A live split change: 20/80, no restart and no reload: the watched folder notices the edit.
    const routeBefore = controller.cache.get(identity)!.types.route.version;
    const wroteAt = Date.now();
    writeFileSync(meshFile, mesh({ v1: v1.port, v2: v2.port }, { v1: 20, v2: 80 }));
    await waitFor('the edit to be compiled', () => (controller.cache.get(identity)!.types.route.version !== routeBefore ? true : undefined), 5000);
    await synced(controller, identity);
    process.stdout.write(`live: ${Date.now() - wroteAt} ms from the file write to the gRPC xDS client's ACK\n`);
    const second = await client.calls(CALLS);
    assert.ok(Math.abs(share(second, 'v1') - 20) <= 5, `20/80 expected after the change, got ${JSON.stringify(second)}`);

    // 3. An invalid route table (the split turned to all-v1, plus a match gRPC does not support): the client NACKs it and keeps 20/80.
    const protos = loadEnvoyProtos();
    const good = controller.cache.get(identity)!;
    const route = [...good.types.route.resources.values()][0]!;
    const json = protos.toJson(TYPES.route, route.bytes) as { virtualHosts: { routes: object[] }[] };
    for (const vh of json.virtualHosts) vh.routes = [{ match: { connectMatcher: {} }, route: { cluster: 'outbound|50051|prices-v1.shop' } }, { match: { prefix: '/' }, route: { cluster: 'outbound|50051|prices-v1.shop' } }];
    const bad = withResources(asSnapshot(good, 'proxyless'), 'route', 'deliberately-invalid', [{ name: route.name, bytes: protos.encode(TYPES.route, json) }]);
    controller.cache.setSnapshots([bad]);
    const nack = await waitFor('a NACK of the invalid route table', () => {
      const t = checkoutRecord(controller)?.types.route;
      return syncState(t) === 'NACK' ? t!.nack! : undefined;
    });
    assert.equal(nack.version, 'deliberately-invalid');
    assert.match(nack.message, /path_specifier|connect_matcher/);
    assert.ok(logs.some((l) => l.includes('NACKed route version deliberately-invalid')), 'the NACK is logged');
    const third = await client.calls(CALLS);
    assert.ok(Math.abs(share(third, 'v1') - 20) <= 5, `the client keeps its last good split (20/80), got ${JSON.stringify(third)}`);
    // Not spawnSync: the controller under test lives in this process and must keep answering.
    const status = await new Promise<{ code: number | null; stdout: string }>((resolve) => {
      execFile(process.execPath, [BIN, 'proxy-status', '--admin', `127.0.0.1:${controller.adminPort}`], (err, stdout) => resolve({ code: err ? (err.code as number) : 0, stdout }));
    });
    assert.equal(status.code, 1, `proxy-status exits 1 while a proxy is not synced:\n${status.stdout}`);
    assert.match(status.stdout, /shop\/checkout\/app-1 .* NACK/);

    // 4. Good inputs again: the client accepts them and is SYNCED.
    await controller.reload();
    await synced(controller, identity);
  } finally {
    client.stop();
    await controller.close();
    v1.server.forceShutdown();
    v2.server.forceShutdown();
  }
});
