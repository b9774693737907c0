import { fieldLine } from '../adapters/field-lines.js';
import type { Log } from './log.js';
import { openSigner, type CaChoice } from '../adapters/ca/open.js';
import { openProxyAdmission } from './proxy-admission.js';
import { issueForXdsPort, type Signer } from '../adapters/ca/signer.js';
import { openServiceCertificates } from './service-certificates.js';
import { loadEnvoyProtos } from '../adapters/envoy-protos.js';
import { createFolderSource } from '../adapters/folder-source.js';
import { createInputStore, type Source } from '../adapters/source.js';
import type { LeaderElection } from '../adapters/leader.js';

import { identityOf } from '../compiler/ir/types.js';
import type { StatusEntry } from '../compiler/status.js';
import { proxyConfigDocument } from './proxy-config.js';
import { proxyStates } from './proxy-status.js';
import { programmedList, renderStatus, statusLines, withProgrammed } from '../output/render.js';
import type { ObjectKey, ProgrammedCondition } from '../compiler/programmed.js';
import { trackProgrammed } from './programmed-tracker.js';
import { withProgrammedNotes } from '../output/explain.js';
import type { Explanation } from '../compiler/explain.js';
import { createAdminServer } from './admin-server.js';
import { createAdsServer } from './ads-server.js';
import { createSnapshotCache, type IdentityChange, type SnapshotCache } from './cache.js';
import { countInputs, countNotProgrammed, createMetrics } from './metrics.js';
import { createProxyRegistry, type ProxyRegistry } from './proxy-status.js';
import { startCompilerThread, type CompiledMesh, type CompilerThread } from './compiler-thread.js';
import { createFairGate } from './fair-gate.js';
import { createServer, isIP } from 'node:net';
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { adminToken } from './admin-auth.js';
import { lockStateFolder } from './state-lock.js';
import { checkStateFolder } from './state-safety.js';
import { StartupError } from '../adapters/startup-error.js';
import type { KubernetesIdentity } from '../adapters/kubernetes-identity.js';
import { trackVirtualMachines } from './vm-presence.js';
import type { podIdentityService } from './pod-identity.js';
import { startWebhook } from './webhook-wiring.js';

/**
 * `smc controller`: the composition. It opens the state folder and the admin
 * port, starts the sources and the compile worker, publishes each compile's
 * snapshots to the cache that the ADS server serves, and joins the parts that
 * live in modules of their own: the service certificates
 * (service-certificates.ts), which proxies the xDS port admits
 * (proxy-admission.ts), and on Kubernetes the injector and pod-identity
 * service (webhook-wiring.ts).
 */
export interface ControllerOptions {
  /** Files and folders of YAML, watched (the embedded default source). */
  readonly source: readonly string[];
  /** Sources instead of the folder of `source` (Kubernetes informers, tests). */
  readonly sources?: readonly Source[];
  /** Input changes are gathered this long after the last one before a compile (default 0: compiled as soon as the compiler is free)... */
  readonly gatherMs?: number;
  /** ...but never longer than this after the first (default 1 s). */
  readonly gatherMaxMs?: number;
  readonly stateDir: string;
  readonly xdsHost: string;
  readonly xdsPort: number;
  readonly adminHost: string;
  readonly adminPort: number;
  readonly insecureXds: boolean;
  /** How long snapshot changes are gathered before proxies are pushed (default 100 ms). */
  readonly pushWindowMs?: number;
  /** Least time between two recomputes of the Programmed conditions (default 250 ms). */
  readonly programmedIntervalMs?: number;
  /** Service (SDS) certificate lifetime; default 24 h (an external CA may apply its own). */
  readonly serviceCertTtlMs?: number;
  /** The mesh CA; default the internal one, its root in `stateDir`. */
  readonly ca?: CaChoice;
  /** Host names the admin port answers to besides IP addresses and localhost. */
  readonly adminAllowedHosts?: readonly string[];
  /**
   * With several replicas: only the leader writes status back to the sources
   * and rotates the root; every replica serves xDS. The controller stops it
   * (releasing the Lease) when it closes. Absent: this replica leads.
   */
  readonly leader?: LeaderElection;
  /** How often open streams are checked against the proxy-certificate records (default 30 s; the records' watch acts at once). */
  readonly recheckStreamsMs?: number;
  /** How long a VM's endpoints stay after its proxy's last stream closed (default 30 s). */
  readonly vmGraceMs?: number;
  /** The sidecar injector and the pods' proxy certificates, on an HTTPS port of their own (Kubernetes). */
  readonly webhook?: WebhookSettings;
  /** Aborting it while the controller starts (a source still listing) stops it: the start then fails with a StartupError. */
  readonly signal?: AbortSignal;
  readonly log: Log;
}

/** The host of HOST:PORT (an IPv6 literal without its brackets). */
const hostOf = (address: string): string => address.replace(/:\d+$/, '').replace(/^\[|\]$/g, '');

export interface WebhookSettings {
  readonly host: string;
  readonly port: number;
  /** The image injected sidecars run (smc and Envoy). */
  readonly image: string;
  /** Where injected sidecars reach the xDS port and this port. */
  readonly sidecarXdsAddress: string;
  readonly certificateUrl: string;
  readonly nativeSidecar: boolean;
  /** TokenReview and the webhook configuration's caBundle. */
  readonly kubernetes: KubernetesIdentity;
  /** The MutatingWebhookConfiguration whose caBundle the leader keeps equal to the xDS trust (default smc-sidecar-injector). */
  readonly configurationName?: string;
  /** How long a pod the API server vouched for may be unknown to the informers before its certificate is revoked (default 10 s). */
  readonly podGraceMs?: number;
}

export interface Controller {
  readonly xdsPort: number;
  readonly adminPort: number;
  readonly cache: SnapshotCache;
  readonly proxies: ProxyRegistry;
  readonly controlPlaneIdentity: string;
  /** The webhook port, when serving one. */
  readonly webhookPort?: number;
  /** Reads every source again (SIGHUP) and publishes what changed. Broken input keeps its last good objects. */
  reload(): Promise<IdentityChange[]>;
  /**
   * Rotates the mesh root with overlap (see RootRotation), waiting after each
   * step until every connected proxy has acknowledged its new secrets. A
   * rotation interrupted (a proxy that does not acknowledge in time) resumes
   * where it stopped on the next call.
   */
  rotateRoot(options?: { ackTimeoutMs?: number }): Promise<void>;
  close(): Promise<void>;
}

/** The namespaces and pods of a compile as sets, built once per compile (the webhook asks for every pod). */
export const controlPlaneIdentity = (trustDomain: string): string => identityOf(trustDomain, 'smc-system', 'smc-controller');

const DAY = 24 * 3600_000;

export async function startController(o: ControllerOptions): Promise<Controller> {
  const protos = loadEnvoyProtos();
  const cache = createSnapshotCache();
  const proxies = createProxyRegistry();
  const metrics = createMetrics();
  let status: { objects: unknown[] } = { objects: [] };
  // Which proxies carry each policy object (see programmed-tracker.ts); empty until the first compile is served.
  let programmedNow: () => ReadonlyMap<ObjectKey, ProgrammedCondition> = () => new Map();
  let programmedAsOf: () => number | undefined = () => undefined;
  /** Which compile is being served (the compile worker keeps its IR and answers /explain and /mesh there); undefined until the first. */
  let servedCompile: number | undefined;
  let worker: CompilerThread | undefined;
  // /explain costs a walk of the mesh model, in the worker: a few at a time, the rest wait briefly or are told to retry.
  const explaining = createFairGate({ slots: 2, maxWaiting: 16, maxWaitMs: 5000 });
  /** The status of the latest compile (written back by the leader). */
  let lastStatus: readonly StatusEntry[] = [];
  let ready = false;
  // What readiness waits for, named by the sources until they have delivered everything.
  let waitingFor: () => string | undefined = () => undefined;
  // The admin port opens first; /readyz says ready only once proxies can be served.
  let serving = false;

  // Nothing in the state folder is touched before it is ours and both ports are free.
  // The state folder holds the mesh CA: which one is used, and whether it is new (a relative --state starts elsewhere), is said once the ports are known to be free.
  const stateIsNew = !existsSync(join(o.stateDir, 'ca')) && !existsSync(join(o.stateDir, 'issued'));
  // Nothing in a folder others can write is trusted: the mesh CA's root key lives there.
  checkStateFolder(o.stateDir, o.log);
  const lock = await lockStateFolder(o.stateDir, { xds: where(o.xdsHost, o.xdsPort), admin: where(o.adminHost, o.adminPort) }, o.log);
  const cleanups: (() => Promise<void>)[] = [() => lock.release()];
  const unwind = async () => {
    for (const c of cleanups.reverse()) await c().catch(() => undefined);
  };
  let rotateRootNow: () => Promise<void> = () => Promise.reject(new Error('the controller is still starting'));
  const leads = () => o.leader?.isLeader() ?? true;
  if (o.leader) cleanups.push(() => o.leader!.stop({ release: true }));
  let admin: ReturnType<typeof createAdminServer>;
  let adminPort: number;
  try {
    await assertFree(o.xdsHost, o.xdsPort, '--xds-address');
    const explainServed = async (q: URLSearchParams, peer: string) => {
      if (servedCompile === undefined || !worker) return { code: 503, body: { errors: ['the controller has not compiled the mesh yet'] } };
      const turn = await explaining.enter(peer);
      if ('refused' in turn) return { code: 503, body: { errors: [`explain is ${turn.refused}; retry shortly`] } };
      try {
        const one = (k: string) => q.get(k) ?? undefined;
        const answer = await worker.explain(servedCompile, { from: one('from'), to: one('to'), method: one('method'), path: one('path'), headers: q.getAll('header') });
        // With the Programmed condition of each policy object it names: in force on which proxies.
        return answer.code === 200 ? { ...answer, body: withProgrammedNotes(answer.body as Explanation, programmedNow()) } : answer;
      } finally {
        turn();
      }
    };
    admin = createAdminServer({ proxies, metrics, ready: () => ready && serving, waitingFor: () => waitingFor(), inputs: () => {
      const asOf = programmedAsOf();
      return { objects: withProgrammed(status.objects, programmedNow()), ...(asOf !== undefined ? { programmedAsOf: new Date(asOf).toISOString() } : {}) };
    }, rotateRoot: () => rotateRootNow(), explain: explainServed, proxyConfig: (node) => proxyConfigDocument(node, proxies, cache, protos), meshGraph: async () => (servedCompile === undefined || !worker ? undefined : { ...(await worker.graph(servedCompile, proxyStates(proxies))), programmed: programmedList(programmedNow()) }), leader: () => ({ identity: o.leader?.identity, leader: leads(), holder: o.leader?.holder() }), token: await adminToken(o.stateDir), allowedHosts: o.adminAllowedHosts, log: o.log });
    adminPort = await admin.listen(o.adminHost, o.adminPort).catch((e: NodeJS.ErrnoException) => {
      throw new StartupError(e.code === 'EADDRINUSE' ? `${where(o.adminHost, o.adminPort)} is in use (--admin-address): another controller, or another program, listens there` : `cannot listen on ${where(o.adminHost, o.adminPort)} (--admin-address): ${e.message}`);
    });
    cleanups.push(() => admin.close());
    o.log(`controller: state folder ${resolve(o.stateDir)}${stateIsNew ? ' (new: nothing of an earlier mesh is there; a new mesh CA is made unless --ca-root-secret or --ca cfssl is used)' : ''}`, { level: stateIsNew ? 'warn' : 'info', state: resolve(o.stateDir) });
  } catch (e) {
    await unwind();
    throw e;
  }
  try {
    return await startServing();
  } catch (e) {
    await unwind();
    throw e;
  }

  async function startServing(): Promise<Controller> {
    // Sources deliver their initial sets before the first compile; changes then flow through the store.
    const sources = o.sources ?? [createFolderSource({ paths: o.source, log: o.log })];
    const inputs = createInputStore(sources);
    waitingFor = () => {
      const waits = sources.flatMap((s) => {
        const w = s.waitingFor?.();
        return w ? [`waiting for ${s.name}: ${w}`] : [];
      });
      return waits.length > 0 ? waits.join('; ') : undefined;
    };
    inputs.onDrift((source) => metrics.sourceDrift.inc({ source }));
    metrics.statusWrites = () => {
      const total = new Map<string, number>();
      for (const s of sources) for (const [kind, n] of s.statusWrites?.() ?? []) total.set(kind, (total.get(kind) ?? 0) + n);
      return total;
    };
    // A source may wait long (a kind the API server will not list): a stop asked for meanwhile closes it.
    const stopStarting = () => void Promise.all(sources.map((s) => s.close())).catch(() => undefined);
    o.signal?.addEventListener('abort', stopStarting, { once: true });
    // The compiler runs in a worker thread: ADS keeps answering while a large mesh compiles. It starts (and loads
    // Envoy's protos) while the sources read.
    const compiler = startCompilerThread();
    cleanups.push(() => compiler.close());
    for (const source of sources) {
      cleanups.push(() => source.close());
      if (o.signal?.aborted) break;
      await source.start(inputs.events(source));
    }
    o.signal?.removeEventListener('abort', stopStarting);
    if (o.signal?.aborted) throw new StartupError('stopped before it was ready');
    // VM endpoints follow their proxies' connections (after a start-up grace, see vm-presence.ts).
    // The tracker starts once compiles can be scheduled (below); until then no stream is open.
    const vms: { tracker?: ReturnType<typeof trackVirtualMachines> } = {};
    // The worker is sent the units that changed since its last compile, and the VMs connected now.
    // The first compile settles the trust domain; later ones keep it (a change takes effect at a restart).
    let running: string | undefined;
    const compileNow = () => {
      metrics.compiles.inc();
      const connectedVirtualMachines = vms.tracker?.connected();
      return compiler.compile(inputs.units(), { ...(connectedVirtualMachines ? { connectedVirtualMachines } : {}), ...(running ? { runningTrustDomain: running } : {}) });
    };
    const first = await compileNow();
    worker = compiler;
    const trustDomain = (running = first.settings.trustDomain);
    const ca: Signer = await openSigner(o.ca ?? { kind: 'internal' }, o.stateDir, trustDomain, o.log);
    // Certificates issued before a restart are served again while they are fresh: same SDS versions, no churn.
    const certs = await openServiceCertificates(ca, o.stateDir, o.serviceCertTtlMs ?? DAY, o.log);
    metrics.certificateExpiry = () => certs.expiry();
    const controlPlane = controlPlaneIdentity(trustDomain);

    // Renewal: a certificate is re-issued once two thirds of its lifetime have passed.
    let last = first;
    servedCompile = first.compile;
    let closed = false;
    let renewTimer: NodeJS.Timeout | undefined;
    // Input reloads and timed renewals take turns.
    let turn: Promise<unknown> = Promise.resolve();
    const serialized = <T>(f: () => Promise<T>): Promise<T> => {
      const next = turn.then(f, f);
      turn = next.catch(() => undefined);
      return next;
    };

    // The identities of the last publish (the worker sends the same array while they do not change).
    let published: readonly string[] = [];
    // An identity list all of whose certificates were issued and not yet due when it was last published, and the
    // certificates as they were then: published again with neither changed, it needs none (renewals come from their timer).
    let certified: { identities: readonly string[]; changes: number } | undefined;
    /**
     * Publishes `result`: every identity's snapshot, or with `renewals` only
     * the snapshots of identities whose certificate is due (a renewal
     * rebuilds that identity alone, never the mesh). The worker sends the
     * snapshots that changed, checked for consistency as it built them.
     */
    // Set once the ADS server serves (the Programmed conditions follow what is published).
    let afterPublish: (identities: readonly string[]) => void = () => {};
    const publish = async (result: CompiledMesh, renewals = false): Promise<IdentityChange[]> => {
      const identities = result.identities;
      const renewed = !renewals && certified?.identities === identities && certified.changes === certs.changes ? [] : certs.dueOf(identities);
      // Many certificates to issue (a first start): the worker translates everything but the secrets meanwhile.
      // (Should that fail, the snapshots below do the work.)
      const prepared = !renewals && renewed.length > 1 ? compiler.prepare(certs.inputs(identities)).catch(() => undefined) : undefined;
      await certs.issue(renewed);
      await prepared;
      if (!renewals && identities !== published) {
        // Identities that left the mesh are no longer renewed.
        await certs.keepOnly(new Set(identities));
        published = identities;
      }
      if (!renewals) certified = { identities, changes: certs.changes };
      const certificates = certs.inputs(identities);
      // Built by the worker from the IR of its latest compile (the one being published): only the snapshots whose plan changed come back.
      // The worker checked that references close in each snapshot it built (on the resources, before encoding them).
      const { changed, moved, removed, complete, inconsistencies: broken } = await compiler.snapshots(certificates, renewals ? renewed : undefined);
      if (broken.length > 0) {
        o.log(`controller: not publishing inconsistent snapshots (a bug in smc); the last good ones keep serving:\n${broken.join('\n')}`, { level: 'error' });
        // The worker counts them as sent: it sends every snapshot next time.
        await compiler.reset();
        return [];
      }
      last = result;
      servedCompile = result.compile;
      // A complete answer (the first, or after a reset) replaces the cache; otherwise only what changed is applied.
      const changes = complete && !renewals ? cache.setSnapshots(changed) : cache.update(changed, removed, moved);
      ready = true;
      if (!renewals || changes.length > 0) {
        // A renewal rebuilds only the renewed identities' snapshots; the log says which kind of publish it was.
        const count = renewals ? renewed.length : identities.length;
        o.log(`controller: published ${count} ${renewals ? 'renewed' : 'proxy'} snapshot(s); ${changes.length} identity(ies) changed`, { snapshots: count, changed: changes.length, renewal: renewals });
      }
      scheduleRenewal();
      afterPublish(changes.map((c) => c.identity));
      return changes;
    };
    /**
     * The renewal runs when the first certificate is due (and, after a
     * failure, not before its retry). Every publish schedules it again, but
     * never later than a renewal already set: a controller publishing more
     * often than the delay must not keep pushing a due renewal back until
     * certificates expire under live traffic.
     */
    let renewAt: number | undefined;
    let retryAfter = 0;
    const scheduleRenewal = () => {
      const next = certs.nextRenewal();
      if (closed || next === undefined) {
        clearTimeout(renewTimer);
        renewAt = undefined;
        return;
      }
      const at = Math.max(next, Date.now() + 100, retryAfter);
      if (renewAt !== undefined && renewAt <= at) return;
      clearTimeout(renewTimer);
      renewAt = at;
      renewTimer = setTimeout(() => {
        renewAt = undefined;
        void serialized(() => publish(last, true)).then(
          () => void (retryAfter = 0),
          (e: Error) => {
            o.log(`ca: renewal failed, retrying in 10s: ${e.message}`, { level: 'error' });
            retryAfter = Date.now() + 10_000;
            scheduleRenewal();
          },
        );
      }, Math.min(at - Date.now(), 2 ** 31 - 1));
      renewTimer.unref();
    };
    let logged = new Set<string>();
    o.leader?.onChange((now) => {
      if (!now) return;
      for (const source of sources) source.reportStatus?.(lastStatus);
      for (const source of sources) source.reportProgrammed?.(programmedNow());
    });
    const reload = async (compiled?: CompiledMesh): Promise<IdentityChange[]> => {
      const result = compiled ?? (await compileNow());
      // The worker sends the status only when it changed (an endpoint change usually leaves it as it was).
      if (result.status) {
        lastStatus = result.status;
        countInputs(metrics, result.status);
      }
      // Only the leader writes status back (what differs from what the objects hold: a re-created object gets it again).
      if (leads()) for (const source of sources) source.reportStatus?.(lastStatus);
      let changes: IdentityChange[];
      try {
        changes = await publish(result);
      } finally {
        // Rendered and logged once the proxies have their snapshots: placing each problem at its field's line reads the
        // files it names again (a file of many documents changed by the write takes tens of milliseconds to parse).
        if (result.status) {
          // Each status line is logged when it first appears, not again on every compile.
          const lines = new Set(statusLines(result.status, fieldLine));
          for (const line of lines) if (!logged.has(line)) o.log(`input: ${line}`, { level: / error: /.test(line) ? 'warn' : 'info' });
          logged = lines;
          status = { objects: renderStatus(result.status, { origins: true }) };
        }
      }
      // Only the leader revokes (every replica would otherwise revoke the same certificates).
      if (leads()) await podCertificates?.podsGone().catch((e: Error) => o.log(`ca: revoking the certificates of deleted pods failed: ${e.message}`, { level: 'error' }));
      return changes;
    };
    let podCertificates: ReturnType<typeof podIdentityService> | undefined;
    await serialized(() => reload(first));
    // A change is compiled as soon as the compiler is free; changes that arrive while it compiles are gathered
    // into the next compile (one compile waits at most: it reads the inputs as they are when it starts).
    // `gatherMs` adds a quiet period first (`gatherMaxMs` after the first change at most).
    let gatherTimer: NodeJS.Timeout | undefined;
    let firstChangeAt: number | undefined;
    let waiting = false;
    const compileSoon = () => {
      if (closed) return;
      const now = Date.now();
      firstChangeAt ??= now;
      clearTimeout(gatherTimer);
      const wait = Math.max(0, Math.min(o.gatherMs ?? 0, firstChangeAt + (o.gatherMaxMs ?? 1000) - now));
      gatherTimer = setTimeout(() => {
        firstChangeAt = undefined;
        if (waiting) return;
        waiting = true;
        void serialized(() => {
          waiting = false;
          return reload();
        }).catch((e: Error) => o.log(`controller: compile failed (a bug in smc); the last good snapshots keep serving: ${e.stack ?? e.message}`, { level: 'error' }));
      }, wait);
    };
    inputs.onChange(compileSoon);
    const tracker = (vms.tracker = trackVirtualMachines(proxies, o.vmGraceMs ?? 30_000, compileSoon));
    cleanups.push(async () => tracker.close());
    cleanups.push(async () => clearTimeout(gatherTimer));

    let tls;
    // The addresses it serves on are in its certificate too (the API server checks the webhook's by address).
    const served = [o.xdsHost, o.webhook?.host].filter((h): h is string => h !== undefined && isIP(h) !== 0 && h !== '0.0.0.0' && h !== '::' && h !== '127.0.0.1');
    // So are the names sidecars and the API server reach it by (its Service's, in whatever namespace it runs).
    const reachedAs = o.webhook ? [hostOf(o.webhook.sidecarXdsAddress), hostOf(o.webhook.certificateUrl.replace(/^https:\/\//, ''))].filter((h) => isIP(h) === 0) : [];
    const serverOptions = { ttlMs: 30 * DAY, dnsNames: [...new Set(['localhost', 'smc-controller', 'smc-controller.smc-system.svc', ...reachedAs])], ipAddresses: ['127.0.0.1', ...new Set(served)] };
    const serverCertificate = o.insecureXds && !o.webhook ? undefined : await issueForXdsPort(ca, controlPlane, serverOptions);
    if (o.insecureXds) {
      o.log('controller: --insecure-xds: the xDS port is PLAINTEXT and trusts any node id. Proxies can impersonate each other and receive any identity\'s keys. For local experiments only.', { level: 'warn' });
    } else {
      const server = serverCertificate!;
      tls = { certificateChain: server.certificateChain, privateKey: server.privateKey, trustBundle: ca.xdsTrust?.() ?? ca.trustBundle() };
    }
    const admission = await openProxyAdmission(o.ca, o.stateDir, o.log);
    const proxyCertificates = admission.records;
    const ads = createAdsServer({ cache, protos, tls, authorizeCertificate: (c) => admission.authorize(c), trustDomain: () => trustDomain, metrics, proxies, log: o.log, pushWindowMs: o.pushWindowMs });
    const xdsPort = await ads.listen(o.xdsHost, o.xdsPort).catch((e: Error) => {
      throw new StartupError(`cannot serve xDS on ${where(o.xdsHost, o.xdsPort)} (--xds-address): ${e.message}`);
    });
    cleanups.push(() => ads.close());
    serving = true;
    // Programmed: which proxies carry each policy object, worked out again when what they took changed.
    const programmed = trackProgrammed({ proxies, snapshotOf: (id) => cache.get(id), ask: (q) => compiler.programmed(q), intervalMs: o.programmedIntervalMs, log: (m) => o.log(m, { level: 'warn' }), observe: (seconds) => metrics.programmedDuration.observe(seconds) });
    cleanups.push(async () => programmed.close());
    programmedNow = () => programmed.current();
    programmedAsOf = () => programmed.asOf();
    afterPublish = (identities) => programmed.touch(identities);
    programmed.onChange((conditions) => {
      countNotProgrammed(metrics, conditions);
      if (leads()) for (const source of sources) source.reportProgrammed?.(conditions);
    });
    programmed.touch();
    // A revoked proxy certificate loses its open streams at once, not at its next reconnect; the pod certificates' view follows every record.
    const stopFollowing = admission.follow(ads, (r) => podCertificates?.record(r), o.recheckStreamsMs ?? 30_000);
    cleanups.push(async () => stopFollowing());
    o.log(`controller: xDS (ADS, ${o.insecureXds ? 'plaintext' : 'mutual TLS'}) on ${o.xdsHost}:${xdsPort}, admin on http://${o.adminHost}:${adminPort}`);

    let webhookPort: number | undefined;
    if (o.webhook) {
      const webhook = await startWebhook(o.webhook, { ca, trustDomain, controlPlane, records: proxyCertificates, serverCertificate: serverCertificate!, latest: () => last, leads, leader: o.leader, log: o.log });
      cleanups.push(() => webhook.close());
      podCertificates = webhook.pods;
      webhookPort = webhook.port;
    }

    const allAcknowledged = async (what: string, timeoutMs: number) => {
      const end = Date.now() + timeoutMs;
      for (;;) {
        const behind = proxies.list().filter((p) => {
          const t = p.types.secret;
          if (t?.sent === undefined) return false; // no SDS (proxyless)
          return t.acked !== cache.get(p.identity)?.types.secret.version;
        });
        if (behind.length === 0) return;
        if (Date.now() > end) throw new Error(`root rotation paused: ${behind.map((p) => p.nodeId).join(', ')} did not acknowledge ${what} within ${timeoutMs} ms; run it again to resume`);
        await new Promise((r) => setTimeout(r, 100));
      }
    };
    const rotateRoot = async (options: { ackTimeoutMs?: number } = {}): Promise<void> => {
      if (!leads()) throw new Error(`this replica (${o.leader?.identity}) is not the leader; the leader (${o.leader?.holder() ?? 'unknown'}) rotates the root`);
      const rotation = ca.rotation;
      if (!rotation) throw new Error(`the CA ${ca.name} is not rotated by smc: rotate its root at the CA`);
      const timeout = options.ackTimeoutMs ?? 60_000;
      if (rotation.phase() === 'idle') {
        await serialized(async () => {
          await rotation.begin();
          await publish(last);
        });
      }
      await allAcknowledged('the trust bundle with both roots', timeout);
      if (rotation.phase() === 'overlap') {
        await serialized(async () => {
          await rotation.switchSigner();
          // Every leaf is re-issued by the new root.
          certs.clear();
          await publish(last);
        });
      }
      await allAcknowledged('certificates from the new root', timeout);
      await serialized(async () => {
        await rotation.finish();
        await publish(last);
      });
    };

    rotateRootNow = () => rotateRoot();

    return {
      xdsPort,
      adminPort,
      rotateRoot,
      cache,
      proxies,
      controlPlaneIdentity: controlPlane,
      ...(webhookPort !== undefined ? { webhookPort } : {}),
      async reload() {
      for (const source of sources) await source.resync();
      // Everything again: the worker resends every snapshot, and the cache is made exactly that (whatever it held).
      return serialized(async () => {
        await compiler.reset();
        return reload();
      });
    },
      async close() {
        closed = true;
        clearTimeout(renewTimer);
        await unwind();
      },
    };
  }
}

/** `host:port`, an IPv6 host in brackets. */
const where = (host: string, port: number) => `${host.includes(':') ? `[${host}]` : host}:${port}`;

/** Fails with a clear message when host:port cannot be bound (checked before any state is touched). */
async function assertFree(host: string, port: number, flag: string): Promise<void> {
  if (port === 0) return;
  const probe = createServer();
  await new Promise<void>((resolve, reject) => {
    probe.once('error', (e: NodeJS.ErrnoException) => {
      const at = where(host, port);
      reject(new StartupError(e.code === 'EADDRINUSE' ? `${at} is in use (${flag}): another controller, or another program, listens there` : `cannot listen on ${at} (${flag}): ${e.message}`));
    });
    probe.listen(port, host, () => probe.close(() => resolve()));
  });
}
