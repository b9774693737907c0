import type { ResourceKind } from '../compiler/envoy/codec.js';
import { clientText } from '../compiler/client-text.js';

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
 * `version`, anything else acknowledges it.
 */
export function recordReply(
  record: ProxyRecord,
  events: ReplyEvents,
  kind: ResourceKind,
  version: string,
  errorDetail: { code?: number; message?: string } | null | undefined,
): void {
  const t = (record.types[kind] ??= {});
  if (errorDetail && (errorDetail.message || errorDetail.code)) {
    // The proxy's own words: escaped and bounded before anyone logs or prints them.
    const message = clientText(errorDetail.message || `code ${errorDetail.code}`);
    t.nack = { version, message, at: new Date().toISOString() };
    events.nack(kind, version, message);
  } else {
    t.acked = version;
    events.ack(kind, version);
  }
}

/** The proxy no longer subscribes to a type: nothing is outstanding for it. */
export function recordUnsubscribed(record: ProxyRecord, kind: ResourceKind): void {
  delete record.types[kind];
}

/** Records that `version` of a type was sent. */
export function recordSent(record: ProxyRecord, kind: ResourceKind, version: string): void {
  (record.types[kind] ??= {}).sent = version;
}

export interface ProxyRegistry {
  add(record: Omit<ProxyRecord, 'stream' | 'types'>): ProxyRecord;
  remove(record: ProxyRecord): void;
  list(): ProxyRecord[];
  /** Tells `listener` of every stream that opens (true) or closes (false) from now on. */
  onStream(listener: (record: ProxyRecord, open: boolean) => void): void;
}

export function createProxyRegistry(): ProxyRegistry {
  let next = 1;
  const records = new Set<ProxyRecord>();
  const listeners: ((record: ProxyRecord, open: boolean) => void)[] = [];
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
