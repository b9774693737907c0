/**
 * The controller fed by the Kubernetes source, as it runs in a cluster: a
 * real kube-apiserver and etcd on loopback (built once by
 * scripts/install-kube.sh, as the tests use them), the bench's mesh created
 * in it (pods get their IPs through the status subresource, as a kubelet
 * would set them), and the controller watching it through its informers.
 * Each change is a write to the API server, timed from the request until
 * the last proxy it affects has its new snapshot in the controller's cache:
 * a pod's IP, a split's weights, a TrafficTarget's sources; and five writes
 * of a pod's status conditions, which smc does not read, counted in
 * compiles (the target: none). Runs in a process of its own
 * (bench/kube-row.ts).
 */
import { fork } from 'node:child_process';
import { request } from 'node:https';
import { rmSync } from 'node:fs';
import { apiServerCa, controllerOnKubernetes, startKubeApi, type KubeApi } from '../test/helpers/kube.js';
import { meshUnits } from './controller.js';

export interface KubeRow {
  services: number;
  shape: string;
  /** Creating the mesh's objects in the API server (not part of smc's time). */
  createMs: number;
  startMs: number;
  podMoveMs: number;
  splitMs: number;
  policyMs: number;
  noiseCompiles: number;
}

const PER_NAMESPACE = 50;
const nsOf = (i: number) => `ns-${Math.floor(i / PER_NAMESPACE)}`;
const identityOf = (i: number) => `spiffe://cluster.local/ns/${nsOf(i)}/sa/svc-${i}`;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** One request to the API server as its admin (the test token), JSON in and out. */
function call(api: KubeApi, method: string, path: string, body?: unknown, contentType = 'application/json'): Promise<unknown> {
  const url = new URL(path, api.url);
  const data = body === undefined ? undefined : JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = request(url, { method, ca: apiServerCa(api), headers: { authorization: 'Bearer smc-test-admin-token', ...(data ? { 'content-type': contentType } : {}) } }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (text += d));
      res.on('end', () => (res.statusCode! < 300 ? resolve(text ? JSON.parse(text) : undefined) : reject(new Error(`${method} ${path}: ${res.statusCode} ${text.slice(0, 500)}`))));
    });
    req.on('error', reject);
    req.end(data);
  });
}

/** Where an object of this apiVersion and kind lives in the API. */
function pathOf(o: { apiVersion: string; kind: string; metadata: { name: string; namespace?: string } }, named = false): string {
  const plural = `${o.kind.toLowerCase()}${o.kind.endsWith('s') ? 'es' : 's'}`;
  const base = o.apiVersion === 'v1' ? '/api/v1' : `/apis/${o.apiVersion}`;
  const ns = o.metadata.namespace ? `/namespaces/${o.metadata.namespace}` : '';
  return `${base}${ns}/${plural}${named ? `/${o.metadata.name}` : ''}`;
}

/** Runs `f` over `items`, `width` at a time. */
async function inParallel<T>(items: readonly T[], width: number, f: (item: T) => Promise<unknown>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: width }, async () => {
    while (next < items.length) await f(items[next++]!);
  }));
}

type Obj = { apiVersion: string; kind: string; metadata: { name: string; namespace?: string }; spec?: Record<string, unknown>; status?: Record<string, unknown> };

export async function measureKube(services: number): Promise<KubeRow> {
  const api = await startKubeApi({ serviceRange: '172.16.0.0/12' });
  let controller: Awaited<ReturnType<typeof controllerOnKubernetes>> | undefined;
  try {
    api.kubectl(['apply', '-f', 'deploy/crds']);
    api.kubectl(['wait', '--for', 'condition=established', '--timeout', '60s', 'crd', '--all']);
    const units = meshUnits(services);
    const all = [...units.values()].flatMap((u) => u.documents.map((d) => structuredClone(d.value) as Obj));
    const t0 = performance.now();
    // Namespaces first, then the rest; a pod needs an image to be accepted, and gets its IP afterwards.
    const namespaces = all.filter((o) => o.kind === 'Namespace');
    await inParallel(namespaces, 8, (o) => call(api, 'POST', pathOf(o), o));
    const rest = all.filter((o) => o.kind !== 'Namespace');
    for (const o of rest) if (o.kind === 'Pod') for (const c of (o.spec!.containers as { image?: string }[])) c.image = 'app';
    // The API server gives each Service its cluster IP.
    for (const o of rest) if (o.kind === 'Service') delete o.spec!.clusterIP;
    await inParallel(rest, 16, (o) => call(api, 'POST', pathOf(o), { ...o, status: undefined }));
    const podStatus = (o: Obj, extra: Record<string, unknown> = {}) => call(api, 'PATCH', `${pathOf(o, true)}/status`, { status: { podIP: o.status!.podIP, podIPs: [{ ip: o.status!.podIP }], ...extra } }, 'application/merge-patch+json');
    const pods = rest.filter((o) => o.kind === 'Pod');
    await inParallel(pods, 16, (o) => podStatus(o));
    const createMs = Math.round(performance.now() - t0);

    let publishes = 0;
    const log = (line: string) => {
      if (line.startsWith('controller: published')) publishes++;
    };
    const t1 = performance.now();
    controller = await controllerOnKubernetes(api.kubeconfig, { log });
    await waitUntil(() => controller!.cache.identities().length >= services, 120_000);
    const startMs = Math.round(performance.now() - t1);
    const cache = controller.cache;

    /** Sends `write` and waits (30 s at most) until each of `identities` has a new snapshot: the time to the last. */
    const timed = async (write: () => Promise<unknown>, identities: readonly string[]): Promise<number> => {
      const waiting = new Set(identities);
      const stops: (() => void)[] = [];
      let last = 0;
      const done = new Promise<boolean>((resolve) => {
        for (const id of identities) {
          const before = cache.get(id);
          stops.push(cache.watch(id, () => {
            if (cache.get(id) === before || !waiting.delete(id)) return;
            last = performance.now();
            if (waiting.size === 0) resolve(true);
          }));
        }
        setTimeout(() => resolve(false), 30_000);
      });
      const start = performance.now();
      await write();
      const seen = await done;
      for (const stop of stops) stop();
      return seen ? Math.round(last - start) : 30_000;
    };
    const median = (xs: number[]) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
    const callers = (i: number) => [1, 2, 3, 4, 5].map((d) => i - d).filter((c) => c >= 0 && nsOf(c) === nsOf(i)).map(identityOf);
    const podOf = (i: number) => pods.find((p) => p.metadata.name === `svc-${i}-pod`)!;

    // A pod's IP changes (and back): its callers' endpoints.
    const moves: number[] = [];
    for (let k = 0; k < 5; k++) {
      const i = (Math.floor(services / 2) + 10 + k * 50) % services;
      const pod = podOf(i);
      const moved = { ...pod, status: { podIP: String(pod.status!.podIP).replace(/\.10$/, '.11') } };
      moves.push(await timed(() => podStatus(moved), callers(i)));
      await timed(() => podStatus(pod), callers(i));
    }
    // A split's weights change (and back): its callers' routes.
    const splits: number[] = [];
    for (let k = 0; k < 3; k++) {
      const i = (Math.floor(services / 2) + 20 + k * 50) % services;
      const split = rest.find((o) => o.kind === 'TrafficSplit' && o.metadata.name === `split-svc-${i}`)!;
      const weights = (w: number) => () => call(api, 'PATCH', pathOf(split, true), { spec: { ...split.spec, backends: [{ service: `svc-${i}`, weight: w }, { service: `svc-${i + 1}`, weight: 100 - w }] } }, 'application/merge-patch+json');
      splits.push(await timed(weights(50), callers(i)));
      await timed(weights(90), callers(i));
    }
    // A TrafficTarget gains a source (and loses it): the destination's inbound policy, and the new caller's reach.
    const policies: number[] = [];
    for (let k = 0; k < 3; k++) {
      const i = (Math.floor(services / 2) + 30 + k * 50) % services;
      const j = i - 7;
      const target = rest.find((o) => o.kind === 'TrafficTarget' && o.metadata.name === `to-svc-${i}`)!;
      const sources = target.spec!.sources as unknown[];
      const withSources = (list: unknown[]) => () => call(api, 'PATCH', pathOf(target, true), { spec: { ...target.spec, sources: list } }, 'application/merge-patch+json');
      policies.push(await timed(withSources([...sources, { kind: 'ServiceAccount', name: `svc-${j}`, namespace: nsOf(j) }]), [identityOf(i), identityOf(j)]));
      await timed(withSources(sources), [identityOf(i), identityOf(j)]);
    }
    // A pod's status conditions written five times: counted once the controller is quiet.
    for (let seen = -1; seen !== publishes; ) {
      seen = publishes;
      await sleep(1000);
    }
    const before = publishes;
    const noisy = podOf(Math.floor(services / 2) + 40);
    for (let k = 0; k < 5; k++) {
      await podStatus(noisy, { conditions: [{ type: 'Ready', status: k % 2 === 0 ? 'True' : 'False' }] });
      await sleep(300);
    }
    const noiseCompiles = publishes - before;
    return { services, shape: `Kubernetes source, namespaces of ${PER_NAMESPACE}`, createMs, startMs, podMoveMs: median(moves), splitMs: median(splits), policyMs: median(policies), noiseCompiles };
  } finally {
    await controller?.close();
    await api.stop();
    rmSync(api.dir, { recursive: true, force: true });
  }
}

async function waitUntil(ok: () => boolean, ms: number): Promise<void> {
  const end = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > end) throw new Error(`not ready within ${ms} ms`);
    await sleep(100);
  }
}

/** `measureKube` in a fresh process (bench/kube-row.ts). */
export function measureKubeIsolated(services: number): Promise<KubeRow> {
  return new Promise((resolve, reject) => {
    const child = fork(new URL('./kube-row.js', import.meta.url), [String(services)], { execArgv: ['--expose-gc'] });
    let row: KubeRow | undefined;
    child.on('message', (m: KubeRow) => (row = m));
    child.on('exit', (code) => (row ? resolve(row) : reject(new Error(`the Kubernetes bench row for ${services} services exited (${code}) without a result`))));
  });
}
