import type * as m from '../model.js';
import { compareOrigins, type LiveInputs } from '../inputs.js';
import { error, recordInto, replay, warning, type StatusCall, type StatusCollector } from '../status.js';
import { buildAccess, type AccessMemo } from './access.js';
import { identityPorts } from './access-checks.js';
import { checkRouteGroups, type CheckedRouteGroup } from './routes.js';
import { assignVirtualIPs, buildServices } from './services.js';
import { meshNamespaces, meshSettings } from './settings.js';
import { buildSplits } from './splits.js';
import { buildRoutes, type RouteMemo } from './gateway.js';
import { compareStrings, identityOf, type DestinationAccess, type Identity, type MeshIR, type MeshSettings, type ServiceIR, type ServiceRouteIR, type SplitIR, type Workload } from './types.js';
import { buildWorkloads } from './workloads.js';
import { groupBy, sameItems } from '../group.js';
import type { KeyedMemo } from '../keyed.js';

/** Kinds the mesh as a whole reads (its namespaces, its settings), wherever they live. */
const MESH_WIDE = new Set<m.MeshObject['kind']>(['Namespace', 'MeshConfig']);

/**
 * What one build of the IR keeps for the next, as plain data: each
 * namespace's part, in three stages, with what each stage read from other
 * namespaces and the status messages it gave. A stage whose inputs are the
 * same values as last time (objects are compared by reference: the decoder
 * hands back the very objects of unchanged documents) is not run again; its
 * result and its messages are reused, so the IR and the status are what a
 * build from scratch gives.
 */
export interface IRMemo {
  /**
   * The mesh settings (JSON): when they change, nothing is kept. Which
   * namespaces are in the mesh is not part of it: a namespace's part says
   * whether it was in the mesh, and what a part read of another namespace
   * (its workloads, its accounts) is recorded and compared, so a namespace
   * joining or leaving rebuilds it and the parts that read it.
   */
  readonly mesh: string;
  readonly parts: ReadonlyMap<string, NamespacePart>;
  /** Services that were given a virtual IP: the service as built -> with its address. */
  readonly assigned: ReadonlyMap<ServiceIR, ServiceIR>;
  /** Each Gateway API route with what it read (see ir/gateway.ts). */
  readonly routes: RouteMemo | undefined;
}

type Calls = readonly StatusCall[];

interface NamespacePart {
  readonly front: Front;
  /** Only for a namespace of the mesh. */
  services?: ServicesStage;
  policy?: PolicyStage;
}

/** Objects -> the namespace's unique objects, its workloads and the identities it has. */
interface Front {
  readonly namespace: string;
  /** The namespace's objects as given (the stage's input). */
  readonly objects: readonly m.MeshObject[];
  readonly inMesh: boolean;
  /** Node ids of the namespace's connected VM proxies (`offline` when the compile knows no connections). */
  readonly connected: string;
  readonly calls: Calls;
  /** Unique objects of a mesh namespace, in canonical order, and by kind. */
  readonly unique: readonly m.MeshObject[];
  readonly byKind: ReadonlyMap<string, readonly m.MeshObject[]>;
  readonly workloads: readonly Workload[];
  readonly workloadByRef: ReadonlyMap<string, Workload>;
  /** Identities of the workloads, in workload order. */
  readonly identities: readonly Identity[];
  /** Identities that exist here: of a workload or of a ServiceAccount. */
  readonly known: ReadonlySet<Identity>;
  /** Each workload with what it read, for the next build of this namespace. */
  readonly workloadMemo?: KeyedMemo<Workload>;
}

/** Services and endpoints (before virtual IPs). */
interface ServicesStage {
  readonly front: Front;
  readonly calls: Calls;
  readonly services: readonly ServiceIR[];
  /** The same services by name. */
  readonly byName: ReadonlyMap<string, ServiceIR>;
  /** Workloads of other namespaces an endpoint named (`Kind/ns/name`), as they were found. */
  readonly foreign: ReadonlyMap<string, Workload | undefined>;
  readonly headless: ReadonlySet<string>;
  readonly objectKey: ReadonlyMap<string, string>;
  /** Each service with what it read, for the next build of this namespace. */
  readonly memo: KeyedMemo<ServiceIR>;
}

/** Route groups, grants, splits and the checks between them. */
interface PolicyStage {
  readonly front: Front;
  readonly services: ServicesStage;
  /** Other namespaces' services with endpoints of this namespace's workloads. */
  readonly contributors: readonly ServicesStage[];
  /** Identities of other namespaces a TrafficTarget named: their namespace, and whether they existed. */
  readonly foreign: ReadonlyMap<Identity, { readonly namespace: string; readonly known: boolean }>;
  readonly calls: Calls;
  readonly access: readonly DestinationAccess[];
  readonly splits: readonly SplitIR[];
  /** Each route group and TrafficTarget, and each destination's access, with what it read, for the next build of this namespace. */
  readonly routeMemo: KeyedMemo<CheckedRouteGroup>;
  readonly accessMemo: AccessMemo;
}

export interface BuiltIR {
  readonly ir: MeshIR;
  readonly memo: IRMemo;
  /** Namespaces whose part is not the previous build's (built again, new or gone): their objects' messages may differ. */
  readonly rebuilt: ReadonlySet<string>;
  /** Namespaces given messages outside their part (a virtual IP that could not be allocated). */
  readonly direct: ReadonlySet<string>;
}

/** Whether an object is read by the mesh as a whole (its namespaces, its settings) rather than as part of its namespace. */
export const isMeshWide = (o: m.MeshObject): boolean => MESH_WIDE.has(o.kind);

/**
 * Decoded objects -> mesh IR. Pure and total: every problem becomes a status
 * message, and the objects are put in a canonical order first so the input
 * order never matters. The IR is built a namespace at a time; given the
 * previous build's memo, namespaces whose objects (and what they read of
 * other namespaces) did not change are not built again.
 */
export function buildIR(decoded: readonly m.MeshObject[], status: StatusCollector, live: LiveInputs = {}, previous?: IRMemo): BuiltIR {
  const meshWide: m.MeshObject[] = [];
  const byNamespace = new Map<string, m.MeshObject[]>();
  for (const o of decoded) {
    if (isMeshWide(o)) {
      meshWide.push(o);
      continue;
    }
    const list = byNamespace.get(o.meta.namespace);
    if (list) list.push(o);
    else byNamespace.set(o.meta.namespace, [o]);
  }
  return buildGroupedIR(meshWide, byNamespace, status, live, previous);
}

/**
 * `buildIR` of objects already grouped: the mesh-wide ones, and the others
 * by namespace (in any order within a namespace). A namespace given the very
 * list of objects as in the previous build costs nothing to compare.
 */
export function buildGroupedIR(
  meshWide: readonly m.MeshObject[],
  byNamespace: ReadonlyMap<string, readonly m.MeshObject[]>,
  status: StatusCollector,
  live: LiveInputs = {},
  previous?: IRMemo,
): BuiltIR {
  const { connectedVirtualMachines, runningTrustDomain } = live;
  const global = byKind(uniqueObjects(meshWide, status));
  const settings = meshSettings(of(global, 'MeshConfig'), status, runningTrustDomain);
  const namespaces = meshNamespaces(of(global, 'Namespace'), status);
  const meshNames = [...namespaces].sort(compareStrings);
  const meshText = JSON.stringify(settings);
  const kept = previous?.mesh === meshText ? previous.parts : undefined;

  const connected = connectedVirtualMachines && groupBy(connectedVirtualMachines, (node) => node.slice(0, node.indexOf('/')));
  const names = [...byNamespace.keys()].sort(compareStrings);
  const parts = new Map<string, NamespacePart>();

  // Stage 1: each namespace's objects and workloads.
  for (const ns of names) {
    const objects = byNamespace.get(ns)!;
    const nodes = connected ? (connected.get(ns) ?? []).join(' ') : 'offline';
    const before = kept?.get(ns)?.front;
    const front =
      before && before.inMesh === namespaces.has(ns) && before.connected === nodes && sameItems(before.objects, objects)
        ? before
        : buildFront(ns, objects, namespaces.has(ns), nodes, settings, before);
    parts.set(ns, { front });
  }
  const workloadOf = (kind: string, namespace: string, name: string) => parts.get(namespace)?.front.workloadByRef.get(`${kind}/${namespace}/${name}`);

  // Stage 2: services and their endpoints (a targetRef may name a workload of another namespace).
  for (const ns of names) {
    const part = parts.get(ns)!;
    if (!part.front.inMesh) continue;
    const before = kept?.get(ns)?.services;
    part.services =
      before && before.front === part.front && [...before.foreign].every(([ref, w]) => workloadOf(...splitRef(ref)) === w)
        ? before
        : buildServicesStage(part.front, workloadOf, before?.memo);
  }
  // Virtual IPs are allocated across the whole mesh, in the order of namespaces and names.
  const built = names.flatMap((ns) => parts.get(ns)!.services?.services ?? []);
  for (const ns of names) {
    const part = parts.get(ns)!;
    replay(part.front.calls, status);
    if (part.services) replay(part.services.calls, status);
  }
  const headless = new Set<string>();
  for (const ns of names) for (const h of parts.get(ns)!.services?.headless ?? []) headless.add(h);
  const direct = new Set<string>();
  const objectKey = (service: string) => {
    const ns = service.slice(0, service.indexOf('/'));
    direct.add(ns);
    return parts.get(ns)!.services!.objectKey.get(service)!;
  };
  const { services, assigned } = assignVirtualIPs(built, headless, objectKey, settings, status, previous?.assigned);

  // Stage 3: route groups, grants and splits. Which namespaces' services hold endpoints of another namespace's workloads:
  const contributorsOf = new Map<string, ServicesStage[]>();
  for (const ns of names) {
    const stage = parts.get(ns)!.services;
    if (!stage) continue;
    const to = new Set([...stage.foreign.values()].flatMap((w) => (w && w.namespace !== ns ? [w.namespace] : [])));
    for (const other of to) {
      const list = contributorsOf.get(other);
      if (list) list.push(stage);
      else contributorsOf.set(other, [stage]);
    }
  }
  const knownIn = (namespace: string, id: Identity) => parts.get(namespace)?.front.known.has(id) ?? false;
  for (const ns of names) {
    const part = parts.get(ns)!;
    if (!part.services) continue;
    const contributors = contributorsOf.get(ns) ?? [];
    const before = kept?.get(ns)?.policy;
    part.policy =
      before &&
      before.front === part.front &&
      before.services === part.services &&
      sameItems(before.contributors, contributors) &&
      [...before.foreign].every(([id, was]) => knownIn(was.namespace, id) === was.known)
        ? before
        : buildPolicyStage(part.front, part.services, contributors, knownIn, settings, before);
    replay(part.policy.calls, status);
  }

  // Gateway API routes: attached across namespaces (a consumer route names another namespace's Service), so built for the mesh as a whole.
  const routeObjects = names.flatMap((ns) => (parts.get(ns)!.services ? of(parts.get(ns)!.front.byKind, 'GRPCRoute', 'HTTPRoute') : []));
  let routes: ServiceRouteIR[] = [];
  let routeMemo: RouteMemo | undefined;
  if (routeObjects.length > 0 || previous?.routes) {
    const grants = new Map(names.map((ns) => [ns, of(parts.get(ns)!.front.byKind, 'ReferenceGrant')] as const));
    const serviceOf = (key: string) => {
      const slash = key.indexOf('/');
      const s = parts.get(key.slice(0, slash))?.services?.byName.get(key.slice(slash + 1));
      return s && (assigned.get(s) ?? s);
    };
    const built = buildRoutes(routeObjects, grants, { get: serviceOf }, status, previous?.routes);
    routes = built.routes;
    routeMemo = routeObjects.length > 0 ? built.memo : undefined;
    for (const ns of built.namespaces) direct.add(ns);
    // A TrafficSplit and a producer route on one Service: on the ports the route attaches to, the route decides (the
    // Gateway API is SMI's successor), and the split says so; it still applies to the Service's other ports.
    const producers = routes.filter((r) => r.namespace === r.serviceNamespace);
    for (const ns of new Set(producers.map((r) => r.namespace))) {
      const splits = parts.get(ns)!.policy?.splits ?? [];
      const objects = of(parts.get(ns)!.front.byKind, 'TrafficSplit');
      for (const split of splits) {
        const over = producers.filter((r) => r.namespace === ns && r.service === split.service);
        if (over.length === 0) continue;
        const obj = objects.find((o) => `${o.meta.namespace}/${o.meta.name}` === split.from);
        if (!obj) continue;
        const ports = over.some((r) => r.port === undefined) ? 'every HTTP port' : `port ${[...new Set(over.map((r) => r.port))].sort((a, b) => a! - b!).join(', ')}`;
        const names = [...new Set(over.map((r) => `HTTPRoute ${r.namespace}/${r.name}`))].join(', ');
        status.add(obj.key, warning('spec.service', `${names} routes ${ports} of Service ${ns}/${split.service} and takes precedence there: this split applies to the Service's other ports only (callers with a consumer route of their own follow that)`));
        direct.add(ns);
      }
    }
  }

  // Identities sort by namespace then account: namespaces compared with the `/` that follows them in an identity.
  const byIdentityOrder = [...names].sort((a, b) => compareStrings(`${a}/`, `${b}/`));
  const ir: MeshIR = {
    settings,
    namespaces: meshNames,
    workloads: names.flatMap((ns) => parts.get(ns)!.front.workloads),
    services,
    access: byIdentityOrder.flatMap((ns) => parts.get(ns)!.policy?.access ?? []),
    splits: names.flatMap((ns) => parts.get(ns)!.policy?.splits ?? []),
    routes,
  };
  const rebuilt = new Set<string>();
  for (const [ns, part] of parts) {
    const before = kept?.get(ns);
    if (before?.front !== part.front || before.services !== part.services || before.policy !== part.policy) rebuilt.add(ns);
  }
  for (const ns of previous?.parts.keys() ?? []) if (!parts.has(ns) || !kept) rebuilt.add(ns);
  return { ir, memo: { mesh: meshText, parts, assigned, routes: routeMemo }, rebuilt, direct };
}

function buildFront(namespace: string, objects: readonly m.MeshObject[], inMesh: boolean, connected: string, settings: MeshSettings, previous?: Front): Front {
  const calls: StatusCall[] = [];
  const status = recordInto(calls);
  const unique = uniqueObjects(objects, status, previous);
  const none = { unique, byKind: new Map(), workloads: [], workloadByRef: new Map(), identities: [], known: new Set<Identity>() };
  if (!inMesh) {
    for (const o of unique) status.ignore(o.key, warning('metadata.namespace', `namespace ${JSON.stringify(o.meta.namespace)} is not in the mesh (it needs a Namespace with label smc.dev/mesh: enabled); ignored`));
    return { namespace, objects, inMesh, connected, calls, ...none };
  }
  const kinds = byKind(unique);
  const vms = connected === 'offline' ? undefined : new Set(connected === '' ? [] : connected.split(' '));
  const { workloads, memo: workloadMemo } = buildWorkloads(of(kinds, 'Pod'), of(kinds, 'VirtualMachine'), settings, status, vms, previous?.workloadMemo);
  const identities = [...new Set(workloads.map((w) => w.identity))];
  const accounts = of(kinds, 'ServiceAccount').map((sa) => identityOf(settings.trustDomain, sa.meta.namespace, sa.meta.name));
  return {
    namespace,
    objects,
    inMesh,
    connected,
    calls,
    unique,
    byKind: kinds,
    workloads,
    workloadByRef: new Map(workloads.map((w) => [`${w.kind}/${w.namespace}/${w.name}`, w])),
    identities,
    known: new Set([...identities, ...accounts]),
    workloadMemo,
  };
}

function buildServicesStage(front: Front, workloadOf: (kind: string, namespace: string, name: string) => Workload | undefined, previous?: KeyedMemo<ServiceIR>): ServicesStage {
  const calls: StatusCall[] = [];
  const status = recordInto(calls);
  const foreign = new Map<string, Workload | undefined>();
  const lookup = (kind: string, namespace: string, name: string) => {
    if (namespace === front.namespace) return front.workloadByRef.get(`${kind}/${namespace}/${name}`);
    const w = workloadOf(kind, namespace, name);
    foreign.set(JSON.stringify([kind, namespace, name]), w);
    return w;
  };
  const objects = of(front.byKind, 'Service');
  const { services, memo } = buildServices(objects, of(front.byKind, 'EndpointSlice', 'Endpoints'), front.workloads, status, lookup, previous);
  return {
    memo,
    front,
    calls,
    services,
    byName: new Map(services.map((sv) => [sv.name, sv])),
    foreign,
    headless: new Set(objects.filter((o) => o.headless).map((o) => `${o.meta.namespace}/${o.meta.name}`)),
    objectKey: new Map(objects.map((o) => [`${o.meta.namespace}/${o.meta.name}`, o.key])),
  };
}

const splitRef = (ref: string) => JSON.parse(ref) as [string, string, string];

function buildPolicyStage(
  front: Front,
  services: ServicesStage,
  contributors: readonly ServicesStage[],
  knownIn: (namespace: string, id: Identity) => boolean,
  settings: MeshSettings,
  previous?: PolicyStage,
): PolicyStage {
  const calls: StatusCall[] = [];
  const status = recordInto(calls);
  const foreign = new Map<Identity, { namespace: string; known: boolean }>();
  const knownElsewhere = (namespace: string, id: Identity) => {
    if (namespace === front.namespace) return false;
    const known = knownIn(namespace, id);
    foreign.set(id, { namespace, known });
    return known;
  };
  const { groups: routeGroups, memo: routeMemo } = checkRouteGroups(of(front.byKind, 'HTTPRouteGroup'), status, previous?.routeMemo);
  const portRoutes = new Map(of(front.byKind, 'TCPRoute', 'UDPRoute').map((r) => [`${r.kind}/${r.meta.namespace}/${r.meta.name}`, r]));
  const accounts = of(front.byKind, 'ServiceAccount').map((sa) => identityOf(settings.trustDomain, sa.meta.namespace, sa.meta.name));
  const targets = of(front.byKind, 'TrafficTarget');
  // The ports of this namespace's workloads, from the services whose endpoints they are, in mesh order (for the HTTP-on-TCP warning).
  const related = [services, ...contributors].sort((a, b) => compareStrings(a.front.namespace, b.front.namespace)).flatMap((s) => s.services);
  const ports = identityPorts(related);
  const { access, memo: accessMemo } = buildAccess(targets, routeGroups, portRoutes, front.identities, settings, status, accounts, knownElsewhere, (id) => ports.get(id), previous?.accessMemo);
  const splits = buildSplits(of(front.byKind, 'TrafficSplit'), services.services, routeGroups, status);
  return { front, services, contributors, foreign, calls, access, splits, routeMemo, accessMemo };
}

/** Objects by kind, in canonical order (objects arrive sorted by kind first, so each kind's list keeps it). */
function byKind(objects: readonly m.MeshObject[]): Map<string, m.MeshObject[]> {
  return groupBy(objects, (o) => o.kind);
}

/** The objects of some kinds, in canonical order (kinds in sorted order, then each kind's own). */
function of<K extends m.MeshObject['kind']>(kinds: ReadonlyMap<string, readonly m.MeshObject[]>, ...wanted: K[]): Extract<m.MeshObject, { kind: K }>[] {
  return [...wanted].sort(compareStrings).flatMap((k) => kinds.get(k) ?? []) as Extract<m.MeshObject, { kind: K }>[];
}

/**
 * The same kind/namespace/name twice: one is used, the others are rejected.
 * Which one does not depend on where they were read (file names, order):
 * the one whose content sorts first. EndpointSlice and Endpoints share a name
 * space only with their own kind.
 */
function uniqueObjects(objects: readonly m.MeshObject[], status: StatusCollector, previous?: Pick<Front, 'objects' | 'unique'>): readonly m.MeshObject[] {
  // The previous objects had no duplicate, and these are those with some replaced in place by objects of the same kind and
  // name (a file edited): still no duplicate, and the order (by kind and name alone) is the previous one.
  if (previous && previous.unique.length === previous.objects.length && previous.objects.length === objects.length) {
    const replaced = new Map<m.MeshObject, m.MeshObject>();
    let same = true;
    for (let i = 0; i < objects.length && same; i++) {
      const a = previous.objects[i]!;
      const b = objects[i]!;
      if (a === b) continue;
      same = a.kind === b.kind && a.meta.namespace === b.meta.namespace && a.meta.name === b.meta.name;
      replaced.set(a, b);
    }
    if (same) return replaced.size === 0 ? previous.unique : previous.unique.map((o) => replaced.get(o) ?? o);
  }
  // Content is compared only between objects of the same kind and name (rare): made when first needed.
  const content = new Map<m.MeshObject, string>();
  const contentOf = (o: m.MeshObject) => {
    let text = content.get(o);
    if (text === undefined) content.set(o, (text = JSON.stringify({ ...o, key: undefined, origin: undefined })));
    return text;
  };
  const sorted = [...objects].sort(
    (a, b) =>
      compareStrings(a.kind, b.kind) ||
      compareStrings(a.meta.namespace, b.meta.namespace) ||
      compareStrings(a.meta.name, b.meta.name) ||
      compareStrings(contentOf(a), contentOf(b)) ||
      compareOrigins(a.origin, b.origin),
  );
  const out: m.MeshObject[] = [];
  const first = new Map<string, m.MeshObject>();
  for (const o of sorted) {
    const id = `${o.kind}/${o.meta.namespace}/${o.meta.name}`;
    if (first.has(id)) {
      status.reject(o.key, error('metadata.name', `duplicate ${o.kind} ${o.meta.namespace ? `${o.meta.namespace}/` : ''}${o.meta.name}: another object of that kind and name is used (each name may be defined once)`));
      continue;
    }
    first.set(id, o);
    out.push(o);
  }
  return out;
}
