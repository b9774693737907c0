import type * as m from '../model.js';
import { compareOrigins, type LiveInputs } from '../inputs.js';
import { error, recordInto, replay, warning, type StatusCall, type StatusCollector } from '../status.js';
import { buildAccess, patchAccess, type AccessMemo } from './access.js';
import { identityPorts, patchIdentityPorts, type IdentityPorts } from './access-checks.js';
import { checkRouteGroups, type CheckedRouteGroup } from './routes.js';
import { assignVirtualIPs, buildServices, patchServices } from './services.js';
import { meshNamespaces, meshSettings } from './settings.js';
import { buildSplits, type SplitCheck } from './splits.js';
import { buildRoutes, type RouteMemo } from './gateway.js';
import { compareStrings, identityOf, type DestinationAccess, type Identity, type MeshIR, type MeshSettings, type ServiceIR, type ServiceRouteIR, type SplitIR, type Workload } from './types.js';
import { buildWorkloads, patchWorkloads } from './workloads.js';
import { editedAt, groupBy, replaceItems, sameItems } from '../group.js';
import { KeyedMemo, PatchedTable, type Read } from '../keyed.js';

/** Kinds the mesh as a whole reads (its namespaces, its settings), wherever they live. */
const MESH_WIDE = new Set<m.MeshObject['kind']>(['Namespace', 'MeshConfig']);

/**
 * What one build of the IR keeps for the next, as plain data: each
 * namespace's part (its objects by kind, then its members, services, ports
 * and policy stages) with the status messages each gave, and the keyed memos of
 * the stages, which hold what each stage read. A stage none of whose reads
 * changed (objects are compared by reference: the decoder hands back the
 * very objects of unchanged documents) is not run again; its result and its
 * messages are reused, so the IR and the status are what a build from
 * scratch gives.
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
  /** Each namespace's members, services, ports and policy stages with what they read (see keyed.ts). */
  readonly stages: { readonly members: KeyedMemo<Members, MemberLookups>; readonly services: KeyedMemo<ServicesStage, ServiceStageLookups>; readonly ports: KeyedMemo<PortsOf, PortLookups>; readonly policy: KeyedMemo<PolicyStage, PolicyStageLookups> };
}

type Calls = readonly StatusCall[];

interface NamespacePart {
  readonly front: Front;
  /** Only for a namespace of the mesh. */
  members?: Members;
  services?: ServicesStage;
  ports?: PortsOf;
  policy?: PolicyStage;
}

/** Objects -> the namespace's unique objects, by kind. */
interface Front {
  readonly namespace: string;
  /** The namespace's objects as given (the stage's input). */
  readonly objects: readonly m.MeshObject[];
  readonly inMesh: boolean;
  readonly calls: Calls;
  /** Unique objects of a mesh namespace, in canonical order, and by kind. */
  readonly unique: readonly m.MeshObject[];
  readonly byKind: ReadonlyMap<string, readonly m.MeshObject[]>;
}

/** A mesh namespace's workloads and the identities it has. */
interface Members {
  readonly calls: Calls;
  /** What they were made from: the connected VM proxies (as read), the pods, VMs and accounts. */
  readonly connected: string;
  readonly pods: readonly m.PodObj[];
  readonly vms: readonly m.VirtualMachineObj[];
  readonly accounts: readonly m.ServiceAccountObj[];
  readonly workloads: readonly Workload[];
  readonly workloadByRef: ReadonlyMap<string, Workload>;
  /** Identities of the workloads, in workload order. */
  readonly identities: readonly Identity[];
  /** Identities that exist here: of a workload or of a ServiceAccount. */
  readonly known: ReadonlySet<Identity>;
  /** Each workload with what it read, for the next build of this namespace. */
  readonly memo: KeyedMemo<Workload>;
}

/** What the members of a namespace read. */
type MemberLookups = {
  readonly kind: ReadonlyMap<string, readonly m.MeshObject[]>;
  /** namespace -> node ids of its connected VM proxies (`offline` when the compile knows no connections). */
  readonly connected: ReadonlyMap<string, string>;
};

/** What the services stage of a namespace reads, by name (see keyed.ts). */
type ServiceStageLookups = {
  /** `namespace/Kind` -> the namespace's objects of that kind. */
  readonly kind: ReadonlyMap<string, readonly m.MeshObject[]>;
  /** namespace -> its workloads. */
  readonly workloads: ReadonlyMap<string, readonly Workload[]>;
  /** JSON `[kind, namespace, name]` -> that workload, of any namespace. */
  readonly workload: (ref: string) => Workload | undefined;
};

/** The ports of a namespace's identities, and the services (its own, then its contributors') they were found in. */
interface PortsOf {
  readonly from: readonly ServiceIR[];
  readonly ports: ReadonlyMap<Identity, IdentityPorts>;
}

/** What the ports of a namespace's identities are made from. */
type PortLookups = {
  /** namespace -> its services stage. */
  readonly services: ReadonlyMap<string, ServicesStage>;
  /** namespace -> the services stages of other namespaces with endpoints of its workloads. */
  readonly contributors: ReadonlyMap<string, readonly ServicesStage[]>;
};

/** What the policy stage of a namespace reads, by name. */
type PolicyStageLookups = {
  readonly kind: ReadonlyMap<string, readonly m.MeshObject[]>;
  /** namespace -> the identities of its workloads. */
  readonly identities: ReadonlyMap<string, readonly Identity[]>;
  /** namespace -> the `namespace/name` of its services. */
  readonly serviceNames: ReadonlyMap<string, readonly string[]>;
  /** namespace -> the ports of its identities' endpoints. */
  readonly portsOf: ReadonlyMap<string, ReadonlyMap<Identity, IdentityPorts>>;
  /** `namespace\nidentity` -> whether the identity exists in that namespace. */
  readonly known: (arg: string) => boolean;
};

/** Services and endpoints (before virtual IPs). */
interface ServicesStage {
  readonly namespace: string;
  readonly calls: Calls;
  /** What they were made from: the Service objects, the EndpointSlices and Endpoints, the workloads. */
  readonly objects: readonly m.ServiceObj[];
  readonly sets: readonly m.EndpointSetObj[];
  readonly workloads: readonly Workload[];
  readonly services: readonly ServiceIR[];
  /** Their `namespace/name`, in the same order. */
  readonly names: readonly string[];
  /** The same services by name. */
  readonly byName: ReadonlyMap<string, ServiceIR>;
  /** Workloads of other namespaces an endpoint named (`Kind/ns/name`), as they were found. */
  readonly foreign: ReadonlyMap<string, Workload | undefined>;
  readonly headless: ReadonlySet<string>;
  readonly objectKey: ReadonlyMap<string, string>;
  /** Each service with what it read, for the next build of this namespace. */
  readonly memo: KeyedMemo<ServiceIR>;
  /** When the stage was patched from the previous one: the services it had, and those replaced (before -> after). */
  readonly replaced?: { readonly from: readonly ServiceIR[]; readonly services: ReadonlyMap<ServiceIR, ServiceIR> };
}

/** Route groups, grants, splits and the checks between them. */
/** What a namespace's policy stage reads. */
interface PolicyInputs {
  readonly groupObjects: readonly m.HttpRouteGroupObj[];
  readonly portRouteObjects: readonly m.PortRouteObj[];
  /** The identities of its ServiceAccounts. */
  readonly accounts: readonly Identity[];
  readonly targets: readonly m.TrafficTargetObj[];
  readonly splitObjects: readonly m.TrafficSplitObj[];
  /** The identities of its workloads, and the `namespace/name` of its services. */
  readonly identities: readonly Identity[];
  readonly serviceNames: readonly string[];
  readonly ports: ReadonlyMap<Identity, IdentityPorts>;
}

/** Route groups, grants and splits and the checks between them, with what they were made from. */
interface PolicyStage extends PolicyInputs {
  readonly calls: Calls;
  /** The last of `calls`: what the splits said. */
  readonly splitCalls: Calls;
  readonly access: readonly DestinationAccess[];
  readonly splits: readonly SplitIR[];
  readonly routeGroups: ReadonlyMap<string, CheckedRouteGroup>;
  readonly portRoutes: ReadonlyMap<string, m.PortRouteObj>;
  /** `serviceNames` as a set (what the splits look their services up in). */
  readonly serviceSet: ReadonlySet<string>;
  /** What each TrafficSplit was found to be, with these route groups and services. */
  readonly splitChecks: ReadonlyMap<m.TrafficSplitObj, SplitCheck>;
  /** Each route group and TrafficTarget, and each destination's access, with what it read, for the next build of this namespace. */
  readonly routeMemo: KeyedMemo<CheckedRouteGroup>;
  readonly accessMemo: AccessMemo;
}

export interface BuiltIR {
  readonly ir: MeshIR;
  readonly memo: IRMemo;
  /** Namespaces whose objects' messages may differ: new or gone, or a stage of theirs gave a list of messages that is not the very list it gave before (a stage patched keeps it). */
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

  // Stage 1: each namespace's objects, by kind.
  const nodesOf = new Map<string, string>();
  for (const ns of names) {
    const objects = byNamespace.get(ns)!;
    const nodes = connected ? (connected.get(ns) ?? []).join(' ') : 'offline';
    nodesOf.set(ns, nodes);
    const before = kept?.get(ns)?.front;
    const front = before && before.inMesh === namespaces.has(ns) && sameItems(before.objects, objects) ? before : buildFront(ns, objects, namespaces.has(ns), before);
    parts.set(ns, { front });
  }
  // The namespaces' objects by kind: what the next stages read.
  const kinds = new Map<string, readonly m.MeshObject[]>();
  for (const ns of names) {
    const front = parts.get(ns)!.front;
    if (front.inMesh) for (const [kind, list] of front.byKind) kinds.set(`${ns}/${kind}`, list);
  }

  // Stage 1b: each mesh namespace's workloads (built again when its pods, VMs, accounts or connected VM proxies change).
  // (Each stage keeps its own messages, replayed in the order of stages: its memo entry records none.)
  const membersMemo = new KeyedMemo<Members, MemberLookups>({ kind: kinds, connected: nodesOf }, kept && previous?.stages.members);
  const workloadLists = new Map<string, readonly Workload[]>();
  const identityLists = new Map<string, readonly Identity[]>();
  for (const ns of names) {
    const part = parts.get(ns)!;
    if (!part.front.inMesh) continue;
    const before = kept?.get(ns)?.members;
    part.members = membersMemo.get(ns, status, (read) => buildMembers(ns, read, settings, before));
    workloadLists.set(ns, part.members.workloads);
    identityLists.set(ns, part.members.identities);
  }
  membersMemo.seal();
  const workloadOf = (kind: string, namespace: string, name: string) => parts.get(namespace)?.members?.workloadByRef.get(`${kind}/${namespace}/${name}`);

  // Stage 2: services and their endpoints (a targetRef may name a workload of another namespace). A namespace's stage is
  // built again when something it read changed (its objects of the kinds it reads, its workloads, the workloads it named).
  const serviceLookups: ServiceStageLookups = { kind: kinds, workloads: workloadLists, workload: (ref) => workloadOf(...splitRef(ref)) };
  const servicesMemo = new KeyedMemo<ServicesStage, ServiceStageLookups>(serviceLookups, kept && previous?.stages.services);
  for (const ns of names) {
    const part = parts.get(ns)!;
    if (!part.front.inMesh) continue;
    const before = kept?.get(ns)?.services;
    part.services = servicesMemo.get(ns, status, (read) => buildServicesStage(ns, read, before));
  }
  servicesMemo.seal();
  // Virtual IPs are allocated across the whole mesh, in the order of namespaces and names.
  const built = names.flatMap((ns) => parts.get(ns)!.services?.services ?? []);
  for (const ns of names) {
    const part = parts.get(ns)!;
    replay(part.front.calls, status);
    if (part.members) replay(part.members.calls, status);
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
  const stages = new Map<string, ServicesStage>();
  for (const ns of names) {
    const stage = parts.get(ns)!.services;
    if (stage) stages.set(ns, stage);
  }
  // The ports of each namespace's identities, from the services whose endpoints they are, in mesh order (for the
  // HTTP-on-TCP warning): made again when its services or its contributors' change.
  const portsMemo = new KeyedMemo<PortsOf, PortLookups>({ services: stages, contributors: contributorsOf }, kept && previous?.stages.ports);
  const portsIn = new Map<string, ReadonlyMap<Identity, IdentityPorts>>();
  for (const ns of stages.keys()) {
    const before = kept?.get(ns)?.ports;
    const made = portsMemo.get(ns, status, (read) => {
      const own = read('services', ns)!;
      const contributors = read('contributors', ns) ?? [];
      // Only its own services, some of them replaced since they gave the previous ports: those services' identities are looked at again.
      if (contributors.length === 0 && own.replaced && before?.from === own.replaced.from) return { from: own.services, ports: patchIdentityPorts(before.ports, own.services, own.replaced.services) };
      const services = contributors.length === 0 ? own.services : [own, ...contributors].sort((a, b) => compareStrings(a.namespace, b.namespace)).flatMap((s) => s.services);
      return { from: services, ports: identityPorts(services) };
    });
    parts.get(ns)!.ports = made;
    portsIn.set(ns, made.ports);
  }
  portsMemo.seal();
  const serviceNames = new Map([...stages].map(([ns, stage]) => [ns, stage.names]));
  const policyLookups: PolicyStageLookups = {
    kind: kinds,
    identities: identityLists,
    serviceNames,
    portsOf: portsIn,
    known: (arg) => {
      const cut = arg.indexOf('\n');
      return parts.get(arg.slice(0, cut))?.members?.known.has(arg.slice(cut + 1)) ?? false;
    },
  };
  const policyMemo = new KeyedMemo<PolicyStage, PolicyStageLookups>(policyLookups, kept && previous?.stages.policy);
  for (const ns of names) {
    const part = parts.get(ns)!;
    if (!part.services) continue;
    const before = kept?.get(ns)?.policy;
    part.policy = policyMemo.get(ns, status, (read) => buildPolicyStage(ns, read, settings, before));
    replay(part.policy.calls, status);
  }
  policyMemo.seal();

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
    workloads: names.flatMap((ns) => parts.get(ns)!.members?.workloads ?? []),
    services,
    access: byIdentityOrder.flatMap((ns) => parts.get(ns)!.policy?.access ?? []),
    splits: names.flatMap((ns) => parts.get(ns)!.policy?.splits ?? []),
    routes,
  };
  const rebuilt = new Set<string>();
  for (const [ns, part] of parts) {
    const before = kept?.get(ns);
    if (!before || !sameCalls(before.front, part.front) || !sameCalls(before.members, part.members) || !sameCalls(before.services, part.services) || !sameCalls(before.policy, part.policy)) rebuilt.add(ns);
  }
  for (const ns of previous?.parts.keys() ?? []) if (!parts.has(ns) || !kept) rebuilt.add(ns);
  return { ir, memo: { mesh: meshText, parts, assigned, routes: routeMemo, stages: { members: membersMemo, services: servicesMemo, ports: portsMemo, policy: policyMemo } }, rebuilt, direct };
}

/** Two parts of a namespace that gave the very same messages (a part patched keeps its list of them). */
const sameCalls = (a: { readonly calls: Calls } | undefined, b: { readonly calls: Calls } | undefined) => a === b || (a !== undefined && b !== undefined && a.calls === b.calls);

function buildFront(namespace: string, objects: readonly m.MeshObject[], inMesh: boolean, previous?: Front): Front {
  const calls: StatusCall[] = [];
  const status = recordInto(calls);
  // A mesh namespace's objects replaced in place by objects of the same kind and name (a file edited): each kind's list is
  // the previous one with them replaced (no duplicate, so no message: the previous list of none stands).
  const replaced = inMesh && previous?.inMesh && replacedInPlace(previous, objects);
  if (replaced) {
    const byKind = new Map(previous.byKind);
    for (const kind of new Set([...replaced.keys()].map((o) => o.kind))) byKind.set(kind, replaceItems(byKind.get(kind)!, replaced));
    return { namespace, objects, inMesh, calls: previous.calls, unique: replaceItems(previous.unique, replaced), byKind };
  }
  const unique = uniqueObjects(objects, status);
  if (!inMesh) {
    for (const o of unique) status.ignore(o.key, warning('metadata.namespace', `namespace ${JSON.stringify(o.meta.namespace)} is not in the mesh (it needs a Namespace with label smc.dev/mesh: enabled); ignored`));
    return { namespace, objects, inMesh, calls, unique, byKind: new Map() };
  }
  return { namespace, objects, inMesh, calls, unique, byKind: byKind(unique) };
}

function buildMembers(namespace: string, read: Read<MemberLookups>, settings: MeshSettings, previous?: Members): Members {
  const calls: StatusCall[] = [];
  const status = recordInto(calls);
  const connected = read('connected', namespace) ?? 'offline';
  const vms = connected === 'offline' ? undefined : new Set(connected === '' ? [] : connected.split(' '));
  const pods = kindsRead(read, namespace, 'Pod');
  const vmObjects = kindsRead(read, namespace, 'VirtualMachine');
  const accounts = kindsRead(read, namespace, 'ServiceAccount');
  // Pods edited in place (a pod moved), nothing else: their workloads are made again, the rest kept with what was made of them.
  const patched = previous && previous.connected === connected && sameItems(previous.vms, vmObjects) ? patchWorkloads(previous, pods, settings, vms) : undefined;
  if (patched) {
    const sameIdentities = [...patched.replaced].every(([a, b]) => a.identity === b.identity);
    const workloadByRef = new PatchedTable(previous!.workloadByRef);
    for (const w of patched.replaced.values()) workloadByRef.put(`${w.kind}/${w.namespace}/${w.name}`, w);
    const identities = sameIdentities ? previous!.identities : [...new Set(patched.workloads.map((w) => w.identity))];
    const known = sameIdentities && sameItems(previous!.accounts, accounts) ? previous!.known : knownIdentities(identities, accounts, settings);
    return { ...previous!, pods, accounts, workloads: patched.workloads, workloadByRef, identities, known, memo: patched.memo };
  }
  const { workloads, memo } = buildWorkloads(pods, vmObjects, settings, status, vms, previous?.memo);
  const identities = [...new Set(workloads.map((w) => w.identity))];
  return {
    calls,
    connected,
    pods,
    vms: vmObjects,
    accounts,
    workloads,
    workloadByRef: new Map(workloads.map((w) => [`${w.kind}/${w.namespace}/${w.name}`, w])),
    identities,
    known: knownIdentities(identities, accounts, settings),
    memo,
  };
}

const knownIdentities = (identities: readonly Identity[], accounts: readonly m.ServiceAccountObj[], settings: MeshSettings): ReadonlySet<Identity> =>
  new Set([...identities, ...accounts.map((sa) => identityOf(settings.trustDomain, sa.meta.namespace, sa.meta.name))]);

function buildServicesStage(namespace: string, read: Read<ServiceStageLookups>, previous?: ServicesStage): ServicesStage {
  const calls: StatusCall[] = [];
  const status = recordInto(calls);
  const foreign = new Map<string, Workload | undefined>();
  const lookup = (kind: string, ns: string, name: string) => {
    const ref = JSON.stringify([kind, ns, name]);
    const w = read('workload', ref);
    if (ns !== namespace) foreign.set(ref, w);
    return w;
  };
  const objects = kindsRead(read, namespace, 'Service');
  const sets = kindsRead(read, namespace, 'EndpointSlice', 'Endpoints');
  const workloads = read('workloads', namespace) ?? [];
  // Workloads edited in place (a pod moved), nothing else: the services that read them are made again, the rest kept.
  const patched = previous && sameItems(previous.objects, objects) && sameItems(previous.sets, sets) ? patchServices(previous, workloads, lookup) : undefined;
  if (patched) {
    const byName = new PatchedTable(previous!.byName);
    for (const s of patched.replaced.values()) byName.put(s.name, s);
    return { ...previous!, workloads, services: patched.services, byName, foreign, memo: patched.memo, replaced: { from: previous!.services, services: patched.replaced } };
  }
  const { services, memo } = buildServices(objects, sets, workloads, status, lookup, previous?.memo);
  return {
    memo,
    namespace,
    calls,
    objects,
    sets,
    workloads,
    services,
    names: services.map((sv) => `${sv.namespace}/${sv.name}`),
    byName: new Map(services.map((sv) => [sv.name, sv])),
    foreign,
    headless: new Set(objects.filter((o) => o.headless).map((o) => `${o.meta.namespace}/${o.meta.name}`)),
    objectKey: new Map(objects.map((o) => [`${o.meta.namespace}/${o.meta.name}`, o.key])),
  };
}

const splitRef = (ref: string) => JSON.parse(ref) as [string, string, string];

function buildPolicyStage(namespace: string, read: Read<PolicyStageLookups>, settings: MeshSettings, previous?: PolicyStage): PolicyStage {
  const knownElsewhere = (ns: string, id: Identity) => ns !== namespace && read('known', `${ns}\n${id}`);
  const given: PolicyInputs = {
    groupObjects: kindsRead(read, namespace, 'HTTPRouteGroup'),
    portRouteObjects: kindsRead(read, namespace, 'TCPRoute', 'UDPRoute'),
    accounts: kindsRead(read, namespace, 'ServiceAccount').map((sa) => identityOf(settings.trustDomain, sa.meta.namespace, sa.meta.name)),
    targets: kindsRead(read, namespace, 'TrafficTarget'),
    splitObjects: kindsRead(read, namespace, 'TrafficSplit'),
    identities: read('identities', namespace) ?? [],
    serviceNames: read('serviceNames', namespace) ?? [],
    ports: read('portsOf', namespace) ?? NO_PORTS,
  };
  // The same routes: their checks stand, TrafficTargets edited in place (or reading changed ports) are derived again, and the splits are made again only when what they read changed.
  if (previous && sameItems(previous.groupObjects, given.groupObjects) && sameItems(previous.portRouteObjects, given.portRouteObjects)) {
    const patched = patchAccess(previous.accessMemo, given.targets, previous.routeGroups, previous.portRoutes, given.identities, given.accounts, settings, knownElsewhere, given.ports);
    if (patched) {
      const sameNames = sameItems(previous.serviceNames, given.serviceNames);
      if (sameNames && sameItems(previous.splitObjects, given.splitObjects)) return { ...previous, ...given, access: patched.access, accessMemo: patched.memo };
      const splitCalls: StatusCall[] = [];
      const serviceSet = sameNames ? previous.serviceSet : new Set(given.serviceNames);
      // The same services and route groups: a TrafficSplit object checked before is what it was.
      const { splits, checks: splitChecks } = buildSplits(given.splitObjects, serviceSet, previous.routeGroups, recordInto(splitCalls), sameNames ? previous.splitChecks : undefined);
      const calls = sameMessages(splitCalls, previous.splitCalls) ? previous.calls : [...previous.calls.slice(0, previous.calls.length - previous.splitCalls.length), ...splitCalls];
      return { ...previous, ...given, serviceSet, calls, splitCalls, splits, splitChecks, access: patched.access, accessMemo: patched.memo };
    }
  }
  const calls: StatusCall[] = [];
  const status = recordInto(calls);
  const { groups: routeGroups, memo: routeMemo } = checkRouteGroups(given.groupObjects, status, previous?.routeMemo);
  const portRoutes = new Map(given.portRouteObjects.map((r) => [`${r.kind}/${r.meta.namespace}/${r.meta.name}`, r]));
  const { access, memo: accessMemo } = buildAccess(given.targets, routeGroups, portRoutes, given.identities, settings, status, given.accounts, knownElsewhere, given.ports, previous?.accessMemo);
  const splitCalls: StatusCall[] = [];
  const serviceSet = new Set(given.serviceNames);
  const { splits, checks: splitChecks } = buildSplits(given.splitObjects, serviceSet, routeGroups, recordInto(splitCalls));
  calls.push(...splitCalls);
  return { ...given, serviceSet, calls, splitCalls, access, splits, splitChecks, routeGroups, portRoutes, routeMemo, accessMemo };
}

const NO_PORTS: ReadonlyMap<Identity, IdentityPorts> = new Map();

/** Two lists of messages that say the same (the same kinds, keys and messages, in order). */
function sameMessages(a: readonly StatusCall[], b: readonly StatusCall[]): boolean {
  return a.length === b.length && JSON.stringify(a) === JSON.stringify(b);
}

/** A namespace's objects of some kinds, read through a stage's `kind` lookup, in canonical order (as `of` gives them). */
const kindsRead = <K extends m.MeshObject['kind']>(read: Read<{ kind: ReadonlyMap<string, readonly m.MeshObject[]> }>, namespace: string, ...wanted: K[]) =>
  ofKinds((k) => read('kind', `${namespace}/${k}`), wanted);

/** Objects by kind, in canonical order (objects arrive sorted by kind first, so each kind's list keeps it). */
function byKind(objects: readonly m.MeshObject[]): Map<string, m.MeshObject[]> {
  return groupBy(objects, (o) => o.kind);
}

/** The objects of some kinds, in canonical order (kinds in sorted order, then each kind's own), from their lists by kind. */
function ofKinds<K extends m.MeshObject['kind']>(listOf: (kind: string) => readonly m.MeshObject[] | undefined, wanted: K[]): readonly Extract<m.MeshObject, { kind: K }>[] {
  // (One kind's list is that list itself, so that an unchanged one is the same list.)
  if (wanted.length === 1) return (listOf(wanted[0]!) ?? []) as Extract<m.MeshObject, { kind: K }>[];
  return [...wanted].sort(compareStrings).flatMap((k) => listOf(k) ?? []) as Extract<m.MeshObject, { kind: K }>[];
}

const of = <K extends m.MeshObject['kind']>(kinds: ReadonlyMap<string, readonly m.MeshObject[]>, ...wanted: K[]) => ofKinds((k) => kinds.get(k), wanted);

/**
 * When the previous objects had no duplicate and these are those with some replaced at their places by objects of
 * the same kind and name (a file edited), the replacements (still no duplicate, and the order, by kind and name
 * alone, is the previous one); else undefined.
 */
function replacedInPlace(previous: Pick<Front, 'objects' | 'unique'>, objects: readonly m.MeshObject[]): Map<m.MeshObject, m.MeshObject> | undefined {
  if (previous.unique.length !== previous.objects.length) return undefined;
  const at = editedAt(previous.objects, objects, (a, b) => a.kind === b.kind && a.meta.namespace === b.meta.namespace && a.meta.name === b.meta.name);
  return at && new Map(at.map((i) => [previous.objects[i]!, objects[i]!]));
}

/**
 * The same kind/namespace/name twice: one is used, the others are rejected.
 * Which one does not depend on where they were read (file names, order):
 * the one whose content sorts first. EndpointSlice and Endpoints share a name
 * space only with their own kind.
 */
function uniqueObjects(objects: readonly m.MeshObject[], status: StatusCollector): readonly m.MeshObject[] {
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
