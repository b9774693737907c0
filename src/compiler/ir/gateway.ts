import type { BackendRefObj, HeaderModifierObj, HttpRouteObj, HttpRouteRuleObj, ParentRefObj, PathModifierObj, ReferenceGrantObj } from '../model.js';
import { KeyedMemo } from '../keyed.js';
import { re2Error } from '../regex.js';
import { TOKEN, tooLarge } from './routes.js';
import { CONTROLLER_NAME, error, formatMessage, warning, type RouteCondition, type RouteParentStatus, type StatusCollector, type StatusMessage } from '../status.js';
import { compareStrings, type HeaderModifierIR, type MirrorIR, type PathReplaceIR, type RedirectIR, type RetryIR, type RewriteIR, type RouteBackendIR, type RouteRuleIR, type ServiceIR, type ServiceRouteIR } from './types.js';

/**
 * Gateway API routes on mesh Services (GEP-1294, "GAMMA"): each HTTPRoute is
 * checked on its own and attached to the Services its parentRefs name. A
 * route whose rules cannot be carried out as written (a filter smc does not
 * implement, a bad pattern or duration) is not applied at all, so no request
 * is routed by part of a rule. A parentRef that is not a mesh Service is
 * left alone with a warning; a backendRef that does not resolve keeps its
 * share of the requests, answered 500 (the specification's rule).
 */

const GATEWAY_GROUP = 'gateway.networking.k8s.io';
/** Gateway API Duration: up to four number+unit pairs. */
const DURATION = /^([0-9]{1,5}(h|m|s|ms)){1,4}$/;
const UNIT_MS: Readonly<Record<string, number>> = { h: 3_600_000, m: 60_000, s: 1000, ms: 1 };
/** Why a RegularExpression match (matched whole, as written) would be refused by RE2 or by Envoy's size bound, if it would. */
const patternError = (pattern: string): string | undefined => re2Error(pattern) ?? tooLarge(pattern);

/** One route checked: its attachments, and its status per parent (before conflicts between routes are known). */
interface CheckedRoute {
  readonly attached: readonly ServiceRouteIR[];
  readonly parents: readonly RouteParentStatus[];
}
export type RouteMemo = KeyedMemo<CheckedRoute>;

export interface BuiltRoutes {
  readonly routes: ServiceRouteIR[];
  readonly memo: RouteMemo;
  /** Namespaces of the routes (their messages come from this mesh-wide step). */
  readonly namespaces: ReadonlySet<string>;
}

/**
 * Every route's attachments, sorted by parent Service, then route. Each route
 * is derived from what it reads (itself, the Services it names, the
 * ReferenceGrants of the namespaces its backends live in); given the previous
 * build's memo, a route whose reads are the same values is not checked again.
 */
export function buildRoutes(
  routes: readonly HttpRouteObj[],
  grants: ReadonlyMap<string, readonly ReferenceGrantObj[]>,
  services: Pick<ReadonlyMap<string, ServiceIR>, 'get'>,
  status: StatusCollector,
  previous?: RouteMemo,
): BuiltRoutes {
  const byKey = new Map(routes.map((r) => [r.key, r]));
  const lookups = {
    route: byKey,
    service: (key: string) => services.get(key),
    grants,
  };
  const memo = new KeyedMemo<CheckedRoute, typeof lookups>(lookups, previous);
  const checked = routes.map((r) => ({ route: r, ...memo.get(r.key, status, (read, st) => attachRoute(read('route', r.key)!, (k) => read('service', k), (ns) => read('grants', ns) ?? [], st)) }));
  const out = checked.flatMap((c) => c.attached).sort(compareRoutes);
  // GEP-1294, "Route types": on a Service port both a GRPCRoute and an HTTPRoute of the same scope route, the GRPCRoute wins.
  const grpcOn = new Set(out.filter((a) => a.kind === 'GRPCRoute').map((a) => `${a.namespace} ${a.serviceNamespace}/${a.service}`));
  const grpcPorts = (a: ServiceRouteIR) => out.filter((g) => g.kind === 'GRPCRoute' && g.namespace === a.namespace && g.serviceNamespace === a.serviceNamespace && g.service === a.service && (g.port === undefined || a.port === undefined || g.port === a.port));
  for (const c of checked) {
    let parents = c.parents;
    if (c.route.kind === 'HTTPRoute') {
      for (const a of c.attached) {
        if (!grpcOn.has(`${a.namespace} ${a.serviceNamespace}/${a.service}`)) continue;
        const winners = grpcPorts(a);
        if (winners.length === 0) continue;
        const names = [...new Set(winners.map((g) => `GRPCRoute ${g.namespace}/${g.name}`))].join(', ');
        const message = `${names} also routes Service ${a.serviceNamespace}/${a.service}${a.port === undefined ? '' : ` port ${a.port}`}: where both do, the GRPCRoute is applied and this route is not (GEP-1294)`;
        // Not accepted for that parent when the GRPCRoute takes every port the route has there (else it keeps the others).
        const covered = a.port !== undefined || winners.some((g) => g.port === undefined);
        status.add(c.route.key, (covered ? error : warning)('spec.parentRefs', message));
        parents = parents.map((p) =>
          covered && p.parentRef.namespace === a.serviceNamespace && p.parentRef.name === a.service && p.conditions[0]?.status === 'True'
            ? { ...p, conditions: [{ type: 'Accepted' as const, status: 'False' as const, reason: 'Conflicted', message }, ...p.conditions.slice(1)] }
            : p,
        );
      }
    }
    status.parents(c.route.key, parents);
  }
  return { routes: out, memo: memo.seal(), namespaces: new Set(routes.map((r) => r.meta.namespace)) };
}

/** The order of `MeshIR.routes`: parent Service, then route namespace, name and port. */
export function compareRoutes(a: ServiceRouteIR, b: ServiceRouteIR): number {
  return (
    compareStrings(a.serviceNamespace, b.serviceNamespace) ||
    compareStrings(a.service, b.service) ||
    compareStrings(a.namespace, b.namespace) ||
    compareStrings(a.name, b.name) ||
    (a.port ?? 0) - (b.port ?? 0)
  );
}

function attachRoute(
  route: HttpRouteObj,
  serviceOf: (key: string) => ServiceIR | undefined,
  grantsIn: (namespace: string) => readonly ReferenceGrantObj[],
  status: StatusCollector,
): CheckedRoute {
  const key = route.key;
  const ns = route.meta.namespace;
  // What is said of the route is also what its conditions are made from.
  const said: StatusMessage[] = [];
  const st: StatusCollector = {
    add: (k, m) => {
      said.push(m);
      status.add(k, m);
    },
    reject: (k, m) => {
      said.push(m);
      status.reject(k, m);
    },
    ignore: (k, m) => status.ignore(k, m),
    parents: () => undefined,
  };
  const rules: RouteRuleIR[] = [];
  let broken = false;
  if (route.hostnames.length > 0) st.add(key, warning('spec.hostnames', 'hostnames play no part for a Service parent (GEP-1294): traffic is routed by the Service it is sent to'));
  route.rules.forEach((rule, i) => {
    const made = checkRule(route, rule, `spec.rules[${i}]`, i, serviceOf, grantsIn, st);
    if (made) rules.push(made);
    else broken = true;
  });
  if (route.parentRefs.length === 0) st.add(key, warning('spec.parentRefs', 'no parentRefs: the route attaches to nothing (name a Service, with group "" and kind Service)'));
  // ResolvedRefs, the same for every parent: the first reason a reference did not resolve, and every such message.
  const unresolved = said.filter((m) => REF_REASON.test(m.message));
  const resolvedRefs: RouteCondition = unresolved.length === 0
    ? { type: 'ResolvedRefs', status: 'True', reason: 'ResolvedRefs', message: 'every reference resolved' }
    : { type: 'ResolvedRefs', status: 'False', reason: REF_REASON.exec(unresolved[0]!.message)![1]!, message: bounded(unresolved.map(formatMessage).join('; ')) };
  const parents: RouteParentStatus[] = [];
  const parentStatus = (p: ParentRefObj, accepted: Omit<RouteCondition, 'type'>) => {
    parents.push({
      parentRef: { group: p.group, kind: p.kind, namespace: p.namespace, name: p.name, ...(p.port !== undefined ? { port: p.port } : {}), ...(p.sectionName !== undefined ? { sectionName: p.sectionName } : {}) },
      controllerName: CONTROLLER_NAME,
      conditions: [{ type: 'Accepted', ...accepted }, resolvedRefs],
    });
  };
  const isService = (p: ParentRefObj) => p.group === '' && p.kind === 'Service';
  if (broken) {
    const why = bounded(said.filter((m) => m.severity === 'error').map(formatMessage).join('; '));
    st.reject(key, error('', `${route.kind} not applied: a rule cannot be carried out as written (see the errors above); callers keep the routing they had without it`));
    for (const p of route.parentRefs.filter(isService)) parentStatus(p, { status: 'False', reason: 'UnsupportedValue', message: `not applied: ${why}` });
    return { attached: [], parents };
  }
  const out: ServiceRouteIR[] = [];
  const seen = new Set<string>();
  route.parentRefs.forEach((p, i) => {
    const path = `spec.parentRefs[${i}]`;
    if (!isService(p)) {
      const what = p.group === GATEWAY_GROUP && p.kind === 'Gateway' ? `Gateway ${p.namespace}/${p.name}` : `${p.kind} (group ${JSON.stringify(p.group)}) ${p.namespace}/${p.name}`;
      st.add(key, warning(path, `${what} is not a mesh parent; smc routes for parents that are Services (group "", kind Service) and leaves this one to its own controller`));
      return;
    }
    const refuse = (reason: string, where: string, message: string) => {
      st.add(key, error(where, message));
      parentStatus(p, { status: 'False', reason, message });
    };
    const service = serviceOf(`${p.namespace}/${p.name}`);
    if (!service) return refuse('NoMatchingParent', path, `Service ${p.namespace}/${p.name} not found in the mesh; the route does not attach to it`);
    let port = p.port;
    if (p.sectionName !== undefined) {
      const named = service.ports.find((sp) => sp.name === p.sectionName);
      if (!named) return refuse('NoMatchingParent', `${path}.sectionName`, `Service ${p.namespace}/${p.name} has no port named ${JSON.stringify(p.sectionName)} (its ports: ${service.ports.map((sp) => sp.name || String(sp.port)).join(', ')})`);
      if (port !== undefined && port !== named.port) return refuse('NoMatchingParent', path, `sectionName ${JSON.stringify(p.sectionName)} is port ${named.port}, but port says ${port}`);
      port = named.port;
    }
    const ports = port === undefined ? service.ports : service.ports.filter((sp) => sp.port === port);
    if (ports.length === 0) return refuse('NoMatchingParent', `${path}.port`, `Service ${p.namespace}/${p.name} has no port ${port} (its ports: ${service.ports.map((sp) => sp.port).join(', ')})`);
    // An HTTPRoute routes HTTP ports; a GRPCRoute those that carry HTTP/2 (grpc, http2).
    const grpc = route.kind === 'GRPCRoute';
    const unfit = ports.filter((sp) => (grpc ? sp.protocol !== 'grpc' && sp.protocol !== 'http2' : sp.protocol === 'tcp'));
    const carries = grpc ? 'does not carry gRPC' : 'carries TCP';
    const fix = grpc ? 'name the port grpc-… or set its appProtocol to grpc' : 'name the port http-… or set its appProtocol to http';
    if (unfit.length === ports.length) {
      return refuse('UnsupportedValue', path, `${port === undefined ? 'no port' : `port ${port}`} of Service ${p.namespace}/${p.name} ${port === undefined ? (grpc ? 'carries gRPC' : 'carries HTTP') : carries}, so a ${route.kind} cannot route it (${fix})`);
    }
    for (const sp of unfit) st.add(key, warning(path, `port ${sp.port} of Service ${p.namespace}/${p.name} ${carries}: the route applies to its other ports only`));
    const role = p.namespace === ns ? 'a producer route: every caller of the Service follows it' : `a consumer route: callers in ${ns} follow it`;
    parentStatus(p, { status: 'True', reason: 'Accepted', message: `attached to Service ${p.namespace}/${p.name}${port === undefined ? '' : ` port ${port}`}, ${role}` });
    const id = `${p.namespace}/${p.name}:${port ?? ''}`;
    if (seen.has(id)) return;
    seen.add(id);
    out.push({ kind: route.kind, serviceNamespace: p.namespace, service: p.name, port, namespace: ns, name: route.meta.name, creationTimestamp: route.meta.creationTimestamp, rules });
  });
  return { attached: out, parents };
}

/** The specification's ResolvedRefs reasons, as the messages of references that did not resolve begin. */
const REF_REASON = /^(BackendNotFound|InvalidKind|RefNotPermitted):/;
const bounded = (text: string) => (text.length > 1024 ? `${text.slice(0, 1021)}...` : text);

function checkRule(
  route: HttpRouteObj,
  rule: HttpRouteRuleObj,
  path: string,
  index: number,
  serviceOf: (key: string) => ServiceIR | undefined,
  grantsIn: (namespace: string) => readonly ReferenceGrantObj[],
  status: StatusCollector,
): RouteRuleIR | undefined {
  const key = route.key;
  let ok = true;
  const fail = (p: string, message: string) => {
    status.add(key, error(p, message));
    ok = false;
  };
  rule.matches.forEach((m, j) => {
    const mp = `${path}.matches[${j}]`;
    if (m.path.type === 'RegularExpression') {
      const e = patternError(m.path.value);
      if (e !== undefined) fail(`${mp}.path.value`, `expected an RE2 pattern: ${e}`);
    }
    const seen = new Set<string>();
    m.headers.forEach((h, k) => {
      if (!TOKEN.test(h.name)) fail(`${mp}.headers[${k}].name`, `expected a header name, got ${JSON.stringify(h.name)}`);
      if (seen.has(h.name.toLowerCase())) fail(`${mp}.headers[${k}].name`, `header ${JSON.stringify(h.name)} is matched twice (names are case-insensitive); match it once`);
      seen.add(h.name.toLowerCase());
      if (h.type === 'RegularExpression') {
        const e = patternError(h.value);
        if (e !== undefined) fail(`${mp}.headers[${k}].value`, `expected an RE2 pattern: ${e}`);
      }
    });
    const names = new Set<string>();
    m.queryParams.forEach((q, k) => {
      if (names.has(q.name)) fail(`${mp}.queryParams[${k}].name`, `query parameter ${JSON.stringify(q.name)} is matched twice; match it once`);
      names.add(q.name);
      if (q.type === 'RegularExpression') {
        const e = patternError(q.value);
        if (e !== undefined) fail(`${mp}.queryParams[${k}].value`, `expected an RE2 pattern: ${e}`);
      }
    });
  });
  // The rule's filters; each kind once, but RequestMirror may be given several times.
  let requestHeaders: HeaderModifierIR | undefined;
  let responseHeaders: HeaderModifierIR | undefined;
  let redirect: RedirectIR | undefined;
  let rewrite: RewriteIR | undefined;
  const mirrors: MirrorIR[] = [];
  const seenTypes = new Set<string>();
  // ReplacePrefixMatch replaces what the rule's one PathPrefix match matched (the CRD allows it only then).
  const onlyPrefix = rule.matches.length === 1 && rule.matches[0]!.path.type === 'PathPrefix' ? rule.matches[0]!.path.value : undefined;
  const pathReplace = (p: PathModifierObj | undefined, pp: string): PathReplaceIR | undefined => {
    if (p === undefined) return undefined;
    const value = p.type === 'ReplaceFullPath' ? p.replaceFullPath : p.replacePrefixMatch;
    const field = p.type === 'ReplaceFullPath' ? 'replaceFullPath' : 'replacePrefixMatch';
    if (value === undefined) return void fail(`${pp}.${field}`, `expected ${field} for a path of type ${p.type}`);
    if ((p.type === 'ReplaceFullPath' ? p.replacePrefixMatch : p.replaceFullPath) !== undefined) return void fail(pp, `a path of type ${p.type} takes ${field} only`);
    if (!value.startsWith('/') || /[?#]/.test(value)) return void fail(`${pp}.${field}`, `expected an absolute path starting with "/" (no "?" or "#"), got ${JSON.stringify(value)}`);
    if (p.type === 'ReplaceFullPath') return { type: p.type, value };
    if (onlyPrefix === undefined) return void fail(`${pp}.type`, 'ReplacePrefixMatch needs the rule to have exactly one match, of type PathPrefix (it replaces what that match matched)');
    return { type: p.type, value, prefix: onlyPrefix };
  };
  rule.filters.forEach((f, k) => {
    const p = `${path}.filters[${k}]`;
    if (f.unsupported !== undefined) {
      fail(`${p}.type`, `filter ${f.unsupported} is not supported by smc (supported: RequestHeaderModifier, ResponseHeaderModifier, RequestRedirect, URLRewrite, RequestMirror); the route is not applied rather than routed without it`);
      return;
    }
    if (f.type !== 'RequestMirror' && seenTypes.has(f.type)) return fail(p, `${f.type} is given twice in one list; give it once`);
    seenTypes.add(f.type);
    const field = f.type === 'URLRewrite' ? 'urlRewrite' : `${f.type[0]!.toLowerCase()}${f.type.slice(1)}`;
    const config = (f as unknown as Record<string, unknown>)[field];
    if (config === undefined) return fail(`${p}.${field}`, `expected ${field} for a filter of type ${f.type}`);
    if (f.type === 'RequestHeaderModifier') requestHeaders = checkModifier(f.requestHeaderModifier!, `${p}.requestHeaderModifier`, fail);
    else if (f.type === 'ResponseHeaderModifier') responseHeaders = checkModifier(f.responseHeaderModifier!, `${p}.responseHeaderModifier`, fail);
    else if (f.type === 'RequestRedirect') {
      const r = f.requestRedirect!;
      redirect = { scheme: r.scheme as RedirectIR['scheme'], hostname: r.hostname, port: r.port, path: pathReplace(r.path, `${p}.requestRedirect.path`), statusCode: r.statusCode };
    } else if (f.type === 'URLRewrite') {
      const r = f.urlRewrite!;
      rewrite = { hostname: r.hostname, path: pathReplace(r.path, `${p}.urlRewrite.path`) };
    } else if (f.type === 'RequestMirror') {
      const m = f.requestMirror!;
      const ref: BackendRefObj = { ...m.backendRef, weight: 1, filters: [] };
      const problem = backendProblem(route, ref, serviceOf, grantsIn);
      if (problem !== undefined) status.add(key, error(`${p}.requestMirror.backendRef`, `${problem}; nothing is mirrored there`));
      else mirrors.push({ namespace: ref.namespace, service: ref.name, port: ref.port!, millionths: m.millionths });
    }
  });
  if (redirect && rewrite) fail(`${path}.filters`, 'RequestRedirect and URLRewrite cannot be given together in one rule');
  if (redirect && rule.backendRefs.length > 0) fail(`${path}.backendRefs`, 'a rule with a RequestRedirect answers the redirect itself: it takes no backendRefs');
  // A backendRef's own filters: header modifiers, applied to the requests sent to that backend (and their answers).
  const backendModifiers = rule.backendRefs.map((b, k) => {
    let requestHeaders: HeaderModifierIR | undefined;
    let responseHeaders: HeaderModifierIR | undefined;
    b.filters.forEach((f, j) => {
      const p = `${path}.backendRefs[${k}].filters[${j}]`;
      if (f.type === 'RequestHeaderModifier' && f.requestHeaderModifier) {
        if (requestHeaders) return fail(p, 'RequestHeaderModifier is given twice in one list; give it once');
        requestHeaders = checkModifier(f.requestHeaderModifier, `${p}.requestHeaderModifier`, fail);
      } else if (f.type === 'ResponseHeaderModifier' && f.responseHeaderModifier) {
        if (responseHeaders) return fail(p, 'ResponseHeaderModifier is given twice in one list; give it once');
        responseHeaders = checkModifier(f.responseHeaderModifier, `${p}.responseHeaderModifier`, fail);
      } else {
        fail(`${p}.type`, `a backendRef's filter may be RequestHeaderModifier or ResponseHeaderModifier in smc, got ${f.type}${f.type.endsWith('Modifier') ? ` without its ${f.type[0]!.toLowerCase()}${f.type.slice(1)}` : ''}; put other filters on the rule`);
      }
    });
    return { ...(requestHeaders ? { requestHeaders } : {}), ...(responseHeaders ? { responseHeaders } : {}) };
  });
  const retry = rule.retry === undefined ? undefined : checkRetry(rule.retry, `${path}.retry`, fail);
  const timeout = rule.timeouts.request === undefined ? undefined : durationMs(rule.timeouts.request);
  const backendTimeout = rule.timeouts.backendRequest === undefined ? undefined : durationMs(rule.timeouts.backendRequest);
  if (timeout === null) fail(`${path}.timeouts.request`, `expected a duration such as 10s, 500ms or 1m30s, got ${JSON.stringify(rule.timeouts.request)}`);
  if (backendTimeout === null) fail(`${path}.timeouts.backendRequest`, `expected a duration such as 10s, 500ms or 1m30s, got ${JSON.stringify(rule.timeouts.backendRequest)}`);
  if (typeof timeout === 'number' && typeof backendTimeout === 'number' && timeout !== 0 && (backendTimeout === 0 || backendTimeout > timeout)) {
    fail(`${path}.timeouts.backendRequest`, `backendRequest (${rule.timeouts.backendRequest}) must not be longer than request (${rule.timeouts.request})`);
  }
  const backends: RouteBackendIR[] = [];
  let invalidWeight = 0;
  rule.backendRefs.forEach((b, k) => {
    const bp = `${path}.backendRefs[${k}]`;
    const problem = backendProblem(route, b, serviceOf, grantsIn);
    if (problem !== undefined) {
      if (b.weight === 0) status.add(key, warning(bp, `${problem}; its weight is 0, so no request is sent to it`));
      else status.add(key, error(bp, `${problem}; its share of the requests (weight ${b.weight}) is answered 500`));
      invalidWeight += b.weight;
      return;
    }
    backends.push({ namespace: b.namespace, service: b.name, port: b.port!, weight: b.weight, ...backendModifiers[k] });
  });
  // (A redirect answers by itself: it has no backendRefs.)
  if (rule.backendRefs.length === 0) {
    if (!redirect) status.add(key, warning(path, 'no backendRefs: requests this rule matches are answered 500'));
  } else if (invalidWeight === 0 && backends.every((b) => b.weight === 0)) status.add(key, warning(`${path}.backendRefs`, 'every weight is 0: requests this rule matches are answered 500'));
  if (!ok) return undefined;
  return {
    name: rule.name ?? `rules[${index}]`,
    matches: rule.matches.map((m) => ({
      path: m.path,
      ...(m.grpc ? { grpc: m.grpc } : {}),
      method: m.method,
      headers: m.headers.map((h) => ({ ...h, name: h.name.toLowerCase() })),
      queryParams: m.queryParams,
    })),
    backends,
    invalidWeight,
    requestHeaders,
    responseHeaders,
    timeout: typeof timeout === 'number' ? envoyDuration(timeout) : undefined,
    backendTimeout: typeof backendTimeout === 'number' ? envoyDuration(backendTimeout) : undefined,
    redirect,
    rewrite,
    mirrors,
    retry,
  };
}

function checkRetry(r: NonNullable<HttpRouteRuleObj['retry']>, path: string, fail: (p: string, m: string) => void): RetryIR | undefined {
  const backoff = r.backoff === undefined ? undefined : durationMs(r.backoff);
  if (backoff === null) {
    fail(`${path}.backoff`, `expected a duration such as 100ms or 1s, got ${JSON.stringify(r.backoff)}`);
    return undefined;
  }
  if (backoff === 0) {
    fail(`${path}.backoff`, 'expected a backoff longer than 0');
    return undefined;
  }
  return { codes: [...new Set(r.codes)].sort((a, b) => a - b), attempts: r.attempts, backoff: backoff === undefined ? undefined : envoyDuration(backoff) };
}

/** Why a backendRef does not resolve to a mesh Service port (the specification's ResolvedRefs reasons), or undefined when it does. */
function backendProblem(
  route: HttpRouteObj,
  b: BackendRefObj,
  serviceOf: (key: string) => ServiceIR | undefined,
  grantsIn: (namespace: string) => readonly ReferenceGrantObj[],
): string | undefined {
  if (b.group !== '' || b.kind !== 'Service') return `InvalidKind: ${b.kind} (group ${JSON.stringify(b.group)}) is not a backend smc can send to; expected a Service (group "")`;
  if (b.port === undefined) return 'BackendNotFound: a Service backend needs a port';
  if (b.namespace !== route.meta.namespace && !referenceGranted(grantsIn(b.namespace), route.kind, route.meta.namespace, b.name)) {
    return `RefNotPermitted: Service ${b.namespace}/${b.name} is in another namespace and no ReferenceGrant there lets ${route.kind}s of ${route.meta.namespace} refer to it`;
  }
  const service = serviceOf(`${b.namespace}/${b.name}`);
  if (!service) return `BackendNotFound: Service ${b.namespace}/${b.name} not found in the mesh`;
  if (!service.ports.some((p) => p.port === b.port)) return `BackendNotFound: Service ${b.namespace}/${b.name} has no port ${b.port} (its ports: ${service.ports.map((p) => p.port).join(', ')})`;
  return undefined;
}

/** Whether a ReferenceGrant lets routes of `kind` in `fromNamespace` name the Service (a grant names the kind of route it admits). */
function referenceGranted(grants: readonly ReferenceGrantObj[], kind: HttpRouteObj['kind'], fromNamespace: string, service: string): boolean {
  return grants.some(
    (g) =>
      g.from.some((f) => f.group === GATEWAY_GROUP && f.kind === kind && f.namespace === fromNamespace) &&
      g.to.some((t) => t.group === '' && t.kind === 'Service' && (t.name === undefined || t.name === service)),
  );
}

function checkModifier(h: HeaderModifierObj, path: string, fail: (p: string, m: string) => void): HeaderModifierIR {
  const names = new Set<string>();
  const check = (name: string, p: string) => {
    if (!TOKEN.test(name)) fail(p, `expected a header name, got ${JSON.stringify(name)}`);
    else if (name.startsWith(':') || name.toLowerCase() === 'host') fail(p, `${name} cannot be modified by a header filter`);
    if (names.has(name.toLowerCase())) fail(p, `header ${JSON.stringify(name)} is named twice in one filter (names are case-insensitive)`);
    names.add(name.toLowerCase());
  };
  h.set.forEach((x, i) => check(x.name, `${path}.set[${i}].name`));
  h.add.forEach((x, i) => check(x.name, `${path}.add[${i}].name`));
  h.remove.forEach((x, i) => check(x, `${path}.remove[${i}]`));
  return { set: h.set.map((x) => ({ name: x.name, value: x.value })), add: h.add.map((x) => ({ name: x.name, value: x.value })), remove: [...h.remove] };
}

/** Milliseconds of a Gateway API Duration; null when it is not one. */
function durationMs(text: string): number | null {
  if (!DURATION.test(text)) return null;
  let ms = 0;
  for (const [, n, unit] of text.matchAll(/([0-9]+)(ms|h|m|s)/g)) ms += Number(n) * UNIT_MS[unit!]!;
  return ms;
}

const envoyDuration = (ms: number): string => `${ms / 1000}s`;

