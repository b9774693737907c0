import type { openProxyCertificateRecords } from '../adapters/ca/open.js';
import { issueForXdsPort, PROXY_CERTIFICATE_TTL_MS, type IssuedCertificate, type Signer } from '../adapters/ca/signer.js';
import type { LeaderElection } from '../adapters/leader.js';
import { StartupError } from '../adapters/startup-error.js';
import { TOKEN_AUDIENCE } from '../output/inject.js';
import type { CompiledMesh } from './compiler-thread.js';
import type { WebhookSettings } from './controller.js';
import type { Log } from './log.js';
import { podIdentityService } from './pod-identity.js';
import { createWebhookServer } from './webhook-server.js';

/**
 * The webhook port on Kubernetes: the sidecar injector, and the pod-identity
 * service that gives injected sidecars their proxy certificates. Both read
 * the latest published mesh (which namespaces and pods are in it). The
 * leader keeps the injector's configuration trusting this CA.
 */
export interface Webhook {
  readonly port: number;
  readonly pods: ReturnType<typeof podIdentityService>;
  close(): Promise<void>;
}

export interface WebhookContext {
  readonly ca: Signer;
  readonly trustDomain: string;
  readonly controlPlane: string;
  readonly records: Awaited<ReturnType<typeof openProxyCertificateRecords>>;
  /** The certificate the port serves with (the xDS port's). */
  readonly serverCertificate: IssuedCertificate;
  /** The latest published compile. */
  readonly latest: () => CompiledMesh;
  readonly leads: () => boolean;
  readonly leader: LeaderElection | undefined;
  readonly log: Log;
}

// Sets of the namespaces and pods of a compile, made once per compile (each request asks).
const namespaceSets = new WeakMap<CompiledMesh, ReadonlySet<string>>();
const podSets = new WeakMap<CompiledMesh, ReadonlySet<string>>();
const setOf = (sets: WeakMap<CompiledMesh, ReadonlySet<string>>, c: CompiledMesh, list: readonly string[]) => {
  let set = sets.get(c);
  if (!set) sets.set(c, (set = new Set(list)));
  return set;
};

export async function startWebhook(w: WebhookSettings, x: WebhookContext): Promise<Webhook> {
  const { ca, log } = x;
  const xdsTrust = () => ca.xdsTrust?.() ?? ca.trustBundle();
  const inMesh = (ns: string) => setOf(namespaceSets, x.latest(), x.latest().namespaces).has(ns);
  const cleanups: (() => Promise<void>)[] = [];
  const close = async () => {
    for (const c of cleanups.reverse()) await c().catch(() => undefined);
  };
  try {
    const pods = podIdentityService({
      review: (token) => w.kubernetes.reviewToken(token, TOKEN_AUDIENCE),
      inMesh,
      trustDomain: () => x.trustDomain,
      issue: (identity) => issueForXdsPort(ca, identity, { ttlMs: PROXY_CERTIFICATE_TTL_MS }),
      xdsTrust,
      controlPlaneIdentity: x.controlPlane,
      records: x.records,
      ...(w.podGraceMs !== undefined ? { graceMs: w.podGraceMs } : {}),
      presentPods: () => setOf(podSets, x.latest(), x.latest().pods),
      log,
    });
    cleanups.push(async () => pods.close());
    const server = createWebhookServer({
      tls: x.serverCertificate,
      inject: () => ({ image: w.image, xdsAddress: w.sidecarXdsAddress, certificateUrl: w.certificateUrl, trustBundle: xdsTrust(), defaultInterceptionMode: x.latest().settings.defaultInterceptionMode, nativeSidecar: w.nativeSidecar }),
      inMesh,
      proxyCertificate: (body, peer) => pods.handle(body, peer),
      log,
    });
    const at = (port: number) => `${w.host.includes(':') ? `[${w.host}]` : w.host}:${port}`;
    const port = await server.listen(w.host, w.port).catch((e: Error) => {
      throw new StartupError(`cannot serve the webhook on ${at(w.port)} (--webhook-address): ${e.message}`);
    });
    cleanups.push(() => server.close());
    log(`controller: sidecar injector and proxy certificates on https://${at(port)}`);
    // The leader keeps the injector's configuration trusting this CA (a new root, after a rotation, too).
    const name = w.configurationName ?? 'smc-sidecar-injector';
    const syncCaBundle = async () => {
      if (!x.leads()) return;
      const found = await w.kubernetes.setWebhookCaBundle(name, xdsTrust()).catch((e: Error) => (log(`webhook: ${e.message}`), true));
      if (!found) log(`webhook: MutatingWebhookConfiguration ${name} not found: pods are not injected until it is applied (deploy/injector.yaml)`);
    };
    await syncCaBundle();
    x.leader?.onChange((now) => void (now && syncCaBundle()));
    // Applied after the controller started, or changed by someone else: filled in as soon as the watch says so.
    const stopWatch = w.kubernetes.watchWebhookConfiguration(name, () => void syncCaBundle(), (m) => log(`webhook: ${m}`, { level: 'warn' }));
    cleanups.push(async () => stopWatch());
    // The roots rotated: checked again every 30 s too (a read, and a patch only when it differs).
    const resync = setInterval(() => void syncCaBundle(), 30_000);
    resync.unref();
    cleanups.push(async () => clearInterval(resync));
    return { port, pods, close };
  } catch (e) {
    await close();
    throw e;
  }
}
