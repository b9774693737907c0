import { createServer, type Server, type ServerResponse } from 'node:http';
import { MESH_PAGE } from '../output/mesh-page.js';
import { PUSH_ORDER } from '../compiler/envoy/codec.js';
import { hostAllowed, tokenMatches } from './admin-auth.js';
import type { Metrics } from './metrics.js';
import { syncState, type ProxyRegistry } from './proxy-status.js';
import { guardConnections, type ConnectionLimits } from './connection-guard.js';
import type { Log } from './log.js';

/**
 * The admin HTTP port: `/healthz` (the process is up), `/readyz` (the first
 * snapshot is being served), `/status/proxies` (JSON), `/status/inputs`
 * (JSON, the status of every input object) and `/metrics` (Prometheus).
 */
export interface AdminOptions {
  readonly proxies: ProxyRegistry;
  readonly metrics: Metrics;
  readonly ready: () => boolean;
  /** What readiness waits for, when it is known (a source that has not listed everything). */
  readonly waitingFor?: () => string | undefined;
  readonly inputs: () => unknown;
  /** POST /ca/rotate-root: rotates the mesh root; answers when done (or why it paused). */
  readonly rotateRoot?: () => Promise<void>;
  /** Mutating requests must present it as `Authorization: Bearer TOKEN` (see admin-auth.ts). */
  readonly token: string;
  /** GET /status/leader: this replica's part in leader election. */
  readonly leader?: () => unknown;
  /** GET /status/proxy-config?node=NODE: what one connected proxy is served. */
  readonly proxyConfig?: (node: string | null) => { readonly code: number; readonly body: unknown };
  /** GET /mesh (a page), /mesh/graph (JSON) and /mesh/events (server-sent events): the mesh as a graph; undefined before the first compile. */
  readonly meshGraph?: () => unknown;
  /** GET /explain?from=&to=&method=&path=&header=: `smc explain` against the mesh being served. */
  readonly explain?: (query: URLSearchParams, peer: string) => Promise<{ readonly code: number; readonly body: unknown }> | { readonly code: number; readonly body: unknown };
  /** Host names (besides IP literals and localhost) requests may name in Host. */
  readonly allowedHosts?: readonly string[];
  readonly log: Log;
}

export function proxyStatusDocument(proxies: ProxyRegistry): unknown {
  return {
    proxies: proxies.list().map((p) => ({
      nodeId: p.nodeId,
      identity: p.identity,
      address: p.address,
      variant: p.variant,
      connectedSince: p.connectedSince,
      ...(p.sendBlockedSince ? { sendBlockedSince: p.sendBlockedSince } : {}),
      types: Object.fromEntries(PUSH_ORDER.map((k) => [k, { state: syncState(p.types[k]), ...p.types[k] }])),
    })),
  };
}

/** At most this many pages follow /mesh/events at once (each costs a graph per change). */
const MAX_VIEWERS = 16;
/** A viewer that has not read for this long is dropped (it holds at most one graph meanwhile). */
const VIEWER_STALL_MS = 30_000;

/** What the admin port holds for its clients (kubelet probes, Prometheus, the CLI, a few pages). */
export const ADMIN_CONNECTION_LIMITS: ConnectionLimits = { maxConnections: 256, maxPerPeer: 128, firstRequestMs: 10_000, idleMs: 60_000 };

export function createAdminServer(o: AdminOptions): { listen(host: string, port: number): Promise<number>; close(): Promise<void> } {
  // /mesh/events: the graph is built at most once a second while someone watches, and sent when it changed.
  const viewers = new Map<ServerResponse, { blockedSince?: number; pending?: string; lastWrite: number }>();
  let lastGraph = '';
  let ticker: NodeJS.Timeout | undefined;
  // The graph costs the whole mesh to build: it is built at most once a second, however many ask (the admin port may face the cluster).
  let built: { at: number; text: Promise<string> } | undefined;
  const graphText = (): Promise<string> => {
    const now = Date.now();
    if (!built || now - built.at >= 1000) built = { at: now, text: Promise.resolve(o.meshGraph?.()).then((g) => JSON.stringify(g ?? null)) };
    return built.text;
  };
  /**
   * Sends `text` to a viewer that is reading; one that is not (its last write is still queued) gets only the
   * latest graph once it drains, so a stalled page holds at most one graph, and one stalled for
   * VIEWER_STALL_MS is dropped.
   */
  const deliver = (v: ServerResponse, text: string) => {
    const state = viewers.get(v);
    if (!state) return;
    if (state.blockedSince !== undefined) {
      state.pending = text;
      if (Date.now() - state.blockedSince > VIEWER_STALL_MS) v.destroy();
      return;
    }
    if (v.write(`data: ${text}\n\n`)) return;
    state.blockedSince = Date.now();
    v.once('drain', () => {
      state.blockedSince = undefined;
      const latest = state.pending;
      state.pending = undefined;
      if (latest !== undefined) deliver(v, latest);
    });
  };
  const tick = async () => {
    const text = await graphText();
    if (text === lastGraph) {
      // Silence would close the connection (the port's idle timeout): a comment line keeps it open.
      for (const [v, s] of viewers) if (s.blockedSince === undefined && Date.now() - s.lastWrite > 15_000 && v.write(':\n\n')) s.lastWrite = Date.now();
      return;
    }
    lastGraph = text;
    for (const [v, s] of viewers) {
      s.lastWrite = Date.now();
      deliver(v, text);
    }
  };
  const follow = (res: ServerResponse) => {
    if (viewers.size >= MAX_VIEWERS) {
      res.writeHead(503, { 'content-type': 'text/plain' });
      return res.end(`at most ${MAX_VIEWERS} pages follow the mesh at once\n`);
    }
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store' });
    viewers.set(res, { lastWrite: Date.now() });
    // The newcomer gets the graph now; the others keep getting what changed since they last did.
    void graphText().then((text) => {
      if (viewers.size === 1) lastGraph = text;
      if (res.write('retry: 2000\n\n')) deliver(res, text);
    }, () => res.end());
    ticker ??= setInterval(() => void tick().catch(() => undefined), 1000);
    res.on('close', () => {
      viewers.delete(res);
      if (viewers.size === 0 && ticker) {
        clearInterval(ticker);
        ticker = undefined;
      }
    });
  };
  const server: Server = createServer((req, res) => {
    const send = (code: number, type: string, body: string) => {
      res.writeHead(code, { 'content-type': type });
      res.end(body);
    };
    const json = (value: unknown) => send(200, 'application/json', `${JSON.stringify(value, null, 2)}\n`);
    const path = (req.url ?? '/').split('?')[0];
    // The query of a request line a client made up: a URL that does not parse is its error, never the server's.
    const query = (): URLSearchParams | undefined => {
      try {
        return new URL(req.url ?? '/', 'http://admin').searchParams;
      } catch {
        return undefined;
      }
    };
    if (!hostAllowed(req.headers.host, o.allowedHosts ?? [])) {
      return send(421, 'text/plain', 'misdirected request: the Host header must be an IP address, localhost, or a name given with --admin-allowed-host\n');
    }
    if (req.method !== 'GET' && req.method !== 'HEAD' && !tokenMatches(req.headers.authorization, o.token)) {
      return send(401, 'text/plain', 'this admin call changes the mesh: present the token of the state folder (Authorization: Bearer $(cat STATE/admin-token)); the smc CLI does this given --state\n');
    }
    if (path === '/healthz') return send(200, 'text/plain', 'ok\n');
    if (path === '/readyz') {
      if (o.ready()) return send(200, 'text/plain', 'ready\n');
      return send(503, 'text/plain', `not ready: ${o.waitingFor?.() ?? 'no snapshot yet'}\n`);
    }
    if (path === '/status/proxies') return json(proxyStatusDocument(o.proxies));
    if (path === '/status/inputs') return json(o.inputs());
    if (path === '/status/leader' && o.leader) return json(o.leader());
    if (path === '/status/proxy-config' && o.proxyConfig) {
      const q = query();
      if (!q) return send(400, 'text/plain', 'the request URL does not parse\n');
      const { code, body } = o.proxyConfig(q.get('node'));
      return send(code, 'application/json', `${JSON.stringify(body, null, 2)}\n`);
    }
    if (path === '/mesh' && o.meshGraph) {
      res.writeHead(200, {
        'content-type': 'text/html; charset=utf-8',
        // Nothing from elsewhere; data is text, never markup (see mesh-page.ts).
        'content-security-policy': "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'",
      });
      return res.end(MESH_PAGE);
    }
    if (path === '/mesh/graph' && o.meshGraph) {
      return void graphText().then(
        (text) => send(200, 'application/json', `${text}\n`),
        (e: Error) => send(500, 'text/plain', `the mesh graph could not be built: ${e.message}\n`),
      );
    }
    if (path === '/mesh/events' && o.meshGraph) return follow(res);
    if (path === '/explain' && o.explain) {
      const q = query();
      if (!q) return send(400, 'text/plain', 'the request URL does not parse\n');
      return void Promise.resolve(o.explain(q, req.socket.remoteAddress ?? '')).then(
        ({ code, body }) => send(code, 'application/json', `${JSON.stringify(body, null, 2)}\n`),
        (e: Error) => send(500, 'text/plain', `explain failed: ${e.message}\n`),
      );
    }
    if (path === '/ca/rotate-root') {
      if (req.method !== 'POST') return send(405, 'text/plain', 'POST to rotate the mesh root\n');
      if (!o.rotateRoot) return send(404, 'text/plain', 'root rotation is not available\n');
      o.rotateRoot().then(
        () => json({ rotated: true }),
        (e: Error) => send(409, 'application/json', `${JSON.stringify({ rotated: false, error: e.message })}\n`),
      );
      return;
    }
    if (path === '/metrics') {
      o.metrics.registry.metrics().then(
        (text) => send(200, o.metrics.registry.contentType, text),
        (e: unknown) => send(500, 'text/plain', String(e)),
      );
      return;
    }
    send(404, 'text/plain', 'not found: try /healthz, /readyz, /mesh, /status/proxies, /status/proxy-config?node=NODE, /status/inputs, /explain, /metrics\n');
  });
  guardConnections(server, 'admin', ADMIN_CONNECTION_LIMITS, o.log);
  return {
    listen: (host, port) =>
      new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, host, () => {
          const a = server.address();
          resolve(typeof a === 'object' && a ? a.port : port);
        });
      }),
    close: () =>
      new Promise((resolve) => {
        if (ticker) clearInterval(ticker);
        for (const v of viewers.keys()) v.end();
        viewers.clear();
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
