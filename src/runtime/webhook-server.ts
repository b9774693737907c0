import type { Log } from './log.js';
import { createServer, type Server } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { injectPod, type InjectOptions } from '../output/inject.js';
import { clientText } from '../compiler/client-text.js';
import { guardConnections, type ConnectionLimits } from './connection-guard.js';
import { createFairGate } from './fair-gate.js';
import { createLimitedLog } from './log-limit.js';
import { handshakeReason } from './mtls-listener.js';

/**
 * The controller's HTTPS port for the Kubernetes API server and for sidecars:
 * - `POST /inject`: the sidecar injector (a mutating admission webhook,
 *   `admission.k8s.io/v1` AdmissionReview in and out);
 * - `POST /v1/proxy-certificate`: a starting sidecar trades its pod-bound
 *   service-account token for its proxy certificate (see pod-identity.ts).
 * Its serving certificate comes from the mesh CA (the xDS port's trust).
 * Anyone who can reach the port can send anything, so everything is bounded:
 * connections (WEBHOOK_CONNECTION_LIMITS), the TLS handshake, bodies and
 * their nesting, the review work running at once (by the bytes it holds:
 * more waits briefly, then gets 429), and what an answer or a log line says
 * of the request. Every malformed request gets a 4xx that says what was
 * expected; nothing a client sends can take the server down.
 */
export interface WebhookOptions {
  readonly tls: { certificateChain: string; privateKey: string };
  /** The injector's settings as they are now (the mesh's default mode follows MeshConfig). */
  readonly inject: () => InjectOptions;
  /** Whether a namespace is in the mesh now; undefined while the mesh is not known yet. */
  readonly inMesh: (namespace: string) => boolean | undefined;
  /** Answers a proxy certificate request from `peer` (see pod-identity.ts). */
  readonly proxyCertificate: (body: unknown, peer: string) => Promise<{ status: number; body: unknown; headers?: Record<string, string> }>;
  readonly log: Log;
}

/** A pod is at most about 1.5 MiB in etcd; the review wraps it (and its old version on UPDATE). */
export const MAX_REVIEW_BYTES = 4 * 1024 * 1024;
const MAX_CERTIFICATE_REQUEST_BYTES = 64 * 1024;
/** A Kubernetes object nests a few tens of levels; JSON deeper than this is refused before it is parsed. */
export const MAX_JSON_DEPTH = 100;
/** Review bodies held at once: a review costs a few times its bytes while it is parsed and patched. */
export const REVIEW_BYTES_IN_FLIGHT = 8 * 1024 * 1024;
/** What an answer or a log line repeats of a refusal's reason. */
const MAX_REASON = 1024;

/** The API server keeps a pool of connections to the webhook; sidecars make one each when they start. */
export const WEBHOOK_CONNECTION_LIMITS: ConnectionLimits = { maxConnections: 1024, maxPerPeer: 256, firstRequestMs: 10_000, idleMs: 60_000 };

export function createWebhookServer(o: WebhookOptions): { listen(host: string, port: number): Promise<number>; close(): Promise<void> } {
  // Reviews run a few at a time, bounded by the bytes they hold; the rest wait their turn (briefly) unread.
  const reviews = createFairGate({ slots: 8, maxWaiting: 64, maxWaitMs: 5000, capacity: REVIEW_BYTES_IN_FLIGHT });
  const server: Server = createServer({ cert: o.tls.certificateChain, key: o.tls.privateKey, handshakeTimeout: 10_000 }, (req, res) => {
    void handle(req, res).catch((e: Error) => {
      o.log(`webhook: ${req.method} ${clientText(req.url ?? '', 200)} failed (a bug in smc): ${e.stack ?? e.message}`, { level: 'error' });
      if (!res.headersSent) send(res, 500, { error: 'internal error; see the controller log' });
      else res.destroy();
    });
  });
  // A slow or silent client cannot hold a connection open.
  server.headersTimeout = 10_000;
  server.requestTimeout = 30_000;
  guardConnections(server, 'webhook', WEBHOOK_CONNECTION_LIMITS, o.log);
  // A failed handshake (a client of another CA, plain text, one too slow) is logged once a minute per address and reason.
  const handshakes = createLimitedLog({ everyMs: 60_000 });
  server.on('tlsClientError', (e: NodeJS.ErrnoException, socket) => {
    const reason = handshakeReason(e.code, e.message);
    handshakes.event(`${socket.remoteAddress} ${reason}`, (n) => o.log(`webhook: TLS handshake from ${socket.remoteAddress} failed: ${reason}${n > 0 ? ` (${n} more like it in the last minute)` : ''}`, { level: 'warn' }));
  });

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = (req.url ?? '/').split('?')[0];
    if (path === '/healthz' && req.method === 'GET') return send(res, 200, { ok: true });
    if (path === '/inject') {
      if (req.method !== 'POST') return send(res, 405, { error: 'POST an admission.k8s.io/v1 AdmissionReview' });
      // A body of unknown length may be as large as any: it is counted at the bound.
      const declared = Number(req.headers['content-length'] ?? NaN);
      const cost = Number.isFinite(declared) && declared >= 0 ? Math.min(declared, MAX_REVIEW_BYTES) : MAX_REVIEW_BYTES;
      const turn = await reviews.enter(req.socket.remoteAddress ?? '', cost);
      if ('refused' in turn) {
        // Read to the end (and dropped) before the answer: a client still sending its body would otherwise see a broken pipe, not the 429.
        if (!(await drain(req, MAX_REVIEW_BYTES))) return;
        return send(res, 429, { error: `the sidecar injector is ${turn.refused}; retry` }, { 'retry-after': '1' });
      }
      try {
        const body = await readJson(req, MAX_REVIEW_BYTES);
        if ('error' in body) return send(res, body.status, { error: body.error });
        return admit(body.value, res);
      } finally {
        turn();
      }
    }
    if (path === '/v1/proxy-certificate') {
      if (req.method !== 'POST') return send(res, 405, { error: 'POST a proxy certificate request' });
      const body = await readJson(req, MAX_CERTIFICATE_REQUEST_BYTES);
      if ('error' in body) return send(res, body.status, { error: body.error });
      const answer = await o.proxyCertificate(body.value, req.socket.remoteAddress ?? '');
      return send(res, answer.status, answer.body, answer.headers);
    }
    return send(res, 404, { error: 'not found: this port serves POST /inject and POST /v1/proxy-certificate' });
  }

  function admit(review: unknown, res: ServerResponse): void {
    const r = review as { apiVersion?: unknown; kind?: unknown; request?: Record<string, unknown> } | null;
    if (typeof r !== 'object' || r === null || r.apiVersion !== 'admission.k8s.io/v1' || r.kind !== 'AdmissionReview') {
      return send(res, 400, { error: 'expected an AdmissionReview of apiVersion admission.k8s.io/v1 (set admissionReviewVersions: [v1] in the webhook configuration)' });
    }
    const request = r.request;
    if (typeof request !== 'object' || request === null || typeof request.uid !== 'string' || request.uid === '' || request.uid.length > 256) {
      return send(res, 400, { error: 'expected request.uid (a non-empty string) in the AdmissionReview' });
    }
    const uid = request.uid;
    const answer = (response: Record<string, unknown>) => send(res, 200, { apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', response: { uid, ...response } });
    const kind = request.kind as { group?: unknown; kind?: unknown } | undefined;
    const namespace = typeof request.namespace === 'string' ? request.namespace : '';
    const what = `pod ${clientText(namespace, 64)}/${clientText(podName(request.object), 64)}`;
    // Only pods being created are injected; anything else the configuration sends here passes untouched.
    if (kind?.group !== '' || kind.kind !== 'Pod' || request.operation !== 'CREATE' || request.subResource !== undefined) {
      return answer({ allowed: true });
    }
    if (o.inMesh(namespace) === false) {
      return answer({ allowed: true, warnings: [`smc: namespace ${namespace} is not in the mesh (label smc.dev/mesh: enabled); ${what} gets no sidecar`] });
    }
    const decision = injectPod(request.object, o.inject());
    if (decision.action === 'reject') {
      // What the pod said is the client's text: escaped, and cut.
      const reason = clientText(decision.message, MAX_REASON);
      o.log(`webhook: refused ${what}: ${reason}`, { level: 'warn' });
      return answer({ allowed: false, status: { code: 400, reason: 'BadRequest', message: `smc sidecar injector: ${reason}` } });
    }
    if (decision.action === 'skip') return answer({ allowed: true });
    o.log(`webhook: injected ${what}: ${decision.summary}`);
    return answer({ allowed: true, patchType: 'JSONPatch', patch: Buffer.from(JSON.stringify(decision.patch)).toString('base64') });
  }

  return {
    listen: (host, port) =>
      new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, host, () => {
          server.off('error', reject);
          resolve((server.address() as { port: number }).port);
        });
      }),
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

function podName(object: unknown): string {
  const meta = (object as { metadata?: { name?: unknown; generateName?: unknown } } | null)?.metadata;
  if (typeof meta?.name === 'string' && meta.name) return meta.name;
  if (typeof meta?.generateName === 'string') return `${meta.generateName}*`;
  return '?';
}

function send(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...headers });
  res.end(text);
}

/** Reads and drops a request body of at most `limit` bytes; false (the request destroyed) when it is larger. */
async function drain(req: IncomingMessage, limit: number): Promise<boolean> {
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > limit) {
      req.destroy();
      return false;
    }
  }
  return true;
}

/** How deeply `bytes` (JSON) nests its objects and arrays, stopping once past `max`; one pass, strings skipped. */
export function jsonDepthExceeds(bytes: Buffer, max: number): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < bytes.length; i++) {
    const c = bytes[i]!;
    if (inString) {
      if (c === 0x5c) i++; // a backslash escapes the next byte
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x7b || c === 0x5b) {
      if (++depth > max) return true;
    } else if (c === 0x7d || c === 0x5d) depth--;
  }
  return false;
}

/** The request body as JSON, at most `limit` bytes; a larger or unparsable one is refused (and the rest is not read). */
async function readJson(req: IncomingMessage, limit: number): Promise<{ value: unknown } | { status: number; error: string }> {
  if (!/^application\/json\b/i.test(req.headers['content-type'] ?? '')) return { status: 415, error: 'expected Content-Type: application/json' };
  const declared = Number(req.headers['content-length'] ?? NaN);
  if (declared > limit) {
    req.resume();
    return { status: 413, error: `the body is larger than ${limit} bytes` };
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > limit) {
      req.destroy();
      return { status: 413, error: `the body is larger than ${limit} bytes` };
    }
    chunks.push(chunk as Buffer);
  }
  const bytes = Buffer.concat(chunks);
  if (jsonDepthExceeds(bytes, MAX_JSON_DEPTH)) return { status: 400, error: `the body nests deeper than ${MAX_JSON_DEPTH} levels` };
  try {
    return { value: JSON.parse(bytes.toString('utf8')) as unknown };
  } catch (e) {
    return { status: 400, error: `the body is not JSON: ${clientText((e as Error).message, 200)}` };
  }
}
