import { PUSH_ORDER, type ResourceKind } from '../compiler/envoy/codec.js';
import type { CachedSnapshot } from './cache.js';
import { recordChanging, recordReply, recordSent, recordUnsubscribed, type ProxyRecord, type ReplyEvents } from './proxy-status.js';
import { DEPENDENT, TYPE_URL, WILDCARD_KINDS, kindOfTypeUrl, type DeltaDiscoveryRequest, type DeltaDiscoveryResponse } from './xds-types.js';

/**
 * One incremental (delta) ADS stream, as a state machine with no IO:
 * - subscribe/unsubscribe change the subscription, even on a stale nonce, and
 *   subscribed names are sent even when the client is thought to have them;
 * - `initial_resource_versions` says what a reconnecting client has: only what
 *   differs is sent;
 * - deleted resources go in `removed_resources`;
 * - ACK/NACK as for state of the world (no resend of a rejected version);
 * - resources re-sent after their parent type changed (EDS after CDS, RDS after LDS).
 */
interface TypeState {
  started: boolean;
  nonce: string;
  wildcard: boolean;
  subscribed: Set<string>;
  /** What the client has: name -> version. */
  has: Map<string, string>;
  force: Set<string>;
  forceAll: boolean;
  sentVersion: string;
}

export class DeltaStream {
  private readonly state = new Map<ResourceKind, TypeState>();
  private nonce = 0;

  constructor(
    private readonly record: ProxyRecord,
    private readonly events: ReplyEvents,
  ) {}

  onRequest(req: DeltaDiscoveryRequest, snapshot: CachedSnapshot | undefined): DeltaDiscoveryResponse[] {
    const kind = kindOfTypeUrl(req.typeUrl);
    if (kind === undefined) return [];
    let st = this.state.get(kind);
    if (!st) {
      st = { started: false, nonce: '', wildcard: false, subscribed: new Set(), has: new Map(), force: new Set(), forceAll: false, sentVersion: '' };
      this.state.set(kind, st);
    }
    if (!st.started) {
      st.started = true;
      for (const [name, version] of Object.entries(req.initialResourceVersions ?? {})) st.has.set(name, version);
      if (WILDCARD_KINDS.has(kind) && req.resourceNamesSubscribe.length === 0) st.wildcard = true;
    }
    for (const name of req.resourceNamesSubscribe) {
      if (name === '*') st.wildcard = true;
      else {
        st.subscribed.add(name);
        st.force.add(name);
      }
    }
    for (const name of req.resourceNamesUnsubscribe) {
      if (name === '*') st.wildcard = false;
      else {
        st.subscribed.delete(name);
        st.has.delete(name);
        st.force.delete(name);
      }
    }
    if (req.responseNonce !== '') {
      if (req.responseNonce !== st.nonce) this.events.stale(kind);
      else recordReply(this.record, this.events, kind, st.sentVersion, req.errorDetail);
    }
    // Nothing subscribed any more: nothing is outstanding either.
    if (!st.wildcard && st.subscribed.size === 0 && st.has.size === 0) recordUnsubscribed(this.record, kind);
    return this.respond([kind], snapshot);
  }

  /** How many resource names this stream subscribes to or says it has (the server bounds it). */
  subscribedNames(): number {
    let n = 0;
    for (const st of this.state.values()) n += st.subscribed.size + st.has.size;
    return n;
  }

  onSnapshot(snapshot: CachedSnapshot | undefined): DeltaDiscoveryResponse[] {
    return this.respond(PUSH_ORDER, snapshot);
  }

  private respond(kinds: readonly ResourceKind[], snapshot: CachedSnapshot | undefined): DeltaDiscoveryResponse[] {
    const out: DeltaDiscoveryResponse[] = [];
    // Make before break: clusters (and their assignments) are removed last, once the routes and listeners that used them have moved on.
    const deferred: Partial<Record<'cluster' | 'endpoint', string[]>> = {};
    const pending = new Set(kinds);
    for (const kind of PUSH_ORDER) {
      if (!pending.has(kind)) continue;
      const st = this.state.get(kind);
      if (!st?.started) continue;
      const all = snapshot?.types[kind].resources ?? new Map();
      const wanted = (name: string) => st.wildcard || st.subscribed.has(name);
      const send = [...all.values()].filter((r) => wanted(r.name) && (st.forceAll || st.force.has(r.name) || st.has.get(r.name) !== r.version));
      let removed = [...st.has.keys()].filter((name) => !all.has(name));
      if ((kind === 'cluster' || kind === 'endpoint') && kinds.length > 1 && removed.length > 0) [deferred[kind], removed] = [removed, []];
      st.force.clear();
      st.forceAll = false;
      if (send.length === 0 && removed.length === 0) continue;
      recordChanging(this.record, kind, [...send.map((r) => r.name), ...removed], st.has);
      for (const r of send) st.has.set(r.name, r.version);
      for (const name of removed) st.has.delete(name);
      st.nonce = String(++this.nonce);
      st.sentVersion = snapshot?.types[kind].version ?? '';
      recordSent(this.record, kind, st.sentVersion, st.has);
      out.push({
        systemVersionInfo: st.sentVersion,
        typeUrl: TYPE_URL[kind],
        nonce: st.nonce,
        resources: send.map((r) => ({ name: r.name, version: r.version, resource: { type_url: TYPE_URL[kind], value: r.bytes } })),
        removedResources: removed.sort(),
      });
      const dependent = DEPENDENT[kind];
      const dep = dependent && this.state.get(dependent);
      if (dep?.started && send.length > 0) {
        // Clusters and their assignments share names; a listener's route tables are not known here, so all are re-sent.
        if (kind === 'cluster') for (const r of send) dep.force.add(r.name);
        else dep.forceAll = true;
        pending.add(dependent!);
      }
    }
    for (const kind of ['cluster', 'endpoint'] as const) {
      const st = this.state.get(kind);
      const names = deferred[kind];
      if (!st || !names) continue;
      recordChanging(this.record, kind, names, st.has);
      for (const name of names) st.has.delete(name);
      st.nonce = String(++this.nonce);
      st.sentVersion = snapshot?.types[kind].version ?? '';
      recordSent(this.record, kind, st.sentVersion, st.has);
      out.push({ systemVersionInfo: st.sentVersion, typeUrl: TYPE_URL[kind], nonce: st.nonce, resources: [], removedResources: names.sort() });
    }
    return out;
  }
}
