import { createHash, hash as digestOf } from 'node:crypto';
import type { CertificateInputs } from '../inputs.js';
import { addressOnlyKeys, changedKeys, meshIndex, recordedView, routeBackends, serviceKey } from '../ir/index.js';
import { permissiveUpstreams, upstreamsIn, upstreamsOf, type ServiceSelection, type Upstream } from '../ir/reachability.js';
import { compareStrings, parseIdentity, type Endpoint, type Identity, type MeshIR, type MeshSettings, type ServiceIR, type ServicePortIR, type ServiceRouteIR, type SplitIR, type Workload } from '../ir/types.js';
import { KeyedMemo, PatchedTable, putIn, removeIn, tableChanges, type Read } from '../keyed.js';
import { recordInto } from '../status.js';
import { outboundClusterName } from './names.js';
import { sameItems } from '../group.js';
import type { InterceptionMode } from '../model.js';
import type { InboundPort } from './listener.js';
import type { NamedProbe } from '../probes.js';
import { TYPES, type ProtoCodec, type ResourceKind } from './codec.js';
import { edsCluster, inboundCluster, outboundCluster, outboundClusterKey } from './cluster.js';
import { resourceInconsistencies, type SharedResources } from './consistency.js';
import { loadAssignment, loadAssignmentKey } from './endpoint.js';
import { explicitListeners, inboundListener, inboundPorts, transparentListener } from './listener.js';
import { outboundOf, outboundServices, type OutboundService } from './outbound.js';
import { proxylessListeners } from './proxyless.js';
import { probeClusters, probeListener, type ProbeChain } from './probes.js';
import { inboundRouteConfig, OUTBOUND_RETRY, outboundRouteConfigs, serviceRouteConfigs } from './route.js';
import { identitySecret, trustBundleSecret } from './secret.js';

/**
 * A proxy identity's complete Envoy configuration: resources by type, each
 * type versioned by a hash of its encoded bytes, so the same inputs in any
 * order give byte-identical snapshots and the same versions.
 */
export interface EncodedResource {
  readonly name: string;
  readonly bytes: Uint8Array;
  /** The first 16 hex digits of the SHA-256 of `bytes` (the delta protocol's per-resource version); made once per encoding. */
  readonly hash?: string;
}

/** Each encoding's hash, made once however many snapshots hold it. */
const hashes = new WeakMap<Uint8Array, string>();
export function resourceHash(bytes: Uint8Array): string {
  let h = hashes.get(bytes);
  if (h === undefined) hashes.set(bytes, (h = digestOf('sha256', bytes).slice(0, 16)));
  return h;
}

/**
 * The one resource object of these bytes under this name: every set that
 * holds the same encoding holds the same object, so a message that carries
 * many sets (a hub's 5,000 callers, each with its assignment) copies it once.
 */
const resourceObjects = new WeakMap<Uint8Array, EncodedResource>();
function encodedResource(name: string, bytes: Uint8Array): EncodedResource {
  const known = resourceObjects.get(bytes);
  if (known?.name === name) return known;
  const made = { name, bytes, hash: resourceHash(bytes) };
  resourceObjects.set(bytes, made);
  return made;
}

export interface ResourceSet {
  readonly version: string;
  /** Sorted by name. */
  readonly resources: readonly EncodedResource[];
  /**
   * The sets this one is the union of, when it is made of parts (see
   * `composeSets`): what many identities share is one part, held by each.
   */
  readonly parts?: readonly ResourceSet[];
}

/**
 * A set as it crosses the compile worker's boundary: its resources, or the
 * parts it is made of (see `composeSets`), or, as a part, one the receiver
 * already holds for that identity and type (`held`: the index of that part in
 * the set it holds, -1 for that set itself; with its version, to check).
 * Parts held are not sent again: when the shared reach of a permissive mesh
 * changes, each identity's own part stays where it is.
 */
export type WireSet = { readonly version: string; readonly resources: readonly EncodedResource[] } | { readonly version: string; readonly parts: readonly WireSet[] } | HeldPart;
export interface HeldPart {
  readonly version: string;
  readonly held: number;
}

/**
 * `set` as sent to a receiver that holds `holding` for the same identity and
 * type: the parts it holds are named, not sent. A set made of parts is
 * always a plain `{ version, parts }` on the wire (a composed set's version
 * is made when first read, and is no property of its own to copy).
 */
export function onWire(set: ResourceSet, holding: ResourceSet | undefined): WireSet {
  if (!set.parts) return set instanceof EditedSet ? { version: set.version, resources: set.resources } : set;
  const parts = set.parts.map((p): WireSet => {
    const at = holding === undefined ? -2 : p === holding ? -1 : (holding.parts?.indexOf(p) ?? -1);
    return at === -2 || (at < 0 && p !== holding) ? p : { version: p.version, held: at };
  });
  return { version: set.version, parts };
}

/** The version of a set made of a shared part and an identity's own: the parts' versions hashed together. */
export function composedVersion(shared: string, own: string): string {
  return digestOf('sha256', `${shared}+${own}`).slice(0, 16);
}

/**
 * A type's set made of two parts whose names are disjoint (what the shared
 * reach decides, and what is the identity's own). Its version (the parts'
 * versions hashed together, see `composedVersion`) and its `resources` (the
 * parts merged in name order) are made when first read: a change of the
 * shared part gives every identity a new set, and most are never read whole
 * (the controller is told which part moved, and makes the version when a
 * proxy asks). The same resources always give the same version, since which
 * part a resource is in follows from its name. Its only own property is
 * `parts`; as JSON it is `{ version, parts }`.
 */
class ComposedSet implements ResourceSet {
  #version: string | undefined;
  #merged: readonly EncodedResource[] | undefined;
  readonly parts: readonly [ResourceSet, ResourceSet];
  constructor(shared: ResourceSet, own: ResourceSet) {
    this.parts = [shared, own];
  }
  get version(): string {
    return (this.#version ??= composedVersion(this.parts[0].version, this.parts[1].version));
  }
  get resources(): readonly EncodedResource[] {
    return (this.#merged ??= mergeByName(this.parts[0].resources, this.parts[1].resources));
  }
  toJSON(): { version: string; parts: readonly ResourceSet[] } {
    return { version: this.version, parts: this.parts };
  }
}

/**
 * The same resources put in (or replaced) and names removed in each of some
 * identities' own sets, whatever else each set holds. A set made by an edit
 * has its version made from its resources when first read (`setVersion`).
 */
export interface SetEdit {
  readonly edit: true;
  readonly put: readonly EncodedResource[];
  readonly removed: readonly string[];
}

/**
 * A set of resources made by an edit of another (an identity's endpoint set
 * with its assignments of a moved service replaced): its version is made
 * when first read, as `setVersion` makes it. The callers of a hub each make
 * one at its pod's move, all with the one edit object, and cross as that
 * edit (the controller makes each version itself, see `editOf`).
 */
class EditedSet implements ResourceSet {
  #version: string | undefined;
  // What it was made from, held weakly: a set made from an edited set, and so on at every move, would keep each
  // caller's every set alive. It is asked only while the set it was made from is the one last sent (held there).
  readonly #from: WeakRef<ResourceSet>;
  constructor(
    readonly resources: readonly EncodedResource[],
    from: ResourceSet,
    /** How it was made from it. */
    readonly edit: SetEdit,
  ) {
    this.#from = new WeakRef(from);
  }
  madeFrom(set: ResourceSet): boolean {
    return this.#from.deref() === set;
  }
  get version(): string {
    return (this.#version ??= setVersion(this.resources, (r) => r.hash!));
  }
  toJSON(): { version: string; resources: readonly EncodedResource[] } {
    return { version: this.version, resources: this.resources };
  }
}

/** The edit that made `set` of `held`, if it was made so: the same object for every set made by the same edit in one planning. */
export function editOf(set: ResourceSet, held: ResourceSet): SetEdit | undefined {
  return set instanceof EditedSet && set.madeFrom(held) ? set.edit : undefined;
}

/** The edits of one planning, by the resources they put (one object per list of resources). */
class Edits {
  readonly #byFirst = new Map<EncodedResource, { edit?: SetEdit; next: Edits }>();
  of(put: readonly EncodedResource[], at = 0): SetEdit {
    let step = this.#byFirst.get(put[at]!);
    if (!step) this.#byFirst.set(put[at]!, (step = { next: new Edits() }));
    return at + 1 === put.length ? (step.edit ??= { edit: true, put, removed: [] }) : step.next.of(put, at + 1);
  }
}

/** The set made of a shared part and an identity's own (see `ComposedSet`): one object per pair. */
const composed = new WeakMap<ResourceSet, WeakMap<ResourceSet, ResourceSet>>();
export function composeSets(shared: ResourceSet, own: ResourceSet): ResourceSet {
  let byOwn = composed.get(shared);
  if (!byOwn) composed.set(shared, (byOwn = new WeakMap()));
  let set = byOwn.get(own);
  if (!set) byOwn.set(own, (set = new ComposedSet(shared, own)));
  return set;
}

/** A set's resources in name order, whether it crossed the worker's boundary or not. */
export function resourcesOf(set: WireSet): readonly EncodedResource[] {
  if ('held' in set) throw new Error('a part held by the receiver has no resources of its own (see onWire)');
  if (!('parts' in set)) return set.resources;
  return set.parts.map(resourcesOf).reduce((a, b) => mergeByName(a, b));
}

function mergeByName(a: readonly EncodedResource[], b: readonly EncodedResource[]): EncodedResource[] {
  const out: EncodedResource[] = [];
  let i = 0;
  let j = 0;
  while (i < a.length || j < b.length) out.push(j >= b.length || (i < a.length && compareStrings(a[i]!.name, b[j]!.name) <= 0) ? a[i++]! : b[j++]!);
  return out;
}

/** Who consumes the snapshot: an Envoy sidecar, or a proxyless gRPC application (see proxyless.ts). */
export type DataPlane = 'envoy' | 'proxyless';

export interface Snapshot {
  readonly identity: Identity;
  readonly dataPlane: DataPlane;
  readonly types: Readonly<Record<ResourceKind, ResourceSet>>;
  /** What the translation had to leave out for this proxy, and why (sorted). */
  readonly warnings: readonly string[];
}

type Named = { name?: string; clusterName?: string };

/** Values by key, falling back to a previous generation's (taken over when asked for). */
class Carried<V> extends Map<string, V> {
  constructor(private prior: ReadonlyMap<string, V> | undefined) {
    super();
  }

  override get(key: string): V | undefined {
    const now = super.get(key);
    if (now !== undefined || this.prior === undefined) return now;
    const before = Map.prototype.get.call(this.prior, key) as V | undefined;
    if (before !== undefined) super.set(key, before);
    return before;
  }

  seal(): this {
    this.prior = undefined;
    return this;
  }
}

/**
 * Encoded bytes by resource content, for one compile: a resource many
 * proxies receive (an outbound cluster and its endpoints, say) is encoded
 * once, and every snapshot holding it shares the same bytes. A planning's
 * memo starts from the previous planning's: what that one encoded and this
 * one asks for again is found there, and kept for the next; what this one
 * does not ask for is let go with the previous one. It carries the same way
 * the resource objects made from a few inputs (an endpoint assignment, by
 * the text of what it reads), so that many callers' sets, from one planning
 * to the next, hold the same objects and find their bytes by object.
 */
export class EncodeMemo extends Carried<Uint8Array> {
  readonly objects: Carried<object>;
  /**
   * The assignment last made for a service port (the IR's very object), with
   * the endpoints it was made from: asked again with the same endpoints (the
   * very objects), it is found without making the text of what it reads.
   * Handed from planning to planning; a port the IR no longer holds is let go.
   */
  readonly assignmentByPort: WeakMap<ServicePortIR, { readonly service: ServiceIR; readonly endpoints: readonly Endpoint[]; readonly assignment: Named }>;
  /**
   * An identity's outbound services by the text of their plan row, for this
   * planning only (a row names its service and port, whose IR objects are
   * this planning's): callers that call a service the same way hold the same
   * object, so the route table and filter chain made from it are made,
   * encoded and walked once for all of them.
   */
  readonly outbound = new Map<string, OutboundService>();

  constructor(prior?: EncodeMemo) {
    super(prior);
    this.objects = new Carried(prior?.objects);
    this.assignmentByPort = prior?.assignmentByPort ?? new WeakMap();
  }

  /** The object of `key` (the text of everything it is made from): the one this planning or the previous one made, or `make`'s. */
  object<T extends object>(key: string, make: () => T): T {
    let o = this.objects.get(key);
    if (o === undefined) this.objects.set(key, (o = make()));
    return o as T;
  }

  /** The planning is over: what the previous one held and this one did not ask for is let go. */
  override seal(): this {
    this.objects.seal();
    this.outbound.clear();
    return super.seal();
  }
}

/**
 * Listeners and route tables are not keyed by their text: what callers hold
 * alike (a service's route table, its outbound filter chain) is one object
 * for all of them and found by that object (`EncodeMemo.outbound`,
 * `EncodeMemo.object`), and the rest is the proxy's own (its inbound RBAC),
 * which no other proxy holds. Clusters, endpoints and secrets are made from a
 * few inputs and keyed by them.
 */
const SHARED_KINDS: ReadonlySet<ResourceKind> = new Set(['cluster', 'endpoint', 'secret']);

/**
 * Resources made from a few inputs carry those inputs as their memo key
 * (`#` and the key their translator gives): found in the memo without being
 * serialised. Any other shared resource is keyed by its JSON text.
 */
const inputKeys = new WeakMap<object, string>();
function keyed<T extends object>(json: T, key: string): T {
  inputKeys.set(json, key);
  return json;
}

/**
 * Bytes by the resource object they were encoded from: a resource object
 * that several snapshots hold (what a shared reach built once) is encoded
 * once. Resource objects are never changed once made.
 */
const encodedObjects = new WeakMap<object, Uint8Array>();

/**
 * Virtual hosts' bytes by their content. An outbound route table holds one
 * virtual host per service its proxy calls, and in a permissive mesh every
 * namespace's table holds one per service of the mesh: tables differ by a
 * host or two, and a change (a split's weights) changes one host. A table is
 * encoded as its name and its hosts' bytes, each host encoded once for all
 * tables and compiles that hold it: the same bytes the whole table encoded
 * at once would give (fields in number order; a host is a length-delimited
 * field 2). Bounded: dropped whole when it grows past its limit.
 */
const virtualHostBytes = new Map<string, Uint8Array>();
const hostObjectBytes = new WeakMap<object, Uint8Array>();
const VIRTUAL_HOST_LIMIT = 200_000;
const VIRTUAL_HOST = 'envoy.config.route.v3.VirtualHost';

function varint(n: number): number[] {
  const out: number[] = [];
  while (n > 0x7f) {
    out.push((n & 0x7f) | 0x80);
    n >>>= 7;
  }
  out.push(n);
  return out;
}

/**
 * A message with one long repeated field of messages (a route table's
 * virtual hosts, field 2; a listener's filter chains, field 3), encoded as
 * its fields before that one, the items' bytes, and its fields after: byte
 * for byte what encoding it whole gives, since the encoder writes fields in
 * number order. `before` names the JSON fields numbered below the repeated
 * one (every other field of `json` is numbered above it). Undefined when the
 * message has no such field.
 */
function encodeByItems(codec: ProtoCodec, typeName: string, json: Named, field: { readonly key: string; readonly number: number; readonly before: readonly string[] }, itemBytes: (item: object) => Uint8Array): Uint8Array | undefined {
  const message = json as Record<string, unknown>;
  const items = message[field.key];
  if (!Array.isArray(items)) return undefined;
  const head: Record<string, unknown> = {};
  const tail: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(message)) if (k !== field.key) (field.before.includes(k) ? head : tail)[k] = v;
  const parts: Uint8Array[] = [codec.encode(typeName, head)];
  let framedOf = framed.get(field.number);
  if (!framedOf) framed.set(field.number, (framedOf = new WeakMap()));
  for (const item of items as object[]) {
    const bytes = itemBytes(item);
    // The item as a field of the message (its tag and length, then its bytes), made once per item's bytes.
    let asField = framedOf.get(bytes);
    if (!asField) framedOf.set(bytes, (asField = joined([Uint8Array.from([(field.number << 3) | 2, ...varint(bytes.length)]), bytes])));
    parts.push(asField);
  }
  if (Object.keys(tail).length > 0) parts.push(codec.encode(typeName, tail));
  return joined(parts);
}

/** `parts` one after the other, in a buffer of their own (see `ownBuffer`; a Buffer, as the encoder gives). */
function joined(parts: readonly Uint8Array[]): Uint8Array {
  let length = 0;
  for (const p of parts) length += p.length;
  const out = Buffer.allocUnsafeSlow(length);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

const framed = new Map<number, WeakMap<Uint8Array, Uint8Array>>();
const ROUTE_HOSTS = { key: 'virtualHosts', number: 2, before: ['name'] } as const;
const LISTENER_CHAINS = { key: 'filterChains', number: 3, before: ['name', 'address'] } as const;
const FILTER_CHAIN = 'envoy.config.listener.v3.FilterChain';
/** A filter chain object's bytes (one the transparent listener of many compiles holds is encoded once). */
const chainBytes = new WeakMap<object, Uint8Array>();

/** A route table encoded from its virtual hosts' bytes, each host encoded once (by object, then by content). */
function encodeRouteTable(codec: ProtoCodec, json: Named): Uint8Array | undefined {
  return encodeByItems(codec, TYPES.route, json, ROUTE_HOSTS, (item) => {
    const host = item as { retryPolicy?: unknown };
    // A host object several tables hold (route.ts makes one per service for the other namespaces) is keyed once.
    let bytes = hostObjectBytes.get(host);
    if (!bytes) {
      // Every outbound host has the same retry policy object: it is named in the key, not written out.
      const key = host.retryPolicy === OUTBOUND_RETRY ? `${JSON.stringify({ ...host, retryPolicy: undefined })}#retry` : JSON.stringify(host);
      bytes = virtualHostBytes.get(key);
      if (!bytes) {
        if (virtualHostBytes.size >= VIRTUAL_HOST_LIMIT) virtualHostBytes.clear();
        virtualHostBytes.set(key, (bytes = ownBuffer(codec.encode(VIRTUAL_HOST, host))));
      }
      hostObjectBytes.set(host, bytes);
    }
    return bytes;
  });
}

/**
 * A listener encoded from its filter chains' bytes, each chain object
 * encoded once: an outbound chain is one object for every caller of its
 * service (and for every identity of a permissive mesh).
 */
function encodeListener(codec: ProtoCodec, json: Named): Uint8Array | undefined {
  return encodeByItems(codec, TYPES.listener, json, LISTENER_CHAINS, (chain) => {
    let bytes = chainBytes.get(chain);
    if (!bytes) chainBytes.set(chain, (bytes = ownBuffer(codec.encode(FILTER_CHAIN, chain))));
    return bytes;
  });
}

/**
 * The bytes in a buffer of their own. The encoder gives small messages as
 * views into 8 KiB slabs it shares with whatever else was allocated then: a
 * resource (or a virtual host, a filter chain, kept to be encoded from) kept
 * for long would keep its whole slab alive, and a message to the controller
 * thread copies each slab a resource sits in whole (a hub move's 5,000
 * endpoint sets, 30,000 views of 0.7 MB of resources, copied 37 MB of slabs).
 */
function ownBuffer(bytes: Uint8Array): Uint8Array {
  if (bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength) return bytes;
  // (A Buffer still, as the encoder gives them.)
  const copy = new Uint8Array(bytes);
  return Buffer.from(copy.buffer, 0, copy.byteLength);
}

/** One resource, encoded once per object (and, of the kinds many identities share, once per content). */
function encodeResource(codec: ProtoCodec, kind: ResourceKind, json: Named, memo: EncodeMemo): EncodedResource {
  let bytes = encodedObjects.get(json);
  if (!bytes) encodedObjects.set(json, (bytes = encodeOnce(codec, kind, json, memo)));
  return encodedResource((json.name ?? json.clusterName)!, bytes);
}

function encodeOnce(codec: ProtoCodec, kind: ResourceKind, json: Named, memo: EncodeMemo): Uint8Array {
  if (kind === 'route') return ownBuffer(encodeRouteTable(codec, json) ?? codec.encode(TYPES[kind], json));
  if (kind === 'listener') return ownBuffer(encodeListener(codec, json) ?? codec.encode(TYPES[kind], json));
  if (!SHARED_KINDS.has(kind)) return ownBuffer(codec.encode(TYPES[kind], json));
  const input = inputKeys.get(json);
  const key = `${kind}\u0000${input === undefined ? JSON.stringify(json) : `#${input}`}`;
  let bytes = memo.get(key);
  if (!bytes) memo.set(key, (bytes = ownBuffer(codec.encode(TYPES[kind], json))));
  return bytes;
}

function encodeSet(codec: ProtoCodec, kind: ResourceKind, items: readonly Named[], memo: EncodeMemo): ResourceSet {
  const resources = items.map((json) => encodeResource(codec, kind, json, memo)).sort((a, b) => compareStrings(a.name, b.name));
  return { version: setVersion(resources, (r) => r.hash!), resources };
}

/**
 * The version of a set of resources (not of parts): a hash of each
 * resource's name and hash, in name order. The controller's cache makes a
 * set's version this way too, when it makes the set from one it holds (see
 * `SetEdit`).
 */
export function setVersion<R extends { readonly name: string }>(resources: Iterable<R>, hashOf: (r: R) => string): string {
  // (Each resource's bytes are hashed once, whoever holds it.)
  let text = '';
  for (const r of resources) text += `${r.name}\0${hashOf(r)}\0`;
  return digestOf('sha256', text).slice(0, 16);
}

/**
 * A type's set from the parts it is made of: what the reach decides (shared
 * by every identity of a permissive mesh, encoded, sorted and hashed once per
 * reach, see `sharedSet`) and what is the identity's own (its inbound side).
 * The identity's set is made of the two (`composeSets`): its cost is the
 * identity's own resources, not the mesh's. A type with one part that is not
 * empty has that part's set itself, so identities with the same resources
 * share one set.
 */
function joinParts(sharedPart: ResourceSet, ownSet: ResourceSet): ResourceSet {
  if (ownSet.resources.length === 0) return sharedPart;
  if (sharedPart.resources.length === 0) return ownSet;
  return composeSets(sharedPart, ownSet);
}

/** The set of a list of resources many snapshots hold, encoded, sorted and hashed once per list. */
const encodedParts = new WeakMap<readonly Named[], Map<ResourceKind, ResourceSet>>();
function sharedSet(codec: ProtoCodec, kind: ResourceKind, list: readonly Named[], memo: EncodeMemo): ResourceSet {
  let byKind = encodedParts.get(list);
  if (!byKind) encodedParts.set(list, (byKind = new Map()));
  let set = byKind.get(kind);
  if (!set) byKind.set(kind, (set = encodeSet(codec, kind, list, memo)));
  return set;
}

/**
 * A snapshot with the fingerprint of the plan it was built from: everything
 * the translation reads for this identity (what it may reach and how, what it
 * serves and to whom, the mesh settings it uses, its certificate), Envoy-free.
 * Given the previous compile's plans, an identity whose plan did not change
 * keeps its snapshot as it was: nothing is translated or encoded again. The
 * result is byte-identical to a compile from scratch (a property test holds
 * chained compiles to fresh ones).
 */
export interface PlannedSnapshot {
  /** What the translation read for this identity (plain data; compared as JSON text with the next compile's). */
  readonly plan: readonly unknown[];
  readonly snapshot: Snapshot;
  /** References that do not close within the snapshot (a compiler bug; see consistency.ts). Empty when it is sound. */
  readonly inconsistencies: readonly string[];
  /**
   * What planning read of the mesh (keys of its index, see `recordedView`;
   * `*`: everything, for a reach shared by the whole mesh). A change to any
   * other key cannot change this plan.
   */
  readonly reads: ReadonlySet<string>;
  /** The certificate and trust bundle its secrets were made from. */
  readonly source: SecretSource;
  /** The identity's own resources (its inbound side) as built and encoded, with what they were built from: a plan whose reach alone changed reuses them. */
  readonly own?: OwnPart;
  /** The plan, where the reach is the mesh's shared one (with `own`): a change of that reach alone makes the next plan from it. */
  readonly proxy?: ProxyPlan;
}

/** An identity's own resources: built from the plan's fields but its reach (`ownKey`). */
interface OwnPart {
  readonly key: string;
  readonly resources: Readonly<Record<ResourceKind, readonly Named[]>>;
  readonly sets: Readonly<Record<Exclude<ResourceKind, 'secret' | 'endpoint'>, ResourceSet>>;
}

/** What a plan's own resources are built from: every field but the reach, the namespace and the warnings. */
const ownKey = (p: ProxyPlan): string => JSON.stringify([p.dataPlane, p.modes, p.settings, p.inbound, p.injected, p.probes, p.probeChains]);

export type SnapshotPlans = ReadonlyMap<Identity, PlannedSnapshot>;

/** A plan's JSON text, made once per plan (a plan is compared again at every later compile until it changes). */
const planTexts = new WeakMap<readonly unknown[], string>();
function planText(plan: readonly unknown[]): string {
  let text = planTexts.get(plan);
  if (text === undefined) planTexts.set(plan, (text = JSON.stringify(plan)));
  return text;
}

/**
 * Everything the translation of one identity reads, Envoy-free: the plan is
 * translation's only input (`translate`). Endpoints are not part of it (the
 * reach's assignments are the endpoint path's), nor is the certificate (a new
 * one re-encodes the secrets and nothing else).
 */
export interface ProxyPlan {
  readonly dataPlane: DataPlane;
  readonly modes: readonly InterceptionMode[];
  /** The identity's namespace (route tables name services relative to it). */
  readonly namespace: string;
  readonly settings: Pick<MeshSettings, 'permissive' | 'trustDomain' | 'accessLog'>;
  /** What it may reach and how. */
  readonly reach: Reach;
  /** What it serves, and to whom. */
  readonly inbound: readonly InboundPort[];
  /** Its pods were injected by smc: its sidecar serves the probe port. */
  readonly injected: boolean;
  readonly probes: readonly NamedProbe[];
  readonly probeChains: readonly ProbeChain[];
  readonly warnings: readonly string[];
}

/**
 * How each field of a plan enters its fingerprint (what is compared with the
 * previous plan). Every field of `ProxyPlan` must be here: the type says so,
 * so a field added to the plan cannot be left out of what is compared.
 */
const FINGERPRINT: { readonly [K in keyof ProxyPlan]-?: (value: ProxyPlan[K]) => unknown } = {
  dataPlane: (v) => v,
  modes: (v) => v,
  namespace: (v) => v,
  settings: (v) => [v.permissive, v.trustDomain, v.accessLog],
  reach: (v) => v.plan,
  inbound: (v) => v,
  injected: (v) => v,
  probes: (v) => v,
  probeChains: (v) => v,
  warnings: (v) => v,
};
const FIELDS = Object.keys(FINGERPRINT) as (keyof ProxyPlan)[];
const fingerprintOf = (plan: ProxyPlan): unknown[] => FIELDS.map((k) => (FINGERPRINT[k] as (v: unknown) => unknown)(plan[k]));

/** The plan of `identity`, read from `view` (whose reads are recorded); `reads` receives `*` when its reach is the mesh's shared one. */
function makePlan(mesh: MeshIR, view: MeshIR, identity: Identity, reads: Set<string>, previousMesh: MeshIR | undefined, memo: EncodeMemo): ProxyPlan {
  const warnings = new Set<string>();
  const warn = (m: string) => warnings.add(m);
  const workloads = meshIndex(view).workloadsOf.get(identity) ?? [];
  const modes = new Set(workloads.map((w) => w.interceptionMode));
  const dataPlane: DataPlane = modes.size === 1 && modes.has('proxyless') ? 'proxyless' : 'envoy';
  if (dataPlane === 'envoy' && modes.has('proxyless')) {
    const names = workloads.filter((w) => w.interceptionMode === 'proxyless').map((w) => `${w.kind} ${w.namespace}/${w.name}`);
    warn(`${names.join(', ')}: proxyless, but shares its identity with sidecar workloads and so receives sidecar configuration, which gRPC clients reject; give it a service account of its own`);
  }
  const reach = reachOf(mesh, view, identity, dataPlane, reads, previousMesh, memo);
  for (const w of reach.warnings) warn(w);
  // Injected pods' sidecars answer their probes (and their own readiness) on the probe port: the union over the identity's pods, by key.
  const injected = dataPlane === 'envoy' && workloads.some((w) => w.injected !== undefined);
  const { permissive, trustDomain, accessLog } = view.settings;
  return {
    dataPlane,
    modes: [...modes].sort(),
    namespace: workloads[0]?.namespace ?? '',
    settings: { permissive, trustDomain, accessLog },
    reach,
    inbound: dataPlane === 'envoy' ? inboundPorts(view, identity) : [],
    injected,
    probes: injected ? [...new Map(workloads.flatMap((w) => w.injected?.probes ?? []).map((p) => [p.key, p])).values()].sort((a, b) => compareStrings(a.key, b.key)) : [],
    probeChains: injected ? probeChainsOf(workloads) : [],
    warnings: [...warnings],
  };
}

/**
 * The planned snapshot of `identity`. With `sharedReach` (the mesh's new
 * shared reach, when the identity read nothing else that changed), the plan
 * is the previous one with that reach: what the identity read of the mesh
 * itself is the same, so it is not read again.
 */
export function planSnapshot(mesh: MeshIR, identity: Identity, codec: ProtoCodec, certificates?: CertificateInputs, memo: EncodeMemo = new EncodeMemo(), previous?: PlannedSnapshot, previousMesh?: MeshIR, sharedReach?: Reach): PlannedSnapshot {
  const fromPrevious = sharedReach && previous?.proxy;
  let reads: ReadonlySet<string>;
  let proxy: ProxyPlan;
  if (fromPrevious) {
    reads = previous.reads;
    proxy = withReach(fromPrevious, sharedReach);
  } else {
    // The plan reads the mesh through this view: what it reads is what it depends on.
    const recorded = new Set<string>();
    proxy = makePlan(mesh, recordedView(mesh, (key) => recorded.add(key)), identity, recorded, previousMesh, memo);
    reads = recorded;
  }
  const plan = fingerprintOf(proxy);
  const own = certificateOf(certificates, identity);
  // Secrets depend on the certificate alone: they are not part of the plan, and a new certificate re-encodes them and nothing else.
  const secretsOf = (): Named[] => secretList(own, certificates);
  const madeWith = new SecretSource(own, certificates?.trustBundle);
  // Compared only when there is a previous plan: a cold compile pays nothing for it.
  // A plan made from the previous one with another reach is not the same (its fingerprint holds the reach's hash and warnings).
  if (previous && !fromPrevious && planText(previous.plan) === planText(plan)) {
    const endpoint = endpointSet(proxy.reach, codec, memo);
    const sameEndpoints = endpoint.version === previous.snapshot.types.endpoint.version;
    const sameSecretsAsBefore = sameSecrets(previous.source, madeWith.certificate, madeWith.trustBundle);
    if (sameEndpoints && sameSecretsAsBefore) {
      // The same plan may have read other keys this time (a grant to an identity that has no endpoint yet): those are what it depends on now.
      if (sameReads(previous.reads, reads)) return previous;
      return { ...previous, reads };
    }
    const types = {
      ...previous.snapshot.types,
      ...(sameEndpoints ? {} : { endpoint }),
      ...(sameSecretsAsBefore ? {} : { secret: encodeSet(codec, 'secret', secretsOf(), memo) }),
    };
    // The same plan: its own part (built from the plan alone) stays, for a later change of the reach to reuse.
    return { plan, snapshot: { ...previous.snapshot, types }, inconsistencies: previous.inconsistencies, reads, source: madeWith, ...(previous.own ? { own: previous.own, proxy } : {}) };
  }
  // The secrets of the previous snapshot when its certificate is the same: not made or encoded again.
  const keptSecrets = previous && sameSecrets(previous.source, madeWith.certificate, madeWith.trustBundle) ? previous.snapshot.types.secret : undefined;
  const { snapshot, inconsistencies, own: ownPart } = translate(proxy, identity, codec, memo, secretsOf, previous?.own, keptSecrets, fromPrevious !== undefined);
  return ownPart ? { plan, snapshot, inconsistencies, reads, source: madeWith, own: ownPart, proxy } : { plan, snapshot, inconsistencies, reads, source: madeWith };
}

/** `plan` with another shared reach: its own warnings (those its reach did not give) and the new reach's, in the order `makePlan` gives them. */
function withReach(plan: ProxyPlan, reach: Reach): ProxyPlan {
  if (plan.warnings.length === 0 && reach.warnings.length === 0) return { ...plan, reach };
  const before = new Set(plan.reach.warnings);
  return { ...plan, reach, warnings: [...new Set([...plan.warnings.filter((w) => !before.has(w)), ...reach.warnings])] };
}

/** A plan's Envoy resources, encoded: reads the plan and nothing else (and the secrets, made from the certificate). */
function translate(
  plan: ProxyPlan,
  identity: Identity,
  codec: ProtoCodec,
  memo: EncodeMemo,
  /** The identity's secrets, made when they are not kept. */
  secrets: () => Named[],
  previousOwn?: OwnPart,
  keptSecrets?: ResourceSet,
  /** The plan is the one `previousOwn` was built from but its reach: what its own part is built from is the same. */
  sameOwn = false,
): { snapshot: Snapshot; inconsistencies: string[]; own: OwnPart | undefined } {
  const { reach, dataPlane, inbound, injected, probes, probeChains } = plan;
  const warnings = new Set(plan.warnings);
  const bundle = reachBundle(plan, codec, memo, (m) => void warnings.add(m));
  const shared = bundle.lists;
  const none: Named[] = [];
  // The own resources of the previous plan, when only its reach changed: the same objects, so the same encoded sets.
  const reused = previousOwn && (sameOwn || previousOwn.key === ownKey(plan)) ? previousOwn : undefined;
  let ownResources: Record<ResourceKind, readonly Named[]>;
  if (dataPlane === 'proxyless') ownResources = { cluster: none, endpoint: none, listener: none, route: none, secret: none };
  else if (reused) ownResources = reused.resources;
  else {
    const listeners: Named[] = injected ? [probeListener(probeChains)] : [];
    if (inbound.length > 0) listeners.push(inboundListener(plan.settings, inbound));
    ownResources = {
      cluster: [...inbound.map((p) => inboundCluster(p.port, p.protocol)), ...(injected ? probeClusters(probes) : [])],
      endpoint: none,
      listener: listeners,
      route: inbound.filter((p) => p.protocol !== 'tcp').map((p) => inboundRouteConfig(p.port, p.protocol, p.grants, plan.settings.permissive)),
      secret: none,
    };
  }
  const ownSets = reused?.sets ?? {
    cluster: encodeSet(codec, 'cluster', ownResources.cluster, memo),
    listener: encodeSet(codec, 'listener', ownResources.listener, memo),
    route: encodeSet(codec, 'route', ownResources.route, memo),
  };
  let secretObjects: Named[] | undefined;
  const types = {
    cluster: joinParts(bundle.sets.cluster, ownSets.cluster),
    endpoint: endpointSet(reach, codec, memo),
    listener: joinParts(bundle.sets.listener, ownSets.listener),
    route: joinParts(bundle.sets.route, ownSets.route),
    secret: keptSecrets ?? encodeSet(codec, 'secret', (secretObjects = secrets()), memo),
  };
  // Kept for the next plan only where a reach is shared (a permissive mesh): there a change of the reach re-plans every identity, and its own part is what it keeps.
  // The own lists as one value (kept with the own part): what they define and leave open is found once for it.
  const ownLists = reused?.resources ?? ownResources;
  const own: OwnPart | undefined = !reach.shared ? undefined : (reused ?? { key: ownKey(plan), resources: ownLists, sets: ownSets });
  // References close within the snapshot: checked on what was just built, not by decoding it again.
  // (Secrets kept are checked by their names, as encoded.)
  return { snapshot: { identity, dataPlane, types, warnings: [...warnings].sort(compareStrings) }, inconsistencies: resourceInconsistencies(identity, ownLists, shared, secretObjects ?? types.secret.resources), own };
}

interface Bundle {
  readonly lists: SharedResources;
  readonly sets: Readonly<Record<'cluster' | 'listener' | 'route', ResourceSet>>;
}

/**
 * The resources the reach decides for identities of a plan's data plane and
 * modes (and namespace, where tables are per namespace), with their sets
 * encoded: made once per reach and key, and what making them warned is given
 * again to each identity (`warn`).
 */
function reachBundle(plan: ProxyPlan, codec: ProtoCodec, memo: EncodeMemo, warn: (m: string) => void): Bundle {
  const { dataPlane, namespace, modes } = plan;
  // Which tables the listeners name: per service (transparent), per port (explicit), or both. Without explicit mode they do not depend on the namespace.
  const routesKey = dataPlane === 'proxyless' ? `proxyless ${namespace}` : modes.includes('explicit') ? `envoy ${namespace} ${modes.join(' ')}` : `envoy ${modes.join(' ')}`;
  return fromReach(plan.reach, `shared ${routesKey}`, warn, (w) => makeBundle(plan, codec, memo, w));
}

function makeBundle(plan: ProxyPlan, codec: ProtoCodec, memo: EncodeMemo, w: (m: string) => void): Bundle {
  const { reach, dataPlane, namespace } = plan;
  const { upstreams, outbound } = reach;
  const modes = new Set(plan.modes);
  // What the reach alone decides is made once per reach (once for all identities of a permissive mesh), and checked once.
  const once = <T>(key: string, make: (warn: (m: string) => void) => T): T => fromReach(reach, key, w, make);
  // An object made from a few inputs (a cluster, a filter chain), by their text: the reach's (kept from the prior shared reach), or for an identity's own reach this planning's, which its other callers share.
  const objectOf = <T extends object>(part: object, key: () => string, make: () => T): T => (reach.shared ? reachPartObject(reach, part, key, make) : memo.object(key(), make));
  // Tables by port (the Host header tells services apart) for explicit mode's listeners and proxyless clients, per namespace (short names are the namespace's own).
  const portRoutes = () => once(`routes ${namespace}`, () => kept(reach, `routes ${namespace}`, outboundRouteConfigs(outbound, namespace).map((t) => kept(reach, `route ${namespace} ${t.name}`, t))));
  // A table per service for the transparent listener's chains: the same for every namespace.
  const serviceRoutes = () => once('service routes', () => kept(reach, 'service routes', serviceRouteConfigs(outbound)));
  const endpoint = assignments(reach, memo);
  let lists: SharedResources;
  if (dataPlane === 'proxyless') {
    const cluster = once('clusters', () => upstreams.map((u) => objectOf(u, () => `cluster ${outboundClusterKey(u, dataPlane)}`, () => keyed(edsCluster(u), outboundClusterKey(u, dataPlane)))));
    lists = { cluster, endpoint, listener: once('proxyless', (w2) => proxylessListeners(outbound, w2) as Named[]), route: portRoutes() };
  } else {
    const cluster = once('clusters', () => kept(reach, 'clusters', upstreams.map((u) => objectOf(u, () => `cluster ${outboundClusterKey(u, dataPlane)}`, () => keyed(outboundCluster(u), outboundClusterKey(u, dataPlane))))));
    const transparent = modes.has('transparent') ? once('transparent', (w2) => kept(reach, 'transparent', transparentListener(outbound, w2, (o, key, make) => objectOf(o, () => `chain ${key()}`, make)))) : undefined;
    const explicit = modes.has('explicit') ? once('explicit', (w2) => explicitListeners(outbound, w2) as Named[]) : [];
    const listener = once(`listeners ${plan.modes.join(' ')}`, () => kept(reach, `listeners ${plan.modes.join(' ')}`, [...(transparent && transparent.filterChains.length > 0 ? [transparent] : []), ...explicit]));
    const route = !modes.has('explicit') ? serviceRoutes() : !modes.has('transparent') ? portRoutes() : kept(reach, `routes both ${namespace}`, [...serviceRoutes(), ...portRoutes()]);
    lists = { cluster, endpoint, listener, route };
  }
  return { lists, sets: { cluster: sharedSet(codec, 'cluster', lists.cluster, memo), listener: sharedSet(codec, 'listener', lists.listener, memo), route: sharedSet(codec, 'route', lists.route, memo) } };
}

/**
 * What one identity reaches and how (its upstreams, with their endpoints, and
 * its outbound services), with `plan`: what of it the plan holds (no
 * endpoint). In a permissive mesh every identity of a data plane reaches the
 * same: that reach is made once per IR and shared, its plan part a hash, and
 * its endpoint assignments one resource set that every snapshot holds.
 */
interface Reach {
  readonly upstreams: readonly Upstream[];
  readonly outbound: readonly OutboundService[];
  readonly warnings: readonly string[];
  readonly plan: unknown;
  /** The endpoint assignments and their resource set, made once (with the first codec and memo that ask). */
  assignments?: Named[];
  endpoints?: ResourceSet;
  /** Resources made from the reach alone (see `fromReach`), with the warnings their making gave. */
  readonly made: Map<string, { readonly value: unknown; readonly warnings: readonly string[] }>;
  /** The one reach every identity of a permissive mesh shares (made once per IR). */
  readonly shared: boolean;
  /**
   * Objects made from one part of the reach, by the text of what they are made
   * from (an upstream's cluster and assignment, an outbound service): a shared
   * reach made again after a change takes over the previous one's objects
   * whose text is the same, so what holds them (encodings, virtual hosts,
   * walked references) is found again instead of made again.
   */
  readonly objects: Map<string, object>;
  /** The previous shared reach's objects, while this one is being made and used (dropped with it). */
  readonly prior?: ReadonlyMap<string, object>;
  /**
   * In a shared reach, an object made from one upstream or outbound service
   * (its cluster, its filter chain) by that very object, with its key in
   * `objects`: the reaches of one scope hand it on, and a service the change
   * did not touch keeps its objects, so they are found without their text.
   */
  readonly byPart?: WeakMap<object, { readonly key: string; readonly value: object }>;
  /** A shared reach's making, service by service (see `makeSharedReach`). */
  readonly parts?: SharedParts;
}

/**
 * `value`, or the object the prior reach had under `key` when it is the same
 * one level down (the same child objects; small plain values compared as
 * text): a list of the same clusters is the list it was, a listener of the
 * same filter chains the listener it was. What was made from the kept object
 * (its encoding, its walked references, a resource set of the list) is then
 * found again, so a change costs the parts of the reach it touches.
 */
function kept<T extends object>(reach: Reach, key: string, value: T): T {
  // Only a shared reach is made again from a prior one: an identity's own reach keeps nothing.
  if (!reach.shared) return value;
  const before = reach.prior?.get(`kept ${key}`) as T | undefined;
  const out = before !== undefined && sameOneLevel(before, value) ? before : value;
  reach.objects.set(`kept ${key}`, out);
  return out;
}

function sameOneLevel(a: object, b: object): boolean {
  const same = (x: unknown, y: unknown) => x === y || (x !== null && y !== null && typeof x === 'object' && typeof y === 'object' && !Array.isArray(x) && !Array.isArray(y) && JSON.stringify(x) === JSON.stringify(y));
  if (Array.isArray(a) || Array.isArray(b)) return Array.isArray(a) && Array.isArray(b) && a.length === b.length && a.every((x, i) => x === b[i]);
  const ka = Object.keys(a);
  if (ka.length !== Object.keys(b).length) return false;
  return ka.every((k) => {
    const x = (a as Record<string, unknown>)[k];
    const y = (b as Record<string, unknown>)[k];
    return Array.isArray(x) && Array.isArray(y) ? x.length === y.length && x.every((v, i) => v === y[i]) : same(x, y);
  });
}

/** What a shared reach made from `part` (see `Reach.byPart`), else the object of `key()` in it, `make`'s when new. */
function reachPartObject<T extends object>(reach: Reach, part: object, key: () => string, make: () => T): T {
  const known = reach.byPart!.get(part);
  if (known !== undefined) {
    reach.objects.set(known.key, known.value);
    return known.value as T;
  }
  const k = key();
  const value = reachObject(reach, k, make);
  reach.byPart!.set(part, { key: k, value });
  return value;
}

/** The object of `key` in this reach: the one made before (in this reach or the prior one), or `make`'s. */
function reachObject<T extends object>(reach: Reach, key: string, make: () => T): T {
  let o = reach.objects.get(key);
  if (o === undefined) reach.objects.set(key, (o = reach.prior?.get(key) ?? make()));
  return o as T;
}

/** What `make` builds from a reach, made once per reach and key; the warnings it gave are given again each time. */
function fromReach<T>(reach: Reach, key: string, warn: (m: string) => void, make: (warn: (m: string) => void) => T): T {
  let made = reach.made.get(key);
  if (!made) {
    const warnings: string[] = [];
    made = { value: make((m) => warnings.push(m)), warnings };
    reach.made.set(key, made);
  }
  for (const m of made.warnings) warn(m);
  return made.value as T;
}

const sharedReach = new WeakMap<MeshIR, Map<string, Reach>>();

/**
 * The reach of `identity`, read through `view` (its reads recorded); in a
 * permissive mesh the one shared reach of `mesh`, which depends on
 * everything (`*`), made with the objects of `previousMesh`'s that are the same.
 */
function reachOf(mesh: MeshIR, view: MeshIR, identity: Identity, dataPlane: DataPlane, reads: Set<string>, previousMesh: MeshIR | undefined, memo: EncodeMemo): Reach {
  const shared = mesh.settings.permissive && meshIndex(view).identitySet.has(identity);
  if (shared) {
    reads.add('*');
    return sharedReachOf(mesh, identity, dataPlane, previousMesh);
  }
  return ownReach(view, identity, dataPlane, memo);
}

/**
 * Which shared reach an identity of a permissive mesh takes: its namespace's
 * own when consumer routes there change how it calls some Service, else the
 * mesh's one ('').
 */
function reachScope(mesh: MeshIR, identity: Identity): string {
  const routed = meshIndex(mesh).consumerRoutesIn;
  if (routed.size === 0) return '';
  const ns = parseIdentity(identity)?.namespace ?? '';
  return routed.has(ns) ? ns : '';
}

/** The one reach of a data plane that every identity of a permissive mesh shares (`identity`: any of them; one per namespace with consumer routes), made once per IR. */
function sharedReachOf(mesh: MeshIR, identity: Identity, dataPlane: DataPlane, previousMesh: MeshIR | undefined): Reach {
  let byPlane = sharedReach.get(mesh);
  if (!byPlane) sharedReach.set(mesh, (byPlane = new Map()));
  const scope = reachScope(mesh, identity);
  const key = `${dataPlane} ${scope}`;
  const known = byPlane.get(key);
  if (known) return known;
  const prior = previousMesh && previousMesh !== mesh ? sharedReach.get(previousMesh)?.get(key) : undefined;
  const made = makeSharedReach(mesh, identity, dataPlane, prior);
  byPlane.set(key, made);
  return made;
}

/**
 * Whether what plans hold of the shared reach `identity` takes (its plan
 * hash, its warnings) is the same in `mesh` as in `previousMesh`: a change
 * that moved endpoints only. False when the previous one is not known.
 */
function sameSharedReach(mesh: MeshIR, previousMesh: MeshIR, identity: Identity, dataPlane: DataPlane): boolean {
  const before = sharedReach.get(previousMesh)?.get(`${dataPlane} ${reachScope(previousMesh, identity)}`);
  const after = sharedReachOf(mesh, identity, dataPlane, previousMesh);
  return before !== undefined && after.plan === before.plan && sameItems(after.warnings, before.warnings);
}

/**
 * What one identity of a mesh that is not permissive reaches. An outbound
 * service it calls as an identity planned before it in this planning does is
 * that identity's object (`EncodeMemo.outbound`).
 */
function ownReach(ir: MeshIR, identity: Identity, dataPlane: DataPlane, memo: EncodeMemo): Reach {
  const warnings: string[] = [];
  const upstreams = sameKindUpstreams(upstreamsOf(ir, identity), dataPlane, (m) => warnings.push(m));
  const outboundRows = outboundServices(ir, upstreams, parseIdentity(identity)?.namespace ?? '').map((o) => {
    const text = JSON.stringify(outboundRow(o));
    let same = memo.outbound.get(text);
    if (same === undefined) memo.outbound.set(text, (same = o));
    return { o: same, text };
  });
  const outbound = outboundRows.map((r) => r.o);
  return { upstreams, outbound, warnings, plan: [upstreams.map(upstreamRow), outboundRows.map((r) => r.text)], made: new Map(), objects: new Map(), shared: false };
}

const upstreamRow = (u: Upstream) => [u.service.namespace, u.service.name, u.service.clusterIPs, u.port.port, u.port.name, u.port.protocol, u.identities];
const outboundRow = (o: OutboundService) => [o.service.namespace, o.service.name, o.service.clusterIPs, o.port.port, o.port.name, o.protocol, o.matched, o.fallback, o.split, o.routes, o.routeNames];

/** A shared reach's part for one service: its upstreams of the data plane, the warnings that left some endpoints out, and their rows (JSON). */
interface ServiceUpstreams {
  readonly upstreams: readonly Upstream[];
  readonly warnings: readonly string[];
  readonly rows: readonly string[];
}

/** A shared reach's outbound services for one service, and their rows (JSON). */
interface ServiceOutbound {
  readonly outbound: readonly OutboundService[];
  readonly rows: readonly string[];
}

type UpstreamLookups = {
  readonly service: ReadonlyMap<string, ServiceIR>;
  /** An identity's workloads: it is in the mesh when it has some. */
  readonly identity: ReadonlyMap<Identity, readonly Workload[]>;
};

type OutboundLookups = {
  readonly service: ReadonlyMap<string, ServiceIR>;
  readonly split: ReadonlyMap<string, SplitIR>;
  readonly routes: ReadonlyMap<string, readonly ServiceRouteIR[]>;
  /** Services with an upstream (`namespace/name`), and the clusters of the upstreams. */
  readonly served: ReadonlyMap<string, true>;
  readonly cluster: ReadonlyMap<string, true>;
};

/** What a shared reach was made of, service by service, for making the next one (see `makeSharedReach`). */
interface SharedParts {
  readonly upstreams: KeyedMemo<ServiceUpstreams, UpstreamLookups>;
  readonly outbound: KeyedMemo<ServiceOutbound, OutboundLookups>;
  readonly byService: ReadonlyMap<string, ServiceUpstreams>;
  readonly served: ReadonlyMap<string, true>;
  readonly cluster: ReadonlyMap<string, true>;
  /** Each service's upstreams and outbound services, in the IR's order of services, and where each service is in it. */
  readonly upstreamList: readonly ServiceUpstreams[];
  readonly outboundList: readonly ServiceOutbound[];
  readonly position: ReadonlyMap<string, number>;
  /** Where each service's entries start in the reach's upstreams, warnings and outbound services. */
  readonly offsets: { readonly upstreams: readonly number[]; readonly warnings: readonly number[]; readonly outbound: readonly number[] };
}

/**
 * The reach every identity of a permissive mesh shares (in one scope), made
 * service by service: each service's upstreams are derived from what they
 * read (the service, whether its endpoints' identities are in the mesh), the
 * tables of which services and clusters have upstreams are patched from
 * those that changed, and each service's outbound services are derived from
 * what they read (the service, its split and routes, those tables). Given the
 * prior reach of the same scope, a service none of whose reads changed keeps
 * what it had: a change costs the services it touches, not the mesh.
 */
function makeSharedReach(ir: MeshIR, identity: Identity, dataPlane: DataPlane, prior: Reach | undefined): Reach {
  const index = meshIndex(ir);
  const callerNamespace = parseIdentity(identity)?.namespace ?? '';
  const quiet = recordInto([]);
  const was = prior?.parts;
  const upstreamLookups: UpstreamLookups = { service: index.service, identity: index.workloadsOf };
  // The prior reach's services are this IR's (the same keys, so the same order): its memos are carried, and only the
  // services that read a changed key are asked again (see `KeyedMemo.carried`), so a change costs the services it touches.
  const carried = was !== undefined && sameKeys(was.upstreams.lookups.service as ReadonlyMap<string, unknown>, index.service) ? was : undefined;
  const upstreamMemo = carried ? KeyedMemo.carried(upstreamLookups, carried.upstreams) : new KeyedMemo<ServiceUpstreams, UpstreamLookups>(upstreamLookups, was?.upstreams);
  const byService = was ? new PatchedTable(was.byService) : new Map<string, ServiceUpstreams>();
  const served = was ? new PatchedTable(was.served) : new Map<string, true>();
  const cluster = was ? new PatchedTable(was.cluster) : new Map<string, true>();
  const moved = (key: string, before: ServiceUpstreams | undefined, now: ServiceUpstreams) => {
    putIn(byService, key, now);
    for (const u of before?.upstreams ?? []) removeIn(cluster, outboundClusterName(u.service, u.port.port));
    for (const u of now.upstreams) putIn(cluster, outboundClusterName(u.service, u.port.port), true);
    if (now.upstreams.length > 0) putIn(served, key, true);
    else removeIn(served, key);
  };
  let upstreamList: ServiceUpstreams[];
  let position: ReadonlyMap<string, number>;
  // In a carried reach, the services whose parts are new objects.
  const touched = new Set<number>();
  if (carried) {
    upstreamList = carried.upstreamList.slice();
    position = carried.position;
    for (const key of upstreamMemo.dirty()) {
      const i = position.get(key)!;
      const before = upstreamList[i]!;
      const now = upstreamMemo.get(key, quiet, deriveUpstreams(key, dataPlane));
      upstreamList[i] = now;
      if (now === before) continue;
      moved(key, before, now);
      touched.add(i);
    }
  } else {
    upstreamList = [];
    const at = new Map<string, number>();
    for (const s of ir.services) {
      const key = serviceKey(s);
      at.set(key, upstreamList.length);
      const now = upstreamMemo.get(key, quiet, deriveUpstreams(key, dataPlane));
      upstreamList.push(now);
      const before = was?.byService.get(key);
      if (now !== before) moved(key, before, now);
    }
    position = at;
    // Services gone since the prior reach.
    if (byService.size > upstreamList.length) {
      for (const [key, before] of [...byService]) {
        if (index.service.has(key)) continue;
        removeIn(byService, key);
        removeIn(served, key);
        for (const u of before.upstreams) removeIn(cluster, outboundClusterName(u.service, u.port.port));
      }
    }
  }
  const outboundLookups: OutboundLookups = { service: index.service, split: index.splitOf, routes: index.routesOf, served, cluster };
  let outboundList: ServiceOutbound[];
  let outboundMemo: KeyedMemo<ServiceOutbound, OutboundLookups>;
  if (carried) {
    outboundMemo = KeyedMemo.carried(outboundLookups, carried.outbound);
    outboundList = carried.outboundList.slice();
    for (const key of outboundMemo.dirty()) {
      const i = position.get(key)!;
      const now = outboundMemo.get(key, quiet, deriveOutbound(key, callerNamespace));
      if (now === outboundList[i]) continue;
      outboundList[i] = now;
      touched.add(i);
    }
  } else {
    outboundMemo = new KeyedMemo<ServiceOutbound, OutboundLookups>(outboundLookups, was?.outbound);
    outboundList = ir.services.map((s) => outboundMemo.get(serviceKey(s), quiet, deriveOutbound(serviceKey(s), callerNamespace)));
  }
  const lists = carried && prior ? patchedLists(prior, carried, touched, upstreamList, outboundList) : joinedLists(upstreamList, outboundList);
  const { upstreams, warnings, outbound, offsets } = lists;
  // Its text is hashed once, and every plan holds the hash (a reach whose services' rows are all the same has the prior's).
  let plan = prior?.plan;
  if (!carried || [...touched].some((i) => !sameItems(upstreamList[i]!.rows, carried.upstreamList[i]!.rows) || !sameItems(outboundList[i]!.rows, carried.outboundList[i]!.rows))) {
    const hash = createHash('sha256');
    hash.update(`[${upstreamList.flatMap((p) => p.rows).join(',')}]`);
    for (const p of outboundList) for (const row of p.rows) hash.update(row);
    plan = hash.digest('hex');
  }
  return {
    upstreams,
    outbound,
    warnings,
    plan,
    made: new Map(),
    objects: new Map(),
    shared: true,
    byPart: prior?.byPart ?? new WeakMap(),
    ...(prior ? { prior: prior.objects } : {}),
    parts: { upstreams: upstreamMemo.seal(), outbound: outboundMemo.seal(), byService, served, cluster, upstreamList, outboundList, position, offsets },
  };
}

interface ReachLists {
  readonly upstreams: readonly Upstream[];
  readonly warnings: readonly string[];
  readonly outbound: readonly OutboundService[];
  readonly offsets: SharedParts['offsets'];
}

/** A shared reach's lists: its services' parts one after another. */
function joinedLists(upstreamList: readonly ServiceUpstreams[], outboundList: readonly ServiceOutbound[]): ReachLists {
  const upstreams: Upstream[] = [];
  const warnings: string[] = [];
  const outbound: OutboundService[] = [];
  const offsets = { upstreams: [] as number[], warnings: [] as number[], outbound: [] as number[] };
  for (let i = 0; i < upstreamList.length; i++) {
    const part = upstreamList[i]!;
    offsets.upstreams.push(upstreams.length);
    offsets.warnings.push(warnings.length);
    offsets.outbound.push(outbound.length);
    for (const u of part.upstreams) upstreams.push(u);
    for (const w of part.warnings) warnings.push(w);
    for (const o of outboundList[i]!.outbound) outbound.push(o);
  }
  return { upstreams, warnings, outbound, offsets };
}

/**
 * The lists of a reach carried from `prior` whose `touched` services have new parts: the prior's lists with those
 * parts' entries written at their offsets, when each has as many entries as before (else joined again).
 */
function patchedLists(prior: Reach, was: SharedParts, touched: ReadonlySet<number>, upstreamList: readonly ServiceUpstreams[], outboundList: readonly ServiceOutbound[]): ReachLists {
  for (const i of touched) {
    const [a, b] = [was.upstreamList[i]!, upstreamList[i]!];
    if (a.upstreams.length !== b.upstreams.length || a.warnings.length !== b.warnings.length || was.outboundList[i]!.outbound.length !== outboundList[i]!.outbound.length) return joinedLists(upstreamList, outboundList);
  }
  if (touched.size === 0) return { upstreams: prior.upstreams, warnings: prior.warnings, outbound: prior.outbound, offsets: was.offsets };
  const upstreams = prior.upstreams.slice();
  const warnings = prior.warnings.slice();
  const outbound = prior.outbound.slice();
  for (const i of touched) {
    upstreamList[i]!.upstreams.forEach((u, k) => (upstreams[was.offsets.upstreams[i]! + k] = u));
    upstreamList[i]!.warnings.forEach((w, k) => (warnings[was.offsets.warnings[i]! + k] = w));
    outboundList[i]!.outbound.forEach((o, k) => (outbound[was.offsets.outbound[i]! + k] = o));
  }
  return { upstreams, warnings, outbound, offsets: was.offsets };
}

/** Whether two tables have the same keys (found from the keys whose values differ: as many as those the one patched from the other touched). */
function sameKeys(before: ReadonlyMap<string, unknown>, after: ReadonlyMap<string, unknown>): boolean {
  if (before.size !== after.size) return false;
  for (const k of tableChanges(before, after)) if (!before.has(k) || !after.has(k)) return false;
  return true;
}

/** A service's upstreams in a permissive mesh (as `upstreamsOf` finds them: its ports' endpoints of identities in the mesh), of one data plane. */
const deriveUpstreams =
  (key: string, dataPlane: DataPlane) =>
  (read: Read<UpstreamLookups>): ServiceUpstreams => {
    const found = permissiveUpstreams(read('service', key)!, (identity) => read('identity', identity) !== undefined);
    const warnings: string[] = [];
    const upstreams = sameKindUpstreams(found, dataPlane, (m) => warnings.push(m));
    return { upstreams, warnings, rows: upstreams.map((u) => JSON.stringify(upstreamRow(u))) };
  };

const NO_OUTBOUND: ServiceOutbound = { outbound: [], rows: [] };

/**
 * A service's outbound services in a shared reach (as `outboundServices` makes them): only for a service that has an
 * upstream, or whose split or routes may send to one that has.
 */
const deriveOutbound =
  (key: string, callerNamespace: string) =>
  (read: Read<OutboundLookups>): ServiceOutbound => {
    const service = read('service', key)!;
    const split = read('split', key);
    const routes = read('routes', key) ?? [];
    const served = (k: string) => read('served', k) !== undefined;
    const candidate = served(key) || (split?.backends.some((b) => served(`${service.namespace}/${b.service}`)) ?? false) || routes.some((r) => routeBackends(r).some(served));
    if (!candidate) return NO_OUTBOUND;
    const outbound = outboundOf(service, split, routes, callerNamespace, (s, port) => {
      const name = outboundClusterName(s, port);
      return read('cluster', name) === undefined ? undefined : name;
    });
    return { outbound, rows: outbound.map((o) => JSON.stringify(outboundRow(o))) };
  };

/** The secrets of an identity's certificate: its own and the trust bundle (none without a certificate). */
function secretList(own: CertificateInputs['identities'][number] | undefined, certificates: CertificateInputs | undefined): Named[] {
  return own && certificates ? [identitySecret(own), trustBundleSecret(certificates.trustBundle)] : [];
}

/** A planned snapshot whose plan did not change, with the secrets of the identity's certificate now (nothing else made again). */
function withSecrets(before: PlannedSnapshot, identity: Identity, certificates: CertificateInputs | undefined, codec: ProtoCodec, memo: EncodeMemo): PlannedSnapshot {
  const own = certificateOf(certificates, identity);
  const secret = encodeSet(codec, 'secret', secretList(own, certificates), memo);
  return { ...before, snapshot: { ...before.snapshot, types: { ...before.snapshot.types, secret } }, source: new SecretSource(own, certificates?.trustBundle) };
}

/** A planned snapshot whose plan did not change, with a new endpoint set (made with the same certificates). */
function withEndpoints(before: PlannedSnapshot, endpoint: ResourceSet): PlannedSnapshot {
  // (Written out: made for every identity of a permissive mesh at each pod move, where spreading costs several times more.)
  const { identity, dataPlane, types, warnings } = before.snapshot;
  const snapshot: Snapshot = { identity, dataPlane, types: { cluster: types.cluster, endpoint, listener: types.listener, route: types.route, secret: types.secret }, warnings };
  const { plan, inconsistencies, reads, source } = before;
  return before.own ? { plan, snapshot, inconsistencies, reads, source, own: before.own, proxy: before.proxy! } : { plan, snapshot, inconsistencies, reads, source };
}

/**
 * The endpoint set of an identity whose plan did not change, when only the
 * addresses of the endpoints of `services` changed (a pod moved): the set it
 * holds with its assignments of those services' `clusters` made again, and
 * its other assignments kept. Undefined when its assignments of them are not
 * the ones it held by name (then its set is made whole, `upstreamReach`).
 */
function editedEndpoints(ir: MeshIR, identity: Identity, held: ResourceSet, services: ServiceSelection, clusters: ReadonlySet<string>, dataPlane: DataPlane, codec: ProtoCodec, memo: EncodeMemo, edits: Edits): ResourceSet | undefined {
  if (services.services.size === 0 || held.parts || ir.settings.permissive) return undefined;
  const made = new Map<string, EncodedResource>();
  for (const u of sameKindUpstreams(upstreamsIn(ir, identity, services), dataPlane, () => undefined)) {
    const r = encodeResource(codec, 'endpoint', assignmentOf(u, memo), memo);
    made.set(r.name, r);
  }
  let replaced = 0;
  const put: EncodedResource[] = [];
  const resources: EncodedResource[] = [];
  for (const r of held.resources) {
    if (!clusters.has(r.name)) {
      resources.push(r);
      continue;
    }
    const now = made.get(r.name);
    if (now === undefined) return undefined;
    replaced++;
    if (now !== r) put.push(now);
    resources.push(now);
  }
  if (replaced !== made.size) return undefined;
  return put.length > 0 ? new EditedSet(resources, held, edits.of(put)) : held;
}

/** An identity's own reach as far as its endpoint assignments go (its upstreams), for a plan that did not change. */
function upstreamReach(ir: MeshIR, identity: Identity, dataPlane: DataPlane): Reach {
  const upstreams = sameKindUpstreams(upstreamsOf(ir, identity), dataPlane, () => undefined);
  return { upstreams, outbound: [], warnings: [], plan: '', made: new Map(), objects: new Map(), shared: false };
}

/**
 * The ClusterLoadAssignments of a reach, each keyed by what it reads: one object for every caller and planning that
 * holds it (an upstream whose port and endpoints are the very ones of the last planning finds it by them, see
 * `assignmentOf`).
 */
const assignments = (reach: Reach, memo: EncodeMemo): Named[] => (reach.assignments ??= kept(reach, 'assignments', reach.upstreams.map((u) => assignmentOf(u, memo))));

function assignmentOf(u: Upstream, memo: EncodeMemo): Named {
  // (`loadAssignment` reads the service's namespace and name, the port's number and the endpoints.)
  const last = memo.assignmentByPort.get(u.port);
  if (last && sameItems(last.endpoints, u.endpoints) && (last.service === u.service || (last.service.namespace === u.service.namespace && last.service.name === u.service.name))) return last.assignment;
  const key = loadAssignmentKey(u);
  let made = memo.objects.get(`assignment ${key}`) as Named | undefined;
  if (!made) memo.objects.set(`assignment ${key}`, (made = keyed(loadAssignment(u), key)));
  memo.assignmentByPort.set(u.port, { service: u.service, endpoints: u.endpoints, assignment: made });
  return made;
}

function endpointSet(reach: Reach, codec: ProtoCodec, memo: EncodeMemo): ResourceSet {
  if (reach.endpoints) return reach.endpoints;
  // Once per list of assignments (a shared reach made again with the same assignments keeps its list, and so its set).
  const set = sharedSet(codec, 'endpoint', assignments(reach, memo), memo);
  reach.endpoints = set;
  return set;
}

/**
 * The certificate and trust bundle a planned snapshot's secrets were made
 * from (beside the plan, not in it: plans are data, keys are not). It holds
 * a private key, so it never shows it: as JSON or inspected it is a name.
 */
class SecretSource {
  constructor(
    readonly certificate: CertificateInputs['identities'][number] | undefined,
    readonly trustBundle: string | undefined,
  ) {}
  toJSON(): string {
    return '(the certificate its secrets were made from)';
  }
  [Symbol.for('nodejs.util.inspect.custom')](): string {
    return 'SecretSource';
  }
}
const sameSecrets = (a: SecretSource | undefined, certificate: SecretSource['certificate'], trustBundle: string | undefined) =>
  a !== undefined &&
  a.trustBundle === trustBundle &&
  a.certificate?.certificateChain === certificate?.certificateChain &&
  a.certificate?.privateKey === certificate?.privateKey;

/**
 * Every identity's planned snapshot (or the ones named), reusing `previous`
 * where a plan did not change. Given the IR the previous plans were made
 * from, only the identities whose plans read a key of the mesh index that
 * changed (their recorded `reads`), or whose certificate changed, are
 * planned again; the others keep their plans without being looked at.
 * Returns the plans to hand to the next compile.
 */
export function planSnapshots(ir: MeshIR, codec: ProtoCodec, certificates?: CertificateInputs, previous?: SnapshotPlans, identities?: readonly Identity[], previousIR?: MeshIR): Map<Identity, PlannedSnapshot> {
  const made = previous && plannedWith.get(previous);
  const memo = new EncodeMemo(made?.encoded);
  const all = meshIndex(ir, previousIR).identities;
  const keys = previous && previousIR ? changedKeys(previousIR, ir) : 'all';
  const trustBundle = certificates?.trustBundle;
  const plan = (id: Identity, before: PlannedSnapshot | undefined) => planSnapshot(ir, id, codec, certificates, memo, before, previousIR);
  // A planned snapshot with the identity's secrets as these certificates make them: itself when they are the same.
  const certified = (id: Identity, p: PlannedSnapshot) => (sameSecrets(p.source, certificateOf(certificates, id), trustBundle) ? p : withSecrets(p, id, certificates, codec, memo));
  // Who read what changed (undefined: not known, everyone may have).
  const dirtyOf = (dependents: Dependents | undefined): ReadonlySet<Identity> | undefined => {
    if (keys === 'all' || dependents === undefined) return undefined;
    const dirty = new Set<Identity>();
    for (const k of keys) for (const id of dependents.get(k) ?? []) dirty.add(id);
    if (keys.size > 0) for (const id of dependents.get('*') ?? []) dirty.add(id);
    return dirty;
  };
  // Plans made from the previous ones: only the identities the change touches are planned (and those that joined the
  // mesh), and those whose certificate changed take new secrets.
  if (!identities && made?.dependents !== undefined && keys !== 'all') {
    // The index of readers moves to the new plans (the previous ones are not planned from again).
    const dependents = made.dependents;
    made.dependents = undefined;
    const out = new Map(previous);
    const joined: Identity[] = [];
    if (made.identities !== all) {
      // Identities gone from the mesh go with what they read; those that joined are planned below, with the touched ones.
      const now = new Set(all);
      for (const [id, p] of out) {
        if (now.has(id)) continue;
        out.delete(id);
        moveReads(dependents, id, p.reads, NO_READS);
      }
      for (const id of all) if (!out.has(id)) joined.push(id);
    }
    // Those that read a changed key of their own are planned again; those that read only keys whose endpoints moved (and
    // nothing else of them changed) have the plan they had: they take new endpoint assignments, and are not planned.
    const light = addressOnlyKeys(previousIR!, ir);
    const own = new Set<Identity>();
    const moved = new Set<Identity>();
    for (const k of keys) for (const id of dependents.get(k) ?? []) if (out.has(id)) (light.has(k) ? moved : own).add(id);
    const replanned = [...own];
    for (const id of own) {
      const before = out.get(id)!;
      const after = plan(id, before);
      out.set(id, after);
      if (after !== before) moveReads(dependents, id, before.reads, after.reads);
    }
    // (Counted with those planned again: the loops below leave them alone.)
    for (const id of joined) {
      const after = plan(id, undefined);
      out.set(id, after);
      moveReads(dependents, id, undefined, after.reads);
      own.add(id);
      replanned.push(id);
    }
    const shared = dependents.get('*');
    // The services whose endpoints' addresses alone changed, and their clusters: a caller's assignments of them are made again, its others kept.
    const movedServices = { services: new Set<string>(), identities: new Set<Identity>() };
    const movedClusters = new Set<string>();
    const edits = new Edits();
    for (const k of light) {
      if (!k.startsWith('service\0')) continue;
      const service = meshIndex(ir).service.get(k.slice('service\0'.length));
      if (!service) continue;
      movedServices.services.add(serviceKey(service));
      for (const p of service.ports) {
        movedClusters.add(outboundClusterName(service, p.port));
        for (const e of p.endpoints) movedServices.identities.add(e.identity);
      }
    }
    for (const id of moved) {
      // (A reader of the shared reach is taken below, with the others that read it.)
      if (own.has(id) || shared?.has(id)) continue;
      const before = out.get(id)!;
      const dataPlane = before.snapshot.dataPlane;
      const edited = editedEndpoints(ir, id, before.snapshot.types.endpoint, movedServices, movedClusters, dataPlane, codec, memo, edits);
      const endpoint = edited ?? endpointSet(upstreamReach(ir, id, dataPlane), codec, memo);
      if (endpoint === before.snapshot.types.endpoint || (edited === undefined && endpoint.version === before.snapshot.types.endpoint.version)) continue;
      out.set(id, withEndpoints(before, endpoint));
      replanned.push(id);
    }
    // Those that read nothing changed but the mesh's shared reach (a permissive mesh): when what their plans hold of it is
    // the same (endpoints moved, nothing else), their plans are too; they take the new endpoint set without being planned.
    if (keys.size > 0) {
      // Per data plane and scope (now and before): the reach, and whether what plans hold of it is the same.
      const reaches = new Map<string, { readonly reach: Reach; readonly same: boolean }>();
      for (const id of dependents.get('*') ?? []) {
        const before = out.get(id);
        if (!before || own.has(id)) continue;
        const dataPlane = before.snapshot.dataPlane;
        const which = `${dataPlane} ${reachScope(ir, id)} ${reachScope(previousIR!, id)}`;
        let taken = reaches.get(which);
        if (!taken) reaches.set(which, (taken = { same: sameSharedReach(ir, previousIR!, id, dataPlane), reach: sharedReachOf(ir, id, dataPlane, previousIR) }));
        const reach = taken.reach;
        let after: PlannedSnapshot;
        if (taken.same) {
          const endpoint = endpointSet(reach, codec, memo);
          if (endpoint.version === before.snapshot.types.endpoint.version) continue;
          after = withEndpoints(before, endpoint);
        } else {
          // The shared reach changed: the plan is the previous one with the new reach (its reads are the same).
          after = planSnapshot(ir, id, codec, certificates, memo, before, previousIR, reach);
          // (Planned from the mesh when the previous plan was not kept: then what it read is recorded anew.)
          if (after.reads !== before.reads) moveReads(dependents, id, before.reads, after.reads);
        }
        out.set(id, after);
        replanned.push(id);
      }
    }
    // Certificates renewed (or the trust bundle changed) in the same planning as the change: whoever's certificate changed
    // takes new secrets into what the change gave it (those planned above were planned with them).
    if (made.certificates !== certificates) {
      for (const [id, p] of out) {
        const now = certified(id, p);
        if (now === p) continue;
        out.set(id, now);
        if (p === previous?.get(id)) replanned.push(id);
      }
    }
    // Plans are in the order of the mesh's identities, as a planning from nothing gives them.
    const plans = joined.length > 0 ? new Map(all.map((id) => [id, out.get(id)!])) : out;
    plannedWith.set(plans, { certificates, identities: all, replanned, dependents, encoded: memo.seal() });
    return plans;
  }
  const dirty = dirtyOf(made?.dependents);
  const out = new Map<Identity, PlannedSnapshot>();
  const replanned: Identity[] = [];
  for (const id of identities ?? all) {
    const before = previous?.get(id);
    if (before && dirty !== undefined && !dirty.has(id)) {
      // Nothing it read changed: its plan is the one it had. It is kept, or, when its certificate changed (a renewal, or
      // the first certificates after a start planned without them), given the new secrets without being planned again.
      const now = certified(id, before);
      out.set(id, now);
      if (now !== before) replanned.push(id);
      continue;
    }
    out.set(id, plan(id, before));
    replanned.push(id);
  }
  if (!identities) {
    const dependents: Dependents = new Map();
    for (const [id, p] of out) moveReads(dependents, id, undefined, p.reads);
    plannedWith.set(out, { certificates, identities: all, replanned, dependents, encoded: memo.seal() });
  }
  return out;
}

const NO_READS: ReadonlySet<string> = new Set();
const sameReads = (a: ReadonlySet<string>, b: ReadonlySet<string>) => a.size === b.size && [...a].every((k) => b.has(k));

/** Index key -> the identities whose plans read it. */
type Dependents = Map<string, Set<Identity>>;

function moveReads(dependents: Dependents, id: Identity, before: ReadonlySet<string> | undefined, after: ReadonlySet<string>): void {
  for (const k of before ?? []) if (!after.has(k)) dependents.get(k)?.delete(id);
  for (const k of after) {
    let set = dependents.get(k);
    if (!set) dependents.set(k, (set = new Set()));
    set.add(id);
  }
}

/** What a whole set of plans was made with: the certificates (the very value), the identities, and whose planned snapshots were made anew. */
const plannedWith = new WeakMap<SnapshotPlans, { certificates: CertificateInputs | undefined; identities: readonly Identity[]; replanned: readonly Identity[]; dependents: Dependents | undefined; encoded: EncodeMemo }>();

/** The identities whose planned snapshots `planSnapshots` made anew for these plans (planned, or given new endpoints; every other one kept its previous one); undefined when not known. */
export function replannedOf(plans: SnapshotPlans): readonly Identity[] | undefined {
  return plannedWith.get(plans)?.replanned;
}

/**
 * A sidecar speaks mTLS and a proxyless gRPC client plaintext, so each may
 * only be sent to endpoints of its own kind; the others are left out (never
 * widened to), with a warning.
 */
function sameKindUpstreams(upstreams: readonly Upstream[], dataPlane: DataPlane, warn: (m: string) => void): Upstream[] {
  const out: Upstream[] = [];
  for (const u of upstreams) {
    const endpoints = u.endpoints.filter((e) => (e.interception === 'proxyless') === (dataPlane === 'proxyless'));
    // (Not how many: a plan holds no count of endpoints, so that a replica added or removed changes assignments alone.)
    if (endpoints.length < u.endpoints.length) {
      warn(
        dataPlane === 'proxyless'
          ? `${u.service.namespace}/${u.service.name}:${u.port.port}: endpoints behind sidecars left out: a proxyless client cannot speak the sidecars' mTLS`
          : `${u.service.namespace}/${u.service.name}:${u.port.port}: proxyless endpoints left out: they have no sidecar to terminate mTLS`,
      );
    }
    if (endpoints.length === 0) continue;
    out.push({ ...u, endpoints, identities: [...new Set(endpoints.map((e) => e.identity))].sort(compareStrings) });
  }
  return out;
}

/** One snapshot per identity that has a workload, sorted by identity. */
export function buildSnapshots(ir: MeshIR, codec: ProtoCodec, certificates?: CertificateInputs): Snapshot[] {
  return [...planSnapshots(ir, codec, certificates).values()].map((p) => p.snapshot);
}

/** Certificates by identity, indexed once per input value. */
const certificateIndex = new WeakMap<CertificateInputs, Map<Identity, CertificateInputs['identities'][number]>>();
function certificateOf(certificates: CertificateInputs | undefined, identity: Identity) {
  if (!certificates) return undefined;
  let index = certificateIndex.get(certificates);
  if (!index) certificateIndex.set(certificates, (index = new Map(certificates.identities.map((c) => [c.identity, c]))));
  return index.get(identity);
}

/** The injected pods' probes, grouped: pods that declared the same probes share a chain, named by their addresses (sorted). */
function probeChainsOf(workloads: readonly Workload[]): ProbeChain[] {
  const byKeys = new Map<string, { addresses: string[]; probes: readonly NamedProbe[] }>();
  for (const w of workloads) {
    const probes = w.injected?.probes;
    if (!probes || probes.length === 0) continue;
    const keys = probes.map((p) => p.key).join(' ');
    const chain = byKeys.get(keys);
    if (chain) chain.addresses.push(...w.addresses);
    else byKeys.set(keys, { addresses: [...w.addresses], probes });
  }
  return [...byKeys.values()]
    .map((c) => ({ addresses: [...new Set(c.addresses)].sort(compareStrings), probes: c.probes }))
    .sort((a, b) => compareStrings(a.probes.map((p) => p.key).join(' '), b.probes.map((p) => p.key).join(' ')));
}
