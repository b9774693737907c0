import type { ResourceKind } from '../compiler/envoy/codec.js';
import { clientText } from '../compiler/client-text.js';
import { WILDCARD_KINDS } from './xds-types.js';

/**
 * What the control plane knows of each connected proxy: who it is, and per
 * type what was sent, what was acknowledged and the last rejection.
 */
export interface Nack {
  readonly version: string;
  readonly message: string;
  readonly at: string;
}

export interface TypeStatus {
  sent?: string;
  acked?: string;
  nack?: Nack;
  /** What the proxy is to hold once it takes what was sent: name -> resource version. */
  target?: ReadonlyMap<string, string>;
  /** Sent and not yet taken: name -> the version it held before (undefined: none). */
  unacked?: Map<string, string | undefined>;
  /** Names changed by responses not yet answered. */
  inFlight?: Set<string>;
  /** Resources the proxy rejected: the version it was sent, Envoy's message (escaped, bounded) and when (ms). */
  rejected?: Map<string, { readonly version: string; readonly message: string; readonly at: number }>;
  /** When the oldest response not yet taken was sent (ms since the epoch). */
  since?: number;
}

export interface ProxyRecord {
  readonly stream: number;
  readonly variant: 'sotw' | 'delta';
  readonly identity: string;
  readonly nodeId: string;
  readonly address: string;
  readonly connectedSince: string;
  readonly types: Partial<Record<ResourceKind, TypeStatus>>;
  /**
   * Set while a write to this proxy waits for it to read (its HTTP/2 flow
   * control window is full): a proxy that stopped reading shows here, and
   * only it waits.
   */
  sendBlockedSince?: string;
}

/** SYNCED: acknowledged what was sent; NACK: the last response of the type was rejected; STALE: sent, not yet acknowledged. */
export type SyncState = 'SYNCED' | 'STALE' | 'NACK' | 'NOT SENT';

export function syncState(t: TypeStatus | undefined): SyncState {
  if (t?.sent === undefined) return 'NOT SENT';
  if (t.nack !== undefined && t.nack.version === t.sent) return 'NACK';
  return t.acked === t.sent ? 'SYNCED' : 'STALE';
}

/** What a stream reports about the replies it receives (for logs and metrics). */
export interface ReplyEvents {
  ack(kind: ResourceKind, version: string): void;
  nack(kind: ResourceKind, version: string, message: string): void;
  stale(kind: ResourceKind): void;
}

/**
 * The one place a proxy's reply to the latest response of a type is
 * recorded, for both protocol variants: an `error_detail` is a NACK of
 * `version`, anything else acknowledges it. `full`: the responses carried
 * every resource of the type (state of the world), so an ACK takes them all.
 *
 * A NACK costs the resources it names, not the response: Envoy applies the
 * resources of a response it can and keeps what it had of the others, and
 * its message names the ones it refused. Those (or, when the message names
 * none, every resource the unanswered responses changed) are recorded as
 * rejected at the version sent; the others are taken.
 */
export function recordReply(
  record: ProxyRecord,
  events: ReplyEvents,
  kind: ResourceKind,
  version: string,
  errorDetail: { code?: number; message?: string } | null | undefined,
  full = false,
): void {
  const t = (record.types[kind] ??= {});
  const inFlight = t.inFlight ?? new Set<string>();
  t.inFlight = undefined;
  if (errorDetail && (errorDetail.message || errorDetail.code)) {
    // The proxy's own words: escaped and bounded before anyone logs or prints them.
    const message = clientText(errorDetail.message?.trim() || `code ${errorDetail.code}`);
    const at = Date.now();
    t.nack = { version, message, at: new Date(at).toISOString() };
    events.nack(kind, version, message);
    const candidates = full ? [...(t.target?.keys() ?? [])] : [...inFlight];
    const said = mentioned(errorDetail.message ?? '', candidates);
    const blamed = said.size > 0 ? said : new Set(full ? [...(t.unacked?.keys() ?? [])].filter((n) => t.target?.has(n)) : inFlight);
    for (const name of full ? candidates : inFlight) {
      if (blamed.has(name)) continue;
      t.unacked?.delete(name);
      t.rejected?.delete(name);
    }
    for (const name of blamed) {
      const sent = t.target?.get(name);
      if (sent === undefined) continue;
      (t.rejected ??= new Map()).set(name, { version: sent, message, at });
      if (!t.unacked?.has(name)) (t.unacked ??= new Map()).set(name, undefined);
    }
  } else {
    t.acked = version;
    events.ack(kind, version);
    if (full) {
      t.unacked?.clear();
      t.rejected?.clear();
    } else {
      for (const name of inFlight) {
        t.unacked?.delete(name);
        t.rejected?.delete(name);
      }
    }
  }
  settle(t);
}

/** A type with nothing outstanding holds no empty collections (a settled proxy costs what it did before). */
function settle(t: TypeStatus): void {
  if (!t.unacked?.size) {
    t.unacked = undefined;
    t.since = undefined;
  }
  if (!t.rejected?.size) t.rejected = undefined;
}

/** Resource names a NACK message mentions as words (its first 16 KiB: the text is the client's). */
export function mentioned(message: string, names: Iterable<string>): Set<string> {
  const words = new Set(message.slice(0, 16_384).split(/[\s,:'"()[\]{}]+/));
  const out = new Set<string>();
  for (const n of names) if (words.has(n)) out.add(n);
  return out;
}

/** The proxy no longer subscribes to a type: nothing is outstanding for it. */
export function recordUnsubscribed(record: ProxyRecord, kind: ResourceKind): void {
  delete record.types[kind];
}

/**
 * Before a response changes what a proxy is to hold of `names`: remembers
 * what it held of each (from `current`, what it was to hold until now), so
 * what it has not taken can be told until it answers.
 */
export function recordChanging(record: ProxyRecord, kind: ResourceKind, names: Iterable<string>, current: ReadonlyMap<string, string> | undefined): void {
  const t = (record.types[kind] ??= {});
  const unacked = (t.unacked ??= new Map());
  const inFlight = (t.inFlight ??= new Set());
  for (const n of names) {
    if (!unacked.has(n)) unacked.set(n, current?.get(n));
    inFlight.add(n);
  }
  if (unacked.size > 0) t.since ??= Date.now();
}

/** Records that `version` of a type was sent: the proxy is to hold `target`. */
export function recordSent(record: ProxyRecord, kind: ResourceKind, version: string, target: ReadonlyMap<string, string>): void {
  const t = (record.types[kind] ??= {});
  t.sent = version;
  t.target = target;
  // A name changed back to what the proxy holds is not waited for.
  for (const [name, held] of t.unacked ?? []) {
    if (target.get(name) !== held) continue;
    t.unacked!.delete(name);
    t.rejected?.delete(name);
  }
  settle(t);
}

/**
 * What one proxy has not taken, per type, with what it holds instead: what
 * it was sent and has not acknowledged (or rejected), and what its identity's
 * `snapshot` holds that was not sent to it yet. Nothing for a proxy in step
 * (a type whose sent version is the snapshot's and that has nothing
 * unacknowledged costs nothing).
 */
export function progressOf(record: ProxyRecord, snapshot?: { readonly types: Readonly<Record<ResourceKind, { readonly version: string; readonly resources: ReadonlyMap<string, { readonly version: string }> }>> }): {
  pending: { kind: ResourceKind; names: string[]; held: (string | undefined)[]; since: number }[];
  rejected: { kind: ResourceKind; name: string; held: string | undefined; message: string; at: number }[];
} {
  const pending: { kind: ResourceKind; names: string[]; held: (string | undefined)[]; since: number }[] = [];
  const rejected: { kind: ResourceKind; name: string; held: string | undefined; message: string; at: number }[] = [];
  for (const [kind, t] of Object.entries(record.types) as [ResourceKind, TypeStatus][]) {
    const latest = snapshot?.types[kind];
    const unsent = latest !== undefined && t.sent !== undefined && t.target !== undefined && latest.version !== t.sent;
    if (!t.unacked?.size && !unsent) continue;
    const waiting = new Map<string, string | undefined>();
    for (const [name, was] of t.unacked ?? []) {
      const sent = t.target?.get(name);
      if (sent === undefined) continue; // on its way out: no object of the mesh stands behind it any more
      const r = t.rejected?.get(name);
      if (r && r.version === sent) rejected.push({ kind, name, held: was, message: r.message, at: r.at });
      else waiting.set(name, was);
    }
    if (unsent) {
      // Published, not sent yet (the push window, or a proxy that does not read): what the snapshot holds that the proxy was not sent.
      const held = (name: string) => (t.unacked?.has(name) ? t.unacked.get(name) : t.target!.get(name));
      for (const [name, r] of latest.resources) if (t.target!.get(name) !== r.version && (t.target!.has(name) || WILDCARD_KINDS.has(kind)) && !waiting.has(name)) waiting.set(name, held(name));
    }
    if (waiting.size === 0) continue;
    const names = [...waiting.keys()].sort();
    pending.push({ kind, names, held: names.map((n) => waiting.get(n)), since: t.since ?? Date.now() });
  }
  return { pending, rejected };
}

export interface ProxyRegistry {
  add(record: Omit<ProxyRecord, 'stream' | 'types'>): ProxyRecord;
  remove(record: ProxyRecord): void;
  list(): ProxyRecord[];
  /** Tells `listener` of every stream that opens (true) or closes (false) from now on. */
  onStream(listener: (record: ProxyRecord, open: boolean) => void): void;
  /** Something was sent to a proxy, or it answered: what it has taken may have changed. */
  progressed(record: ProxyRecord): void;
  onProgress(listener: (record: ProxyRecord) => void): void;
}

export function createProxyRegistry(): ProxyRegistry {
  let next = 1;
  const records = new Set<ProxyRecord>();
  const listeners: ((record: ProxyRecord, open: boolean) => void)[] = [];
  const progress: ((record: ProxyRecord) => void)[] = [];
  return {
    add(r) {
      const record: ProxyRecord = { ...r, stream: next++, types: {} };
      records.add(record);
      for (const l of listeners) l(record, true);
      return record;
    },
    remove(r) {
      if (!records.delete(r)) return;
      for (const l of listeners) l(r, false);
    },
    onStream: (listener) => void listeners.push(listener),
    progressed: (record) => {
      for (const l of progress) l(record);
    },
    onProgress: (listener) => void progress.push(listener),
    list: () => [...records].sort((a, b) => (a.nodeId < b.nodeId ? -1 : a.nodeId > b.nodeId ? 1 : a.stream - b.stream)),
  };
}

/** Each connected proxy's state over all its types (the worst one) and its last NACK message, for the mesh graph. */
export function proxyStates(proxies: ProxyRegistry): { identity: string; nodeId: string; state: SyncState; nack?: string }[] {
  const rank: Record<SyncState, number> = { SYNCED: 0, 'NOT SENT': 1, STALE: 2, NACK: 3 };
  return proxies.list().map((p) => {
    let state: SyncState = Object.keys(p.types).length === 0 ? 'NOT SENT' : 'SYNCED';
    let nack: string | undefined;
    for (const t of Object.values(p.types)) {
      const s = syncState(t);
      if (s === 'NACK') nack = t?.nack?.message;
      if (rank[s] > rank[state]) state = s;
    }
    return { identity: p.identity, nodeId: clientText(p.nodeId, 128), state, ...(nack ? { nack } : {}) };
  });
}
