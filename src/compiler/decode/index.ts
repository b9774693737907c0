import type * as t from 'io-ts';
import type { HeldVersion, InputDocument, Origin } from '../inputs.js';
import type * as m from '../model.js';
import { INTERCEPTION_MODES } from '../model.js';
import type { ObjectRef, StatusCall, StatusCollector } from '../status.js';
import { error, recordInto, replay } from '../status.js';
import { decodeWith, normaliseMeta, type Meta } from './common.js';
import * as k8s from './kubernetes.js';
import { PROBES_ANNOTATION } from '../probes.js';
import * as gateway from './gateway.js';
import * as access from './smi-access.js';
import * as specs from './smi-specs.js';
import * as split from './smi-split.js';
import * as smc from './smc.js';
import { didYouMean, unknownFields } from './strict.js';

/** One input object as the compiler tracks it for status. */
export interface TrackedObject {
  readonly key: string;
  readonly origin: Origin;
  readonly ref: ObjectRef;
}

export interface DecodeResult {
  readonly objects: m.MeshObject[];
  readonly tracked: TrackedObject[];
  /** What each document decoded to, for the next compile (see `DecodedDocuments`). */
  readonly decoded: DecodedDocuments;
}

/**
 * Decoded documents kept from one compile for the next, as plain data: per
 * document (by source and index), its text (JSON), where it started, and what
 * decoding it produced (objects, tracked entries, status messages). A
 * document whose text and position are unchanged is not decoded again; its
 * results are replayed, so the outcome is the same as decoding it. The very
 * document value given again (an input unit the controller's worker kept) is
 * found without even naming it.
 */
export interface DecodedDocuments {
  readonly byKey: ReadonlyMap<string, DecodedDocument>;
  readonly byDocument: ReadonlyMap<InputDocument, DecodedDocument>;
}

interface DecodedDocument {
  readonly key: string;
  /** The document's value itself: the same (immutable) value again is unchanged without serialising it. */
  readonly value: unknown;
  readonly text: string;
  readonly position: string;
  readonly objects: readonly m.MeshObject[];
  readonly tracked: readonly TrackedObject[];
  readonly calls: readonly StatusCall[];
}

type Normalise = (value: never, base: BaseFields) => { object?: m.MeshObject; problems?: { path: string; message: string }[] };
interface BaseFields {
  key: string;
  origin: Origin;
  apiVersion: string;
  meta: Meta;
}
interface KindVersion {
  readonly codec: t.Decoder<unknown, unknown>;
  readonly normalise: Normalise;
  readonly clusterScoped?: boolean;
  /** Unknown fields reject the object (policy kinds); Kubernetes core kinds tolerate fields smc does not model. */
  readonly strict?: boolean;
}

const SUPPORTED: Record<string, Record<string, KindVersion>> = {};
/** API group -> the kinds smc reads in it. */
const KINDS_OF_GROUP = new Map<string, Set<string>>();

const GATEWAY_GROUP = 'gateway.networking.k8s.io';
/** Policy groups: SMI's, the Gateway API's and smc's own. Their objects are validated strictly. */
const isPolicyGroup = (group: string) => group.endsWith('.smi-spec.io') || group === 'smc.dev' || group === GATEWAY_GROUP;

function register(group: string, kind: string, versions: string[], kv: KindVersion) {
  for (const v of versions) {
    const gv = group === '' ? v : `${group}/${v}`;
    (SUPPORTED[kind] ??= {})[gv] = { ...kv, strict: isPolicyGroup(group) };
  }
  if (!KINDS_OF_GROUP.has(group)) KINDS_OF_GROUP.set(group, new Set());
  KINDS_OF_GROUP.get(group)!.add(kind);
}

const groupOf = (apiVersion: string) => (apiVersion.includes('/') ? apiVersion.split('/')[0]! : '');
const as = <A>(codec: t.Decoder<unknown, A>, normalise: (value: A, base: BaseFields) => ReturnType<Normalise>, clusterScoped = false): KindVersion => ({
  codec,
  normalise: normalise as Normalise,
  clusterScoped,
});

const str = (s: string | null | undefined): string => s ?? '';

register('', 'Namespace', ['v1'], as(k8s.namespaceCodec, (_v, b) => ({ object: { ...b, kind: 'Namespace' } }), true));

register('', 'Service', ['v1'], as(k8s.serviceCodec, (v, b) => {
  const spec = v.spec ?? {};
  const clusterIPs = spec.clusterIPs ?? (spec.clusterIP ? [spec.clusterIP] : []);
  return {
    object: {
      ...b,
      kind: 'Service',
      selector: spec.selector ?? undefined,
      clusterIPs: clusterIPs.filter((ip) => ip !== 'None' && ip !== ''),
      headless: clusterIPs.includes('None'),
      ports: (spec.ports ?? []).map((p) => ({
        name: str(p.name),
        port: p.port,
        targetPort: p.targetPort ?? p.port,
        protocol: p.protocol || 'TCP',
        appProtocol: str(p.appProtocol),
      })),
    },
  };
}));

register('', 'ServiceAccount', ['v1'], as(k8s.serviceAccountCodec, (_v, b) => ({ object: { ...b, kind: 'ServiceAccount' } })));

register('', 'Pod', ['v1'], as(k8s.podCodec, (v, b) => {
  const spec = v.spec ?? {};
  const ips = v.status?.podIPs?.map((p) => p.ip) ?? (v.status?.podIP ? [v.status.podIP] : []);
  const mode = v.metadata.annotations?.[k8s.INTERCEPTION_ANNOTATION];
  const problems: { path: string; message: string }[] = [];
  if (mode !== undefined && !(INTERCEPTION_MODES as readonly string[]).includes(mode)) {
    problems.push({
      path: `metadata.annotations["${k8s.INTERCEPTION_ANNOTATION}"]`,
      message: `expected one of ${INTERCEPTION_MODES.map((x) => JSON.stringify(x)).join(', ')}, got ${JSON.stringify(mode)}`,
    });
  }
  if (problems.length > 0) return { problems };
  return {
    object: {
      ...b,
      kind: 'Pod',
      serviceAccountName: spec.serviceAccountName || spec.serviceAccount || 'default',
      ips: [...new Set(ips)],
      ports: (spec.containers ?? []).flatMap((c) =>
        (c.ports ?? []).map((p) => ({ name: str(p.name), port: p.containerPort, protocol: p.protocol || 'TCP' })),
      ),
      interceptionMode: mode as m.InterceptionMode | undefined,
      injected: v.metadata.annotations?.[k8s.INJECTED_ANNOTATION] !== undefined,
      probesAnnotation: v.metadata.annotations?.[PROBES_ANNOTATION],
    },
  };
}));

register('discovery.k8s.io', 'EndpointSlice', ['v1'], as(k8s.endpointSliceCodec, (v, b) => {
  const serviceName = v.metadata.labels?.['kubernetes.io/service-name'];
  if (!serviceName) {
    return { problems: [{ path: 'metadata.labels["kubernetes.io/service-name"]', message: 'expected the name of the owning Service, got nothing' }] };
  }
  if (v.addressType === 'FQDN') {
    return { problems: [{ path: 'addressType', message: 'FQDN endpoints are not supported; expected IPv4 or IPv6' }] };
  }
  return {
    object: {
      ...b,
      kind: 'EndpointSlice',
      serviceName,
      ports: (v.ports ?? []).map((p) => ({ name: str(p.name), port: p.port ?? 0, protocol: p.protocol || 'TCP' })),
      endpoints: (v.endpoints ?? []).map((e) => ({
        addresses: e.addresses,
        // Kubernetes: a nil `ready` is to be read as ready.
        ready: e.conditions?.ready ?? true,
        targetRef: e.targetRef ? { kind: str(e.targetRef.kind), namespace: e.targetRef.namespace || b.meta.namespace, name: str(e.targetRef.name) } : undefined,
      })),
    },
  };
}));

register('', 'Endpoints', ['v1'], as(k8s.endpointsCodec, (v, b) => {
  // Several subsets would need several endpoint sets from one object; a single
  // subset (what the endpoints controller writes for one port set) is supported.
  const subsets = v.subsets ?? [];
  if (subsets.length > 1) {
    return { problems: [{ path: 'subsets', message: 'only one subset is supported; use an EndpointSlice per port set' }] };
  }
  const s = subsets[0];
  const ref = (a: { targetRef?: { kind?: string | null; namespace?: string | null; name?: string | null } | null }) =>
    a.targetRef ? { kind: str(a.targetRef.kind), namespace: a.targetRef.namespace || b.meta.namespace, name: str(a.targetRef.name) } : undefined;
  return {
    object: {
      ...b,
      kind: 'Endpoints',
      serviceName: b.meta.name,
      ports: (s?.ports ?? []).map((p) => ({ name: str(p.name), port: p.port, protocol: p.protocol || 'TCP' })),
      endpoints: [
        ...(s?.addresses ?? []).map((a) => ({ addresses: [a.ip], ready: true, targetRef: ref(a) })),
        ...(s?.notReadyAddresses ?? []).map((a) => ({ addresses: [a.ip], ready: false, targetRef: ref(a) })),
      ],
    },
  };
}));

// --- SMI access ---------------------------------------------------------------

const subjectRef = (s: { name: string; namespace?: string | null }, ns: string): m.SubjectRef => ({
  namespace: s.namespace || ns,
  name: s.name,
});
const ruleOf = (r: { kind: string; name: string; matches?: string[] | null }): m.TrafficTargetRule => ({
  kind: r.kind,
  name: r.name,
  matches: r.matches ?? undefined,
});

register('access.smi-spec.io', 'TrafficTarget', ['v1alpha1'], as(access.trafficTargetV1alpha1, (v, b) => ({
  object: {
    ...b,
    kind: 'TrafficTarget',
    destination: subjectRef(v.destination, b.meta.namespace),
    destinationPort: v.destination.port ?? undefined,
    sources: (v.sources ?? []).map((s) => subjectRef(s, b.meta.namespace)),
    rules: (v.specs ?? []).map(ruleOf),
    rulesPath: 'specs',
  },
})));
register('access.smi-spec.io', 'TrafficTarget', ['v1alpha2'], as(access.trafficTargetV1alpha2, (v, b) => ({
  object: {
    ...b,
    kind: 'TrafficTarget',
    destination: subjectRef(v.spec.destination, b.meta.namespace),
    destinationPort: v.spec.destination.port ?? undefined,
    sources: (v.spec.sources ?? []).map((s) => subjectRef(s, b.meta.namespace)),
    rules: (v.spec.rules ?? []).map(ruleOf),
    rulesPath: 'spec.rules',
  },
})));
register('access.smi-spec.io', 'TrafficTarget', ['v1alpha3'], as(access.trafficTargetV1alpha3, (v, b) => ({
  object: {
    ...b,
    kind: 'TrafficTarget',
    destination: subjectRef(v.spec.destination, b.meta.namespace),
    destinationPort: undefined,
    sources: (v.spec.sources ?? []).map((s) => subjectRef(s, b.meta.namespace)),
    rules: (v.spec.rules ?? []).map(ruleOf),
    rulesPath: 'spec.rules',
  },
})));

// --- SMI specs ----------------------------------------------------------------

type RawHttpMatch = {
  name?: string | null;
  methods?: string[] | null;
  pathRegex?: string | null;
  headers?: Record<string, string> | Record<string, string>[] | null;
};

function httpMatches(list: readonly RawHttpMatch[], basePath: string): { matches: m.HttpMatch[]; problems: { path: string; message: string }[] } {
  const problems: { path: string; message: string }[] = [];
  const matches = list.map((raw, i): m.HttpMatch => {
    const path = `${basePath}[${i}]`;
    const headers: m.HeaderMatch[] = [];
    const h = raw.headers;
    const entries = h === null || h === undefined ? [] : Array.isArray(h) ? h.flatMap((e, j) => {
      const kv = Object.entries(e);
      if (kv.length !== 1) problems.push({ path: `${path}.headers[${j}]`, message: `expected a map with exactly one header, got ${kv.length} keys` });
      return kv;
    }) : Object.entries(h);
    for (const [name, regex] of entries) headers.push({ name: name.toLowerCase(), regex });
    headers.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : a.regex < b.regex ? -1 : 1));
    return {
      name: raw.name ?? '',
      pathRegex: raw.pathRegex ?? undefined,
      methods: raw.methods ?? undefined,
      headers,
      path,
    };
  });
  return { matches, problems };
}

function httpGroup(list: readonly RawHttpMatch[], basePath: string, b: BaseFields): ReturnType<Normalise> {
  const { matches, problems } = httpMatches(list, basePath);
  return problems.length > 0 ? { problems } : { object: { ...b, kind: 'HTTPRouteGroup', matches } };
}

register('specs.smi-spec.io', 'HTTPRouteGroup', ['v1alpha1'], as(specs.httpRouteGroupV1alpha1, (v, b) => httpGroup(v.matches ?? [], 'matches', b)));
register('specs.smi-spec.io', 'HTTPRouteGroup', ['v1alpha2'], as(specs.httpRouteGroupV1alpha2, (v, b) => httpGroup(v.matches ?? [], 'matches', b)));
register('specs.smi-spec.io', 'HTTPRouteGroup', ['v1alpha3', 'v1alpha4'], as(specs.httpRouteGroupV1alpha3, (v, b) => httpGroup(v.spec?.matches ?? [], 'spec.matches', b)));

register('specs.smi-spec.io', 'TCPRoute', ['v1alpha1', 'v1alpha2', 'v1alpha3'], as(specs.tcpRouteV1alpha1, (_v, b) => ({
  object: { ...b, kind: 'TCPRoute', matchName: undefined, ports: undefined },
})));
for (const kind of ['TCPRoute', 'UDPRoute'] as const) {
  register('specs.smi-spec.io', kind, ['v1alpha4'], as(specs.portRouteV1alpha4(kind), (v, b) => ({
    object: {
      ...b,
      kind,
      matchName: v.spec?.matches?.name || undefined,
      ports: v.spec?.matches?.ports ?? undefined,
    },
  })));
}

// --- SMI split ----------------------------------------------------------------

register('split.smi-spec.io', 'TrafficSplit', ['v1alpha1'], as(split.trafficSplitV1alpha1, (v, b) => {
  const problems: { path: string; message: string }[] = [];
  const backends = v.spec.backends.map((be, i) => {
    const q = split.quantityToMilli(be.weight);
    if (!q.ok) problems.push({ path: `spec.backends[${i}].weight`, message: q.message });
    return { service: be.service, weightMilli: q.ok ? q.milli : 0 };
  });
  if (problems.length > 0) return { problems };
  return { object: { ...b, kind: 'TrafficSplit', service: v.spec.service, backends, matches: [] } };
}));
register('split.smi-spec.io', 'TrafficSplit', ['v1alpha2'], as(split.trafficSplitV1alpha2, (v, b) => ({
  object: {
    ...b,
    kind: 'TrafficSplit',
    service: v.spec.service,
    backends: v.spec.backends.map((be) => ({ service: be.service, weightMilli: be.weight * 1000 })),
    matches: [],
  },
})));
register('split.smi-spec.io', 'TrafficSplit', ['v1alpha3', 'v1alpha4'], as(split.trafficSplitV1alpha3, (v, b) => ({
  object: {
    ...b,
    kind: 'TrafficSplit',
    service: v.spec.service,
    backends: v.spec.backends.map((be) => ({ service: be.service, weightMilli: be.weight * 1000 })),
    matches: (v.spec.matches ?? []).map((r) => ({ kind: r.kind, name: r.name })),
  },
})));

// --- smc's own kinds ------------------------------------------------------------

register('smc.dev', 'MeshConfig', ['v1alpha1'], as(smc.meshConfigCodec, (v, b) => ({
  object: {
    ...b,
    kind: 'MeshConfig',
    permissive: v.spec?.permissive ?? undefined,
    trustDomain: v.spec?.trustDomain ?? undefined,
    defaultInterceptionMode: v.spec?.defaultInterceptionMode ?? undefined,
    virtualIPRange: v.spec?.virtualIPRange ?? undefined,
    accessLog: v.spec?.accessLog ?? undefined,
  },
})));
register('smc.dev', 'VirtualMachine', ['v1alpha1'], as(smc.virtualMachineCodec, (v, b) => ({
  object: {
    ...b,
    kind: 'VirtualMachine',
    serviceAccount: v.spec.serviceAccount,
    addresses: [...new Set(v.spec.addresses)],
    ports: (v.spec.ports ?? []).map((p) => ({ name: str(p.name), port: p.port, protocol: p.protocol || 'TCP' })),
    workloadLabels: v.spec.labels ?? {},
    interceptionMode: v.spec.interceptionMode ?? undefined,
  },
})));

// --- Gateway API ---------------------------------------------------------------

const SUPPORTED_FILTERS = new Set(['RequestHeaderModifier', 'ResponseHeaderModifier', 'RequestRedirect', 'URLRewrite', 'RequestMirror']);

function routeFilter(f: gateway.RawFilter, namespace: string): m.RouteFilterObj {
  const modifier = (h: NonNullable<gateway.RawFilter['requestHeaderModifier']>): m.HeaderModifierObj => ({ set: h.set ?? [], add: h.add ?? [], remove: h.remove ?? [] });
  const path = (p: { type: 'ReplaceFullPath' | 'ReplacePrefixMatch'; replaceFullPath?: string | null; replacePrefixMatch?: string | null } | null | undefined): m.PathModifierObj | undefined =>
    p ? { type: p.type, replaceFullPath: p.replaceFullPath ?? undefined, replacePrefixMatch: p.replacePrefixMatch ?? undefined } : undefined;
  const redirect = f.requestRedirect;
  const rewrite = f.urlRewrite;
  const mirror = f.requestMirror;
  const fraction = mirror?.fraction;
  return {
    type: f.type,
    ...(f.requestHeaderModifier ? { requestHeaderModifier: modifier(f.requestHeaderModifier) } : {}),
    ...(f.responseHeaderModifier ? { responseHeaderModifier: modifier(f.responseHeaderModifier) } : {}),
    ...(redirect ? { requestRedirect: { scheme: redirect.scheme ?? undefined, hostname: redirect.hostname ?? undefined, path: path(redirect.path), port: redirect.port ?? undefined, statusCode: redirect.statusCode ?? 302 } } : {}),
    ...(rewrite ? { urlRewrite: { hostname: rewrite.hostname ?? undefined, path: path(rewrite.path) } } : {}),
    ...(mirror
      ? {
          requestMirror: {
            backendRef: { group: mirror.backendRef.group ?? '', kind: mirror.backendRef.kind ?? 'Service', namespace: mirror.backendRef.namespace || namespace, name: mirror.backendRef.name, port: mirror.backendRef.port ?? undefined },
            millionths: fraction ? Math.round((fraction.numerator * 1_000_000) / (fraction.denominator ?? 100)) : mirror.percent !== undefined && mirror.percent !== null ? mirror.percent * 10_000 : 1_000_000,
          },
        }
      : {}),
    ...(SUPPORTED_FILTERS.has(f.type) ? {} : { unsupported: f.type }),
  };
}

// v1beta1 is the same schema (the upstream CRD serves both).
type RawBackendRef = { name: string; group?: string | null; kind?: string | null; namespace?: string | null; port?: number | null; weight?: number | null; filters?: readonly unknown[] | null };

/** A backendRef with the CRD's defaults: a Service, in the route's namespace, weight 1. */
const backendRef = (be: RawBackendRef, namespace: string): m.BackendRefObj => ({
  group: be.group ?? '',
  kind: be.kind ?? 'Service',
  namespace: be.namespace || namespace,
  name: be.name,
  port: be.port ?? undefined,
  weight: be.weight ?? 1,
  filters: (be.filters ?? []).map((f) => routeFilter(f as gateway.RawFilter, namespace)),
});

type RawRouteSpec = { parentRefs?: readonly { name: string; group?: string | null; kind?: string | null; namespace?: string | null; port?: number | null; sectionName?: string | null }[] | null; hostnames?: readonly string[] | null };

/** An HTTPRoute or GRPCRoute with its parentRefs defaulted as the CRD does (a Gateway of the route's namespace). */
const routeObject = (kind: m.HttpRouteObj['kind'], spec: RawRouteSpec, b: BaseFields, rules: m.HttpRouteRuleObj[]): m.HttpRouteObj => ({
  ...b,
  kind,
  parentRefs: (spec.parentRefs ?? []).map((p) => ({
    group: p.group ?? GATEWAY_GROUP,
    kind: p.kind ?? 'Gateway',
    namespace: p.namespace || b.meta.namespace,
    name: p.name,
    port: p.port ?? undefined,
    sectionName: p.sectionName ?? undefined,
  })),
  hostnames: spec.hostnames ?? [],
  rules,
});

register(GATEWAY_GROUP, 'HTTPRoute', ['v1', 'v1beta1'], as(gateway.httpRouteV1, (v, b) => {
  const spec = v.spec ?? {};
  const problems: { path: string; message: string }[] = [];
  const rules = (spec.rules ?? [{}]).map((r, i): m.HttpRouteRuleObj => {
    const matches = (r.matches ?? [{}]).map((mt, j): m.RouteMatchObj => {
      const type = mt.path?.type ?? 'PathPrefix';
      const value = mt.path?.value ?? '/';
      if (type !== 'RegularExpression' && (!value.startsWith('/') || /[?#]|\/\/|\/\.\.?(\/|$)/.test(value))) {
        problems.push({ path: `spec.rules[${i}].matches[${j}].path.value`, message: `expected an absolute path starting with "/" (no "?", "#", "//", "/./" or "/../") for a ${type} match, got ${JSON.stringify(value)}` });
      }
      return {
        path: { type, value },
        method: mt.method ?? undefined,
        headers: (mt.headers ?? []).map((h) => ({ type: h.type ?? 'Exact', name: h.name, value: h.value })),
        queryParams: (mt.queryParams ?? []).map((q) => ({ type: q.type ?? 'Exact', name: q.name, value: q.value })),
      };
    });
    return {
      name: r.name ?? undefined,
      matches,
      filters: (r.filters ?? []).map((f) => routeFilter(f, b.meta.namespace)),
      backendRefs: (r.backendRefs ?? []).map((be) => backendRef(be, b.meta.namespace)),
      timeouts: { request: r.timeouts?.request ?? undefined, backendRequest: r.timeouts?.backendRequest ?? undefined },
      retry: r.retry ? { codes: r.retry.codes ?? [], attempts: r.retry.attempts ?? undefined, backoff: r.retry.backoff ?? undefined } : undefined,
    };
  });
  return problems.length > 0 ? { problems } : { object: routeObject('HTTPRoute', spec, b, rules) };
}));

/**
 * A GRPCRoute as the HTTP/2 route it is: a method match becomes a path
 * match (`/service/method`), so the same translation serves both kinds.
 */
register(GATEWAY_GROUP, 'GRPCRoute', ['v1'], as(gateway.grpcRouteV1, (v, b) => {
  const spec = v.spec ?? {};
  const problems: { path: string; message: string }[] = [];
  const rules = (spec.rules ?? [{}]).map((r, i): m.HttpRouteRuleObj => {
    const matches = (r.matches ?? [{}]).map((mt, j): m.RouteMatchObj => {
      const at = `spec.rules[${i}].matches[${j}].method`;
      const mm = mt.method ?? undefined;
      const service = mm?.service || undefined;
      const method = mm?.method || undefined;
      const headers = (mt.headers ?? []).map((h) => ({ type: h.type ?? 'Exact', name: h.name, value: h.value }));
      if (mm && service === undefined && method === undefined) problems.push({ path: at, message: 'expected service, method or both' });
      let path: m.RouteMatchObj['path'];
      if (!mm || (service === undefined && method === undefined)) path = { type: 'PathPrefix', value: '/' };
      else if ((mm.type ?? 'Exact') === 'RegularExpression') path = { type: 'RegularExpression', value: `/${service ?? '[^/]+'}/${method ?? '[^/]+'}` };
      else {
        if (service !== undefined && !/^\.?[A-Za-z_][A-Za-z_0-9]*(\.[A-Za-z_][A-Za-z_0-9]*)*$/.test(service)) problems.push({ path: `${at}.service`, message: `expected a gRPC service name such as shop.Prices, got ${JSON.stringify(service)}` });
        if (method !== undefined && !/^[A-Za-z_][A-Za-z_0-9]*$/.test(method)) problems.push({ path: `${at}.method`, message: `expected a gRPC method name such as GetPrice, got ${JSON.stringify(method)}` });
        path = service !== undefined && method !== undefined ? { type: 'Exact', value: `/${service}/${method}` } : service !== undefined ? { type: 'PathPrefix', value: `/${service}` } : { type: 'RegularExpression', value: `/[^/]+/${method}` };
      }
      return { path, grpc: { service, method }, method: undefined, headers, queryParams: [] };
    });
    return {
      name: r.name ?? undefined,
      matches,
      filters: (r.filters ?? []).map((f) => routeFilter(f as gateway.RawFilter, b.meta.namespace)),
      backendRefs: (r.backendRefs ?? []).map((be) => backendRef(be, b.meta.namespace)),
      timeouts: { request: undefined, backendRequest: undefined },
      retry: undefined,
    };
  });
  return problems.length > 0 ? { problems } : { object: routeObject('GRPCRoute', spec, b, rules) };
}));

register(GATEWAY_GROUP, 'ReferenceGrant', ['v1beta1', 'v1alpha2'], as(gateway.referenceGrantV1beta1, (v, b) => ({
  object: {
    ...b,
    kind: 'ReferenceGrant',
    from: v.spec?.from ?? [],
    to: (v.spec?.to ?? []).map((x) => ({ group: x.group, kind: x.kind, name: x.name || undefined })),
  },
})));

/** A policy kind (SMI's or smc's) with the codec of each version smc reads, oldest version first: what the CRDs are generated from. */
export interface PolicyKind {
  readonly group: string;
  readonly kind: string;
  readonly versions: readonly { readonly name: string; readonly codec: t.Mixed }[];
}

/** Kubernetes' version order: v1alpha1 < v1alpha2 < v1beta1 < v1 < v2alpha1. */
function versionRank(v: string): number {
  const m = /^v(\d+)(?:(alpha|beta)(\d+))?$/.exec(v);
  if (!m) return Number.MAX_SAFE_INTEGER;
  const stage = m[2] === 'alpha' ? 0 : m[2] === 'beta' ? 1 : 2;
  return Number(m[1]) * 1e6 + stage * 1e4 + Number(m[3] ?? 0);
}

export function policyKinds(): PolicyKind[] {
  const out: PolicyKind[] = [];
  for (const [kind, byVersion] of Object.entries(SUPPORTED)) {
    const byGroup = new Map<string, { name: string; codec: t.Mixed }[]>();
    for (const [gv, kv] of Object.entries(byVersion)) {
      const group = groupOf(gv);
      // The Gateway API's CRDs are upstream's, applied as they are.
      if (!isPolicyGroup(group) || group === GATEWAY_GROUP) continue;
      if (!byGroup.has(group)) byGroup.set(group, []);
      byGroup.get(group)!.push({ name: gv.slice(group.length + 1), codec: kv.codec as t.Mixed });
    }
    for (const [group, versions] of byGroup) out.push({ group, kind, versions: versions.sort((a, b) => versionRank(a.name) - versionRank(b.name)) });
  }
  return out.sort((a, b) => (a.group === b.group ? (a.kind < b.kind ? -1 : 1) : a.group < b.group ? -1 : 1));
}

/** The kinds and apiVersions smc reads, for `--help` and docs. */
export function supportedKinds(): { kind: string; apiVersions: string[] }[] {
  return Object.entries(SUPPORTED)
    .map(([kind, versions]) => ({ kind, apiVersions: Object.keys(versions).sort() }))
    .sort((a, b) => (a.kind < b.kind ? -1 : 1));
}

/**
 * Decodes every document. Never throws: a document that cannot be used gets a
 * status entry saying why, and every other document still counts.
 */
export function decodeDocuments(documents: readonly InputDocument[], collector: StatusCollector, previous?: DecodedDocuments): DecodeResult {
  let objects: m.MeshObject[] = [];
  let tracked: TrackedObject[] = [];
  let calls: StatusCall[] = [];
  // What decoding one document says about it is recorded, so it can be replayed when the document comes again unchanged.
  let status = recordInto(calls);
  const visit = (value: unknown, origin: Origin, key: string, pathPrefix: string, itemLines?: readonly number[], held?: Readonly<Record<string, HeldVersion>>) => {
    const ref = refOf(value);
    tracked.push({ key, origin, ref });
    // A rejected newest version: this value is the one accepted before it, in force; the status names both.
    const hold = held?.[pathPrefix];
    if (hold) {
      for (const p of hold.problems) status.add(key, error(p.path, p.message));
      status.reject(key, error('', `this version is not applied; the version accepted at ${hold.acceptedAt} stays in force`));
    }
    if (value === null || typeof value !== 'object' || Array.isArray(value)) {
      status.reject(key, error(pathPrefix, `expected a Kubernetes object (a map with apiVersion and kind), got ${value === null ? 'an empty document' : Array.isArray(value) ? 'a list' : typeof value}`));
      return;
    }
    if (ref.apiVersion === '' || ref.kind === '') {
      status.reject(key, error(pathPrefix, `expected apiVersion and kind, got ${ref.apiVersion === '' ? 'no apiVersion' : 'no kind'}`));
      return;
    }
    const items = listItems(ref, value);
    if (items) {
      status.add(key, { severity: 'warning', path: '', message: `a list of ${items.length} objects, each with its own status` });
      items.forEach((item, i) => visit(item, { ...origin, line: itemLines?.[i] ?? origin.line }, `${key}/items/${i}`, `${pathPrefix}items[${i}].`, undefined, held));
      return;
    }
    const versions = SUPPORTED[ref.kind];
    const groupKinds = KINDS_OF_GROUP.get(groupOf(ref.apiVersion));
    if (!versions && groupKinds && isPolicyGroup(groupOf(ref.apiVersion))) {
      // A typo in the kind of a policy group would otherwise drop the policy without a word.
      const kinds = [...groupKinds].sort();
      const close = didYouMean(ref.kind, kinds);
      status.reject(key, error(pathPrefix + 'kind', `${groupOf(ref.apiVersion)} has no kind ${JSON.stringify(ref.kind)}${close ? `; did you mean ${JSON.stringify(close)}?` : ''} (its kinds: ${kinds.join(', ')})`));
      return;
    }
    if (!versions) {
      status.ignore(key, { severity: 'warning', path: '', message: `kind ${ref.kind} (${ref.apiVersion}) is not used by smc; ignored` });
      return;
    }
    const kv = versions[ref.apiVersion];
    if (!kv) {
      const group = groupOf(ref.apiVersion);
      const known = Object.keys(versions);
      const sameGroup = known.some((gv) => groupOf(gv) === group);
      if (!sameGroup) {
        status.ignore(key, { severity: 'warning', path: pathPrefix + 'apiVersion', message: `${ref.kind} of ${ref.apiVersion} is not a kind smc reads (it reads ${known.join(', ')}); ignored` });
      } else {
        status.reject(key, error(pathPrefix + 'apiVersion', `${ref.kind} ${ref.apiVersion} is not supported; expected one of ${known.join(', ')}`));
      }
      return;
    }
    const unknown = kv.strict ? unknownFields(kv.codec, value) : [];
    const decoded = decodeWith(kv.codec, value);
    if (!decoded.ok || unknown.length > 0) {
      // One line per problem; the state (Rejected: not applied) says the rest.
      const problems = [...unknown, ...(decoded.ok ? [] : decoded.problems)];
      problems.forEach((p, i) => (i === problems.length - 1 ? status.reject : status.add)(key, error(pathPrefix + p.path, p.message)));
      return;
    }
    const meta = normaliseMeta((decoded.value as { metadata: Parameters<typeof normaliseMeta>[0] }).metadata, kv.clusterScoped);
    const result = kv.normalise(decoded.value as never, { key, origin, apiVersion: ref.apiVersion, meta });
    for (const p of result.problems ?? []) status.add(key, error(pathPrefix + p.path, p.message));
    if (result.object) objects.push(result.object);
    else status.reject(key, error('', `${ref.kind} is invalid; not applied`));
  };
  const allObjects: m.MeshObject[] = [];
  const allTracked: TrackedObject[] = [];
  const byKey = new Map<string, DecodedDocument>();
  const byDocument = new Map<InputDocument, DecodedDocument>();
  const use = (entry: DecodedDocument, doc: InputDocument, keep = true) => {
    if (keep) {
      byKey.set(entry.key, entry);
      byDocument.set(doc, entry);
    }
    for (const o of entry.objects) allObjects.push(o);
    for (const t of entry.tracked) allTracked.push(t);
    replay(entry.calls, collector);
  };
  for (const doc of documents) {
    const kept = previous?.byDocument.get(doc);
    if (kept) {
      use(kept, doc);
      continue;
    }
    const key = `${doc.origin.source}#${doc.origin.document}`;
    const position = `${doc.origin.line} ${doc.itemLines?.join(',') ?? ''}${doc.held ? ` ${JSON.stringify(doc.held)}` : ''}`;
    let entry = previous?.byKey.get(key);
    // Inputs are immutable values: the very value decoded last time is unchanged.
    const same = entry !== undefined && entry.value === doc.value && entry.position === position;
    let text: string | undefined = same ? entry!.text : undefined;
    if (!same) {
      try {
        text = JSON.stringify(doc.value) ?? 'undefined';
      } catch {
        text = undefined; // not JSON (a self-referencing alias, say): decoded every time, never kept
      }
    }
    if (text === undefined || !entry || entry.text !== text || entry.position !== position) {
      objects = [];
      tracked = [];
      calls = [];
      status = recordInto(calls);
      visit(doc.value, doc.origin, key, '', doc.itemLines, doc.held);
      entry = { key, value: doc.value, text: text ?? '', position, objects, tracked, calls };
    } else if (!same) entry = { ...entry, value: doc.value };
    use(entry, doc, text !== undefined);
  }
  const decoded: DecodedDocuments = { byKey, byDocument };
  return { objects: allObjects, tracked: allTracked, decoded };
}

/** The items of a Kubernetes List (`v1`, a kind ending in List), each an object of its own; undefined for anything else. */
function listItems(ref: ObjectRef, value: unknown): unknown[] | undefined {
  const items = (value as { items?: unknown } | null)?.items;
  return ref.kind.endsWith('List') && ref.apiVersion === 'v1' && Array.isArray(items) ? items : undefined;
}

function refOf(value: unknown): ObjectRef {
  const o = (value !== null && typeof value === 'object' && !Array.isArray(value) ? value : {}) as Record<string, unknown>;
  const meta = (o.metadata !== null && typeof o.metadata === 'object' ? o.metadata : {}) as Record<string, unknown>;
  const text = (x: unknown) => (typeof x === 'string' ? x : '');
  return { apiVersion: text(o.apiVersion), kind: text(o.kind), namespace: text(meta.namespace), name: text(meta.name) };
}

/** One object of a document, judged on its own (see `checkDocument`). */
export interface ObjectCheck {
  /** Its place in the document: `""`, or `items[3].` in a List. */
  readonly path: string;
  /** `group/kind/namespace/name` as written: two versions of one object share it. */
  readonly identity: string;
  /** Its messages when it is rejected; undefined when decoding accepts it. */
  readonly problems?: readonly { readonly path: string; readonly message: string }[];
}

/**
 * What decoding alone says of each policy object (SMI, smc) in `document`:
 * accepted, or rejected and why. Decoding reads nothing but the object, so
 * this is what any compile would say of it; a live source uses it to keep an
 * object's last accepted version in force when a new one is rejected.
 */
export function checkDocument(document: InputDocument): ObjectCheck[] {
  // One object of a group other than policy's (a Pod, a Service): decoding it could only say what is not reported here.
  const ref = refOf(document.value);
  if (!listItems(ref, document.value) && !isPolicyGroup(groupOf(ref.apiVersion))) return [];
  const calls: StatusCall[] = [];
  const base = `${document.origin.source}#${document.origin.document}`;
  const { tracked } = decodeDocuments([{ origin: document.origin, value: document.value }], recordInto(calls));
  const out: ObjectCheck[] = [];
  for (const t of tracked) {
    const group = groupOf(t.ref.apiVersion);
    if (!isPolicyGroup(group) || t.ref.kind === '' || t.ref.name === '') continue;
    const mine = calls.filter((c) => c[1] === t.key);
    const rejected = mine.some((c) => c[0] === 'reject');
    const suffix = t.key.slice(base.length);
    const path = suffix.replace(/\/items\/(\d+)/g, 'items[$1].');
    out.push({
      path,
      identity: `${group}/${t.ref.kind}/${t.ref.namespace}/${t.ref.name}`,
      ...(rejected ? { problems: mine.flatMap((c) => (c[0] !== 'parents' && c[2].severity === 'error' ? [{ path: c[2].path, message: c[2].message }] : [])) } : {}),
    });
  }
  return out;
}
