import { compileIR } from './compile.js';
import { isHttp } from './envoy/outbound.js';
import { meshIndex, serviceKey } from './ir/index.js';
import { compareStrings, type HttpMatchIR, type ServicePortIR, type SplitIR } from './ir/types.js';
import type { MeshInputs } from './inputs.js';
import { anchoredPathRegex } from './regex.js';

/**
 * SMI to the Gateway API's mesh routes: each TrafficSplit in force becomes
 * an HTTPRoute on its root Service, one per HTTP port (a backendRef names
 * its port), with the split's HTTPRouteGroup matches as the matches of one
 * rule and a second rule that sends everything else to the root Service, as
 * SMI does. TrafficTargets, HTTPRouteGroups and TCPRoutes stay as they are:
 * they remain the access policy. Pure: inputs in, documents and a report out.
 */

export interface Conversion {
  /** The HTTPRoutes, as Kubernetes objects. */
  readonly documents: readonly object[];
  /** The TrafficSplits converted (`ns/name`): what the routes replace. */
  readonly replaced: readonly string[];
  /** What could not be carried over, and why; empty when everything was. */
  readonly report: readonly string[];
}

/** The methods an HTTPRouteMatch may name. */
const GATEWAY_METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'CONNECT', 'OPTIONS', 'TRACE', 'PATCH']);
const MAX_MATCHES = 64;
const MAX_HEADERS = 16;

export function convertSmi(inputs: MeshInputs): Conversion {
  const { ir, status } = compileIR(inputs);
  const index = meshIndex(ir);
  const report: string[] = [];
  const documents: object[] = [];
  const replaced: string[] = [];
  for (const s of status) {
    if (s.object.kind === 'TrafficSplit' && s.state === 'Rejected') report.push(`TrafficSplit ${s.object.namespace}/${s.object.name}: rejected by smc (see smc compile --status), so not in force: nothing to convert`);
  }
  for (const split of ir.splits) {
    const root = index.service.get(`${split.namespace}/${split.service}`)!;
    const http = root.ports.filter((p) => isHttp(p.protocol));
    for (const p of root.ports.filter((x) => !isHttp(x.protocol))) {
      report.push(`TrafficSplit ${split.from}: port ${p.port} of Service ${serviceKey(root)} carries TCP; the Gateway API's standard channel has no mesh route for TCP, so the split of that port is not carried over`);
    }
    const many = http.length > 1;
    let converted = false;
    for (const port of http) {
      const route = routeOf(split, port, many, (m) => report.push(`TrafficSplit ${split.from}: ${m}`), (ns, name) => index.service.get(`${ns}/${name}`)?.ports.some((x) => x.port === port.port) ?? false);
      if (route) {
        documents.push(route);
        converted = true;
      }
    }
    if (converted) replaced.push(split.from);
  }
  return { documents, replaced: replaced.sort(compareStrings), report };
}

function routeOf(split: SplitIR, port: ServicePortIR, many: boolean, say: (m: string) => void, hasPort: (ns: string, name: string) => boolean): object | undefined {
  const backendRefs = split.backends.flatMap((b) => {
    if (!hasPort(split.namespace, b.service)) {
      say(`backend ${b.service} has no port ${port.port}: SMI gives it no share there, the Gateway API would answer its share 500; left out of the route of port ${port.port}`);
      return [];
    }
    return [{ name: b.service, port: port.port, weight: b.weight }];
  });
  if (backendRefs.every((b) => b.weight === 0)) {
    say(`no backend with a weight has port ${port.port}: SMI leaves that port's traffic on the root Service; no route is written for it`);
    return undefined;
  }
  const rules: object[] = [];
  if (split.matches.length > 0) {
    const matches = split.matches.flatMap((m) => matchesOf(m, say));
    if (matches.length === 0) {
      say(`none of its matches can be written as an HTTPRouteMatch; no route is written for port ${port.port}`);
      return undefined;
    }
    if (matches.length > MAX_MATCHES) {
      say(`its matches make ${matches.length} HTTPRouteMatches, more than the ${MAX_MATCHES} a rule may hold; no route is written for port ${port.port}`);
      return undefined;
    }
    rules.push({ matches, backendRefs });
    // Requests none of the matches take go to the root Service, as SMI sends them.
    rules.push({ backendRefs: [{ name: split.service, port: port.port }] });
  } else {
    rules.push({ backendRefs });
  }
  const [, name] = split.from.split('/') as [string, string];
  return {
    apiVersion: 'gateway.networking.k8s.io/v1',
    kind: 'HTTPRoute',
    metadata: { name: many ? `${name}-${port.port}` : name, namespace: split.namespace, annotations: { 'smc.dev/converted-from': `TrafficSplit ${split.from}` } },
    spec: { parentRefs: [{ group: '', kind: 'Service', name: split.service, port: port.port }], rules },
  };
}

/**
 * An SMI match as HTTPRouteMatches: its path pattern (anchored at the start
 * only) as a RegularExpression of the whole path, its headers as
 * RegularExpression header matches, and one match per method (an
 * HTTPRouteMatch names one).
 */
function matchesOf(m: HttpMatchIR, say: (m: string) => void): object[] {
  if (m.headers.length > MAX_HEADERS) {
    say(`match ${m.from} has ${m.headers.length} headers, more than the ${MAX_HEADERS} an HTTPRouteMatch may hold; left out`);
    return [];
  }
  const unknown = (m.methods ?? []).filter((x) => !GATEWAY_METHODS.has(x));
  if (unknown.length > 0) {
    say(`match ${m.from} names method${unknown.length > 1 ? 's' : ''} ${unknown.join(', ')}, which an HTTPRouteMatch cannot name; left out`);
    return [];
  }
  const base = {
    path: m.pathRegex === undefined || m.pathRegex === '' ? { type: 'PathPrefix', value: '/' } : { type: 'RegularExpression', value: anchoredPathRegex(m.pathRegex) },
    ...(m.headers.length > 0 ? { headers: m.headers.map((h) => ({ type: 'RegularExpression', name: h.name, value: h.regex })) } : {}),
  };
  return m.methods === undefined ? [base] : m.methods.map((method) => ({ ...base, method }));
}
