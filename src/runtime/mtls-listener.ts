import type { Socket } from 'node:net';
import { createServer, type TLSSocket } from 'node:tls';
import type { Log } from './log.js';
import { createLimitedLog } from './log-limit.js';
import { capConnections } from './connection-guard.js';

/**
 * The xDS port's TLS: mutual TLS whose failures are seen. A client whose
 * handshake fails (no certificate, a certificate of another CA, an expired
 * one, plain text, a handshake that never ends) is logged at warn with its
 * address and the reason, once a minute per address and reason, and counted;
 * only a client whose certificate chains to the trust bundle is handed on.
 */
export interface MtlsOptions {
  readonly certificateChain: string;
  readonly privateKey: string;
  /** PEM roots client certificates must chain to. */
  readonly trustBundle: string;
  /** How long a client has to finish its handshake (default 10 s). */
  readonly handshakeTimeoutMs?: number;
  readonly log: Log;
  /** Each failed handshake, by reason (a metric). */
  readonly failed?: (reason: string) => void;
}

export interface MtlsListener {
  listen(host: string, port: number, onClient: (socket: TLSSocket) => void): Promise<number>;
  /** Stops accepting, and ends every connection still open (their streams are closed first by their server). */
  close(): Promise<void>;
}

/** A reason people can act on, for the codes Node and OpenSSL give a failed handshake. */
export function handshakeReason(code: string | undefined, message: string): string {
  switch (code) {
    case 'ERR_SSL_PEER_DID_NOT_RETURN_A_CERTIFICATE':
    case 'UNABLE_TO_GET_ISSUER_CERT':
      return 'no client certificate (a proxy needs the certificate smc bootstrap wrote)';
    case 'UNABLE_TO_VERIFY_LEAF_SIGNATURE':
    case 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY':
    case 'SELF_SIGNED_CERT_IN_CHAIN':
    case 'DEPTH_ZERO_SELF_SIGNED_CERT':
    case 'CERT_SIGNATURE_FAILURE':
      return 'unknown CA: the client certificate is not signed by this mesh\'s CA (was it made by smc bootstrap with another --state?)';
    case 'CERT_HAS_EXPIRED':
      return 'the client certificate has expired';
    case 'CERT_NOT_YET_VALID':
      return 'the client certificate is not valid yet (a clock out of step?)';
    case 'ERR_SSL_TLSV1_ALERT_UNKNOWN_CA':
    case 'ERR_SSL_SSLV3_ALERT_BAD_CERTIFICATE':
    case 'ERR_SSL_SSLV3_ALERT_CERTIFICATE_UNKNOWN':
      return 'the client does not trust this controller\'s certificate (its ca.crt is of another mesh CA)';
    case 'ERR_SSL_WRONG_VERSION_NUMBER':
    case 'ERR_SSL_HTTP_REQUEST':
    case 'ERR_SSL_UNEXPECTED_EOF_WHILE_READING':
      return 'not TLS (the xDS port needs mutual TLS; a plaintext client reaches only a controller run with --insecure-xds)';
    case 'ERR_TLS_HANDSHAKE_TIMEOUT':
      return 'the handshake did not finish in time';
    case 'ECONNRESET':
      return 'the client closed the connection during the handshake';
    default:
      return `${code ?? 'TLS error'}: ${message.split('\n')[0]!.slice(0, 200)}`;
  }
}

/** Connections on the xDS port: in all (file descriptors are finite), and from one address (a node's pods each have their own). */
export const XDS_CONNECTION_LIMITS = { maxConnections: 50_000, maxPerPeer: 1024 };

export function createMtlsListener(o: MtlsOptions): MtlsListener {
  const logs = createLimitedLog({ everyMs: 60_000 });
  const failed = (address: string | undefined, code: string | undefined, message: string) => {
    const reason = handshakeReason(code, message);
    o.failed?.(code ?? 'other');
    const peer = address ?? 'unknown address';
    logs.event(`${peer} ${reason}`, (suppressed) =>
      o.log(`xds: TLS handshake from ${peer} failed: ${reason}${suppressed > 0 ? ` (${suppressed} more like it in the last minute)` : ''}`, { level: 'warn', peer, reason }),
    );
  };
  // Client certificates are checked here, after the handshake, so a refusal can be told apart and said.
  const server = createServer({
    cert: o.certificateChain,
    key: o.privateKey,
    ca: o.trustBundle,
    requestCert: true,
    rejectUnauthorized: false,
    ALPNProtocols: ['h2'],
    minVersion: 'TLSv1.2',
    handshakeTimeout: o.handshakeTimeoutMs ?? 10_000,
  });
  server.on('tlsClientError', (e: NodeJS.ErrnoException, socket) => failed(socket.remoteAddress, e.code, e.message));
  // Every proxy holds one connection; a client opening thousands (authenticated or not) is closed past the bound.
  capConnections(server, 'xds', XDS_CONNECTION_LIMITS, o.log);
  const open = new Set<Socket>();
  server.on('connection', (socket) => {
    open.add(socket);
    socket.once('close', () => open.delete(socket));
  });
  return {
    listen(host, port, onClient) {
      server.on('secureConnection', (socket: TLSSocket) => {
        if (!socket.authorized) {
          const code = socket.authorizationError as unknown as string | undefined;
          failed(socket.remoteAddress, code, String(socket.authorizationError));
          socket.destroy();
          return;
        }
        onClient(socket);
      });
      return new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, host, () => {
          server.off('error', reject);
          resolve((server.address() as { port: number }).port);
        });
      });
    },
    close() {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const socket of open) socket.destroy();
      return closed;
    },
  };
}
