import { spawnSync, type ChildProcess } from 'node:child_process';
import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { startController, type Controller } from '../src/runtime/controller.js';
import { envoyForAnyUser } from '../test/helpers/envoy.js';
import { createTestNetwork, type TestHost, type TestNetwork } from './netns.js';
import { ADMIN_PORT } from '../src/compiler/envoy/names.js';

/**
 * The bookstore mesh of examples/bookstore, running for real: every pod is a
 * host (a network namespace with the pod's own IP, 198.18.x.y), running its
 * application as uid 1000 behind a real Envoy sidecar (uid 1500) in
 * transparent mode with smc's capture rules, and a controller on the bridge
 * (198.18.0.1) programs every sidecar over mutual TLS from a watched copy of
 * the policy folder. Applications call services the way a pod would: by name
 * (each host's /etc/hosts maps `NAME.NAMESPACE` to the cluster IP) and port.
 * bookbuyer and bookthief run a driven caller (lab/app.ts agent).
 */
const SMC = resolve('dist/src/cli/main.js');
const APP = resolve('dist/lab/app.js');
const APP_UID = 1000;
const PROXY_UID = 1500;

export type Results = Record<string, number>;
export type Command =
  | { kind: 'http'; url: string; method?: string; headers?: Record<string, string>; count?: number; showHeaders?: string[] }
  | { kind: 'tcp'; host: string; port: number; payload: string; count?: number }
  | { kind: 'grpc'; target: string; method: string; metadata?: Record<string, string>; count?: number };

export interface BookstoreLab {
  readonly controller: Controller;
  /** The watched policy folder (a copy of examples/bookstore): edit it to change the mesh. */
  readonly meshDir: string;
  readonly state: string;
  readonly logs: string[];
  /** Hosts by pod name. */
  readonly hosts: ReadonlyMap<string, TestHost>;
  /** Runs a command on a caller (bookbuyer-1, bookthief-1) and counts the outcomes. */
  call(from: string, command: Command): Promise<Results>;
  /** Restarts the controller on the same state folder and port (sidecars reconnect by themselves). */
  restartController(): Promise<void>;
  /**
   * A new pod: its host, sidecar and application started, then (once its sidecar is configured, as readiness would have it) its YAML written to the policy folder.
   * The first pod of a new identity is listed first (`listFirst`): smc configures a sidecar of an identity the mesh has.
   */
  addPod(pod: { name: string; namespace: string; serviceAccount: string; ip: string; labels: Record<string, string>; port: number; listFirst?: boolean }): Promise<void>;
  /**
   * A virtual machine joins as its operator would: a VirtualMachine object in
   * the policy folder, `smc vm bundle`, then the bundle's systemd unit's
   * command (Envoy as uid 1500; explicit mode, so no capture). Its application
   * answers `answer`.
   */
  addVirtualMachine(vm: { name: string; namespace: string; serviceAccount: string; ip: string; labels: Record<string, string>; port: number; answer: string }): Promise<void>;
  /** Takes a pod added by `addPod` out: its YAML first (callers stop sending to it), then its processes. */
  removePod(name: string): Promise<void>;
  /** The non-zero counters of a host's Envoy whose names match `filter` (a regex, as Envoy's admin /stats takes it), for diagnosing a failure. */
  envoyStats(host: string, filter: string): Promise<string>;
  close(): Promise<void>;
}

interface PodInfo { name: string; namespace: string; serviceAccount: string; ip: string; ports: number[] }

function readMesh(dir: string): { pods: PodInfo[]; services: { name: string; namespace: string; clusterIP: string }[] } {
  const pods: PodInfo[] = [];
  const services: { name: string; namespace: string; clusterIP: string }[] = [];
  for (const file of readdirSync(dir).sort()) {
    for (const doc of parseAllDocuments(readFileSync(join(dir, file), 'utf8'))) {
      const o = doc.toJS() as { kind?: string; metadata?: { name: string; namespace: string }; spec?: Record<string, unknown>; status?: { podIP?: string } } | null;
      if (o?.kind === 'Pod' && o.status?.podIP) {
        const containers = (o.spec?.containers ?? []) as { ports?: { containerPort: number }[] }[];
        pods.push({ name: o.metadata!.name, namespace: o.metadata!.namespace, serviceAccount: String(o.spec?.serviceAccountName ?? 'default'), ip: o.status.podIP, ports: containers.flatMap((c) => (c.ports ?? []).map((p) => p.containerPort)) });
      }
      if (o?.kind === 'Service' && typeof o.spec?.clusterIP === 'string') services.push({ name: o.metadata!.name, namespace: o.metadata!.namespace, clusterIP: o.spec.clusterIP });
    }
  }
  return { pods, services };
}

/** What each pod of the example runs: its server, and a driven caller where the scenarios call from it. */
function applications(pod: PodInfo): string[][] {
  if (pod.name.startsWith('bookbuyer') || pod.name.startsWith('bookthief')) return [['agent']];
  if (pod.name.startsWith('mysql')) return [['echo', String(pod.ports[0] ?? 3306)]];
  if (pod.name.startsWith('prices')) return [['grpc-echo', pod.name.replace(/-\d+$/, ''), String(pod.ports[0] ?? 50051)]];
  const server = ['http', pod.name.replace(/-\d+$/, ''), String(pod.ports[0] ?? 8080)];
  // bookstore calls bookwarehouse, and bookwarehouse its database: both call as well as serve.
  return [server, ['agent']];
}

/** Resolves once a test application says it listens (its first line is "ready"). */
function listening(child: ChildProcess, what: string): Promise<void> {
  return new Promise((resolveReady, reject) => {
    let out = '';
    const onData = (d: Buffer) => {
      out += d.toString();
      if (out.includes('ready\n')) {
        child.stdout!.off('data', onData);
        resolveReady();
      }
    };
    child.stdout!.on('data', onData);
    child.once('exit', (code) => reject(new Error(`${what} exited (${code}) before it listened`)));
  });
}

/** Polls `probe` until it holds; fails after `timeoutMs` on the monotonic clock (a step of the wall clock does not cut it short). */
const waitUntil = async (what: string, probe: () => boolean, timeoutMs: number) => {
  const end = performance.now() + timeoutMs;
  while (!probe()) {
    if (performance.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
};

/**
 * `source`: the policy folder (default examples/bookstore), copied unless
 * `inPlace` (the demo watches the folder its user edits).
 */
export async function startBookstoreLab(o: { log?: (line: string) => void; serviceCertTtlMs?: number; source?: string; inPlace?: boolean; adminPort?: number } = {}): Promise<BookstoreLab> {
  const dir = mkdtempSync(join(tmpdir(), 'smc-lab-'));
  const meshDir = o.inPlace ? resolve(o.source ?? 'examples/bookstore') : join(dir, 'mesh');
  if (!o.inPlace) cpSync(o.source ?? 'examples/bookstore', meshDir, { recursive: true });
  const state = join(dir, 'state');
  const logs: string[] = [];
  const log = (l: string) => {
    logs.push(l);
    o.log?.(l);
  };
  let net: TestNetwork | undefined;
  let controller: Controller | undefined;
  const envoys: ChildProcess[] = [];
  try {
    net = await createTestNetwork({ gateway: { address: '198.18.0.1', prefix: 16 } });
    const gateway = net.gateway;
    const { pods, services } = readMesh(meshDir);
    const start = (xdsPort: number) => startController({ source: [meshDir], stateDir: state, xdsHost: gateway, xdsPort, adminHost: '127.0.0.1', adminPort: o.adminPort ?? 0, insecureXds: false, serviceCertTtlMs: o.serviceCertTtlMs, log });
    controller = await start(0);
    const xdsPort = controller.xdsPort;
    const hostsFile = ['127.0.0.1 localhost', ...services.map((s) => `${s.clusterIP} ${s.name}.${s.namespace} ${s.name}.${s.namespace}.svc ${s.name}.${s.namespace}.svc.cluster.local`)].join('\n') + '\n';
    const hosts = new Map<string, TestHost>();
    const agents = new Map<string, { child: ChildProcess; pending: Map<number, (r: Results) => void> }>();
    const envoy = envoyForAnyUser();
    const network = net;
    const startPod = async (pod: PodInfo) => {
      const host = await network.addHost(pod.name, { address: pod.ip, hosts: hostsFile });
      hosts.set(pod.name, host);
      // The pod's init container: capture; then its sidecar, from smc bootstrap; then its application.
      await host.run(process.execPath, [SMC, 'capture', '--apply']);
      const out = join(dir, 'proxies', pod.name);
      const b = spawnSync(process.execPath, [SMC, 'bootstrap', '--identity', `${pod.namespace}/${pod.serviceAccount}`, '--instance', pod.name, '--xds-address', `${gateway}:${xdsPort}`, '--state', state, '-o', out], { encoding: 'utf8' });
      if (b.status !== 0) throw new Error(`smc bootstrap for ${pod.name} failed: ${b.stderr}`);
      const e = host.start(envoy, ['-c', join(out, 'bootstrap.json'), '-l', 'warning', '--disable-hot-restart', '--drain-time-s', '1'], { uid: PROXY_UID });
      e.stderr!.on('data', (d: Buffer) => log(`envoy ${pod.name}: ${d.toString().trim()}`));
      envoys.push(e);
      for (const app of applications(pod)) {
        const child = host.start(process.execPath, [APP, ...app], { uid: APP_UID, stdin: app[0] === 'agent' });
        const up = listening(child, `${pod.name}'s ${app[0]}`);
        if (app[0] === 'agent') {
          const pending = new Map<number, (r: Results) => void>();
          let buffered = '';
          child.stdout!.on('data', (d: Buffer) => {
            buffered += d.toString();
            let nl: number;
            while ((nl = buffered.indexOf('\n')) >= 0) {
              const line = buffered.slice(0, nl);
              buffered = buffered.slice(nl + 1);
              if (!line.startsWith('{')) continue;
              const a = JSON.parse(line) as { id: number; results: Results };
              pending.get(a.id)?.(a.results);
              pending.delete(a.id);
            }
          });
          agents.set(pod.name, { child, pending });
        }
        await up;
      }
    };
    for (const pod of pods) await startPod(pod);
    const c = () => controller!;
    await waitUntil('every sidecar to connect and acknowledge its listeners', () => {
      const list = c().proxies.list();
      return pods.every((p) => list.some((x) => x.nodeId.endsWith(`/${p.name}`) && x.types.listener?.acked !== undefined && x.types.listener.acked === x.types.listener.sent));
    }, 60_000);
    let next = 1;
    return {
      get controller() {
        return controller!;
      },
      meshDir,
      state,
      logs,
      hosts,
      call(from, command) {
        const agent = agents.get(from);
        if (!agent) throw new Error(`${from} runs no caller (callers: ${[...agents.keys()].join(', ')})`);
        const id = next++;
        return new Promise((resolveCall) => {
          agent.pending.set(id, resolveCall);
          agent.child.stdin!.write(`${JSON.stringify({ id, ...command })}\n`);
        });
      },
      async addPod(p) {
        const yaml = `apiVersion: v1\nkind: Pod\nmetadata:\n  name: ${p.name}\n  namespace: ${p.namespace}\n  labels: ${JSON.stringify(p.labels)}\nspec:\n  serviceAccountName: ${p.serviceAccount}\n  containers: [{name: app, ports: [{name: web, containerPort: ${p.port}}]}]\nstatus:\n  podIP: ${p.ip}\n`;
        // As on Kubernetes, where a pod is an endpoint once it is ready (its sidecar answers /smc/ready): it runs first, then it is listed.
        if (p.listFirst) writeFileSync(join(meshDir, `90-${p.name}.yaml`), yaml);
        await startPod({ name: p.name, namespace: p.namespace, serviceAccount: p.serviceAccount, ip: p.ip, ports: [p.port] });
        await waitUntil(`${p.name}'s sidecar to be configured`, () => controller!.proxies.list().some((x) => x.nodeId.endsWith(`/${p.name}`) && x.types.listener?.acked !== undefined && x.types.secret?.acked !== undefined), 30_000);
        if (!p.listFirst) writeFileSync(join(meshDir, `90-${p.name}.yaml`), yaml);
      },
      async addVirtualMachine(vm) {
        writeFileSync(join(meshDir, `91-${vm.name}.yaml`), `apiVersion: smc.dev/v1alpha1\nkind: VirtualMachine\nmetadata: {name: ${vm.name}, namespace: ${vm.namespace}}\nspec:\n  serviceAccount: ${vm.serviceAccount}\n  addresses: [${vm.ip}]\n  ports: [{name: web, port: ${vm.port}}]\n  labels: ${JSON.stringify(vm.labels)}\n  interceptionMode: explicit\n`);
        const bundle = join(dir, 'vm', vm.name);
        const b = spawnSync(process.execPath, [SMC, 'vm', 'bundle', '--name', vm.name, '--namespace', vm.namespace, '--source', meshDir, '--xds-address', `${gateway}:${xdsPort}`, '--state', state, '-o', bundle, '--install-dir', bundle, '--envoy-path', envoy], { encoding: 'utf8' });
        if (b.status !== 0) throw new Error(`smc vm bundle for ${vm.name} failed: ${b.stderr}`);
        const unit = readFileSync(join(bundle, 'smc-envoy.service'), 'utf8');
        const [cmd, ...args] = unit.split('\n').find((l) => l.startsWith('ExecStart='))!.slice('ExecStart='.length).split(' ');
        const host = await network.addHost(vm.name, { address: vm.ip, hosts: hostsFile });
        hosts.set(vm.name, host);
        // Its application listens before its proxy joins: callers are sent the VM once the proxy connects.
        await listening(host.start(process.execPath, [APP, 'http', vm.answer, String(vm.port)], { uid: APP_UID }), `${vm.name}'s application`);
        const e = host.start(cmd!, args, { uid: PROXY_UID });
        e.stderr!.on('data', (d: Buffer) => log(`envoy ${vm.name}: ${d.toString().trim()}`));
        await waitUntil(`${vm.name}'s proxy to connect`, () => controller!.proxies.list().some((x) => x.nodeId.endsWith(`/vm:${vm.name}`) && x.types.listener?.acked !== undefined), 30_000);
      },
      async removePod(name) {
        const versions = () => controller!.cache.identities().map((id) => controller!.cache.get(id)!.types.endpoint.version).join();
        const before = versions();
        rmSync(join(meshDir, `90-${name}.yaml`));
        // Callers are sent the endpoint set without it before it stops.
        await waitUntil(`${name}'s removal to be compiled`, () => versions() !== before, 10_000);
        await waitUntil(`every proxy to acknowledge ${name}'s removal`, () => controller!.proxies.list().every((x) => x.nodeId.endsWith(`/${name}`) || Object.entries(x.types).every(([k, t]) => t.acked === controller!.cache.get(x.identity)?.types[k as 'cluster'].version)), 15_000);
        await hosts.get(name)!.stop();
      },
      async restartController() {
        await controller!.close();
        controller = await start(xdsPort);
      },
      async envoyStats(name, filter) {
        const host = hosts.get(name);
        if (!host) throw new Error(`no host ${name}`);
        const url = `http://127.0.0.1:${ADMIN_PORT}/stats?usedonly&filter=${encodeURIComponent(filter)}`;
        const script = `fetch(${JSON.stringify(url)}).then((r) => r.text()).then((t) => process.stdout.write(t.split('\\n').filter((l) => !/: 0$/.test(l)).join('\\n')), (e) => process.stdout.write(String(e)))`;
        return host.run(process.execPath, ['-e', script]);
      },
      async close() {
        await controller?.close();
        await net?.close();
        rmSync(dir, { recursive: true, force: true });
      },
    };
  } catch (e) {
    await controller?.close();
    await net?.close();
    rmSync(dir, { recursive: true, force: true });
    throw e;
  }
}
