import { parseArgs } from 'node:util';
import { stringify } from 'yaml';
import { PUSH_ORDER, type ResourceKind } from '../compiler/envoy/codec.js';
import { clientText } from '../compiler/client-text.js';
import { adminUrl, hostPort, UsageError } from './usage.js';
import { columns } from '../output/render.js';

export const HELP_PROXY_CONFIG = `smc proxy-config NODE [clusters|endpoints|listeners|routes|secrets] [options]

Shows what a running controller serves one connected proxy (NODE is its node
id, as 'smc proxy-status' lists it): every resource, or those of one type, in
the shape of Envoy's admin /config_dump (the same as 'smc compile' writes, so
the two can be diffed), with the version of each type and whether the proxy
acknowledged it. Private keys are never shown.

Options:
      --admin HOST:PORT   The controller's admin port (default 127.0.0.1:15129)
  -o, --output json|yaml  Print the config_dump (of the type given, or all)
                          instead of the summary
  -h, --help              Show this help

Exit status: 0 when the proxy is in sync on every type shown, 1 when not,
2 usage error, 3 the controller could not be asked or does not know NODE.

Examples:
  smc proxy-config bookbuyer/bookbuyer
  smc proxy-config bookbuyer/bookbuyer routes -o yaml
  smc proxy-config bookstore/bookstore/bookstore-v1-0 -o json > served.json
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

export async function proxyConfigCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: { admin: { type: 'string', default: '127.0.0.1:15129' }, output: { type: 'string', short: 'o' }, help: { type: 'boolean', short: 'h', default: false } },
  });
  if (values.help) {
    process.stdout.write(HELP_PROXY_CONFIG);
    return 0;
  }
  const [node, typeWord, ...extra] = positionals;
  if (node === undefined) throw new UsageError('smc proxy-config: expected NODE (a node id, as smc proxy-status lists them)');
  if (extra.length > 0) throw new UsageError(`smc proxy-config: unexpected ${JSON.stringify(extra[0])}`);
  const only = typeWord === undefined ? undefined : TYPE_WORDS[typeWord];
  if (typeWord !== undefined && only === undefined) throw new UsageError(`smc proxy-config: the type must be clusters, endpoints, listeners, routes or secrets, got ${JSON.stringify(typeWord)}`);
  if (values.output !== undefined && values.output !== 'json' && values.output !== 'yaml') throw new UsageError(`-o expects json or yaml (or nothing, for a summary), got ${JSON.stringify(values.output)}`);
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
  const sectionOf = (k: ResourceKind) => doc.config_dump.configs.find((c) => String(c['@type']).endsWith(`.${SECTION[k]}`)) ?? {};
  if (values.output !== undefined) {
    const dump = { configs: kinds.map(sectionOf) };
    process.stdout.write(values.output === 'json' ? `${JSON.stringify(dump, null, 2)}\n` : stringify(dump, { lineWidth: 0 }));
  } else {
    process.stdout.write(`NODE ${clientText(doc.nodeId, 128)}  IDENTITY ${doc.identity}\n`);
    const rows = [['TYPE', 'NAME', 'VERSION', 'STATE']];
    for (const k of kinds) {
      const states = Object.values(doc.types[k].streams).map((s) => s.state);
      const state = [...new Set(states)].join(',') || 'NOT SENT';
      for (const name of names(sectionOf(k))) rows.push([k, name, doc.types[k].version, state]);
    }
    process.stdout.write(columns(rows));
    for (const k of kinds) for (const s of Object.values(doc.types[k].streams)) if (s.nack) process.stdout.write(`${k} NACK: ${clientText(s.nack.message)}\n`);
  }
  const synced = kinds.every((k) => Object.values(doc.types[k].streams).every((s) => s.state === 'SYNCED' || s.state === 'NOT SENT'));
  return synced ? 0 : 1;
}
