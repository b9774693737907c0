import { outboundServices, isHttp, type Action } from './envoy/outbound.js';
import { outboundClusterName } from './envoy/names.js';
import { meshIndex, serviceKey } from './ir/index.js';
import { applicableGrants, grantOpens, httpMatches, type HttpRequest } from './ir/query.js';
import { upstreamsOf } from './ir/reachability.js';
import { anchoredPathRegex, fullMatch } from './regex.js';
import { formatMessage, type StatusEntry } from './status.js';
import { accountOf, compareStrings, parseIdentity, policyName, type Grant, type HttpMatchIR, type Identity, type MeshIR, type PathReplaceIR, type PortProtocol, type RouteMatchIR, type ServiceIR, type ServicePortIR } from './ir/types.js';

/**
 * `smc explain`: would this request from `from` to a service port be
 * allowed, and why. It reads the same mesh IR the proxies are built from and
 * follows the same steps: the caller's outbound plan (which services and
 * endpoints it may reach, which split applies) and then each destination's
 * inbound policy (the grants its RBAC is made of), so the answer cannot drift
 * from what Envoy enforces. Pure, like the rest of the compiler.
 */
export interface ExplainQuery {
  readonly from: Identity;
  readonly service: { readonly namespace: string; readonly name: string };
  /** The service port the caller dials. */
  readonly port: number;
  /** For an HTTP port; absent means `GET /` with no headers. Ignored on a TCP port. */
  readonly request?: HttpRequest;
}

export interface DestinationVerdict {
  /** The destination's SPIFFE ID. */
  readonly identity: Identity;
  /** `Pod ns/name` or `VirtualMachine ns/name` behind it. */
  readonly workloads: readonly string[];
  /** The workload port the request arrives on. */
  readonly port: number;
  /** Whether the caller's proxy knows this endpoint at all (it learns only of what some rule lets it reach on this port). */
  readonly reached: boolean;
  /** Whether the destination's sidecar (its RBAC) admits this request from the caller. */
  readonly allowed: boolean;
  /** The RBAC policy that admits it (a TrafficTarget rule, or `permissive`) and the HTTP match, if any. */
  readonly allowedBy?: { readonly policy: string; readonly match?: string };
  /** Why not, when it is not allowed. */
  readonly reasons: readonly string[];
}

export interface BackendVerdict {
  /** `ns/name` of the service the request is sent to (the root, or a split backend). */
  readonly service: string;
  /** Relative weight (1 when there is no split). */
  readonly weight: number;
  readonly destinations: readonly DestinationVerdict[];
}

/** `unknown`: there is no such service, service port or caller identity in the mesh (not a denial by policy). */
export type Verdict = 'allowed' | 'denied' | 'partly allowed' | 'unknown';

export interface Explanation {
  readonly verdict: Verdict;
  readonly from: Identity;
  /** `ns/name:port` */
  readonly to: string;
  readonly protocol?: PortProtocol;
  readonly request?: HttpRequest;
  /** The TrafficSplit of the service, and whether it applies to this request. */
  readonly split?: { readonly name: string; readonly applies: boolean; readonly note?: string };
  /** The Gateway API routes in force for this caller on this port, and the route rule that takes the request (none: 404). */
  readonly route?: { readonly routes: readonly string[]; readonly rule?: string; readonly note?: string };
  /** Where the caller's proxy sends the request; empty when it has nowhere to send it. */
  readonly backends: readonly BackendVerdict[];
  /** When it goes nowhere: each destination of the service as its own sidecar would judge it. */
  readonly unreached: readonly BackendVerdict[];
  /** Reasons that concern the request as a whole. */
  readonly reasons: readonly string[];
  /**
   * When it is denied: policy objects of a destination's, the service's or the caller's namespace that smc
   * rejected (a TrafficTarget, a route group a TrafficTarget names, a TrafficSplit), with their first
   * problem: a common cause.
   */
  readonly rejected?: readonly string[];
}

const DEFAULT_REQUEST: HttpRequest = { method: 'GET', path: '/', headers: {} };

/**
 * `status` (the compile's, optional) adds to a denial the policy objects of
 * the namespaces involved that were rejected, and names them where they make
 * the difference: a destination no TrafficTarget in force reaches because
 * the one written for it, or the route group it names, is rejected.
 */
export function explain(ir: MeshIR, q: ExplainQuery, status: readonly StatusEntry[] = []): Explanation {
  const { byNamespace: withheld, held } = withheldObjects(status);
  const e = explainRequest(ir, q, (ns) => withheld.get(ns) ?? []);
  if (e.verdict === 'allowed') {
    // Allowed by an object whose newest version was rejected: what allows it is the version kept in force.
    const used = new Set<string>();
    for (const d of e.backends.flatMap((b) => b.destinations)) {
      const tt = d.allowedBy && /^(TrafficTarget \S+)/.exec(d.allowedBy.policy);
      if (tt) used.add(tt[1]!);
      const group = d.allowedBy?.match && /^([^#]+)#/.exec(d.allowedBy.match);
      if (group) used.add(`HTTPRouteGroup ${group[1]}`);
    }
    const notes = [...used].sort(compareStrings).flatMap((name) => held.get(name) ?? []);
    return notes.length > 0 ? { ...e, rejected: notes } : e;
  }
  const namespaces = new Set([...e.backends, ...e.unreached].flatMap((b) => b.destinations.map((d) => parseIdentity(d.identity)?.namespace ?? '')));
  // A TrafficTarget written in the caller's namespace is a common mistake (it must live in the destination's).
  namespaces.add(q.service.namespace);
  const caller = parseIdentity(q.from)?.namespace;
  if (caller) namespaces.add(caller);
  const rejected = [...namespaces].sort(compareStrings).flatMap((ns) => withheld.get(ns) ?? []);
  return rejected.length > 0 ? { ...e, rejected } : e;
}

const POLICY_KINDS = new Set(['TrafficTarget', 'HTTPRouteGroup', 'TCPRoute', 'UDPRoute', 'TrafficSplit']);

/**
 * Per namespace, one line for each policy object that is rejected (its first
 * error; for one whose earlier version stays in force, that too) and for each
 * TrafficTarget rule that names a rejected route.
 */
function withheldObjects(status: readonly StatusEntry[]): { byNamespace: Map<string, string[]>; held: Map<string, string> } {
  const out = new Map<string, string[]>();
  const held = new Map<string, string>();
  const add = (ns: string, line: string) => {
    const list = out.get(ns);
    if (list) list.push(line);
    else out.set(ns, [line]);
  };
  const rejected = new Map<string, string>();
  for (const s of status) {
    if (s.state !== 'Rejected' || !POLICY_KINDS.has(s.object.kind)) continue;
    const name = `${s.object.kind} ${s.object.namespace}/${s.object.name}`;
    const first = s.messages.find((m) => m.severity === 'error');
    const kept = s.messages.find((m) => m.path === '' && m.message.includes('stays in force'))?.message.replace(/^this version is not applied; /, '');
    const problem = first && !first.message.startsWith('this version is not applied') ? formatMessage(first) : undefined;
    rejected.set(name, problem ?? '');
    const line = `${name} is rejected${problem ? `: ${problem}` : ''}${kept ? ` (${kept})` : ''}`;
    add(s.object.namespace, line);
    if (kept) held.set(name, line);
  }
  if (rejected.size === 0) return { byNamespace: out, held };
  for (const s of status) {
    if (s.object.kind !== 'TrafficTarget') continue;
    for (const m of s.messages) {
      const ref = /^(HTTPRouteGroup|TCPRoute) (\S+\/\S+) not found/.exec(m.message);
      const why = ref && rejected.get(`${ref[1]} ${ref[2]}`);
      if (why === undefined || !ref) continue;
      add(s.object.namespace, `TrafficTarget ${s.object.namespace}/${s.object.name} ${m.path.replace(/\.name$/, '')} grants nothing: it names ${ref[1]} ${ref[2]}, which is rejected${why ? ` (${why})` : ''}`);
    }
  }
  return { byNamespace: out, held };
}

function explainRequest(ir: MeshIR, q: ExplainQuery, withheld: (namespace: string) => readonly string[]): Explanation {
  const index = meshIndex(ir);
  const to = `${serviceKey(q.service)}:${q.port}`;
  const denied = (reasons: string[], extra: Partial<Explanation> = {}): Explanation => ({ verdict: 'denied', from: q.from, to, backends: [], unreached: [], reasons, ...extra });
  // Nothing by that name is said apart from a denial by policy.
  const unknown = (reasons: string[]): Explanation => ({ ...denied(reasons), verdict: 'unknown' });

  const service = index.service.get(serviceKey(q.service));
  if (!service) {
    const hint = index.namespaceSet.has(q.service.namespace) ? '' : ` (namespace ${q.service.namespace} is not in the mesh)`;
    return unknown([`no Service ${serviceKey(q.service)} in the mesh${hint}`]);
  }
  const port = service.ports.find((p) => p.port === q.port);
  if (!port) return unknown([`Service ${serviceKey(service)} has no port ${q.port}; its ports are ${service.ports.map((p) => p.port).join(', ') || 'none'}`]);
  const http = isHttp(port.protocol);
  const request = http ? (q.request ?? DEFAULT_REQUEST) : undefined;
  const base = { protocol: port.protocol, ...(request ? { request } : {}) };
  const reasons: string[] = [];
  if (!http && q.request) reasons.push(`port ${q.port} of ${serviceKey(service)} carries TCP: method, path and headers play no part`);
  const member = index.identitySet.has(q.from);
  if (!member) reasons.push(`no Pod or VirtualMachine of the mesh runs as ${accountOf(q.from)}: no proxy of that identity is given any configuration`);

  // The caller's side: what its proxy was given for this service port.
  const upstreams = member ? upstreamsOf(ir, q.from) : [];
  const reachedEndpoints = new Set<string>();
  for (const u of upstreams) for (const e of u.endpoints) reachedEndpoints.add(`${outboundClusterName(u.service, u.port.port)} ${e.address}:${e.port}`);
  const plan = outboundServices(ir, upstreams, parseIdentity(q.from)?.namespace ?? '').find((o) => o.service === service && o.port.port === q.port);

  const split = index.splitOf.get(serviceKey(service));
  let splitInfo: Explanation['split'];
  let action: Action | undefined;
  if (plan) {
    const hit = request ? plan.matched.find((m) => httpMatches(m.match, request)) : undefined;
    action = hit ? hit.action : plan.fallback;
    if (split) {
      const weighted = action?.kind === 'weighted';
      const note = weighted
        ? undefined
        : split.matches.length > 0 && !hit
          ? 'the request matches none of its HTTPRouteGroup matches, so it goes to the root service'
          : `no backend of it is reachable from ${accountOf(q.from)}, so the root service is used`;
      splitInfo = { name: split.from, applies: weighted, ...(note ? { note } : {}) };
    }
  } else if (split) {
    splitInfo = { name: split.from, applies: false, note: `no backend of it is reachable from ${accountOf(q.from)}` };
  }

  const judge = (s: ServiceIR, p: ServicePortIR, asSent: HttpRequest | undefined = request): DestinationVerdict[] => destinations(ir, q.from, s, p, asSent, reachedEndpoints, withheld);
  if (plan?.routes) {
    // Gateway API routes decide: the first match (in the proxy's order) takes the request.
    const routes = [...(plan.routeNames ?? [])];
    const hit = request ? plan.routes.find((r) => routeMatches(r.match, request)) : plan.routes[0];
    if (!hit) return denied([...reasons, `no rule of the routes in force matches the request: the caller's sidecar answers 404`], { ...base, route: { routes } });
    const route = { routes, rule: hit.name };
    const action = hit.action;
    if (action.kind === 'status') {
      const why = action.status === 403 ? `no backend of this rule may be reached by ${accountOf(q.from)}` : 'no backend of this rule resolved, or every weight is 0';
      return denied([...reasons, `${hit.name} answers ${action.status}: ${why}`], { ...base, route });
    }
    if (action.kind === 'redirect') {
      return { ...denied([...reasons, `${hit.name} answers a redirect (${action.redirect.statusCode}) from the caller's sidecar; the request goes no further`], { ...base, route }), verdict: 'unknown' };
    }
    // The destination judges the request as it arrives: after a URLRewrite of its path.
    const sent = request && hit.rewrite?.path ? { ...request, path: rewritten(request.path, hit.rewrite.path) } : request;
    const upstreamOf = new Map(upstreams.map((u) => [outboundClusterName(u.service, u.port.port), u] as const));
    const backends: BackendVerdict[] = action.clusters.map((c) => {
      const u = upstreamOf.get(c.cluster)!;
      return { service: serviceKey(u.service), weight: c.weight, destinations: judge(u.service, u.port, sent).filter((d) => d.reached) };
    });
    if (action.invalidWeight > 0) backends.push({ service: '(a backend that did not resolve: answered 500)', weight: action.invalidWeight, destinations: [] });
    const reached = backends.flatMap((b) => b.destinations);
    const allowed = reached.filter((d) => d.allowed).length;
    const verdict: Verdict = !member ? 'unknown' : allowed === 0 ? 'denied' : allowed === reached.length && action.invalidWeight === 0 ? 'allowed' : 'partly allowed';
    return { verdict, from: q.from, to, ...base, route, backends, unreached: [], reasons };
  }
  if (!action) {
    const targets = [service, ...(split?.backends.filter((b) => b.weight > 0).map((b) => index.service.get(`${service.namespace}/${b.service}`)) ?? [])];
    const unreached: BackendVerdict[] = [];
    for (const s of targets) {
      const p = s?.ports.find((x) => x.port === q.port);
      if (s && p) unreached.push({ service: serviceKey(s), weight: 1, destinations: judge(s, p) });
    }
    const none = unreached.every((b) => b.destinations.length === 0);
    const why = plan
      ? `the request matches no route of ${accountOf(q.from)}'s proxy for ${to} (its TrafficSplit's matches do not match and the root service is not reachable)`
      : none
        ? `${to} has no endpoints`
        : `${accountOf(q.from)}'s proxy has no route to ${to}: no endpoint behind it lets ${accountOf(q.from)} in on its port`;
    // An unknown caller keeps what each destination would say, under its own verdict.
    return { ...denied([...reasons, why], { ...base, ...(splitInfo ? { split: splitInfo } : {}), unreached }), ...(member ? {} : { verdict: 'unknown' as const }) };
  }

  const byCluster = new Map<string, { service: ServiceIR; port: ServicePortIR }>();
  for (const s of [service, ...(split?.backends.map((b) => index.service.get(`${service.namespace}/${b.service}`)) ?? [])]) {
    const p = s?.ports.find((x) => x.port === q.port);
    if (s && p) byCluster.set(outboundClusterName(s, q.port), { service: s, port: p });
  }
  const clusters = action.kind === 'cluster' ? [{ cluster: action.cluster, weight: 1 }] : action.clusters;
  const backends: BackendVerdict[] = clusters.map((c) => {
    const target = byCluster.get(c.cluster)!;
    return { service: serviceKey(target.service), weight: c.weight, destinations: judge(target.service, target.port).filter((d) => d.reached) };
  });
  const reached = backends.flatMap((b) => b.destinations);
  const allowed = reached.filter((d) => d.allowed).length;
  const verdict: Verdict = !member ? 'unknown' : allowed === 0 ? 'denied' : allowed === reached.length ? 'allowed' : 'partly allowed';
  return { verdict, from: q.from, to, ...base, ...(splitInfo ? { split: splitInfo } : {}), backends, unreached: [], reasons };
}

/** Each identity behind one service port, as its sidecar would judge the request. */
function destinations(ir: MeshIR, from: Identity, service: ServiceIR, port: ServicePortIR, request: HttpRequest | undefined, reachedEndpoints: ReadonlySet<string>, withheld: (namespace: string) => readonly string[]): DestinationVerdict[] {
  const groups = new Map<string, { identity: Identity; port: number; workloads: Set<string>; reached: boolean }>();
  const cluster = outboundClusterName(service, port.port);
  for (const e of port.endpoints) {
    const key = `${e.identity} ${e.port}`;
    let g = groups.get(key);
    if (!g) groups.set(key, (g = { identity: e.identity, port: e.port, workloads: new Set(), reached: false }));
    g.workloads.add(e.workload);
    if (reachedEndpoints.has(`${cluster} ${e.address}:${e.port}`)) g.reached = true;
  }
  return [...groups.values()]
    .sort((a, b) => compareStrings(a.identity, b.identity) || a.port - b.port)
    .map((g) => ({ identity: g.identity, workloads: [...g.workloads].sort(compareStrings), port: g.port, reached: g.reached, ...inbound(ir, from, g.identity, g.port, port.protocol, request, withheld) }));
}

/** The destination's inbound decision: the grants its RBAC for this port is built from, applied to the request. */
function inbound(ir: MeshIR, from: Identity, destination: Identity, port: number, protocol: PortProtocol, request: HttpRequest | undefined, withheld: (namespace: string) => readonly string[]): Pick<DestinationVerdict, 'allowed' | 'allowedBy' | 'reasons'> {
  const index = meshIndex(ir);
  if (ir.settings.permissive) {
    // The sidecar admits any certificate of the trust domain; whether the caller's proxy sends anything is `reached`.
    if (from.startsWith(`spiffe://${ir.settings.trustDomain}/`)) return { allowed: true, allowedBy: { policy: 'permissive' }, reasons: [] };
    return { allowed: false, reasons: [`the mesh is permissive, but only for identities of trust domain ${ir.settings.trustDomain}`] };
  }
  const open = applicableGrants(ir, from, destination, port, protocol);
  for (const g of open) {
    if (g.protocol === 'tcp') return { allowed: true, allowedBy: { policy: policyName(g) }, reasons: [] };
    const m = request && g.http.find((x) => httpMatches(x, request));
    if (m) return { allowed: true, allowedBy: { policy: policyName(g), match: m.from }, reasons: [] };
  }
  const toMe = index.grantsTo.get(destination) ?? [];
  const mine = toMe.filter((g) => g.source === from);
  if (toMe.length === 0) {
    // A TrafficTarget may be there and grant nothing: rejected, or naming a rejected route group.
    const why = withheld(parseIdentity(destination)?.namespace ?? '').filter((l) => l.startsWith('TrafficTarget '));
    if (why.length > 0) return { allowed: false, reasons: [`no TrafficTarget in force grants access to ${accountOf(destination)}`, ...why] };
    return { allowed: false, reasons: [`no TrafficTarget has destination ${accountOf(destination)} (deny by default)`] };
  }
  if (mine.length === 0) {
    const names = [...new Set(toMe.map((g) => `TrafficTarget ${g.grantedBy}`))].sort(compareStrings);
    return { allowed: false, reasons: [`${names.join(', ')} ${names.length > 1 ? 'have' : 'has'} destination ${accountOf(destination)}, but none lists ${accountOf(from)} among its sources`] };
  }
  const reasons: string[] = [];
  for (const g of mine) {
    if (!grantOpens(g, port, protocol)) reasons.push(`${policyName(g)} ${portsText(g, port, protocol)}`);
    else if (g.protocol === 'http') for (const m of g.http) reasons.push(`${policyName(g)}: ${m.from} ${mismatch(m, request ?? DEFAULT_REQUEST)}`);
  }
  return { allowed: false, reasons };
}

function portsText(g: Grant, port: number, protocol: PortProtocol): string {
  if (g.ports !== 'all' && !g.ports.includes(port)) return `grants port${g.ports.length > 1 ? 's' : ''} ${g.ports.join(', ')}, not ${port}`;
  return `is an HTTP rule: it does not open port ${port}, which carries ${protocol.toUpperCase()} (a TCPRoute rule would)`;
}

/** Why one HTTP match does not match the request (the first part that fails). */
function mismatch(m: HttpMatchIR, r: HttpRequest): string {
  if (m.methods !== undefined && !m.methods.includes(r.method)) return `allows method${m.methods.length > 1 ? 's' : ''} ${m.methods.join(', ')}, not ${r.method}`;
  if (!fullMatch(anchoredPathRegex(m.pathRegex), r.path)) return `wants a path matching ${JSON.stringify(m.pathRegex)} (from the start), not ${JSON.stringify(r.path)}`;
  for (const h of m.headers) {
    const v = r.headers[h.name];
    if (v === undefined) return `wants header ${h.name} matching ${JSON.stringify(h.regex)}; the request has none`;
    if (!fullMatch(h.regex, v)) return `wants header ${h.name} matching ${JSON.stringify(h.regex)}, not ${JSON.stringify(v)}`;
  }
  return 'matches'; // unreachable when called for a match that failed
}

/** Whether a Gateway API match takes a request, as the caller's sidecar decides it. */
function routeMatches(m: RouteMatchIR, r: HttpRequest): boolean {
  const value = (v: { type: 'Exact' | 'RegularExpression'; value: string }, got: string | undefined) => got !== undefined && (v.type === 'Exact' ? got === v.value : fullMatch(v.value, got));
  const prefix = m.path.value.replace(/\/+$/, '');
  const path =
    m.path.type === 'Exact' ? r.path === m.path.value : m.path.type === 'RegularExpression' ? fullMatch(m.path.value, r.path) : prefix === '' || r.path === prefix || r.path.startsWith(`${prefix}/`);
  return (
    path &&
    (m.method === undefined || m.method === r.method) &&
    m.headers.every((h) => value(h, r.headers[h.name])) &&
    m.queryParams.every((q) => value(q, r.query?.[q.name]))
  );
}

/** A path after a URLRewrite's path replacement. */
function rewritten(path: string, p: PathReplaceIR): string {
  if (p.type === 'ReplaceFullPath') return p.value;
  const prefix = (p.prefix ?? '/').replace(/\/+$/, '');
  const value = p.value.replace(/\/+$/, '');
  const rest = path.slice(prefix.length);
  return `${value}${rest.startsWith('/') || rest === '' ? rest : `/${rest}`}` || '/';
}
