import type { Server as HttpServer, IncomingMessage } from 'node:http';
import type { Server as HttpsServer } from 'node:https';
import type { Server as NetServer, Socket } from 'node:net';
import { Server as TlsServer } from 'node:tls';
import type { Log } from './log.js';
import { createLimitedLog } from './log-limit.js';

/**
 * What an HTTP(S) port holds for clients that connect and then do nothing, or
 * connect many times over: at most `maxConnections` open connections and
 * `maxPerPeer` from one address (more are closed at once, before any TLS);
 * a connection must finish its TLS handshake within `handshakeMs` (HTTPS,
 * set where the server is made) and send its first request within
 * `firstRequestMs`; one silent for `idleMs` is closed. Refusals are logged
 * once a minute per address.
 */
export interface ConnectionLimits {
  readonly maxConnections: number;
  readonly maxPerPeer: number;
  readonly firstRequestMs: number;
  readonly idleMs: number;
}

export function guardConnections(server: HttpServer | HttpsServer, name: string, limits: ConnectionLimits, log: Log): { open(): number } {
  const counted = capConnections(server, name, limits, log);
  // The socket HTTP reads requests from: the TLS socket of an HTTPS server, the TCP one otherwise.
  const waitingFirst = new WeakMap<Socket, NodeJS.Timeout>();
  const client = (socket: Socket) => {
    const t = setTimeout(() => socket.destroy(), limits.firstRequestMs);
    t.unref();
    waitingFirst.set(socket, t);
    socket.once('close', () => clearTimeout(t));
  };
  server.on(server instanceof TlsServer ? 'secureConnection' : 'connection', client);
  server.on('request', (req: IncomingMessage) => clearTimeout(waitingFirst.get(req.socket)));
  // Silence, between requests or in one, closes the connection (a stream that writes, such as /mesh/events, is not silent).
  server.timeout = limits.idleMs;
  server.keepAliveTimeout = Math.min(server.keepAliveTimeout, limits.idleMs);
  return counted;
}

/** At most `maxConnections` open connections on `server`, `maxPerPeer` from one address; more are closed at once (before any TLS). */
export function capConnections(server: NetServer, name: string, limits: Pick<ConnectionLimits, 'maxConnections' | 'maxPerPeer'>, log: Log): { open(): number } {
  const byPeer = new Map<string, number>();
  let open = 0;
  const refusals = createLimitedLog({ everyMs: 60_000 });
  server.on('connection', (socket: Socket) => {
    const peer = socket.remoteAddress ?? 'unknown';
    const mine = byPeer.get(peer) ?? 0;
    if (open >= limits.maxConnections || mine >= limits.maxPerPeer) {
      const all = open >= limits.maxConnections;
      const why = all ? `${open} connections are open (at most ${limits.maxConnections})` : `${mine} connections from it are open (at most ${limits.maxPerPeer})`;
      refusals.event(`${peer} ${all}`, (suppressed) => log(`${name}: closed a connection from ${peer}: ${why}${suppressed > 0 ? ` (${suppressed} more in the last minute)` : ''}`, { level: 'warn', peer }));
      socket.destroy();
      return;
    }
    open++;
    byPeer.set(peer, mine + 1);
    socket.once('close', () => {
      open--;
      const n = byPeer.get(peer)! - 1;
      if (n === 0) byPeer.delete(peer);
      else byPeer.set(peer, n);
    });
  });
  return { open: () => open };
}
