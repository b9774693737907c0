import type { Log } from './log.js';
import { constants as http2constants } from 'node:http2';
import * as grpc from '@grpc/grpc-js';
import type { EnvoyProtos } from '../adapters/envoy-protos.js';
import type { ResourceKind } from '../compiler/envoy/codec.js';
import { identityOf, parseIdentity } from '../compiler/ir/types.js';
import type { SnapshotCache } from './cache.js';
import type { Metrics } from './metrics.js';
import type { ProxyRecord, ProxyRegistry, ReplyEvents } from './proxy-status.js';
import { normalizeSerial } from '../adapters/ca/proxy-certificates.js';
import { clientText } from '../compiler/client-text.js';
import { createMtlsListener, type MtlsListener } from './mtls-listener.js';
import { createLimitedLog } from './log-limit.js';
import { DeltaStream } from './stream-delta.js';
import { SotwStream } from './stream-sotw.js';
import { kindOfTypeUrl, type DeltaDiscoveryRequest, type DeltaDiscoveryResponse, type DiscoveryRequest, type DiscoveryResponse } from './xds-types.js';

/**
 * The ADS server: state-of-the-world and delta streams over gRPC. Every
 * stream has its own queue and writes with backpressure, so a proxy that
 * stops reading only ever delays itself; snapshot changes coalesce per
 * stream (the latest wins). With TLS the proxy's identity is the SPIFFE ID of
 * its client certificate, and its node id must name the same identity.
 */
export interface XdsTls {
  readonly certificateChain: string;
  readonly privateKey: string;
  /** PEM roots that sign proxy (bootstrap) certificates. */
  readonly trustBundle: string;
}

export interface AdsServerOptions {
  readonly cache: SnapshotCache;
  readonly protos: EnvoyProtos;
  /** Undefined: plaintext (only behind --insecure-xds); identities then come from node ids unchecked. */
  readonly tls: XdsTls | undefined;
  readonly trustDomain: () => string;
  readonly metrics: Metrics;
  readonly proxies: ProxyRegistry;
  readonly log: Log;
  /**
   * With TLS: whether the client certificate (by serial) may open a stream
   * for this identity; an error message refuses it (PERMISSION_DENIED).
   */
  readonly authorizeCertificate?: (c: { serial: string; identity: string; nodeId: string }) => Promise<string | undefined>;
  /**
   * Snapshot changes are gathered for this long before streams are told, so
   * a burst of input changes costs one push per proxy (default 100 ms; 0
   * pushes at once). Requests are always answered at once.
   */
  readonly pushWindowMs?: number;
}

export interface AdsServer {
  /** Binds and starts; returns the bound port (useful with port 0). */
  listen(host: string, port: number): Promise<number>;
  /** Closes every open stream authenticated by this client certificate serial (a revocation); returns how many. */
  closeCertificate(serial: string, reason: string): number;
  /** The serials of the client certificates of the open streams (normalised). */
  openSerials(): string[];
  close(): Promise<void>;
}

/**
 * What one stream may hold. Requests wait only while the stream's pump is
 * busy (usually a write the proxy does not read); they coalesce per type, so
 * a well-behaved proxy never has more than one per type waiting. A client
 * that keeps sending while not reading, or subscribes without bound, is cut
 * off with RESOURCE_EXHAUSTED instead of growing the controller's memory.
 */
export const STREAM_LIMITS = {
  /** Requests received while one write waits for the proxy to read. */
  requestsWhileBlocked: 1000,
  /** Resource names one stream may subscribe to, over all types. */
  subscribedNames: 200_000,
  /** Resource names all the streams of one client certificate (one node id, without TLS) may subscribe to. */
  subscribedNamesPerCertificate: 200_000,
  /** Resource names all streams together may subscribe to (about 80 MiB of names and sets). */
  subscribedNamesPerProcess: 2_000_000,
  /** Streams one client certificate may hold open (a proxy holds one; a restart may overlap). */
  streamsPerCertificate: 8,
  /** Concurrent streams on one HTTP/2 connection. */
  streamsPerConnection: 16,
};

const SERVICE = 'envoy.service.discovery.v3.AggregatedDiscoveryService';

/** `<namespace>/<serviceaccount>` or `<namespace>/<serviceaccount>/<instance>`; an instance is a pod or host name. */
export function nodeIdentity(nodeId: string): { namespace: string; serviceAccount: string } | undefined {
  if (nodeId.length > 512) return undefined;
  const m = /^([a-z0-9]([-a-z0-9.]*[a-z0-9])?)\/([a-z0-9]([-a-z0-9.]*[a-z0-9])?)(\/[A-Za-z0-9][-A-Za-z0-9._:]*)?$/.exec(nodeId);
  return m ? { namespace: m[1]!, serviceAccount: m[3]! } : undefined;
}

function peerSpiffeIds(call: grpc.ServerDuplexStream<unknown, unknown>): string[] {
  const san = call.getAuthContext()?.sslPeerCertificate?.subjectaltname ?? '';
  return san
    .split(', ')
    .filter((s) => s.startsWith('URI:spiffe://'))
    .map((s) => s.slice(4));
}

export function createAdsServer(o: AdsServerOptions): AdsServer {
  const codec = (name: string) => {
    const type = o.protos.lookupType(`envoy.service.discovery.v3.${name}`);
    return {
      serialize: (value: unknown) => Buffer.from(type.encode(type.fromObject(value as Record<string, unknown>)).finish()),
      deserialize: (bytes: Buffer) => type.toObject(type.decode(bytes), { defaults: true, arrays: true, objects: true, longs: String }),
    };
  };
  const req = codec('DiscoveryRequest');
  const res = codec('DiscoveryResponse');
  const dreq = codec('DeltaDiscoveryRequest');
  const dres = codec('DeltaDiscoveryResponse');
  const method = (name: string, rq: ReturnType<typeof codec>, rs: ReturnType<typeof codec>) => ({
    path: `/${SERVICE}/${name}`,
    requestStream: true,
    responseStream: true,
    requestSerialize: rq.serialize,
    requestDeserialize: rq.deserialize,
    responseSerialize: rs.serialize,
    responseDeserialize: rs.deserialize,
  });
  const definition: grpc.ServiceDefinition = {
    StreamAggregatedResources: method('StreamAggregatedResources', req, res),
    DeltaAggregatedResources: method('DeltaAggregatedResources', dreq, dres),
  };

  const streams = new Set<grpc.ServerDuplexStream<unknown, unknown>>();
  // Open streams by the serial of the client certificate that opened them (for revocation).
  const bySerial = new Map<string, Set<(reason: string) => void>>();
  // The push window: streams whose snapshot changed, told together when the window closes.
  const pushWindow = o.pushWindowMs ?? 100;
  const due = new Set<() => void>();
  let timer: NodeJS.Timeout | undefined;
  const schedule = (push: () => void) => {
    if (pushWindow <= 0) return push();
    due.add(push);
    timer ??= setTimeout(() => {
      timer = undefined;
      const now = [...due];
      due.clear();
      for (const p of now) p();
    }, pushWindow);
  };
  const server = new grpc.Server({ 'grpc.max_send_message_length': 64 * 1024 * 1024, 'grpc.keepalive_time_ms': 30_000, 'grpc.max_concurrent_streams': STREAM_LIMITS.streamsPerConnection });
  // Subscribed names, per client (certificate serial, or node id without TLS) and in all: what streams may hold together.
  const namesByClient = new Map<string, number>();
  let namesInAll = 0;
  // A NACK is logged once per identity, type and version; every NACK is counted (smc_xds_nacks_total).
  const nackLog = createLimitedLog({ everyMs: 10 * 60_000 });
  let mtls: MtlsListener | undefined;

  function serve(variant: 'sotw' | 'delta', call: grpc.ServerDuplexStream<unknown, unknown>): void {
    streams.add(call);
    let record: ProxyRecord | undefined;
    let machine: SotwStream | DeltaStream | undefined;
    let unwatch: (() => void) | undefined;
    let closed = false;
    let pumping = false;
    let snapshotDirty = false;
    const requests: (DiscoveryRequest | DeltaDiscoveryRequest)[] = [];
    const sentAt = new Map<ResourceKind, number>();
    let blocked = false;
    let sentWhileBlocked = 0;
    let serial: string | undefined;

    const fail = (code: grpc.status, details: string) => {
      o.log(`xds: refused stream from ${call.getPeer()}: ${details}`, { level: 'warn', peer: call.getPeer() });
      call.emit('error', { code, details });
    };
    /** Ends an admitted stream from the server side. */
    const cut = (code: grpc.status, details: string) => {
      if (closed) return;
      o.log(`xds: closing the stream of ${record ? `${record.nodeId} (${record.identity})` : call.getPeer()}: ${details}`, { level: 'warn', nodeId: record?.nodeId, identity: record?.identity });
      const stuck = blocked;
      call.emit('error', { code, details });
      cleanup();
      // The status goes out as trailers, behind responses the client never reads: reset the stream instead.
      if (stuck) resetStream(call);
    };
    const revoke = (reason: string) => cut(grpc.status.PERMISSION_DENIED, reason);
    /** Who the stream's names count against: its certificate (its node id without TLS). */
    let client = '';
    let names = 0;
    /** Records this stream's subscribed names; what is over a bound, if anything. */
    const countNames = (now: number): string | undefined => {
      const mine = namesByClient.get(client) ?? 0;
      const delta = now - names;
      if (now > STREAM_LIMITS.subscribedNames) return `subscribed to more than ${STREAM_LIMITS.subscribedNames} resource names`;
      if (delta > 0 && mine + delta > STREAM_LIMITS.subscribedNamesPerCertificate) return `the streams of this client certificate subscribe to more than ${STREAM_LIMITS.subscribedNamesPerCertificate} resource names`;
      if (delta > 0 && namesInAll + delta > STREAM_LIMITS.subscribedNamesPerProcess) return `the control plane holds ${STREAM_LIMITS.subscribedNamesPerProcess} subscribed resource names, its bound; retry later`;
      names = now;
      namesInAll += delta;
      if (mine + delta === 0) namesByClient.delete(client);
      else namesByClient.set(client, mine + delta);
      return undefined;
    };
    const cleanup = () => {
      if (closed) return;
      closed = true;
      streams.delete(call);
      requests.length = 0;
      countNames(0);
      if (serial !== undefined) {
        const set = bySerial.get(serial);
        set?.delete(revoke);
        if (set?.size === 0) bySerial.delete(serial);
      }
      unwatch?.();
      if (record) {
        o.proxies.remove(record);
        o.metrics.connected.dec();
        o.log(`xds: ${record.nodeId} (${record.identity}) disconnected`, { nodeId: record.nodeId, identity: record.identity });
      }
    };
    const write = (msg: DiscoveryResponse | DeltaDiscoveryResponse) =>
      new Promise<void>((resolve) => {
        if (closed) return resolve();
        // One label scheme: the xDS type as smc names it (cluster, endpoint, ...), as every metric uses.
        const kind = kindOfTypeUrl(msg.typeUrl) ?? 'other';
        o.metrics.pushes.inc({ type: kind });
        const bytes = msg.resources.reduce((n, r) => n + ('value' in r ? r.value.length : r.resource.value.length), 0);
        o.metrics.bytesSent.inc({ type: kind }, bytes);
        if (call.write(msg)) return resolve();
        // The proxy is not reading: only this stream's pump waits, for its drain.
        if (record) record.sendBlockedSince = new Date().toISOString();
        blocked = true;
        o.metrics.blocked.inc();
        const done = () => {
          call.off('drain', done);
          call.off('close', done);
          blocked = false;
          sentWhileBlocked = 0;
          if (record) delete record.sendBlockedSince;
          o.metrics.blocked.dec();
          resolve();
        };
        call.on('drain', done);
        call.on('close', done);
      });
    const events: ReplyEvents = {
      ack(kind) {
        // Convergence: from the push to the proxy's ACK (not from the input change: a proxy that connects
        // later would count the time it was not there).
        const sent = sentAt.get(kind);
        if (sent !== undefined) o.metrics.convergence.observe({ type: kind }, (Date.now() - sent) / 1000);
        sentAt.delete(kind);
        if (record) o.proxies.progressed(record);
      },
      nack(kind, version, message) {
        o.metrics.nacks.inc({ type: kind });
        if (record) o.proxies.progressed(record);
        // `message` is already escaped and bounded (recordReply).
        nackLog.event(`${record?.identity} ${kind} ${version}`, (suppressed) =>
          o.log(`xds: ${record?.nodeId} NACKed ${kind} version ${version}: ${message}${suppressed > 0 ? ` (${suppressed} more NACKs of it since it was last logged)` : ''}`, { level: 'warn', nodeId: record?.nodeId, identity: record?.identity, type: kind, version }),
        );
      },
      stale(kind) {
        o.metrics.staleRequests.inc({ type: kind });
      },
    };
    const pump = async () => {
      if (pumping) return;
      pumping = true;
      try {
        while (!closed && (requests.length > 0 || snapshotDirty)) {
          const started = process.hrtime.bigint();
          const snapshot = o.cache.get(record!.identity);
          let out: (DiscoveryResponse | DeltaDiscoveryResponse)[];
          if (requests.length > 0) {
            const r = requests.shift()!;
            out = machine instanceof SotwStream ? machine.onRequest(r as DiscoveryRequest, snapshot) : machine!.onRequest(r as DeltaDiscoveryRequest, snapshot);
            const over = countNames(machine!.subscribedNames());
            if (over) return cut(grpc.status.RESOURCE_EXHAUSTED, over);
          } else {
            snapshotDirty = false;
            out = machine!.onSnapshot(snapshot);
          }
          // What the proxy is to take changed (before the writes: one may wait on a proxy that stopped reading).
          if (out.length > 0) o.proxies.progressed(record!);
          for (const m of out) {
            const kind = kindOfTypeUrl(m.typeUrl);
            if (kind) {
              sentAt.set(kind, Date.now());
              if (o.log.debugEnabled) {
                const version = 'versionInfo' in m ? m.versionInfo : m.systemVersionInfo;
                o.log(`xds: sent ${kind} version ${version} to ${record!.nodeId}`, { level: 'debug', nodeId: record!.nodeId, identity: record!.identity, type: kind, version, resources: m.resources.length });
              }
            }
            await write(m);
          }
          if (out.length > 0) o.metrics.pushDuration.observe(Number(process.hrtime.bigint() - started) / 1e9);
        }
      } finally {
        pumping = false;
      }
    };

    let admitting = false;
    const admit = async (r: DiscoveryRequest | DeltaDiscoveryRequest) => {
      const nodeId = r.node?.id ?? '';
      if (nodeId === '') return fail(grpc.status.INVALID_ARGUMENT, 'the first request must carry node.id (NAMESPACE/SERVICEACCOUNT[/INSTANCE])');
      const fromNode = nodeIdentity(nodeId);
      if (!fromNode) return fail(grpc.status.INVALID_ARGUMENT, `node.id "${clientText(nodeId, 128)}" is not NAMESPACE/SERVICEACCOUNT[/INSTANCE] (lower-case DNS labels; an instance of letters, digits and .-_:)`);
      let identity: string;
      if (o.tls) {
        const ids = peerSpiffeIds(call);
        if (ids.length !== 1) return fail(grpc.status.UNAUTHENTICATED, `the client certificate must carry exactly one SPIFFE URI SAN, found ${ids.length}`);
        identity = ids[0]!;
        const fromCert = parseIdentity(identity);
        if (!fromCert || fromCert.namespace !== fromNode.namespace || fromCert.serviceAccount !== fromNode.serviceAccount) {
          return fail(grpc.status.PERMISSION_DENIED, `node.id ${JSON.stringify(nodeId)} does not match the certificate's identity ${identity}`);
        }
        if (fromCert.trustDomain !== o.trustDomain()) return fail(grpc.status.PERMISSION_DENIED, `certificate identity ${identity} is not in trust domain ${o.trustDomain()}`);
        const presented = call.getAuthContext()?.sslPeerCertificate?.serialNumber ?? '';
        if (o.authorizeCertificate) {
          const refusal = await o.authorizeCertificate({ serial: presented, identity, nodeId }).catch((e: Error) => `cannot check the certificate: ${e.message}`);
          if (refusal !== undefined) return fail(grpc.status.PERMISSION_DENIED, refusal);
        }
        if (closed) return;
        serial = normalizeSerial(presented);
        const open = bySerial.get(serial)?.size ?? 0;
        if (open >= STREAM_LIMITS.streamsPerCertificate) return fail(grpc.status.RESOURCE_EXHAUSTED, `this client certificate holds ${open} streams open already (at most ${STREAM_LIMITS.streamsPerCertificate})`);
        if (!bySerial.has(serial)) bySerial.set(serial, new Set());
        bySerial.get(serial)!.add(revoke);
        client = `serial ${serial}`;
      } else {
        identity = identityOf(o.trustDomain(), fromNode.namespace, fromNode.serviceAccount);
        client = `node ${nodeId}`;
      }
      if (closed) return;
      record = o.proxies.add({ variant, identity, nodeId, address: call.getPeer(), connectedSince: new Date().toISOString() });
      o.metrics.connected.inc();
      machine = variant === 'sotw' ? new SotwStream(record, events) : new DeltaStream(record, events);
      const push = () => {
        snapshotDirty = true;
        void pump();
      };
      const unwatchCache = o.cache.watch(identity, () => schedule(push));
      unwatch = () => {
        unwatchCache();
        due.delete(push);
      };
      o.log(`xds: ${nodeId} (${identity}) connected over ${variant === 'sotw' ? 'state-of-the-world' : 'delta'} ADS from ${call.getPeer()}`, { nodeId, identity, variant, peer: call.getPeer() });
      void pump();
    };

    call.on('data', (r: DiscoveryRequest | DeltaDiscoveryRequest) => {
      if (closed) return;
      if (blocked && ++sentWhileBlocked > STREAM_LIMITS.requestsWhileBlocked) {
        return cut(grpc.status.RESOURCE_EXHAUSTED, `sent more than ${STREAM_LIMITS.requestsWhileBlocked} requests without reading the responses`);
      }
      // A type smc does not serve: nothing to answer (the first request is still read for its node).
      if ((machine || admitting) && kindOfTypeUrl(r.typeUrl) === undefined) return;
      enqueue(requests, r, variant, machine !== undefined);
      if (machine) return void pump();
      // The first request decides who the proxy is; later ones wait in the queue meanwhile.
      if (admitting) return;
      admitting = true;
      void admit(r);
    });
    call.on('end', () => {
      cleanup();
      call.end();
    });
    call.on('error', cleanup);
    call.on('close', cleanup);
    call.on('cancelled', cleanup);
  }

  server.addService(definition, {
    StreamAggregatedResources: (call: grpc.ServerDuplexStream<unknown, unknown>) => serve('sotw', call),
    DeltaAggregatedResources: (call: grpc.ServerDuplexStream<unknown, unknown>) => serve('delta', call),
  });

  return {
    openSerials: () => [...bySerial.keys()],
    closeCertificate(serial, reason) {
      const closers = [...(bySerial.get(normalizeSerial(serial)) ?? [])];
      for (const close of closers) close(reason);
      return closers.length;
    },
    listen(host, port) {
      if (o.tls) {
        // Mutual TLS is ours (failed handshakes are logged and counted); gRPC gets the connections that passed.
        const injector = server.createConnectionInjector(grpc.ServerCredentials.createInsecure());
        mtls = createMtlsListener({ ...o.tls, log: o.log, failed: (reason) => o.metrics.handshakeFailures.inc({ reason }) });
        return mtls.listen(host, port, (socket) => injector.injectConnection(socket));
      }
      return new Promise((resolve, reject) => {
        server.bindAsync(`${host.includes(':') ? `[${host}]` : host}:${port}`, grpc.ServerCredentials.createInsecure(), (err, bound) => (err ? reject(err) : resolve(bound)));
      });
    },
    async close() {
      clearTimeout(timer);
      due.clear();
      for (const s of streams) s.emit('error', { code: grpc.status.UNAVAILABLE, details: 'control plane shutting down' });
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          server.forceShutdown();
          resolve();
        }, 2000);
        server.tryShutdown(() => {
          clearTimeout(timer);
          resolve();
        });
      });
      // Connections of proxies that reconnect while it shuts down end with the listener.
      await mtls?.close();
    },
  };
}


/**
 * Resets the HTTP/2 stream under a gRPC call (ENHANCE_YOUR_CALM), for a
 * client whose flow-control window never opens: such a client would never
 * receive the status trailers, and the stream would stay open. grpc-js has no
 * public call for this, so its call chain is walked to the http2 stream; if
 * its shape changes, nothing happens beyond the status already sent.
 */
function resetStream(call: grpc.ServerDuplexStream<unknown, unknown>): void {
  let link: unknown = (call as unknown as { call?: unknown }).call;
  for (let depth = 0; depth < 8 && link !== null && typeof link === 'object'; depth++) {
    const stream = (link as { stream?: { closed?: unknown; rstCode?: unknown; close?: unknown } }).stream;
    if (stream && typeof stream.close === 'function' && 'rstCode' in stream) {
      if (stream.closed === false) (stream.close as (code: number) => void).call(stream, http2constants.NGHTTP2_ENHANCE_YOUR_CALM);
      return;
    }
    link = (link as { nextCall?: unknown }).nextCall;
  }
}

/**
 * Queues a request, keeping at most one per type: in state of the world only
 * the latest request of a type matters (it carries the whole subscription and
 * the latest nonce); in delta, subscription changes merge in order.
 */
function enqueue(queue: (DiscoveryRequest | DeltaDiscoveryRequest)[], r: DiscoveryRequest | DeltaDiscoveryRequest, variant: 'sotw' | 'delta', admitted: boolean): void {
  // Before admission the first request (it carries the node) stays as it is.
  const i = queue.findIndex((q, j) => q.typeUrl === r.typeUrl && (admitted || j > 0));
  if (i < 0) return void queue.push(r);
  const before = queue[i]!;
  // A NACK is not lost to a later request that answers the same response.
  const errorDetail = r.errorDetail ?? (r.responseNonce === before.responseNonce ? before.errorDetail : undefined);
  if (variant === 'sotw') {
    queue[i] = { ...r, errorDetail };
    return;
  }
  const a = before as DeltaDiscoveryRequest;
  const b = r as DeltaDiscoveryRequest;
  const subscribe = new Set(a.resourceNamesSubscribe);
  const unsubscribe = new Set(a.resourceNamesUnsubscribe);
  for (const n of b.resourceNamesUnsubscribe) {
    subscribe.delete(n);
    unsubscribe.add(n);
  }
  for (const n of b.resourceNamesSubscribe) {
    unsubscribe.delete(n);
    subscribe.add(n);
  }
  queue[i] = {
    ...b,
    initialResourceVersions: { ...a.initialResourceVersions, ...b.initialResourceVersions },
    resourceNamesSubscribe: [...subscribe],
    resourceNamesUnsubscribe: [...unsubscribe],
    errorDetail,
  };
}
