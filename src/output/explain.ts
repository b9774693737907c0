import type { ExplainQuery, Explanation, DestinationVerdict } from '../compiler/explain.js';
import { accountOf, identityOf, parseIdentity } from '../compiler/ir/types.js';
import { waitText, type ObjectKey, type ProgrammedCondition } from '../compiler/programmed.js';
import { clientText } from '../compiler/client-text.js';

/** An explanation from a running controller: each policy object it names, with its Programmed condition. */
export type LiveExplanation = Explanation & { readonly programmed?: Readonly<Record<ObjectKey, ProgrammedCondition>> };

/** `TrafficTarget ns/name spec.rules[0]`, `TrafficSplit ns/name`, `HTTPRoute ns/name`: the object named. */
const NAMED = /^(TrafficTarget|TrafficSplit|HTTPRoute|GRPCRoute) ([a-z0-9][-a-z0-9.]*\/[a-z0-9][-a-z0-9.]*)/;
const namedObject = (text: string): ObjectKey | undefined => {
  const m = NAMED.exec(text);
  return m ? `${m[1]} ${m[2]}` : undefined;
};

/** The policy objects an explanation names, each with its Programmed condition (those the controller has one for). */
export function withProgrammedNotes(e: Explanation, conditions: ReadonlyMap<ObjectKey, ProgrammedCondition>): LiveExplanation {
  const named = new Set<ObjectKey>();
  const add = (k: ObjectKey | undefined) => k !== undefined && conditions.has(k) && named.add(k);
  for (const b of [...e.backends, ...e.unreached]) for (const d of b.destinations) if (d.allowedBy) add(namedObject(d.allowedBy.policy));
  if (e.split) add(`TrafficSplit ${e.split.name}`);
  for (const r of e.route?.routes ?? []) add(namedObject(r));
  if (named.size === 0) return e;
  return { ...e, programmed: Object.fromEntries([...named].sort().map((k) => [k, conditions.get(k)!])) };
}

/** One condition in a few words, after the object it is of. */
function programmedNote(c: ProgrammedCondition | undefined): string {
  if (!c) return '';
  if (c.reason === 'Programmed') return ` — programmed on ${c.programmed} of ${c.proxies} proxies`;
  if (c.reason === 'NoProxies') return ' — no connected proxy carries it';
  const r = c.rejected?.[0];
  if (r) return ` — not on ${clientText(r.node, 128)}: NACK of ${r.kind} ${clientText(r.resource, 256)}: ${clientText(r.message)}`;
  const p = c.pending?.[0];
  return ` — programmed on ${c.programmed} of ${c.proxies} proxies; not yet on ${p ? `${clientText(p.node, 128)} (${p.kind}, sent ${waitText(p.waitingMs)} ago, not acknowledged)` : 'every one'}`;
}

/**
 * The user's side of `smc explain`: the query as typed (on the command line,
 * or as the admin port's /explain parameters) and the answer as text. Both
 * the offline command and the controller parse with `parseExplainQuery`, so
 * they accept exactly the same things.
 */
export interface ExplainArgs {
  readonly from?: string;
  readonly to?: string;
  readonly method?: string;
  readonly path?: string;
  readonly headers?: readonly string[];
}

const NAME = /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/;
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

/** A query, or what is wrong with the arguments (one message per problem, each naming the option). */
export function parseExplainQuery(a: ExplainArgs, trustDomain: string): { query: ExplainQuery } | { errors: string[] } {
  const errors: string[] = [];
  let from: string | undefined;
  let fromNamespace = '';
  if (a.from === undefined) errors.push('--from is required: the caller, as NAMESPACE/SERVICEACCOUNT');
  else {
    const spiffe = parseIdentity(a.from);
    const m = /^([^/]+)\/([^/]+)$/.exec(a.from);
    if (spiffe) {
      from = a.from;
      fromNamespace = spiffe.namespace;
    } else if (m && NAME.test(m[1]!) && NAME.test(m[2]!)) {
      from = identityOf(trustDomain, m[1]!, m[2]!);
      fromNamespace = m[1]!;
    } else errors.push(`--from expects NAMESPACE/SERVICEACCOUNT (or a SPIFFE ID), got ${JSON.stringify(a.from)}`);
  }
  let service: ExplainQuery['service'] | undefined;
  let port: number | undefined;
  if (a.to === undefined) errors.push('--to is required: the service, as SERVICE[.NAMESPACE]:PORT');
  else {
    const m = /^([^.:]+)(?:\.([^.:]+))?(?:\.svc(?:\.[^:]+)?)?:(\d{1,5})$/.exec(a.to);
    const p = m ? Number(m[3]) : NaN;
    if (!m || !NAME.test(m[1]!) || (m[2] !== undefined && !NAME.test(m[2])) || p < 1 || p > 65535) {
      errors.push(`--to expects SERVICE[.NAMESPACE]:PORT with a port from 1 to 65535, got ${JSON.stringify(a.to)}`);
    } else {
      // Like DNS inside the mesh: a bare service name is in the caller's namespace.
      service = { name: m[1]!, namespace: m[2] ?? fromNamespace };
      port = p;
    }
  }
  if (a.method !== undefined && !TOKEN.test(a.method)) errors.push(`--method expects an HTTP method such as GET, got ${JSON.stringify(a.method)}`);
  if (a.path !== undefined && !a.path.startsWith('/')) errors.push(`--path expects a path starting with /, got ${JSON.stringify(a.path)}`);
  const headers: Record<string, string> = {};
  for (const h of a.headers ?? []) {
    const i = h.indexOf('=');
    const name = i > 0 ? h.slice(0, i).toLowerCase() : '';
    if (!TOKEN.test(name)) errors.push(`--header expects NAME=VALUE, got ${JSON.stringify(h)}`);
    else headers[name] = h.slice(i + 1);
  }
  if (errors.length > 0 || from === undefined || service === undefined || port === undefined) return { errors };
  const http = a.method !== undefined || a.path !== undefined || (a.headers ?? []).length > 0;
  // The query string is never part of what SMI matches; Gateway API routes match its parameters.
  const [path, search] = (a.path ?? '/').split('?') as [string, string | undefined];
  const query = search === undefined ? {} : { query: Object.fromEntries(new URLSearchParams(search)) };
  return { query: { from, service, port, ...(http ? { request: { method: a.method ?? 'GET', path, headers, ...query } } : {}) } };
}

function destinationLines(d: DestinationVerdict, indent: string, notes: LiveExplanation['programmed']): string[] {
  const head = `${indent}${accountOf(d.identity)} port ${d.port} (${d.workloads.join(', ')}): `;
  if (d.allowed) return [`${head}allowed by ${d.allowedBy!.policy}${d.allowedBy!.match ? ` (${d.allowedBy!.match})` : ''}${noteOf(notes, d.allowedBy!.policy)}`];
  return [`${head}denied`, ...d.reasons.map((r) => `${indent}  - ${r}`)];
}

/** The answer as people read it: the verdict first, then where the request goes and why. */
const noteOf = (notes: LiveExplanation['programmed'], text: string): string => {
  const k = namedObject(text);
  return notes && k ? programmedNote(notes[k]) : '';
};

export function explanationText(e: LiveExplanation): string {
  const notes = e.programmed;
  const request = e.request ? ` ${e.request.method} ${e.request.path}${e.request.query && Object.keys(e.request.query).length > 0 ? `?${new URLSearchParams(e.request.query as Record<string, string>).toString()}` : ""}${Object.entries(e.request.headers).map(([k, v]) => ` ${k}=${v}`).join('')}` : '';
  const lines = [`${e.verdict.toUpperCase()}: ${accountOf(e.from)} -> ${e.to}${e.protocol ? ` (${e.protocol.toUpperCase()})` : ''}${request}`];
  for (const r of e.reasons) lines.push(`  - ${r}`);
  if (e.split) lines.push(`  TrafficSplit ${e.split.name}: ${e.split.applies ? 'applies' : 'does not apply'}${e.split.note ? ` (${e.split.note})` : ''}${noteOf(notes, `TrafficSplit ${e.split.name}`)}`);
  if (e.route) lines.push(`  routed by ${e.route.routes.join(', ')}: ${e.route.rule ?? 'no rule matches'}${e.route.routes.length === 1 ? noteOf(notes, e.route.routes[0]!) : ''}`);
  const total = e.backends.reduce((n, b) => n + b.weight, 0);
  for (const b of e.backends) {
    const share = e.backends.length > 1 ? ` ${Math.round((100 * b.weight) / total)}%` : '';
    lines.push(`  ->${share} ${b.service}`);
    for (const d of b.destinations) lines.push(...destinationLines(d, '     ', notes));
  }
  for (const r of e.rejected ?? []) lines.push(`  note: ${r}`);
  if (e.unreached.length > 0) {
    lines.push('  what each destination would say:');
    for (const b of e.unreached) {
      lines.push(`    ${b.service}`);
      if (b.destinations.length === 0) lines.push('       (no endpoints)');
      for (const d of b.destinations) lines.push(...destinationLines(d, '       ', notes));
    }
  }
  return `${lines.join('\n')}\n`;
}
