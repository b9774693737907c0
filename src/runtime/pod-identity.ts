import type { Log } from './log.js';
import type { IssuedCertificate } from '../adapters/ca/signer.js';
import type { ProxyCertificateRecord, ProxyCertificates } from '../adapters/ca/proxy-certificates.js';
import { certificateFacts } from '../adapters/ca/x509.js';
import type { PodToken } from '../adapters/kubernetes-identity.js';
import { identityOf } from '../compiler/ir/types.js';
import { clientText } from '../compiler/client-text.js';
import { TOKEN_AUDIENCE } from '../output/inject.js';
import { createFairGate } from './fair-gate.js';
import { createLimitedLog } from './log-limit.js';

/**
 * How an injected sidecar gets its proxy certificate, with no credential
 * that another pod could reuse:
 * 1. the kubelet gives the pod a projected service-account token of audience
 *    `smc`, bound to the pod (it names the pod and its uid, expires within the
 *    hour, and stops being valid when the pod is deleted);
 * 2. the sidecar (`smc sidecar`) posts it to the controller over TLS, checking
 *    the controller's SPIFFE ID;
 * 3. the controller asks the API server whose token it is (TokenReview) and
 *    issues a proxy certificate for that pod's service account, already
 *    claimed by the node id `NS/SA/POD`: no other node id can open a stream
 *    with it;
 * 4. when the pod is gone from the mesh, its certificates are revoked and
 *    their streams closed.
 * The identity comes from the API server's answer only: nothing in the
 * request can ask for another service account or pod.
 */
export interface PodIdentityOptions {
  readonly review: (token: string) => Promise<{ pod: PodToken } | { refused: string } | { unavailable: string }>;
  readonly inMesh: (namespace: string) => boolean | undefined;
  readonly trustDomain: () => string;
  /** Signs a proxy certificate for the xDS port (its own trust anchor). */
  readonly issue: (identity: string) => Promise<IssuedCertificate>;
  /** Roots the sidecar must trust the xDS port with. */
  readonly xdsTrust: () => string;
  readonly controlPlaneIdentity: string;
  readonly records: ProxyCertificates;
  /** NS/NAME of every pod in the mesh now (undefined before the first compile). */
  readonly presentPods: () => ReadonlySet<string> | undefined;
  readonly graceMs?: number;
  readonly log: Log;
}

/** A pod the API server vouched for may not have reached the controller's informer yet: its certificate is not revoked for want of it this soon. */
const GRACE_MS = 10_000;

export interface ProxyCertificateAnswer {
  readonly nodeId: string;
  readonly identity: string;
  readonly certificateChain: string;
  readonly privateKey: string;
  readonly trustBundle: string;
  readonly controlPlaneIdentity: string;
}

const MAX_TOKEN = 16 * 1024;
/**
 * TokenReviews at once, and per peer (a pod asks from its own address); a request waits its turn
 * (the peers take turns) for at most CERTIFICATE_WAIT_MS before it is told to retry.
 */
export const CERTIFICATE_REVIEWS = { slots: 8, perPeer: 1, maxWaiting: 256, maxWaitingPerPeer: 2, maxWaitMs: 10_000 };

/**
 * Why a token cannot be one the API server would accept for a pod's sidecar, read from the token
 * itself (no signature is checked here: the TokenReview does that): a TokenReview is spent only on a
 * JWT for audience `audience`, in its validity period, bound to a pod.
 */
export function tokenShapeProblem(token: string, audience: string, now: number): string | undefined {
  const parts = token.split('.');
  if (parts.length !== 3 || parts.some((p) => !/^[A-Za-z0-9_-]+$/.test(p))) return 'the token is not a JWT (the pod\'s projected service-account token is one)';
  let claims: { aud?: unknown; exp?: unknown; nbf?: unknown; 'kubernetes.io'?: { pod?: { name?: unknown; uid?: unknown } } };
  try {
    claims = JSON.parse(Buffer.from(parts[1]!, 'base64url').toString('utf8')) as typeof claims;
  } catch {
    return 'the token\'s claims are not JSON';
  }
  if (typeof claims !== 'object' || claims === null) return 'the token\'s claims are not an object';
  const aud = Array.isArray(claims.aud) ? claims.aud : [claims.aud];
  if (!aud.includes(audience)) return `the token is not for audience "${audience}"`;
  if (typeof claims.exp !== 'number' || claims.exp * 1000 <= now) return 'the token has expired (the kubelet renews the projected token; read it again)';
  if (typeof claims.nbf === 'number' && claims.nbf * 1000 > now + 60_000) return 'the token is not valid yet';
  const pod = claims['kubernetes.io']?.pod;
  if (typeof pod?.name !== 'string' || typeof pod.uid !== 'string') return 'the token is not bound to a pod (a sidecar presents the projected token the kubelet gives its pod, which dies with the pod)';
  return undefined;
}

export function podIdentityService(o: PodIdentityOptions) {
  const gate = createFairGate(CERTIFICATE_REVIEWS);
  // A flood of refusals is one line a minute per peer and reason.
  const refusals = createLimitedLog({ everyMs: 60_000 });
  const refuse = (peer: string, status: number, reason: string, headers?: Record<string, string>) => {
    refusals.event(`${peer} ${reason}`, (n) => o.log(`ca: refused a proxy certificate request from ${peer}: ${reason}${n > 0 ? ` (${n} more like it in the last minute)` : ''}`, { level: status === 503 ? 'error' : 'warn', peer }));
    return { status, body: { error: reason }, ...(headers ? { headers } : {}) };
  };
  const grace = o.graceMs ?? GRACE_MS;
  // Serials issued to each pod (NS/NAME), with when; read from the records once.
  let byPod: Promise<Map<string, { serial: string; at: number }[]>> | undefined;
  let recheck: NodeJS.Timeout | undefined;
  /** NS/NAME of the pod a record was issued to (records name NS/NAME/UID). */
  const podOf = (pod: string) => pod.split('/').slice(0, 2).join('/');
  const issuedToPods = () =>
    (byPod ??= o.records.list().then(({ records }) => {
      const m = new Map<string, { serial: string; at: number }[]>();
      for (const r of records) {
        if (!r.pod || r.state === 'revoked') continue;
        const key = podOf(r.pod);
        m.set(key, [...(m.get(key) ?? []), { serial: r.serial, at: Date.parse(r.issuedAt) }]);
      }
      return m;
    }));

  const revoke = async (serials: readonly string[], why: string) => {
    for (const serial of serials) {
      const { revoked } = await o.records.revoke({ serial }, new Date());
      for (const r of revoked) o.log(`ca: revoked proxy certificate ${r.serial} of ${r.identity} (${why})`);
    }
  };

  return {
    /** POST /v1/proxy-certificate from `peer`: `{ "token": "<the pod's projected token>" }`. */
    async handle(body: unknown, peer = ''): Promise<{ status: number; body: unknown; headers?: Record<string, string> }> {
      const token = (body as { token?: unknown } | null)?.token;
      if (typeof token !== 'string' || token.length === 0 || token.length > MAX_TOKEN) {
        return { status: 400, body: { error: `expected {"token": "<the pod's service-account token of audience smc>"} (at most ${MAX_TOKEN} characters)` } };
      }
      const shape = tokenShapeProblem(token, TOKEN_AUDIENCE, Date.now());
      if (shape) return refuse(peer, 403, shape);
      const turn = await gate.enter(peer);
      if ('refused' in turn) return { status: 429, body: { error: `certificate requests are ${turn.refused}; retry shortly` }, headers: { 'retry-after': '2' } };
      try {
        const reviewed = await o.review(token);
        if ('unavailable' in reviewed) return refuse(peer, 503, `${reviewed.unavailable}; the API server must vouch for the token: retry`, { 'retry-after': '5' });
        if ('refused' in reviewed) return refuse(peer, 403, reviewed.refused);
        const p = reviewed.pod;
        if (o.inMesh(p.namespace) !== true) {
          return { status: 403, body: { error: `namespace ${p.namespace} is not in the mesh (label smc.dev/mesh: enabled)` } };
        }
        const identity = identityOf(o.trustDomain(), p.namespace, p.serviceAccount);
        const nodeId = `${p.namespace}/${p.serviceAccount}/${p.podName}`;
        // Read before this certificate is recorded, so that only what the pod had before is revoked below.
        const pods = await issuedToPods();
        const key = `${p.namespace}/${p.podName}`;
        const before = (pods.get(key) ?? []).map((x) => x.serial);
        const cert = await o.issue(identity);
        const serial = certificateFacts(cert.certificateChain).serial;
        await o.records.recordIssuedToPod({ serial, identity, issuedAt: cert.issuedAt, notAfter: cert.notAfter, nodeId, pod: `${p.namespace}/${p.podName}/${p.podUid}` });
        // A restarted sidecar asks again: what its pod had before goes.
        await revoke(before.filter((x) => x !== serial), `pod ${key} was given a new one`);
        pods.set(key, [{ serial, at: Date.now() }]);
        o.log(`ca: issued proxy certificate ${serial} of ${identity} to pod ${clientText(key, 128)} (node ${clientText(nodeId, 200)})`, { identity, nodeId: clientText(nodeId, 200), serial });
        const answer: ProxyCertificateAnswer = { nodeId, identity, certificateChain: cert.certificateChain, privateKey: cert.privateKey, trustBundle: o.xdsTrust(), controlPlaneIdentity: o.controlPlaneIdentity };
        return { status: 200, body: answer };
      } finally {
        turn();
      }
    },
    /**
     * A record written by any replica (the controller's one watch of the
     * records passes each on): what other replicas issue and revoke reaches
     * this one's view of which pod holds which certificate.
     */
    record(r: ProxyCertificateRecord): void {
      const pod = r.pod;
      if (!pod || !byPod) return;
      void byPod.then((m) => {
        const key = podOf(pod);
        const serials = (m.get(key) ?? []).filter((x) => x.serial !== r.serial);
        if (r.state !== 'revoked') serials.push({ serial: r.serial, at: Date.parse(r.issuedAt) });
        if (serials.length > 0) m.set(key, serials);
        else m.delete(key);
      });
    },
    /** Revokes the certificates of pods that are no longer in the mesh; called after every compile. */
    async podsGone(): Promise<void> {
      const present = o.presentPods();
      if (!present) return;
      const pods = await issuedToPods();
      let waiting = false;
      for (const [key, serials] of [...pods]) {
        if (present.has(key)) continue;
        if (serials.some((s) => Date.now() - s.at < grace)) {
          waiting = true;
          continue;
        }
        pods.delete(key);
        await revoke(serials.map((s) => s.serial), `pod ${key} is gone`);
      }
      clearTimeout(recheck);
      if (waiting) {
        recheck = setTimeout(() => void this.podsGone().catch((e: Error) => o.log(`ca: ${e.message}`)), grace);
        recheck.unref();
      }
    },
    close(): void {
      clearTimeout(recheck);
    },
  };
}
