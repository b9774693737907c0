import { parseArgs } from 'node:util';
import { stringify } from 'yaml';
import { PUSH_ORDER, type ResourceKind } from '../compiler/envoy/codec.js';
import { clientText } from '../compiler/client-text.js';
import { adminUrl, hostPort, UsageError } from './usage.js';
import { columns } from '../output/render.js';
import { clusterRows, endpointRows, filterDump, listenerRows, routeRows, secretRows, type ViewFilter } from '../output/proxy-views.js';
import { didYouMean } from '../compiler/did-you-mean.js';

export const HELP_PROXY_CONFIG = `smc proxy-config NODE [clusters|endpoints|listeners|routes|secrets] [options]

Shows what a running controller serves one connected proxy (NODE is its node
id, as 'smc proxy-status' lists it). Without a type: every resource's name,
version and whether the proxy acknowledged it. With a type, a table of it:

  clusters    direction, port, service, discovery type, the peer identity
              its TLS checks
  endpoints   cluster, address, port, health and weight of each endpoint
  listeners   one row per filter chain: address, port, direction, match
              (port, addresses, transport, ALPN, SNI) and destination
  routes      one row per route: route table, virtual host, domains, match
              (path, methods, headers), action (cluster or weighted
              clusters) and the policy it comes from (TrafficSplit,
              TrafficTarget, Service)
  secrets     the proxy's certificate and trust bundle: SPIFFE ID, not
              before, not after, serial (never a key)

With -o json|yaml: the same resources in the shape of Envoy's admin
/config_dump (what 'smc compile' writes, so the two can be diffed). Private
keys are never shown.

Options:
      --admin HOST:PORT   The controller's admin port (default 127.0.0.1:15129)
      --port N            Only what concerns port N (cluster, endpoint,
                          listener, filter chain or virtual host port)
      --fqdn SERVICE      Only what concerns SERVICE (name.namespace, with or
                          without .svc.cluster.local)
      --direction inbound|outbound
                          Only inbound or outbound resources
  -o, --output json|yaml  The config_dump (of the type given, or all), filtered
  -h, --help              Show this help

Exit status: 0 when the proxy is in sync on every type shown, 1 when not,
2 usage error, 3 the controller could not be asked or does not know NODE.

Examples:
  smc proxy-config bookbuyer/bookbuyer/bookbuyer-1
  smc proxy-config bookbuyer/bookbuyer/bookbuyer-1 endpoints --fqdn bookstore-v1.bookstore
  smc proxy-config bookbuyer/bookbuyer/bookbuyer-1 routes --port 14001 -o yaml
  smc proxy-config bookstore/bookstore/bookstore-v1-0 listeners --direction inbound
  smc proxy-config bookstore/bookstore/bookstore-v1-0 secrets
`;

const TYPE_WORDS: Record<string, ResourceKind> = {
  clusters: 'cluster',
  cluster: 'cluster',
  endpoints: 'endpoint',
  endpoint: 'endpoint',
  listeners: 'listener',
  listener: 'listener',
  routes: 'route',
  route: 'route',
  secrets: 'secret',
  secret: 'secret',
};

/** The config_dump section of each type, by the ConfigDump message it is. */
const SECTION: Record<ResourceKind, string> = {
  cluster: 'ClustersConfigDump',
  endpoint: 'EndpointsConfigDump',
  listener: 'ListenersConfigDump',
  route: 'RoutesConfigDump',
  secret: 'SecretsConfigDump',
};

interface StreamStatus {
  state: string;
  sent?: string;
  acked?: string;
  nack?: { message: string };
}
interface Document {
  nodeId: string;
  identity: string;
  types: Record<ResourceKind, { version: string; resources: number; streams: Record<string, StreamStatus> }>;
  config_dump: { configs: Record<string, unknown>[] };
}

/** Resource names of one section, whatever its layout (dynamic_active_clusters, dynamic_listeners, ...). */
function names(section: Record<string, unknown>): string[] {
  const out: string[] = [];
  for (const v of Object.values(section)) {
    if (!Array.isArray(v)) continue;
    for (const item of v as Record<string, unknown>[]) {
      const inner = (item['cluster'] ?? item['endpoint_config'] ?? item['active_state'] ?? item['route_config'] ?? item['secret'] ?? item) as Record<string, unknown>;
      const name = item['name'] ?? inner['name'] ?? inner['cluster_name'] ?? (inner['listener'] as Record<string, unknown> | undefined)?.['name'];
      if (typeof name === 'string') out.push(name);
    }
  }
  return out;
}

const VIEWS: Record<ResourceKind, (dump: unknown, f: ViewFilter) => string[][]> = {
  cluster: clusterRows,
  endpoint: endpointRows,
  listener: listenerRows,
  route: routeRows,
  secret: (dump) => secretRows(dump),
};

/** The options of `proxyConfigCommand` (its help lists each; completion and suggestions read them). */
export const OPTIONS_PROXY_CONFIG = {
  admin: { type: 'string', default: '127.0.0.1:15129' },
  output: { type: 'string', short: 'o' },
  port: { type: 'string' },
  fqdn: { type: 'string' },
  direction: { type: 'string' },
  help: { type: 'boolean', short: 'h', default: false },
} as const;

export async function proxyConfigCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: OPTIONS_PROXY_CONFIG,
  });
  if (values.help) {
    process.stdout.write(HELP_PROXY_CONFIG);
    return 0;
  }
  const [node, typeWord, ...extra] = positionals;
  if (node === undefined) throw new UsageError('expected NODE (a node id, as smc proxy-status lists them)');
  if (extra.length > 0) throw new UsageError(`unexpected ${JSON.stringify(extra[0])}`);
  const only = typeWord === undefined ? undefined : TYPE_WORDS[typeWord];
  if (typeWord !== undefined && only === undefined) {
    const close = didYouMean(typeWord, Object.keys(TYPE_WORDS));
    throw new UsageError(`the type must be clusters, endpoints, listeners, routes or secrets, got ${JSON.stringify(typeWord)}${close ? `; did you mean ${close}?` : ''}`);
  }
  if (values.output !== undefined && values.output !== 'json' && values.output !== 'yaml') throw new UsageError(`-o expects json or yaml (or nothing, for a table), got ${JSON.stringify(values.output)}`);
  if (values.port !== undefined && !/^\d{1,5}$/.test(values.port)) throw new UsageError(`--port expects a port number, got ${JSON.stringify(values.port)}`);
  if (values.direction !== undefined && values.direction !== 'inbound' && values.direction !== 'outbound') throw new UsageError(`--direction expects inbound or outbound, got ${JSON.stringify(values.direction)}`);
  const filter: ViewFilter = {
    ...(values.port !== undefined ? { port: Number(values.port) } : {}),
    ...(values.fqdn !== undefined ? { fqdn: values.fqdn } : {}),
    ...(values.direction !== undefined ? { direction: values.direction as 'inbound' | 'outbound' } : {}),
  };
  const { host, port } = hostPort(values.admin, '--admin');
  let res: Response;
  try {
    res = await fetch(`${adminUrl(host, port)}/status/proxy-config?${new URLSearchParams({ node })}`);
  } catch (e) {
    process.stderr.write(`smc proxy-config: cannot reach the controller's admin port at ${values.admin}: ${(e as Error).message}\n`);
    return 3;
  }
  if (!res.ok) {
    const body = (await res.json().catch(() => ({}))) as { error?: string };
    process.stderr.write(`smc proxy-config: ${clientText(node, 128)}: ${body.error ?? `the controller answered ${res.status}`}\n`);
    return 3;
  }
  const doc = (await res.json()) as Document;
  const kinds = only ? [only] : PUSH_ORDER;
  const dump = filterDump(doc.config_dump, filter) as Document['config_dump'];
  const sectionOf = (k: ResourceKind) => dump.configs.find((c) => String(c['@type']).endsWith(`.${SECTION[k]}`)) ?? {};
  if (values.output !== undefined) {
    const shown = { configs: kinds.map(sectionOf) };
    process.stdout.write(values.output === 'json' ? `${JSON.stringify(shown, null, 2)}\n` : stringify(shown, { lineWidth: 0 }));
  } else if (only) {
    process.stdout.write(columns(VIEWS[only](dump, filter).map((row) => row.map((cell) => clientText(cell, 256)))));
  } else {
    process.stdout.write(`NODE ${clientText(doc.nodeId, 128)}  IDENTITY ${doc.identity}\n`);
    const rows = [['TYPE', 'NAME', 'VERSION', 'STATE']];
    for (const k of kinds) {
      const states = Object.values(doc.types[k].streams).map((s) => s.state);
      const state = [...new Set(states)].join(',') || 'NOT SENT';
      for (const name of names(sectionOf(k))) rows.push([k, name, doc.types[k].version, state]);
    }
    process.stdout.write(columns(rows));
  }
  if (values.output === undefined) for (const k of kinds) for (const s of Object.values(doc.types[k].streams)) if (s.nack) process.stdout.write(`${k} NACK: ${clientText(s.nack.message)}\n`);
  const synced = kinds.every((k) => Object.values(doc.types[k].streams).every((s) => s.state === 'SYNCED' || s.state === 'NOT SENT'));
  return synced ? 0 : 1;
}
