import { X509Certificate } from 'node:crypto';

/**
 * Tables of what a proxy is served, read from the config_dump the admin port
 * gives (`smc proxy-config`): clusters, endpoints (address, port, health,
 * weight), listeners (address, port, filter chains), routes (domains,
 * matches, action, and the policy each route comes from) and secrets (SPIFFE
 * ID, validity, serial; never keys). Filters narrow every view the same way.
 */
export interface ViewFilter {
  /** A port: of a cluster or route table (its name), an endpoint, a listener or a filter chain's match, a virtual host's domains. */
  readonly port?: number;
  /** A service: `name.namespace`, with or without `.svc` and the cluster domain. */
  readonly fqdn?: string;
  readonly direction?: 'inbound' | 'outbound';
}

type Json = Record<string, unknown>;
const obj = (v: unknown): Json => (v && typeof v === 'object' && !Array.isArray(v) ? (v as Json) : {});
const arr = (v: unknown): Json[] => (Array.isArray(v) ? (v as Json[]).map(obj) : []);
const str = (v: unknown): string => (typeof v === 'string' ? v : v === undefined || v === null ? '' : String(v));

/** The section of one type in a config_dump. */
export function section(dump: unknown, type: 'Clusters' | 'Endpoints' | 'Listeners' | 'Routes' | 'Secrets'): Json {
  return arr(obj(dump)['configs']).find((c) => str(c['@type']).endsWith(`.${type}ConfigDump`)) ?? {};
}

/** smc names clusters and route tables DIRECTION|PORT|SERVICE.NAMESPACE (the last part absent for route tables). */
function parts(name: string): { direction?: string; port?: number; service?: string } {
  const [direction, port, service] = name.split('|');
  return { direction, port: port && /^\d+$/.test(port) ? Number(port) : undefined, service };
}

/** `bookstore.bookstore.svc.cluster.local` and `bookstore.bookstore.svc` name `bookstore.bookstore`. */
const shortService = (fqdn: string) => fqdn.replace(/\.svc(\.[a-z0-9.-]+)?$/, '');
const sameService = (a: string | undefined, fqdn: string | undefined) => fqdn === undefined || (a !== undefined && shortService(a) === shortService(fqdn));

const byName = (f: ViewFilter, name: string) => {
  const p = parts(name);
  return (f.direction === undefined || p.direction === f.direction) && (f.port === undefined || p.port === f.port) && sameService(p.service, f.fqdn);
};

export function clusterRows(dump: unknown, f: ViewFilter): string[][] {
  const rows = [['NAME', 'DIRECTION', 'PORT', 'SERVICE', 'TYPE', 'PEER IDENTITY']];
  for (const item of arr(section(dump, 'Clusters')['dynamic_active_clusters'])) {
    const c = obj(item['cluster']);
    const name = str(c['name']);
    if (!byName(f, name)) continue;
    const p = parts(name);
    const tls = obj(obj(obj(c['transport_socket'])['typed_config'])['common_tls_context']);
    const sans = arr(obj(obj(tls['combined_validation_context'])['default_validation_context'])['match_typed_subject_alt_names']).map((m) => str(obj(m['matcher'])['exact'] ?? obj(m['matcher'])['prefix'])).filter(Boolean);
    rows.push([name, p.direction ?? '', p.port === undefined ? '' : String(p.port), p.service ?? '', str(c['type']) || 'STATIC', sans.join(',') || (c['transport_socket'] ? 'any mesh identity' : 'plaintext')]);
  }
  return rows;
}

export function endpointRows(dump: unknown, f: ViewFilter): string[][] {
  const rows = [['CLUSTER', 'ADDRESS', 'PORT', 'HEALTH', 'WEIGHT']];
  for (const item of arr(section(dump, 'Endpoints')['dynamic_endpoint_configs'])) {
    const cla = obj(item['endpoint_config']);
    const cluster = str(cla['cluster_name']);
    const p = parts(cluster);
    if ((f.direction !== undefined && p.direction !== f.direction) || !sameService(p.service, f.fqdn)) continue;
    for (const locality of arr(cla['endpoints'])) {
      for (const lb of arr(locality['lb_endpoints'])) {
        const socket = obj(obj(obj(lb['endpoint'])['address'])['socket_address']);
        const port = Number(socket['port_value'] ?? 0);
        if (f.port !== undefined && port !== f.port && p.port !== f.port) continue;
        const weight = lb['load_balancing_weight'] ?? 1;
        rows.push([cluster, str(socket['address']), String(port), str(lb['health_status']) || 'HEALTHY', String(weight)]);
      }
    }
  }
  return rows;
}

/** A filter chain's match in a few words: destination port and addresses, transport, ALPN, server names. */
function chainMatch(m: Json): string {
  const out: string[] = [];
  if (m['destination_port'] !== undefined) out.push(`port ${str(m['destination_port'])}`);
  const ranges = arr(m['prefix_ranges']).map((r) => `${str(r['address_prefix'])}/${str(r['prefix_len'] ?? 32)}`);
  if (ranges.length > 0) out.push(`to ${ranges.join(',')}`);
  if (m['transport_protocol']) out.push(str(m['transport_protocol']));
  const alpn = Array.isArray(m['application_protocols']) ? (m['application_protocols'] as unknown[]).map(str) : [];
  if (alpn.length > 0) out.push(`alpn ${alpn.join(',')}`);
  const sni = Array.isArray(m['server_names']) ? (m['server_names'] as unknown[]).map(str) : [];
  if (sni.length > 0) out.push(`sni ${sni.join(',')}`);
  return out.join(' ') || 'all';
}

/** Where a filter chain sends traffic: the route table of its HTTP connection manager, or the cluster of its TCP proxy. */
function chainDestination(chain: Json): string {
  for (const filter of arr(chain['filters'])) {
    const config = obj(filter['typed_config']);
    const rds = obj(config['rds']);
    if (rds['route_config_name']) return `routes ${str(rds['route_config_name'])}`;
    if (config['route_config']) return `routes ${str(obj(config['route_config'])['name']) || '(inline)'}`;
    if (config['cluster']) return `cluster ${str(config['cluster'])}`;
    if (config['weighted_clusters']) return `clusters ${arr(obj(config['weighted_clusters'])['clusters']).map((c) => `${str(c['name'])}:${str(c['weight'])}`).join(',')}`;
  }
  return arr(chain['filters']).map((x) => str(x['name'])).join(',');
}

export function listenerRows(dump: unknown, f: ViewFilter): string[][] {
  const rows = [['LISTENER', 'ADDRESS', 'PORT', 'DIRECTION', 'CHAIN', 'MATCH', 'DESTINATION']];
  for (const item of arr(section(dump, 'Listeners')['dynamic_listeners'])) {
    const l = obj(obj(item['active_state'])['listener']);
    const socket = obj(obj(l['address'])['socket_address']);
    const port = Number(socket['port_value'] ?? 0);
    const direction = str(l['traffic_direction']).toLowerCase() || (str(l['name']).startsWith('inbound') ? 'inbound' : str(l['name']).startsWith('outbound') ? 'outbound' : '');
    if (f.direction !== undefined && direction !== f.direction) continue;
    const chains = [...arr(l['filter_chains']), ...(l['default_filter_chain'] ? [{ ...obj(l['default_filter_chain']), name: obj(l['default_filter_chain'])['name'] ?? 'default' }] : [])];
    chains.forEach((chain, i) => {
      const m = obj(chain['filter_chain_match']);
      const destination = chainDestination(chain);
      if (f.port !== undefined && port !== f.port && Number(m['destination_port']) !== f.port) return;
      if (f.fqdn !== undefined && !destination.includes(shortService(f.fqdn))) return;
      rows.push([str(l['name']), str(socket['address']), String(port), direction, str(chain['name']) || String(i), chainMatch(m), destination]);
    });
  }
  return rows;
}

/** A route's match in a few words: path, methods and headers. */
function routeMatch(m: Json): string {
  const out: string[] = [];
  if (m['prefix'] !== undefined) out.push(`prefix ${str(m['prefix'])}`);
  if (m['path'] !== undefined) out.push(`path ${str(m['path'])}`);
  if (m['path_separated_prefix'] !== undefined) out.push(`prefix ${str(m['path_separated_prefix'])}/`);
  if (m['safe_regex'] !== undefined) out.push(`regex ${str(obj(m['safe_regex'])['regex'])}`);
  for (const h of arr(m['headers'])) {
    const sm = obj(h['string_match']);
    const value = sm['exact'] !== undefined ? `=${str(sm['exact'])}` : sm['safe_regex'] !== undefined ? `~${str(obj(sm['safe_regex'])['regex'])}` : sm['prefix'] !== undefined ? `^${str(sm['prefix'])}` : h['present_match'] ? ' present' : '';
    out.push(`${str(h['name']) === ':method' ? 'method' : `header ${str(h['name'])}`}${value}`);
  }
  return out.join(' ');
}

function routeAction(r: Json): string {
  const route = obj(r['route']);
  if (route['cluster']) return str(route['cluster']);
  if (route['weighted_clusters']) return arr(obj(route['weighted_clusters'])['clusters']).map((c) => `${str(c['name'])} ${str(c['weight'])}`).join(', ');
  if (r['direct_response']) return `answer ${str(obj(r['direct_response'])['status'])}`;
  if (r['redirect']) return 'redirect';
  return '';
}

export function routeRows(dump: unknown, f: ViewFilter): string[][] {
  const rows = [['ROUTES', 'VIRTUAL HOST', 'DOMAINS', 'MATCH', 'ACTION', 'POLICY']];
  for (const item of arr(section(dump, 'Routes')['dynamic_route_configs'])) {
    const config = obj(item['route_config']);
    const name = str(config['name']);
    const p = parts(name);
    if (f.direction !== undefined && p.direction !== f.direction) continue;
    for (const vh of arr(config['virtual_hosts'])) {
      const domains = Array.isArray(vh['domains']) ? (vh['domains'] as unknown[]).map(str) : [];
      if (f.port !== undefined && p.port !== f.port && !domains.some((d) => d.endsWith(`:${f.port}`))) continue;
      if (f.fqdn !== undefined && !domains.some((d) => shortService(d.replace(/:\d+$/, '')) === shortService(f.fqdn!))) continue;
      const shown = domains.length > 1 ? `${domains[0]} (+${domains.length - 1})` : (domains[0] ?? '');
      for (const r of arr(vh['routes'])) rows.push([name, str(vh['name']), shown, routeMatch(obj(r['match'])), routeAction(r), str(r['name'])]);
    }
  }
  return rows;
}

/** Each certificate of a PEM text. */
function certificates(pem: string): X509Certificate[] {
  return [...pem.matchAll(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g)].flatMap((m) => {
    try {
      return [new X509Certificate(m[0])];
    } catch {
      return [];
    }
  });
}
const dataSource = (d: Json): string => (d['inline_string'] !== undefined ? str(d['inline_string']) : d['inline_bytes'] !== undefined ? Buffer.from(str(d['inline_bytes']), 'base64').toString() : '');
const spiffeOf = (c: X509Certificate) => (c.subjectAltName ?? '').split(', ').find((s) => s.startsWith('URI:spiffe://'))?.slice(4) ?? c.subject.replace(/\n/g, ',');
const iso = (d: string) => new Date(d).toISOString();

export function secretRows(dump: unknown): string[][] {
  const rows = [['NAME', 'KIND', 'SPIFFE ID / SUBJECT', 'NOT BEFORE', 'NOT AFTER', 'SERIAL']];
  for (const item of arr(section(dump, 'Secrets')['dynamic_active_secrets'])) {
    const s = obj(item['secret']);
    const name = str(item['name'] ?? s['name']);
    const tls = obj(s['tls_certificate']);
    const validation = obj(s['validation_context']);
    // Only certificates: the private key is redacted by the controller and never read here.
    const [kind, pem] = tls['certificate_chain'] ? ['certificate', dataSource(obj(tls['certificate_chain']))] : ['trust bundle', dataSource(obj(validation['trusted_ca']))];
    const certs = certificates(pem);
    if (certs.length === 0) rows.push([name, kind, '', '', '', '']);
    for (const c of kind === 'certificate' ? certs.slice(0, 1) : certs) rows.push([name, kind, spiffeOf(c), iso(c.validFrom), iso(c.validTo), c.serialNumber.toLowerCase()]);
  }
  return rows;
}

/** The config_dump with only what the filter keeps (for -o json|yaml). */
export function filterDump(dump: unknown, f: ViewFilter): unknown {
  if (f.port === undefined && f.fqdn === undefined && f.direction === undefined) return dump;
  const keep = (list: unknown, test: (item: Json) => boolean) => arr(list).filter(test);
  const configs = arr(obj(dump)['configs']).map((c) => {
    const type = str(c['@type']);
    if (type.endsWith('.ClustersConfigDump')) return { ...c, dynamic_active_clusters: keep(c['dynamic_active_clusters'], (i) => byName(f, str(obj(i['cluster'])['name']))) };
    if (type.endsWith('.EndpointsConfigDump')) {
      return { ...c, dynamic_endpoint_configs: keep(c['dynamic_endpoint_configs'], (i) => endpointRows({ configs: [{ ...c, dynamic_endpoint_configs: [i] }] }, f).length > 1) };
    }
    if (type.endsWith('.ListenersConfigDump')) return { ...c, dynamic_listeners: keep(c['dynamic_listeners'], (i) => listenerRows({ configs: [{ ...c, dynamic_listeners: [i] }] }, f).length > 1) };
    if (type.endsWith('.RoutesConfigDump')) return { ...c, dynamic_route_configs: keep(c['dynamic_route_configs'], (i) => routeRows({ configs: [{ ...c, dynamic_route_configs: [i] }] }, f).length > 1) };
    return c;
  });
  return { ...obj(dump), configs };
}
