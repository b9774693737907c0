import { UNRESOLVED_BACKEND } from './route.js';
import { TYPES, type ProtoCodec, type ResourceKind } from './codec.js';
import { TRUST_BUNDLE_SECRET, IDENTITY_SECRET } from './names.js';
import type { Snapshot } from './snapshot.js';

/**
 * The references inside a snapshot close (go-control-plane's `Consistent()`,
 * extended to every type):
 * - every EDS cluster has its ClusterLoadAssignment, and every assignment a cluster;
 * - every listener's route configuration (RDS name) exists;
 * - every cluster named by a route or TCP proxy exists;
 * - every SDS name is the proxy's own certificate or the trust bundle (never
 *   another identity's), and is provided when the snapshot carries secrets.
 * A violation is a compiler bug, never a user error.
 */
export function inconsistencies(snapshot: Snapshot, codec: ProtoCodec): string[] {
  const decoded = (kind: ResourceKind) => snapshot.types[kind].resources.map((r) => codec.toJson(TYPES[kind], r.bytes) as object);
  return resourceInconsistencies(snapshot.identity, { cluster: decoded('cluster'), endpoint: decoded('endpoint'), listener: decoded('listener'), route: decoded('route') }, undefined, decoded('secret'));
}

/**
 * The same check on the resources as the translation built them, before
 * they are encoded: the compiler runs it on every snapshot it translates
 * (and only those), with nothing to decode. `shared` holds resources many
 * snapshots hold (made once from a shared reach; the snapshot is `sets` and
 * `shared` together): what they define and name is gathered once per
 * `shared` value, and what `sets` define and leave open once per `sets`
 * value (the secrets, each proxy's own, are `secrets`), so a snapshot's
 * check costs what its own resources leave open.
 */
export function resourceInconsistencies(identity: string, sets: Readonly<Record<Exclude<ResourceKind, 'secret'>, readonly object[]>>, shared: SharedResources | undefined, secrets: readonly object[]): string[] {
  const own = ownFacts(sets);
  const common = shared ? sharedFacts(shared) : undefined;
  const provided = secrets.map(nameOf);
  // Where the shared resources leave nothing open but secrets, what is found depends on what the own ones leave open (the
  // same for most identities), not on what they define: found once per shared value, open text and secrets provided.
  let problems: readonly string[];
  if (common?.closed) {
    let byProvided = common.checked.get(own.openText);
    if (!byProvided) common.checked.set(own.openText, (byProvided = new Map()));
    const key = provided.join('\0');
    let found = byProvided.get(key);
    if (!found) byProvided.set(key, (found = check(own, common, provided)));
    problems = found;
  } else problems = check(own, common, provided);
  return problems.length === 0 ? [] : problems.map((m) => `${identity}: ${m}`);
}

/** What does not close, given what a snapshot's own resources define and leave open, the shared ones', and the secrets provided. */
function check(own: ReturnType<typeof ownFacts>, common: ReturnType<typeof sharedFacts> | undefined, providedNames: readonly string[]): string[] {
  const problems: string[] = [];
  const say = (m: string) => problems.push(m);
  const { facts, open } = own;
  // Each rule on what the snapshot's own resources leave open, then on what the shared ones leave open.
  for (const name of open.eds) if (!common?.facts.assignments.has(name)) say(`EDS cluster ${name} has no ClusterLoadAssignment`);
  for (const name of common?.open.eds ?? []) if (!facts.assignments.has(name)) say(`EDS cluster ${name} has no ClusterLoadAssignment`);
  for (const name of open.assignments) if (!common?.facts.eds.has(name)) say(`ClusterLoadAssignment ${name} belongs to no EDS cluster`);
  for (const name of common?.open.assignments ?? []) if (!facts.eds.has(name)) say(`ClusterLoadAssignment ${name} belongs to no EDS cluster`);
  for (const name of open.routes) if (!common?.facts.routes.has(name)) say(`a listener names route configuration ${name}, which does not exist`);
  for (const name of common?.open.routes ?? []) if (!facts.routes.has(name)) say(`a listener names route configuration ${name}, which does not exist`);
  for (const name of open.clusters) if (!common?.facts.clusters.has(name)) say(`cluster ${name} is routed to but does not exist`);
  for (const name of common?.open.clusters ?? []) if (!facts.clusters.has(name)) say(`cluster ${name} is routed to but does not exist`);

  const provided = new Set(providedNames);
  for (const name of common && common.secrets.length > 0 ? new Set([...open.secrets, ...common.secrets]) : open.secrets) {
    if (!ALLOWED_SECRETS.has(name)) say(`SDS secret ${name} is not this proxy's own`);
    else if (provided.size > 0 && !provided.has(name)) say(`SDS secret ${name} is referenced but not provided`);
  }
  for (const name of provided) if (!ALLOWED_SECRETS.has(name)) say(`secret ${name} does not belong to this proxy`);
  return problems;
}

const ALLOWED_SECRETS: ReadonlySet<string> = new Set([IDENTITY_SECRET, TRUST_BUNDLE_SECRET]);

/**
 * What a snapshot's own resources define, and what of their references they
 * leave open (to be closed by the shared ones), once per `sets` value: an
 * identity whose own resources were kept while its shared reach changed is
 * checked against the new shared resources at the cost of what is open.
 */
const ownMemo = new WeakMap<object, { facts: Facts; open: { eds: string[]; assignments: string[]; routes: string[]; clusters: string[]; secrets: readonly string[] }; openText: string }>();
function ownFacts(sets: Readonly<Record<Exclude<ResourceKind, 'secret'>, readonly object[]>>) {
  let known = ownMemo.get(sets);
  if (!known) {
    const facts = gather(sets);
    const open = {
      eds: [...facts.eds].filter((n) => !facts.assignments.has(n)),
      assignments: [...facts.assignments].filter((n) => !facts.eds.has(n)),
      routes: facts.listenerRefs.routes.filter((n) => !facts.routes.has(n)),
      clusters: [...facts.listenerRefs.clusters, ...facts.routeRefs.clusters].filter((n) => !facts.clusters.has(n)),
      secrets: [...new Set([...facts.listenerRefs.secrets, ...facts.clusterRefs.secrets])],
    };
    ownMemo.set(sets, (known = { facts, open, openText: JSON.stringify(open) }));
  }
  return known;
}

/** Resources many snapshots hold (no secrets: those are each proxy's own). Never changed once made. */
export type SharedResources = Readonly<Record<Exclude<ResourceKind, 'secret'>, readonly object[]>>;

const nameOf = (r: object) => (r as { name?: string; clusterName?: string }).name ?? (r as { clusterName?: string }).clusterName ?? '';

interface Facts {
  readonly clusters: ReadonlySet<string>;
  readonly eds: ReadonlySet<string>;
  readonly assignments: ReadonlySet<string>;
  readonly routes: ReadonlySet<string>;
  readonly listenerRefs: References;
  readonly routeRefs: References;
  readonly clusterRefs: References;
}

function gather(sets: Readonly<Record<Exclude<ResourceKind, 'secret'>, readonly object[]>>): Facts {
  const clusters = clusterFacts(sets.cluster);
  return {
    ...clusters,
    assignments: namesOf(sets.endpoint),
    routes: namesOf(sets.route),
    listenerRefs: referencesOf(sets.listener),
    routeRefs: referencesOf(sets.route),
  };
}

/**
 * What one list of resources defines and names, once per list: a shared
 * reach's clusters and assignments are one list for the snapshots of every
 * namespace (only the route tables differ).
 */
function perList<T>(make: (list: readonly object[]) => T): (list: readonly object[]) => T {
  const known = new WeakMap<readonly object[], T>();
  return (list) => {
    let value = known.get(list);
    if (value === undefined) known.set(list, (value = make(list)));
    return value;
  };
}
const namesOf = perList((list): ReadonlySet<string> => new Set(list.map(nameOf)));
const referencesOf = perList((list): References => references(list));
const clusterFacts = perList(
  (list): Pick<Facts, 'clusters' | 'eds' | 'clusterRefs'> => {
    const clusters = list as { name: string; type?: string }[];
    return { clusters: new Set(clusters.map((c) => c.name)), eds: new Set(clusters.filter((c) => c.type === 'EDS').map((c) => c.name)), clusterRefs: references(clusters) };
  },
);

/** What shared resources define, and what of their references they leave open (to be closed by a snapshot's own resources). */
const sharedMemo = new WeakMap<
  SharedResources,
  {
    facts: Facts;
    open: { eds: string[]; assignments: string[]; routes: string[]; clusters: string[] };
    secrets: string[];
    /** They leave nothing open but secrets; and what was found for snapshots by their own resources' open text and secrets. */
    closed: boolean;
    checked: Map<string, Map<string, readonly string[]>>;
  }
>();
function sharedFacts(shared: SharedResources) {
  let known = sharedMemo.get(shared);
  if (!known) {
    const facts = gather(shared);
    // Clusters and assignments are the same lists for many shared values: what they leave open of each other is found once.
    const edsOpen = pairOnce(shared.cluster, shared.endpoint, () => ({ eds: [...facts.eds].filter((n) => !facts.assignments.has(n)), assignments: [...facts.assignments].filter((n) => !facts.eds.has(n)) }));
    const open = {
      ...edsOpen,
      routes: facts.listenerRefs.routes.filter((n) => !facts.routes.has(n)),
      clusters: [...facts.listenerRefs.clusters, ...facts.routeRefs.clusters].filter((n) => !facts.clusters.has(n)),
    };
    const closed = open.eds.length + open.assignments.length + open.routes.length + open.clusters.length === 0;
    sharedMemo.set(shared, (known = { facts, open, secrets: [...new Set([...facts.listenerRefs.secrets, ...facts.clusterRefs.secrets])], closed, checked: new Map() }));
  }
  return known;
}

const pairs = new WeakMap<readonly object[], WeakMap<readonly object[], { eds: string[]; assignments: string[] }>>();
function pairOnce(a: readonly object[], b: readonly object[], make: () => { eds: string[]; assignments: string[] }) {
  let byB = pairs.get(a);
  if (!byB) pairs.set(a, (byB = new WeakMap()));
  let known = byB.get(b);
  if (!known) byB.set(b, (known = make()));
  return known;
}

interface References {
  routes: string[];
  clusters: string[];
  secrets: string[];
}

/** What each resource object names (resource objects are never changed once made: one that many snapshots hold is walked once). */
const walked = new WeakMap<object, References>();

/** Walks resources for the fields that name other resources. */
function references(values: readonly object[]): References {
  const out: References = { routes: [], clusters: [], secrets: [] };
  for (const v of values) merge(out, referencesOfOne(v));
  return out;
}

function merge(out: References, refs: References): void {
  for (const r of refs.routes) out.routes.push(r);
  for (const c of refs.clusters) out.clusters.push(c);
  for (const s of refs.secrets) out.secrets.push(s);
}

/** What one resource names, walked once per resource object (a list made again of the same resources walks none of them). */
function referencesOfOne(v: object): References {
  let refs = walked.get(v);
  if (refs) return refs;
  // A route table's virtual hosts and a listener's filter chains are objects many resources (and compiles) hold: each is walked once.
  const { virtualHosts, filterChains, ...rest } = v as { virtualHosts?: unknown; filterChains?: unknown };
  const items = Array.isArray(virtualHosts) ? virtualHosts : Array.isArray(filterChains) ? filterChains : undefined;
  if (!items) refs = walkOne(v);
  else {
    refs = { routes: [], clusters: [], secrets: [] };
    for (const item of items as object[]) merge(refs, referencesOfOne(item));
    merge(refs, walkOne(rest));
  }
  walked.set(v, refs);
  return refs;
}

function walkOne(value: object): References {
  const out: References = { routes: [], clusters: [], secrets: [] };
  const walk = (v: unknown): void => {
    if (Array.isArray(v)) return v.forEach(walk);
    if (v === null || typeof v !== 'object') return;
    for (const [k, x] of Object.entries(v)) {
      if (k === 'routeConfigName' && typeof x === 'string') out.routes.push(x);
      else if (k === 'cluster' && typeof x === 'string') out.clusters.push(x);
      // The unresolved backend of a Gateway API rule names no cluster on purpose: Envoy answers its share 500.
      else if (k === 'weightedClusters') out.clusters.push(...(x as { clusters: { name: string }[] }).clusters.map((c) => c.name).filter((n) => n !== UNRESOLVED_BACKEND));
      else if (k === 'tlsCertificateSdsSecretConfigs') for (const s of x as { name: string }[]) out.secrets.push(s.name);
      else if (k === 'validationContextSdsSecretConfig') out.secrets.push((x as { name: string }).name);
      walk(x);
    }
  };
  walk(value);
  return out;
}
