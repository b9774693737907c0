import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { parseAllDocuments } from 'yaml';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createKubernetesSource } from '../../src/adapters/kubernetes-source.js';
import type { CaChoice } from '../../src/adapters/ca/open.js';
import { startController, type Controller, type WebhookSettings } from '../../src/runtime/controller.js';
import { freePort } from './tools.js';
import { GiveUp, waitFor } from './wait.js';

/**
 * A real Kubernetes API server and etcd on loopback, for the tests: built
 * once into .tools/ by scripts/install-kube.sh (the first build takes 10-20
 * minutes), started per test with their own data, stopped afterwards. Only
 * the API server runs: no scheduler, kubelet or controller manager, so tests
 * create what those would (pod IPs through the status subresource).
 */
export interface KubeApi {
  readonly url: string;
  /** etcd's client URL (its JSON gateway serves /v3/...). */
  readonly etcd: string;
  readonly kubeconfig: string;
  readonly dir: string;
  kubectl(args: readonly string[], input?: string): string;
  /** kubectl without blocking the event loop: for calls the API server answers only after asking a webhook served by this process. */
  kubectlAsync(args: readonly string[], input?: string): Promise<string>;
  /** SIGKILL the API server (etcd stays) and start it again on the same port; `whileDown` runs in between. */
  restartApiServer(whileDown?: () => Promise<void>): Promise<void>;
  stop(): Promise<void>;
}

let binaries: { apiserver: string; etcd: string } | undefined;
function installed() {
  if (binaries) return binaries;
  try {
    const [apiserver, etcd] = execFileSync('bash', ['scripts/install-kube.sh'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 45 * 60_000 }).trim().split('\n');
    binaries = { apiserver: apiserver!, etcd: etcd! };
    return binaries;
  } catch (e) {
    const err = e as { stderr?: string; message: string };
    throw new Error(`kube-apiserver and etcd are required for this test and could not be installed (scripts/install-kube.sh): ${(err.stderr ?? err.message).slice(-3000)}`);
  }
}

export async function startKubeApi(options: { serviceRange?: string } = {}): Promise<KubeApi> {
  const bin = installed();
  const dir = mkdtempSync(join(tmpdir(), 'smc-kube-'));
  const [etcdClient, etcdPeer, port] = [await freePort(), await freePort(), await freePort()];
  const etcd = spawn(bin.etcd, ['--data-dir', join(dir, 'etcd'), '--listen-client-urls', `http://127.0.0.1:${etcdClient}`, '--advertise-client-urls', `http://127.0.0.1:${etcdClient}`, '--listen-peer-urls', `http://127.0.0.1:${etcdPeer}`, '--initial-advertise-peer-urls', `http://127.0.0.1:${etcdPeer}`, '--initial-cluster', `default=http://127.0.0.1:${etcdPeer}`], { stdio: 'ignore' });
  const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  writeFileSync(join(dir, 'sa.pub'), publicKey.export({ type: 'spki', format: 'pem' }));
  writeFileSync(join(dir, 'sa.key'), privateKey.export({ type: 'pkcs8', format: 'pem' }));
  writeFileSync(join(dir, 'tokens.csv'), 'smc-test-admin-token,admin,admin,system:masters\n');
  mkdirSync(join(dir, 'certs'));
  let apiserver: ChildProcess | undefined;
  let log = '';
  const startApi = async () => {
    apiserver = spawn(bin.apiserver, [
      `--etcd-servers=http://127.0.0.1:${etcdClient}`,
      '--bind-address=127.0.0.1',
      `--secure-port=${port}`,
      `--cert-dir=${join(dir, 'certs')}`,
      `--token-auth-file=${join(dir, 'tokens.csv')}`,
      '--authorization-mode=RBAC',
      '--service-account-issuer=https://kubernetes.default.svc',
      `--service-account-key-file=${join(dir, 'sa.pub')}`,
      `--service-account-signing-key-file=${join(dir, 'sa.key')}`,
      `--service-cluster-ip-range=${options.serviceRange ?? '198.18.0.0/16'}`,
      '--endpoint-reconciler-type=none',
      // No controller manager makes the default service accounts a pod would need.
      '--disable-admission-plugins=ServiceAccount',
    ], { stdio: ['ignore', 'ignore', 'pipe'] });
    apiserver.stderr!.on('data', (d: Buffer) => (log = (log + d.toString()).slice(-20_000)));
    const url = `https://127.0.0.1:${port}`;
    await waitFor('the API server to be ready', async () => {
      if (apiserver!.exitCode !== null) throw new GiveUp(`kube-apiserver exited: ${log.slice(-2000)}`);
      const r = await fetchInsecure(`${url}/readyz`);
      return r === 200 ? true : undefined;
    }, 90_000);
  };
  await startApi();
  const url = `https://127.0.0.1:${port}`;
  const kubeconfig = join(dir, 'kubeconfig');
  writeFileSync(kubeconfig, [
    'apiVersion: v1', 'kind: Config', 'current-context: test',
    'clusters:', `- name: test`, `  cluster: {server: "${url}", certificate-authority: "${join(dir, 'certs', 'apiserver.crt')}"}`,
    'users:', '- name: admin', '  user: {token: smc-test-admin-token}',
    'contexts:', '- name: test', '  context: {cluster: test, user: admin}', '',
  ].join('\n'));
  const kill = (p: ChildProcess | undefined) =>
    new Promise<void>((resolve) => {
      if (!p || p.exitCode !== null || p.signalCode !== null) return resolve();
      p.once('exit', () => resolve());
      p.kill('SIGKILL');
    });
  return {
    url,
    etcd: `http://127.0.0.1:${etcdClient}`,
    kubeconfig,
    dir,
    kubectl(args, input) {
      try {
        return execFileSync('kubectl', ['--kubeconfig', kubeconfig, ...args], { encoding: 'utf8', input, stdio: ['pipe', 'pipe', 'pipe'] });
      } catch (e) {
        throw new Error(`kubectl ${args.join(' ')} failed: ${(e as { stderr?: string }).stderr ?? (e as Error).message}`);
      }
    },
    kubectlAsync(args, input) {
      return new Promise((resolve, reject) => {
        const child = execFile('kubectl', ['--kubeconfig', kubeconfig, ...args], { encoding: 'utf8' }, (e, stdout, stderr) => {
          if (e) reject(new Error(`kubectl ${args.join(' ')} failed: ${stderr || e.message}`));
          else resolve(stdout);
        });
        child.stdin!.end(input ?? '');
      });
    },
    async restartApiServer(whileDown) {
      await kill(apiserver);
      await whileDown?.();
      await startApi();
    },
    async stop() {
      await kill(apiserver);
      await kill(etcd);
      // etcd preallocates its write-ahead log: about 120 MB a run, which adds up over a suite.
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** The API server's own certificate is self-signed: readiness is probed without checking it. */
async function fetchInsecure(url: string): Promise<number | undefined> {
  const { request } = await import('node:https');
  return new Promise((resolve) => {
    const req = request(url, { rejectUnauthorized: false, timeout: 2000 }, (res) => {
      res.resume();
      resolve(res.statusCode);
    });
    req.on('error', () => resolve(undefined));
    req.on('timeout', () => req.destroy());
    req.end();
  });
}

/**
 * A controller on the API server of `kubeconfig` that may wait for its sources: its admin port is known
 * before it is ready (/readyz says what it waits for), and `abort` stops it while it starts.
 */
export async function startingOnKubernetes(kubeconfig: string, o: { ca?: CaChoice } = {}) {
  const adminPort = await freePort();
  const abort = new AbortController();
  const logs: string[] = [];
  const controller = controllerOnKubernetes(kubeconfig, { log: (l) => void logs.push(l), adminPort, signal: abort.signal, ...o });
  // A start stopped by the test fails on purpose; whoever awaits `controller` still sees any failure.
  controller.catch(() => undefined);
  const readyz = async () => {
    const r = await fetch(`http://127.0.0.1:${adminPort}/readyz`);
    return { status: r.status, body: await r.text() };
  };
  return { controller, abort, logs, readyz };
}

/** Reads the kubeconfig's CA, for clients that want it directly. */
export const apiServerCa = (api: KubeApi): string => readFileSync(join(api.dir, 'certs', 'apiserver.crt'), 'utf8');

/** Applies the bookstore example as a cluster would hold it: CRDs first, then the objects, then pod IPs through the status subresource (no kubelet here). */
export function applyBookstore(api: KubeApi): void {
  api.kubectl(['apply', '-f', 'deploy/crds']);
  api.kubectl(['wait', '--for', 'condition=established', '--timeout', '60s', 'crd', '--all']);
  api.kubectl(['apply', '-f', 'examples/bookstore']);
  for (const file of readdirSync('examples/bookstore')) {
    for (const doc of parseAllDocuments(readFileSync(join('examples/bookstore', file), 'utf8'))) {
      const o = doc.toJS() as { kind?: string; metadata?: { name: string; namespace: string }; status?: { podIP?: string } } | null;
      if (o?.kind !== 'Pod' || !o.status?.podIP) continue;
      const status = { status: { podIP: o.status.podIP, podIPs: [{ ip: o.status.podIP }] } };
      api.kubectl(['patch', 'pod', o.metadata!.name, '-n', o.metadata!.namespace, '--subresource=status', '--type=merge', '-p', JSON.stringify(status)]);
    }
  }
}

/** A kubeconfig for the same API server that authenticates with `token` (a service account's). */
export function kubeconfigWithToken(api: KubeApi, token: string, name: string): string {
  const path = join(api.dir, `kubeconfig-${name}`);
  writeFileSync(path, readFileSync(api.kubeconfig, 'utf8').replace('token: smc-test-admin-token', `token: ${token}`));
  return path;
}

/** A controller (plaintext xDS, ephemeral ports, a fresh state folder) whose source is the API server of `kubeconfig`. */
export function controllerOnKubernetes(kubeconfig: string, o: { log?: (line: string) => void; retryMs?: number; ca?: CaChoice; webhook?: WebhookSettings; xdsHost?: string; insecureXds?: boolean; stateDir?: string; adminPort?: number; signal?: AbortSignal; programmedIntervalMs?: number; pendingWriteDelayMs?: number } = {}): Promise<Controller> {
  const log = o.log ?? (() => {});
  return startController({
    source: [],
    sources: [createKubernetesSource({ kubeconfig, log, retryMs: o.retryMs ?? 200, ...(o.pendingWriteDelayMs !== undefined ? { pendingWriteDelayMs: o.pendingWriteDelayMs } : {}) })],
    ...(o.programmedIntervalMs !== undefined ? { programmedIntervalMs: o.programmedIntervalMs } : {}),
    stateDir: o.stateDir ?? join(mkdtempSync(join(tmpdir(), 'smc-kube-state-')), 'state'),
    ...(o.ca ? { ca: o.ca } : {}),
    xdsHost: o.xdsHost ?? '127.0.0.1',
    xdsPort: 0,
    adminHost: '127.0.0.1',
    adminPort: o.adminPort ?? 0,
    insecureXds: o.insecureXds ?? true,
    ...(o.webhook ? { webhook: o.webhook } : {}),
    ...(o.signal ? { signal: o.signal } : {}),
    log,
  });
}
