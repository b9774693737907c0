import type { EndpointSetObj, ServiceObj, ServicePort } from '../model.js';
import { recordInto, warning, type StatusCall, type StatusCollector } from '../status.js';
import { parseIPv4Range } from './settings.js';
import { labelsMatch } from './workloads.js';
import { compareStrings, type Endpoint, type MeshSettings, type PortProtocol, type ServiceIR, type ServicePortIR, type Workload } from './types.js';
import { editedAt, groupBy, replaceItems, sortedIndex } from '../group.js';
import { KeyedMemo, PatchedTable, type Read } from '../keyed.js';

/**
 * A port's protocol comes from `appProtocol`, else from the port name's
 * prefix (`http-web`, `grpc`, the Istio convention), else it is TCP: smc never
 * parses bytes as HTTP unless told they are HTTP.
 */
export function portProtocol(p: ServicePort): { protocol: PortProtocol; unknownAppProtocol?: string } {
  const app = p.appProtocol.toLowerCase();
  const byApp: Record<string, PortProtocol> = {
    http: 'http',
    'http1.1': 'http',
    http2: 'http2',
    h2c: 'http2',
    'kubernetes.io/h2c': 'http2',
    grpc: 'grpc',
    tcp: 'tcp',
  };
  if (app !== '') {
    const known = byApp[app];
    return known ? { protocol: known } : { protocol: 'tcp', unknownAppProtocol: p.appProtocol };
  }
  const prefix = p.name.toLowerCase().split('-')[0] ?? '';
  const byName: Record<string, PortProtocol> = { http: 'http', http2: 'http2', grpc: 'grpc', tcp: 'tcp' };
  return { protocol: byName[prefix] ?? 'tcp' };
}

const NONE: readonly never[] = [];

/**
 * Services and their endpoints, one namespace's. Each service is derived on
 * its own from what it reads (its object, its EndpointSlices, the workloads
 * its selector picks, those its endpoints name): given the previous build's
 * memo, a service none of whose reads changed is the very value it was, with
 * its messages, at the cost of its lookups (see keyed.ts).
 */
export function buildServices(
  services: readonly ServiceObj[],
  endpointSets: readonly EndpointSetObj[],
  workloads: readonly Workload[],
  status: StatusCollector,
  /** The workload an endpoint's targetRef names (it may be of another namespace than the service's); by default, one of `workloads`. */
  workloadOf?: (kind: string, namespace: string, name: string) => Workload | undefined,
  previous?: KeyedMemo<ServiceIR>,
): { services: ServiceIR[]; memo: KeyedMemo<ServiceIR> } {
  const setsByService = groupBy(endpointSets, (s) => `${s.meta.namespace}/${s.serviceName}`);
  const workloadByRef = workloadOf ? undefined : new Map(workloads.map((w) => [`${w.kind}/${w.namespace}/${w.name}`, w]));
  const byRef = workloadOf ?? ((kind: string, namespace: string, name: string) => workloadByRef!.get(`${kind}/${namespace}/${name}`));
  const workloadByAddress = new Map<string, Workload>();
  for (const w of workloads) for (const a of w.addresses) workloadByAddress.set(`${w.namespace}/${a}`, w);
  // Workloads by label (`key=value`), in input order: a selector is matched against its rarest label's workloads only.
  const byLabel = new Map<string, Workload[]>();
  for (const w of workloads) {
    for (const [k, v] of Object.entries(w.labels)) {
      const label = `${w.namespace}/${k}=${v}`;
      const list = byLabel.get(label);
      if (list) list.push(w);
      else byLabel.set(label, [w]);
    }
  }
  const serviceByKey = new Map(services.map((s) => [`${s.meta.namespace}/${s.meta.name}`, s]));
  const lookups: ServiceLookups = {
    service: serviceByKey,
    sets: setsByService,
    label: byLabel,
    ref: (ref: string) => byRef(...(JSON.parse(ref) as [string, string, string])),
    address: workloadByAddress,
  };
  const serviceKeys = new Set(serviceByKey.keys());
  for (const [k, sets] of setsByService) {
    if (!serviceKeys.has(k)) for (const s of sets) status.add(s.key, warning('', `its Service ${k} is not among the inputs; ignored`));
  }
  const memo = new KeyedMemo<ServiceIR, ServiceLookups>(lookups, previous);
  const out = services.map((svc) => {
    const key = `${svc.meta.namespace}/${svc.meta.name}`;
    return memo.get(key, status, deriveService(key));
  });
  return { services: out.sort((a, b) => compareStrings(a.namespace, b.namespace) || compareStrings(a.name, b.name)), memo: memo.seal() };
}

/**
 * `buildServices` of one namespace when only workloads changed since the previous build (`previous`, given the
 * workloads `workloads` before), each replaced at its place by one of the same kind, namespace, name and labels
 * (a pod moved): the tables of workloads by label and by address are patched, and the services that read a changed
 * key of them (or a workload through a targetRef) are derived again, the others kept. The result lists the services
 * replaced; undefined when the workloads do not line up so, or when a message of a service derived again may differ
 * (what was said is then said again by `buildServices`).
 */
export function patchServices(
  previous: { readonly workloads: readonly Workload[]; readonly services: readonly ServiceIR[]; readonly memo: KeyedMemo<ServiceIR> },
  workloads: readonly Workload[],
  workloadOf: (kind: string, namespace: string, name: string) => Workload | undefined,
): { services: ServiceIR[]; memo: KeyedMemo<ServiceIR>; replaced: Map<ServiceIR, ServiceIR> } | undefined {
  const edited = editedAt(previous.workloads, workloads, (a, b) => a.kind === b.kind && a.namespace === b.namespace && a.name === b.name && sameLabels(a.labels, b.labels));
  if (!edited) return undefined;
  const was = previous.memo.lookups as ServiceLookups;
  const replaced = new Map(edited.map((i) => [previous.workloads[i]!, workloads[i]!]));
  const addresses = new Set<string>();
  for (const [a, b] of replaced) for (const address of [...a.addresses, ...b.addresses]) addresses.add(`${b.namespace}/${address}`);
  const label = new PatchedTable(was.label);
  for (const key of new Set([...replaced.keys()].flatMap((w) => Object.entries(w.labels).map(([k, v]) => `${w.namespace}/${k}=${v}`)))) label.put(key, replaceItems(was.label.get(key)!, replaced));
  // An address is the last workload's that has it (as when the table is made from the list).
  const address = new PatchedTable(was.address);
  for (const key of addresses) {
    const slash = key.indexOf('/');
    const [ns, ip] = [key.slice(0, slash), key.slice(slash + 1)];
    const owner = findLast(workloads, (w) => w.namespace === ns && w.addresses.includes(ip));
    if (owner) address.put(key, owner);
    else address.remove(key);
  }
  const lookups: ServiceLookups = { ...was, label, address, ref: (ref: string) => workloadOf(...(JSON.parse(ref) as [string, string, string])) };
  const memo = KeyedMemo.carried<ServiceIR, ServiceLookups>(lookups, previous.memo);
  const services = previous.services.slice();
  const changed = new Map<ServiceIR, ServiceIR>();
  for (const key of memo.dirty()) {
    const i = indexOfService(services, key);
    const before = services[i];
    if (before === undefined || previous.memo.callsOf(key).length > 0) return undefined;
    const said: StatusCall[] = [];
    const after = memo.get(key, recordInto(said), deriveService(key));
    if (said.length > 0) return undefined;
    if (after === before) continue;
    services[i] = after;
    changed.set(before, after);
  }
  return { services, memo: memo.seal(), replaced: changed };
}

type ServiceLookups = {
  readonly service: ReadonlyMap<string, ServiceObj>;
  readonly sets: ReadonlyMap<string, readonly EndpointSetObj[]>;
  /** Workloads by label (`namespace/key=value`), in input order: a selector is matched against its rarest label's workloads only. */
  readonly label: ReadonlyMap<string, readonly Workload[]>;
  /** The workload named by a targetRef (`JSON [kind, namespace, name]`). */
  readonly ref: (ref: string) => Workload | undefined;
  /** The workload of `namespace/address`. */
  readonly address: ReadonlyMap<string, Workload>;
};

/** How the service of `namespace/name` is derived, through the lookups (so that what it reads is recorded). */
const deriveService =
  (key: string) =>
  (read: Read<ServiceLookups>, status: StatusCollector): ServiceIR => {
    const service = read('service', key)!;
    return buildService(service, read('sets', key) ?? NONE, selected(service, (label) => read('label', label)), status, (ref) => read('ref', ref), (address) => read('address', address));
  };

/** The workloads a service's selector picks: its rarest label's, filtered by the whole selector. */
function selected(svc: ServiceObj, label: (label: string) => readonly Workload[] | undefined): readonly Workload[] {
  const selector = svc.selector;
  if (!selector) return NONE;
  let rarest: readonly Workload[] | undefined;
  for (const [k, v] of Object.entries(selector)) {
    const list = label(`${svc.meta.namespace}/${k}=${v}`) ?? NONE;
    if (rarest === undefined || list.length < rarest.length) rarest = list;
  }
  return (rarest ?? NONE).filter((w) => labelsMatch(selector, w.labels));
}

function findLast<T>(list: readonly T[], test: (item: T) => boolean): T | undefined {
  for (let i = list.length - 1; i >= 0; i--) if (test(list[i]!)) return list[i];
  return undefined;
}

/** Where the service of `namespace/name` is in services sorted by namespace and name (a binary search); -1 when it is not. */
function indexOfService(services: readonly ServiceIR[], key: string): number {
  const slash = key.indexOf('/');
  const ns = key.slice(0, slash);
  const name = key.slice(slash + 1);
  return sortedIndex(services, (s) => compareStrings(s.namespace, ns) || compareStrings(s.name, name));
}

function sameLabels(a: Readonly<Record<string, string>>, b: Readonly<Record<string, string>>): boolean {
  if (a === b) return true;
  const keys = Object.keys(a);
  return keys.length === Object.keys(b).length && keys.every((k) => b[k] === a[k]);
}

function buildService(
  svc: ServiceObj,
  sets: readonly EndpointSetObj[],
  selected: readonly Workload[],
  status: StatusCollector,
  /** The workload named by a targetRef (`JSON [kind, namespace, name]`). */
  byRef: (ref: string) => Workload | undefined,
  /** The workload of `namespace/address`. */
  byAddress: (key: string) => Workload | undefined,
): ServiceIR {
  const ns = svc.meta.namespace;
  const ports: ServicePortIR[] = [];
  svc.ports.forEach((p, i) => {
    if (p.protocol !== 'TCP') {
      status.add(svc.key, warning(`spec.ports[${i}].protocol`, `${p.protocol} ports are not part of the mesh; port ${p.port} skipped`));
      return;
    }
    const { protocol, unknownAppProtocol } = portProtocol(p);
    if (unknownAppProtocol !== undefined) {
      status.add(svc.key, warning(`spec.ports[${i}].appProtocol`, `unknown appProtocol ${JSON.stringify(unknownAppProtocol)}; treated as tcp (expected http, http2, grpc or tcp)`));
    }
    const endpoints = new Map<string, Endpoint>();
    const add = (w: Workload, address: string, port: number) => {
      const e: Endpoint = { address, port, workload: `${w.kind} ${w.namespace}/${w.name}`, identity: w.identity, interception: w.interceptionMode };
      endpoints.set(`${address}:${port}`, e);
    };
    if (sets.length > 0) {
      // Kubernetes' own endpoint controller is the authority for pods.
      for (const set of sets) {
        const sp = set.ports.find((x) => x.name === p.name) ?? (set.ports.length === 1 && svc.ports.length === 1 ? set.ports[0] : undefined);
        if (!sp) continue;
        set.endpoints.forEach((e, j) => {
          if (!e.ready) return;
          for (const address of e.addresses) {
            const ref = e.targetRef;
            const w = ref ? byRef(JSON.stringify([ref.kind, ref.namespace, ref.name])) : byAddress(`${ns}/${address}`);
            if (!w) {
              status.add(set.key, warning(`endpoints[${j}]`, `${address} is not a workload of the mesh (no such pod or VM in a mesh namespace); skipped`));
              continue;
            }
            add(w, address, sp.port);
          }
        });
      }
    }
    for (const w of selected) {
      if (sets.length > 0 && w.kind === 'Pod') continue;
      const target = typeof p.targetPort === 'number' ? p.targetPort : w.ports.find((wp) => wp.name === p.targetPort)?.port;
      if (target === undefined) {
        status.add(svc.key, warning(`spec.ports[${i}].targetPort`, `${w.kind} ${w.namespace}/${w.name} has no port named ${JSON.stringify(p.targetPort)}; it backs no endpoint on port ${p.port}`));
        continue;
      }
      for (const address of w.addresses) add(w, address, target);
    }
    ports.push({
      name: p.name,
      port: p.port,
      targetPort: p.targetPort,
      protocol,
      endpoints: [...endpoints.values()].sort((a, b) => compareStrings(a.address, b.address) || a.port - b.port),
    });
  });
  if (!svc.selector && sets.length === 0) {
    status.add(svc.key, warning('spec.selector', 'no selector and no EndpointSlice: the service has no endpoints'));
  }
  const identities = [...new Set(ports.flatMap((p) => p.endpoints.map((e) => e.identity)))].sort(compareStrings);
  return {
    namespace: ns,
    name: svc.meta.name,
    clusterIPs: [...svc.clusterIPs].sort(compareStrings),
    ports: ports.sort((a, b) => a.port - b.port),
    identities,
  };
}

/**
 * A Service with no cluster IP that is not headless (a folder of YAML written
 * by hand, or a VM-only service) gets a virtual IP, so the transparent
 * outbound listener can tell its traffic apart. The address is derived from
 * the service's name (FNV-1a over `namespace/name`) in the mesh's range, so
 * it survives restarts and input order; two services that land on the same
 * address are resolved by name order, the later one taking the next free
 * address. Real cluster IPs in the range are never reused.
 */
export function assignVirtualIPs(
  services: readonly ServiceIR[],
  /** Headless services (`clusterIP: None`), by `ns/name`: they get no address. */
  headless: ReadonlySet<string>,
  /** The status key of the Service object of `ns/name`. */
  keyOf: (service: string) => string,
  settings: MeshSettings,
  status: StatusCollector,
  /** The previous compile's `assigned`: a service given the same address again is the same value as then. */
  previous?: ReadonlyMap<ServiceIR, ServiceIR>,
): { services: ServiceIR[]; assigned: Map<ServiceIR, ServiceIR> } {
  const range = parseIPv4Range(settings.virtualIPRange)!;
  const taken = new Set<string>();
  for (const s of services) for (const ip of s.clusterIPs) taken.add(ip);
  const toText = (n: number) => [24, 16, 8, 0].map((b) => (n >>> b) & 255).join('.');
  const assigned = new Map<ServiceIR, ServiceIR>();
  // Services arrive sorted by namespace and name, which decides collisions.
  for (const s of services) {
    if (s.clusterIPs.length > 0) continue;
    const key = `${s.namespace}/${s.name}`;
    if (headless.has(key)) continue;
    let slot = fnv1a(key) % range.size;
    let ip = '';
    for (let tries = 0; tries < range.size; tries++, slot = (slot + 1) % range.size) {
      // The first and last address of the range are left alone (network and broadcast, out of habit).
      if (slot === 0 || slot === range.size - 1) continue;
      const candidate = toText(range.base + slot);
      if (!taken.has(candidate)) {
        ip = candidate;
        break;
      }
    }
    if (ip === '') {
      status.add(keyOf(key), warning('spec.clusterIP', `no cluster IP, and the virtual IP range ${settings.virtualIPRange} is full: not reachable through the transparent outbound listener`));
      continue;
    }
    taken.add(ip);
    const before = previous?.get(s);
    assigned.set(s, before !== undefined && before.clusterIPs[0] === ip ? before : { ...s, clusterIPs: [ip] });
  }
  return { services: services.map((s) => assigned.get(s) ?? s), assigned };
}

function fnv1a(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h;
}
