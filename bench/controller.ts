/**
 * The controller as it runs: the generated mesh as a watched folder (one
 * file per service), the real controller (compile worker, CA, snapshot
 * cache, ADS server, push window 0),
 * and its proxies in a separate process (bench/load-client.ts), each an ADS
 * stream that subscribes as Envoy does and acknowledges what it gets.
 * Measured: start to ready and the process's memory then; memory per connected proxy; and
 * for one endpoint, one split and one policy change, the time from the
 * file's write to the last affected proxy
 * receiving its push. BENCH_DEBUG=1 prints progress; BENCH_DEBUG=3 the controller's log.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { SourceUnit } from '../src/adapters/source.js';
import { startController } from '../src/runtime/controller.js';
import { TYPE_URL } from '../src/runtime/xds-types.js';

const PER_NAMESPACE = 50;
const nsOf = (i: number, perNamespace = PER_NAMESPACE) => `ns-${Math.floor(i / perNamespace)}`;
const now = () => performance.timeOrigin + performance.now();
const gc = () => (globalThis as { gc?: () => void }).gc?.();
const unit = (documents: unknown[], name: string): SourceUnit => ({ documents: documents.map((value, document) => ({ origin: { source: name, document, line: 0 }, value })), problems: [] });

export interface Variant {
  /** Services per namespace (50 unless said). */
  perNamespace?: number;
  /** A permissive mesh (a MeshConfig with `permissive: true`): every proxy may reach every service. */
  permissive?: boolean;
  splitWeight?: number;
  movedPod?: number;
  /** An extra caller for this service (a policy change). */
  extraCaller?: [number, number];
  /** This service's pod with a status condition (what smc does not read): Ready, or not. */
  podReady?: [number, boolean];
  /** This namespace (by number) without the mesh label: its workloads leave the mesh. */
  outOfMesh?: number;
  /** The MeshConfig with access logging on (every proxy's inbound listeners change). */
  accessLog?: boolean;
  /** Service 0 is a hub: every other service may call it (as a mesh's authentication or configuration service would be). */
  hub?: boolean;
  /** Every tenth service's split is a Gateway API HTTPRoute (a match to the next service, then the weights) instead of a TrafficSplit. */
  routes?: boolean;
}

/** The service `i`'s file: its pod, Service, the TrafficTarget letting the previous five call it (every service, for a hub), and every tenth a split. */
function serviceUnit(services: number, i: number, v: Variant = {}): SourceUnit {
  const name = `svc-${i}`;
  const ns = (k: number) => nsOf(k, v.perNamespace);
  const docs: unknown[] = [];
  const ip = `10.${Math.floor(i / 250) + 1}.${i % 250}.${i === v.movedPod ? 11 : 10}`;
  const conditions = v.podReady?.[0] === i ? { conditions: [{ type: 'Ready', status: v.podReady[1] ? 'True' : 'False' }] } : {};
  docs.push({ apiVersion: 'v1', kind: 'Pod', metadata: { name: `${name}-pod`, namespace: ns(i), labels: { app: name } }, spec: { serviceAccountName: name, containers: [{ name, ports: [{ name: 'http', containerPort: 8080 }] }] }, status: { podIP: ip, ...conditions } });
  docs.push({ apiVersion: 'v1', kind: 'Service', metadata: { name, namespace: ns(i) }, spec: { selector: { app: name }, clusterIP: `172.16.${Math.floor(i / 250)}.${i % 250}`, ports: [{ name: 'http', port: 80, targetPort: 8080 }] } });
  const callers = v.hub && i === 0 ? Array.from({ length: services - 1 }, (_, k) => k + 1) : [1, 2, 3, 4, 5].map((d) => (i - d + services) % services).filter((c) => ns(c) === ns(i) && c !== i);
  if (v.extraCaller?.[0] === i) callers.push(v.extraCaller[1]);
  if (callers.length > 0) {
    docs.push({
      apiVersion: 'access.smi-spec.io/v1alpha3',
      kind: 'TrafficTarget',
      metadata: { name: `to-${name}`, namespace: ns(i) },
      spec: { destination: { kind: 'ServiceAccount', name, namespace: ns(i) }, sources: callers.map((c) => ({ kind: 'ServiceAccount', name: `svc-${c}`, namespace: ns(c) })), rules: [{ kind: 'TCPRoute', name: 'all' }] },
    });
  }
  if (i % 10 === 0 && i + 1 < services && ns(i + 1) === ns(i)) {
    const w = v.splitWeight ?? 90;
    if (v.routes) {
      const next = `svc-${i + 1}`;
      docs.push({
        apiVersion: 'gateway.networking.k8s.io/v1',
        kind: 'HTTPRoute',
        metadata: { name: `route-${name}`, namespace: ns(i) },
        spec: {
          parentRefs: [{ group: '', kind: 'Service', name, port: 80 }],
          rules: [
            { matches: [{ path: { type: 'PathPrefix', value: '/api' }, headers: [{ name: 'x-canary', value: 'yes' }] }], backendRefs: [{ name: next, port: 80 }] },
            { backendRefs: [{ name, port: 80, weight: w }, { name: next, port: 80, weight: 100 - w }] },
          ],
        },
      });
    } else docs.push({ apiVersion: 'split.smi-spec.io/v1alpha4', kind: 'TrafficSplit', metadata: { name: `split-${name}`, namespace: ns(i) }, spec: { service: name, backends: [{ service: name, weight: w }, { service: `svc-${i + 1}`, weight: 100 - w }] } });
  }
  return unit(docs, `${name}.yaml`);
}

/** The generated mesh, one unit per service (and one for the namespaces); `v` applies to every service. */
export function meshUnits(services: number, v: Variant = {}): Map<string, SourceUnit> {
  const units = new Map<string, SourceUnit>();
  const namespaces: unknown[] = [];
  for (let n = 0; n * (v.perNamespace ?? PER_NAMESPACE) < services; n++) {
    namespaces.push({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: `ns-${n}`, labels: v.outOfMesh === n ? {} : { 'smc.dev/mesh': 'enabled' } } });
    namespaces.push({ apiVersion: 'specs.smi-spec.io/v1alpha4', kind: 'TCPRoute', metadata: { name: 'all', namespace: `ns-${n}` }, spec: {} });
  }
  if (v.permissive || v.accessLog) namespaces.push({ apiVersion: 'smc.dev/v1alpha1', kind: 'MeshConfig', metadata: { name: 'smc', namespace: 'smc-system' }, spec: { permissive: v.permissive ?? false, trustDomain: 'cluster.local', ...(v.accessLog ? { accessLog: true } : {}) } });
  units.set('namespaces.yaml', unit(namespaces, 'namespaces.yaml'));
  for (let i = 0; i < services; i++) units.set(`svc-${i}.yaml`, serviceUnit(services, i, v));
  return units;
}

export interface ControllerRow {
  services: number;
  perIdentity: number;
  proxies: number;
  startMs: number;
  rssMiB: number;
  connectMs: number;
  perProxyKiB: number;
  endpointFirstMs: number;
  endpointMs: number;
  endpointStreams: number;
  splitMs: number;
  splitStreams: number;
  policyMs: number;
  policyStreams: number;
  /** From the split change's write until /status/inputs says the split is programmed on every proxy it shapes (as of a reading after the write). */
  splitProgrammedMs: number;
  /** The Programmed conditions: the first working out after the proxies connected (every resource's names read once), then how often and how long (mean) during the changes. */
  programmedFirstMs: number;
  programmedRecomputes: number;
  programmedMeanMs: number;
}

const ns = (i: number) => nsOf(i);
const identity = (i: number) => `${ns(i)}/svc-${i}`;

/** `measureController` in a fresh process (bench/controller-row.ts): a row's memory and pauses owe nothing to the rows before it. */
export function measureControllerIsolated(services: number, perIdentity: number): Promise<ControllerRow> {
  return new Promise((resolve, reject) => {
    const child = fork(new URL('./controller-row.js', import.meta.url), [String(services), String(perIdentity)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], execArgv: ['--expose-gc'] });
    let row: ControllerRow | undefined;
    child.on('message', (m: ControllerRow) => (row = m));
    child.on('error', reject);
    child.on('exit', (code) => (row ? resolve(row) : reject(new Error(`the controller bench of ${services} services x ${perIdentity} exited (${code}) without a result`))));
  });
}

export async function measureController(services: number, perIdentity: number): Promise<ControllerRow> {
  const units = meshUnits(services);
  // The controller's default source: a watched folder, one file per service.
  const state = mkdtempSync(join(tmpdir(), 'smc-bench-'));
  const folder = join(state, 'mesh');
  mkdirSync(folder);
  const fileOf = (name: string) => join(folder, name.replace(/\.yaml$/, '.json'));
  const write = (name: string, u: SourceUnit) => writeFileSync(fileOf(name), u.documents.map((d) => JSON.stringify(d.value)).join('\n---\n'));
  for (const [name, u] of units) write(name, u);
  let child: ChildProcess | undefined;
  const t0 = now();
  const controller = await startController({ source: [folder], stateDir: join(state, 'state'), xdsHost: '127.0.0.1', xdsPort: 0, adminHost: '127.0.0.1', adminPort: 0, insecureXds: true, pushWindowMs: 0, log: process.env.BENCH_DEBUG === '3' ? (l) => process.stderr.write(`${l}\n`) : () => {} });
  const startMs = now() - t0;
  gc();
  // The whole process (controller, its compile worker and what earlier rows left behind), once ready.
  const rssAtStart = process.memoryUsage().rss;
  if (process.env.BENCH_DEBUG) process.stderr.write(`bench: controller ready in ${Math.round(startMs)} ms\n`);
  try {
    child = fork(new URL('./load-client.js', import.meta.url), [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], execArgv: ['--max-old-space-size=8192'] });
    const messages: Record<string, unknown>[] = [];
    const waiters: ((m: Record<string, unknown>) => void)[] = [];
    child.on('message', (m: Record<string, unknown>) => (waiters.length ? waiters.shift()!(m) : messages.push(m)));
    const next = (ms: number) =>
      new Promise<Record<string, unknown>>((resolve, reject) => {
        if (messages.length) return resolve(messages.shift()!);
        const t = setTimeout(() => reject(new Error(`the load client did not answer within ${ms} ms`)), ms);
        waiters.push((m) => {
          clearTimeout(t);
          resolve(m);
        });
      });

    gc();
    const before = process.memoryUsage();
    const nodes: string[] = [];
    for (let i = 0; i < services; i++) for (let p = 0; p < perIdentity; p++) nodes.push(`${identity(i)}/p${p}`);
    child.send({ connect: { port: controller.xdsPort, nodes } });
    const connectMs = (await next(600_000)).connected as number;
    if (process.env.BENCH_DEBUG) process.stderr.write(`bench: ${nodes.length} proxies connected in ${Math.round(connectMs)} ms\n`);
    // Every acknowledgement processed before the heap is read.
    await new Promise((r) => setTimeout(r, 2000));
    gc();
    const after = process.memoryUsage();
    const perProxyKiB = (after.heapUsed + after.external - before.heapUsed - before.external) / nodes.length / 1024;

    const admin = `http://127.0.0.1:${controller.adminPort}`;
    const programmedSoFar = async () => {
      const text = await (await fetch(`${admin}/metrics`)).text();
      const metric = (name: string) => Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1] ?? NaN);
      return { count: metric('smc_programmed_duration_seconds_count'), sum: metric('smc_programmed_duration_seconds_sum') };
    };
    const atConnect = await programmedSoFar();

    /** Applies `change` and waits until each (node, type) expected got a response after it: the time to the last. */
    const timed = async (expect: [string, string][], change: () => void): Promise<number> => {
      child!.send({ expect });
      await next(10_000); // expecting
      const at = now();
      change();
      const arrived = (await next(120_000)).arrived as [string, string, number][];
      if (process.env.BENCH_DEBUG) process.stderr.write(`bench: ${arrived.length} pushes arrived\n`);
      return Math.max(...arrived.map(([, , t]) => t)) - at;
    };
    const streamsOf = (ids: number[], types: string[]) => ids.flatMap((i) => Array.from({ length: perIdentity }, (_, p) => types.map((t): [string, string] => [`${identity(i)}/p${p}`, t])).flat());
    // The TrafficTarget of service i lets the five before it in its namespace call it.
    const callersOf = (i: number) => [1, 2, 3, 4, 5].map((d) => i - d).filter((c) => c >= 0 && ns(c) === ns(i));

    // One endpoint change: a pod of a service with five callers moves; its callers' EDS changes. Done five
    // times (five pods, one after another): the first change after start, and the median of the five.
    const endpointTimes: number[] = [];
    let endpointExpect: [string, string][] = [];
    for (let k = 0; k < 5; k++) {
      const moved = Math.floor(services / 2) + 10 + k;
      endpointExpect = streamsOf(callersOf(moved), [TYPE_URL.endpoint]);
      endpointTimes.push(await timed(endpointExpect, () => write(`svc-${moved}.yaml`, serviceUnit(services, moved, { movedPod: moved }))));
      if (process.env.BENCH_DEBUG) process.stderr.write(`bench: endpoint change ${k + 1}: ${Math.round(endpointTimes[k]!)} ms\n`);
    }
    const endpointFirstMs = endpointTimes[0]!;
    const endpointMs = [...endpointTimes].sort((a, b) => a - b)[2]!;
    // One split change: 90/10 -> 80/20 of one split; the root's callers get new routes.
    const root = Math.floor(services / 2) - (Math.floor(services / 2) % 10) + 20;
    const splitExpect = streamsOf(callersOf(root), [TYPE_URL.route]);
    const splitObject = `TrafficSplit ${ns(root)}/split-svc-${root}`;
    let written = 0;
    const splitMs = await timed(splitExpect, () => {
      written = Date.now();
      write(`svc-${root}.yaml`, serviceUnit(services, root, { splitWeight: 80 }));
    });
    // The same edit, confirmed: the split's Programmed condition True as of a reading of the proxies made after the write.
    let splitProgrammedMs = -1;
    for (const end = Date.now() + 60_000; Date.now() < end; ) {
      const doc = (await (await fetch(`${admin}/status/inputs`)).json()) as { programmedAsOf?: string; objects: { object: string; programmed?: { status: string } }[] };
      const asOf = doc.programmedAsOf ? Date.parse(doc.programmedAsOf) : 0;
      if (asOf > written && doc.objects.find((o) => o.object === splitObject)?.programmed?.status === 'True') {
        splitProgrammedMs = Date.now() - written;
        break;
      }
      await new Promise((r) => setTimeout(r, 5));
    }
    // One policy change: a service gets a new caller (one further back in its namespace): the caller's clusters change.
    const callee = Math.floor(services / 2) + 30;
    const caller = callee + 7;
    const policyExpect = streamsOf([caller], [TYPE_URL.cluster]);
    const policyMs = await timed(policyExpect, () => write(`svc-${callee}.yaml`, serviceUnit(services, callee, { extraCaller: [callee, caller] })));

    const atEnd = await programmedSoFar();
    const recomputes = atEnd.count - atConnect.count;
    return {
      services,
      perIdentity,
      proxies: nodes.length,
      splitProgrammedMs,
      programmedFirstMs: Math.round(atConnect.sum * 1000),
      programmedRecomputes: recomputes,
      programmedMeanMs: Math.round(((atEnd.sum - atConnect.sum) / recomputes) * 1000 * 10) / 10,
      startMs: Math.round(startMs),
      rssMiB: Math.round(rssAtStart / 1024 / 1024),
      connectMs: Math.round(connectMs),
      perProxyKiB: Math.round(perProxyKiB * 10) / 10,
      endpointFirstMs: Math.round(endpointFirstMs),
      endpointMs: Math.round(endpointMs),
      endpointStreams: endpointExpect.length,
      splitMs: Math.round(splitMs),
      splitStreams: splitExpect.length,
      policyMs: Math.round(policyMs),
      policyStreams: policyExpect.length,
    };
  } finally {
    child?.send({ stop: true });
    await controller.close();
    rmSync(state, { recursive: true, force: true });
  }
}
