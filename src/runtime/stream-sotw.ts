import { PUSH_ORDER, type ResourceKind } from '../compiler/envoy/codec.js';
import type { CachedResource, CachedSnapshot } from './cache.js';
import { recordChanging, recordReply, recordSent, recordUnsubscribed, type ProxyRecord, type ReplyEvents } from './proxy-status.js';
import { DEPENDENT, TYPE_URL, WILDCARD_KINDS, kindOfTypeUrl, type DiscoveryRequest, type DiscoveryResponse } from './xds-types.js';

/**
 * One state-of-the-world ADS stream, as a state machine with no IO: requests
 * go in, responses come out. The rules it keeps are those of xds-rules.md:
 * - a request whose nonce is not the latest sent for its type is stale and ignored
 *   (the first request of a type, with no nonce, is always answered);
 * - an ACK records the version; a NACK records the error and nothing is re-sent
 *   until the content changes (no resend loop);
 * - an empty list for EDS/RDS/SDS unsubscribes from the type, even on a stale nonce:
 *   nothing is sent for it, and nothing is awaited;
 * - CDS/LDS without names (or `*`) is a wildcard subscription and gets the full set;
 *   EDS/RDS/SDS get exactly the requested names that exist, and names that appear
 *   later are sent when they do;
 * - a push follows make-before-break order and re-sends EDS after CDS and RDS after
 *   LDS, so warming always completes; only what changed is sent.
 */
interface TypeState {
  nonce: string;
  names: Set<string>;
  wildcard: boolean;
  everNamed: boolean;
  /** What the last response held (name -> resource version); undefined before the first response. */
  sent: Map<string, string> | undefined;
  sentVersion: string;
  force: boolean;
}

export class SotwStream {
  private readonly state = new Map<ResourceKind, TypeState>();
  private nonce = 0;

  constructor(
    private readonly record: ProxyRecord,
    private readonly events: ReplyEvents,
  ) {}

  /** Handles one request; returns the responses it calls for. */
  onRequest(req: DiscoveryRequest, snapshot: CachedSnapshot | undefined): DiscoveryResponse[] {
    const kind = kindOfTypeUrl(req.typeUrl);
    if (kind === undefined) return [];
    let st = this.state.get(kind);
    if (!st) {
      st = { nonce: '', names: new Set(), wildcard: false, everNamed: false, sent: undefined, sentVersion: '', force: false };
      this.state.set(kind, st);
    }
    if (req.responseNonce !== '' && req.responseNonce !== st.nonce) {
      // Stale, except for a named type's unsubscribe: a proxy that dropped its
      // last cluster un-watches EDS before it sees our latest (empty) response,
      // and never acknowledges a response for a type it no longer watches.
      if (!WILDCARD_KINDS.has(kind) && req.resourceNames.length === 0 && st.sent !== undefined) return this.unsubscribe(kind, st);
      this.events.stale(kind);
      return [];
    }
    if (req.responseNonce !== '') recordReply(this.record, this.events, kind, st.sentVersion, req.errorDetail, true);
    const names = new Set(req.resourceNames);
    const wildcard = names.has('*') || (WILDCARD_KINDS.has(kind) && names.size === 0 && !st.everNamed);
    if (names.size > 0 && !names.has('*')) st.everNamed = true;
    names.delete('*');
    const changed = wildcard !== st.wildcard || names.size !== st.names.size || [...names].some((n) => !st.names.has(n));
    st.wildcard = wildcard;
    st.names = names;
    // An empty list for a named type unsubscribes from it: a response would never be acknowledged.
    if (!wildcard && names.size === 0) return this.unsubscribe(kind, st);
    if (st.sent === undefined || changed || st.force) return this.respond([kind], snapshot, true);
    return [];
  }

  private unsubscribe(kind: ResourceKind, st: TypeState): DiscoveryResponse[] {
    st.names = new Set();
    st.wildcard = false;
    st.sent = undefined;
    st.force = false;
    recordUnsubscribed(this.record, kind);
    return [];
  }

  /** How many resource names this stream subscribes to (the server bounds it). */
  subscribedNames(): number {
    let n = 0;
    for (const st of this.state.values()) n += st.names.size;
    return n;
  }

  /**
   * After a snapshot change: the responses that bring this proxy up to date.
   * Make before break: clusters the new snapshot drops are first sent along
   * with the new ones, and removed by a last CDS response once the listeners
   * and routes that used them have moved on (a request routed to a cluster
   * being removed would be reset).
   */
  onSnapshot(snapshot: CachedSnapshot | undefined): DiscoveryResponse[] {
    const kept = new Map<string, CachedResource>();
    if (snapshot) for (const [name, r] of this.sentClusters) if (!snapshot.types.cluster.resources.has(name)) kept.set(name, r);
    if (kept.size === 0) return this.respond(PUSH_ORDER, snapshot, false);
    // Until then they keep their endpoints too (cluster and assignment share a name).
    const keptEndpoints = [...kept.keys()].flatMap((name) => {
      const r = this.sentEndpoints.get(name);
      return r && !snapshot!.types.endpoint.resources.has(name) ? [[name, r] as const] : [];
    });
    const { cluster, endpoint } = snapshot!.types;
    const interim: CachedSnapshot = {
      ...snapshot!,
      types: {
        ...snapshot!.types,
        cluster: { version: `${cluster.version}+draining`, resources: new Map([...cluster.resources, ...kept]) },
        endpoint: keptEndpoints.length > 0 ? { version: `${endpoint.version}+draining`, resources: new Map([...endpoint.resources, ...keptEndpoints]) } : endpoint,
      },
    };
    return [...this.respond(PUSH_ORDER, interim, false), ...this.respond(['cluster'], snapshot, false)];
  }

  /** The clusters and assignments last sent (the interim sets of a removal included). */
  private sentClusters: ReadonlyMap<string, CachedResource> = new Map();
  private sentEndpoints: ReadonlyMap<string, CachedResource> = new Map();

  private respond(kinds: readonly ResourceKind[], snapshot: CachedSnapshot | undefined, always: boolean): DiscoveryResponse[] {
    const out: DiscoveryResponse[] = [];
    for (const kind of PUSH_ORDER) {
      if (!kinds.includes(kind)) continue;
      const st = this.state.get(kind);
      if (!st || (st.sent === undefined && !always)) continue;
      const resources = this.select(kind, st, snapshot);
      const same = st.sent !== undefined && st.sent.size === resources.length && resources.every((r) => st.sent!.get(r.name) === r.version);
      if (same && !always && !st.force) continue;
      st.force = false;
      st.nonce = String(++this.nonce);
      const target = new Map(resources.map((r) => [r.name, r.version]));
      const before = st.sent;
      recordChanging(this.record, kind, changedNames(before, target), before);
      st.sent = target;
      if (kind === 'cluster') this.sentClusters = new Map(resources.map((r) => [r.name, r]));
      if (kind === 'endpoint') this.sentEndpoints = new Map(resources.map((r) => [r.name, r]));
      st.sentVersion = snapshot?.types[kind].version ?? '';
      recordSent(this.record, kind, st.sentVersion, target);
      out.push({
        versionInfo: st.sentVersion,
        typeUrl: TYPE_URL[kind],
        nonce: st.nonce,
        resources: resources.map((r) => ({ type_url: TYPE_URL[kind], value: r.bytes })),
      });
      const dependent = DEPENDENT[kind];
      const dep = dependent && this.state.get(dependent);
      if (dep && dep.sent !== undefined) dep.force = true;
    }
    // A dependent type forced by this pass goes out in the same pass, right after its parent.
    if (kinds.length === 1) {
      const dependent = DEPENDENT[kinds[0]!];
      if (dependent && out.length > 0 && this.state.get(dependent)?.force) out.push(...this.respond([dependent], snapshot, false));
    }
    return out;
  }

  private select(kind: ResourceKind, st: TypeState, snapshot: CachedSnapshot | undefined): CachedResource[] {
    const all = snapshot?.types[kind].resources;
    if (!all) return [];
    if (st.wildcard) return [...all.values()];
    return [...st.names].sort().flatMap((n) => {
      const r = all.get(n);
      return r ? [r] : [];
    });
  }
}

/** Names whose version differs between two sets (in either). */
function changedNames(before: ReadonlyMap<string, string> | undefined, after: ReadonlyMap<string, string>): string[] {
  const out: string[] = [];
  for (const [name, version] of after) if (before?.get(name) !== version) out.push(name);
  for (const name of before?.keys() ?? []) if (!after.has(name)) out.push(name);
  return out;
}
