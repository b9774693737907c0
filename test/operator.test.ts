import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startEnvoy } from './helpers/envoy.js';
import { testController } from './helpers/controller.js';
import { waitFor } from './helpers/wait.js';

/**
 * The operator's view of a running mesh, against real Envoy: `smc
 * proxy-config` shows exactly what Envoy holds (its own /config_dump, less
 * what Envoy adds itself), `smc compile` prints the same shape and the same
 * content, and `smc explain` asks the controller about the mesh it serves.
 */

type Json = Record<string, unknown>;

/** Envoy's dump without what Envoy adds itself: its bootstrap, static resources and timestamps. */
function dynamicPart(dump: { configs: Json[] }): Json[] {
  const drop = new Set(['last_updated', 'static_clusters', 'static_listeners', 'static_route_configs', 'static_secrets', 'static_endpoint_configs']);
  const clean = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(clean);
    if (v === null || typeof v !== 'object') return v;
    return Object.fromEntries(Object.entries(v as Json).filter(([k]) => !drop.has(k)).map(([k, x]) => [k, clean(x)]));
  };
  const kept = ['ClustersConfigDump', 'EndpointsConfigDump', 'ListenersConfigDump', 'RoutesConfigDump', 'SecretsConfigDump'];
  const sections = kept.map((t) => clean(dump.configs.find((c) => String(c['@type']).endsWith(`.${t}`)) ?? {}) as Json);
  // Envoy dumps endpoints as the host set it built, not as received: it keeps no EDS version, fills in
  // defaults (health status, overprovisioning factor, weight 1) and lists the assignments of clusters
  // that carry their own (inline) too. Those are left out on both sides; every address, port and
  // cluster of EDS is compared.
  const inline = new Set(
    ((sections[0]!['dynamic_active_clusters'] ?? []) as { cluster: Json }[]).filter((c) => c.cluster['load_assignment'] !== undefined).map((c) => c.cluster['name']),
  );
  const endpoints = ((sections[1]!['dynamic_endpoint_configs'] ?? []) as { endpoint_config: Json }[])
    .filter((e) => !inline.has(e.endpoint_config['cluster_name']))
    .map((e) => ({ endpoint_config: envoyDefaultsOut(e.endpoint_config) }));
  sections[1] = { ...sections[1], dynamic_endpoint_configs: endpoints };
  return sections;
}

function envoyDefaultsOut(cla: Json): Json {
  const { policy, ...rest } = cla as { policy?: Json } & Json;
  if (policy !== undefined && JSON.stringify(policy) !== '{"overprovisioning_factor":140}') (rest as Json)['policy'] = policy;
  const endpoints = ((rest['endpoints'] ?? []) as Json[]).map((l) => ({
    ...l,
    lb_endpoints: ((l['lb_endpoints'] ?? []) as Json[]).map((e) => {
      const { health_status: h, load_balancing_weight: w, endpoint, ...more } = e as { health_status?: string; load_balancing_weight?: number; endpoint: Json } & Json;
      const { health_check_config: hc, ...ep } = endpoint as { health_check_config?: Json } & Json;
      return { ...more, endpoint: hc && Object.keys(hc).length > 0 ? endpoint : ep, ...(h && h !== 'HEALTHY' ? { health_status: h } : {}), ...(w !== undefined && w !== 1 ? { load_balancing_weight: w } : {}) };
    }),
  }));
  return { ...rest, endpoints };
}

/** Object keys in one order, and the resource lists (dynamic_*) by content: the order each side keeps them in does not matter; every other list's does. */
function sorted(v: unknown, key = ''): unknown {
  if (Array.isArray(v)) {
    const items = v.map((x) => sorted(x));
    if (!key.startsWith('dynamic_')) return items;
    const text = (x: unknown) => JSON.stringify(x);
    return [...items].sort((a, b) => (text(a) < text(b) ? -1 : text(a) > text(b) ? 1 : 0));
  }
  if (v === null || typeof v !== 'object') return v;
  return Object.fromEntries(Object.keys(v as Json).sort().map((k) => [k, sorted((v as Json)[k], k)]));
}

// Only for commands that do not call the controller, which runs in this process (spawnSync would block it).
const smc = (args: string[]) => spawnSync(process.execPath, ['dist/src/cli/main.js', ...args], { encoding: 'utf8' });
const smcAsync = (args: string[]) =>
  new Promise<{ status: number | null; stdout: string; stderr: string }>((resolve) => {
    const p = spawn(process.execPath, ['dist/src/cli/main.js', ...args]);
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    p.on('close', (status) => resolve({ status, stdout, stderr }));
  });

test('smc proxy-config shows what real Envoy holds (its /config_dump, field for field); smc compile prints the same; explain asks the controller', async () => {
  const { controller, dir, state } = await testController('examples/bookstore');
  const { envoy, adminPort, statsPort, stderr } = await startEnvoy('bookstore/bookstore', controller.xdsPort, dir, state);
  const admin = `127.0.0.1:${controller.adminPort}`;
  try {
    const envoyDump = async () => (await (await fetch(`http://127.0.0.1:${adminPort}/config_dump?include_eds`)).json()) as { configs: Json[] };
    let served: { status: number | null; stdout: string; stderr: string } = { status: null, stdout: '', stderr: '' };
    await waitFor('the proxy to be in sync on every type', async () => {
      served = await smcAsync(['proxy-config', 'bookstore/bookstore', '--admin', admin, '-o', 'json']);
      return served.status === 0;
    }).catch((e: Error) => {
      throw new Error(`${e.message}\n${served.stderr}\nenvoy:\n${stderr().slice(-2000)}`);
    });
    const ours = JSON.parse(served.stdout) as { configs: Json[] };
    assert.deepEqual(sorted(dynamicPart(await envoyDump())), sorted(dynamicPart(ours)), 'smc proxy-config -o json equals Envoy\'s own config_dump');
    assert.ok(!served.stdout.includes('PRIVATE KEY'), 'no private key');
    assert.match(served.stdout, /"private_key": \{\s*"inline_string": "\[redacted\]"/);

    // Every bootstrap serves the sidecar's Prometheus stats (and nothing else of the admin) on the stats port.
    const scraped = await fetch(`http://127.0.0.1:${statsPort}/stats/prometheus`);
    assert.equal(scraped.status, 200);
    const sidecarStats = await scraped.text();
    assert.match(sidecarStats, /^envoy_server_live\{?.*\}? 1$/m);
    assert.equal((await fetch(`http://127.0.0.1:${statsPort}/config_dump`)).status, 404, 'the admin stays on loopback');

    // The controller's metrics: process and runtime, build, certificate expiry, inputs by state, convergence by type.
    const metrics = await (await fetch(`http://${admin}/metrics`)).text();
    for (const m of [/^process_cpu_user_seconds_total \d/m, /^nodejs_eventloop_lag_seconds \d/m, /^nodejs_heap_size_used_bytes \d/m]) assert.match(metrics, m);
    const version = (JSON.parse(readFileSync('package.json', 'utf8')) as { version: string }).version;
    assert.match(metrics, new RegExp(`^smc_build_info\\{version="${version.replace(/\./g, '\\.')}",node="${process.version}"\\} 1$`, 'm'));
    const expiry = /^smc_certificate_expiry_seconds\{identity="spiffe:\/\/cluster\.local\/ns\/bookstore\/sa\/bookstore"\} (\d+)$/m.exec(metrics);
    assert.ok(expiry && Number(expiry[1]) > 3000 && Number(expiry[1]) <= 2 * 24 * 3600, `a service certificate expires within its lifetime (24 h, with jitter): ${expiry?.[0]}`);
    assert.match(metrics, /^smc_inputs\{kind="TrafficTarget",state="Accepted"\} 3$/m);
    assert.match(metrics, /^smc_xds_convergence_seconds_count\{type="listener"\} [1-9]/m);
    assert.match(metrics, /^smc_xds_pushes_total\{type="secret"\} [1-9]/m);

    // The Grafana dashboard in deploy/ queries only metrics that exist: the controller's, and the sidecar's.
    const dashboard = JSON.parse(readFileSync('deploy/grafana-dashboard.json', 'utf8')) as { panels: { title: string; targets: { expr: string }[] }[] };
    const queried = new Set(dashboard.panels.flatMap((p) => p.targets.flatMap((t) => [...t.expr.matchAll(/\b((?:smc|process|nodejs|envoy)_[a-z0-9_]+)/g)].map((m) => m[1]!))));
    assert.ok(queried.size >= 10, [...queried].join(' '));
    for (const name of queried) {
      const exported = name.startsWith('envoy_') ? sidecarStats : metrics;
      // A metric with no observation yet is declared (# TYPE) without series; a histogram's series carry suffixes.
      const family = name.replace(/_(bucket|count|sum)$/, '');
      assert.match(exported, new RegExp(`^(${name}[{ ]|# TYPE ${family} )`, 'm'), `the dashboard queries ${name}, which nothing exports`);
    }

    // smc compile of the same folder: the same configuration, secrets aside (its certificates are throwaway ones).
    const out = mkdtempSync(join(tmpdir(), 'smc-compile-'));
    assert.equal(smc(['compile', join(dir, 'mesh'), '-o', out]).status, 0);
    const compiled = JSON.parse(readFileSync(join(out, 'bookstore', 'bookstore.json'), 'utf8')) as { configs: Json[] };
    const withoutSecrets = (d: { configs: Json[] }) => dynamicPart(d).slice(0, 4);
    assert.deepEqual(sorted(withoutSecrets(compiled)), sorted(withoutSecrets(await envoyDump())), 'smc compile output equals what Envoy holds, secrets aside');

    // The summary: one row per resource, its version and sync state.
    const summary = await smcAsync(['proxy-config', 'bookstore/bookstore', '--admin', admin]);
    assert.equal(summary.status, 0, summary.stderr);
    assert.match(summary.stdout, /^NODE bookstore\/bookstore {2}IDENTITY spiffe:\/\/cluster\.local\/ns\/bookstore\/sa\/bookstore\n/);
    assert.match(summary.stdout, /^listener +inbound +[0-9a-f]{16} +SYNCED$/m);
    assert.match(summary.stdout, /^cluster +outbound\|14001\|bookwarehouse\.bookwarehouse +[0-9a-f]{16} +SYNCED$/m);
    // Each type as a table: what a listener's chains match and where they send it; what each route matches, where
    // it goes and which policy made it; the endpoints with health and weight; the peer a cluster's TLS checks;
    // the certificate's SPIFFE ID, validity and serial (never a key).
    const view = async (...args: string[]) => {
      const r = await smcAsync(['proxy-config', 'bookstore/bookstore', ...args, '--admin', admin]);
      assert.equal(r.status, 0, r.stderr);
      return r.stdout;
    };
    const listeners = await view('listeners');
    assert.match(listeners, /^LISTENER +ADDRESS +PORT +DIRECTION +CHAIN +MATCH +DESTINATION$/m);
    assert.match(listeners, /^inbound +0\.0\.0\.0 +15003 +inbound +inbound\|8080 +port 8080 +routes inbound\|8080$/m);
    assert.match(listeners, /^outbound +0\.0\.0\.0 +15001 +outbound +outbound\|14001\|bookwarehouse\.bookwarehouse +port 14001 to 198\.18\.100\.10\/32 +routes outbound\|14001\|bookwarehouse\.bookwarehouse$/m);
    assert.doesNotMatch(await view('listeners', '--direction', 'inbound'), /outbound/);
    const routes = await view('routes');
    assert.match(routes, /^inbound\|8080 +inbound\|8080 +\* +regex \(\?:\/buy-a-book\)\.\* method~GET header user-agent~bookbuyer\/\.\* +inbound\|8080\|local +bookstore\/bookstore-service-routes#buy-a-book$/m);
    assert.match(routes, /^outbound\|14001\|bookwarehouse\.bookwarehouse +bookwarehouse\.bookwarehouse:14001 +\* +prefix \/ +outbound\|14001\|bookwarehouse\.bookwarehouse +Service bookwarehouse\/bookwarehouse$/m);
    assert.doesNotMatch(await view('routes', '--port', '14001'), /inbound\|8080/);
    assert.match(await view('clusters'), /^outbound\|14001\|bookwarehouse\.bookwarehouse +outbound +14001 +bookwarehouse\.bookwarehouse +EDS +spiffe:\/\/cluster\.local\/ns\/bookwarehouse\/sa\/bookwarehouse$/m);
    const endpoints = await view('endpoints', '--fqdn', 'bookwarehouse.bookwarehouse.svc.cluster.local');
    assert.match(endpoints, /^outbound\|14001\|bookwarehouse\.bookwarehouse +198\.18\.3\.10 +8080 +HEALTHY +1$/m);
    assert.equal((await view('endpoints', '--fqdn', 'nosuch.bookstore')).trim().split('\n').length, 1, 'only the header');
    const secrets = await view('secrets');
    const cert = /^identity +certificate +spiffe:\/\/cluster\.local\/ns\/bookstore\/sa\/bookstore +(\S+) +(\S+) +([0-9a-f]+)$/m.exec(secrets);
    assert.ok(cert && Date.parse(cert[2]!) > Date.now() && Date.parse(cert[1]!) < Date.now(), secrets);
    assert.match(secrets, /^trust-bundle +trust bundle +spiffe:\/\/cluster\.local /m);
    assert.doesNotMatch(secrets, /PRIVATE|redacted/);
    // proxy-status of one proxy (or an identity's instances), as YAML, and --watch until interrupted.
    const one = await smcAsync(['proxy-status', 'bookstore/bookstore', '--admin', admin, '-o', 'yaml']);
    assert.equal(one.status, 0, one.stderr);
    assert.match(one.stdout, /^proxies:\n {2}- nodeId: bookstore\/bookstore\n/);
    const nobody = await smcAsync(['proxy-status', 'nobody/here', '--admin', admin]);
    assert.equal(nobody.status, 3);
    assert.match(nobody.stderr, /no connected proxy is nobody\/here/);
    const watched = await new Promise<string[]>((resolve) => {
      const p = spawn(process.execPath, ['dist/src/cli/main.js', 'proxy-status', '--watch', '--interval', '200ms', '-o', 'json', '--admin', admin]);
      const lines: string[] = [];
      let buffer = '';
      p.stdout.on('data', (d: Buffer) => {
        buffer += d.toString();
        const parts = buffer.split('\n');
        buffer = parts.pop()!;
        lines.push(...parts);
        if (lines.length >= 3) p.kill('SIGINT');
      });
      p.on('close', (code) => resolve([...lines, `exit ${code}`]));
    });
    assert.equal(watched[watched.length - 1], 'exit 0', 'interrupted, --watch ends with 0');
    for (const line of watched.slice(0, 3)) assert.equal((JSON.parse(line) as { proxies: { nodeId: string }[] }).proxies[0]!.nodeId, 'bookstore/bookstore');
    // Completion offers the connected node ids (asked at --admin).
    const completed = await smcAsync(['__complete', 'proxy-config', '--admin', admin, 'book']);
    assert.equal(completed.stdout, 'bookstore/bookstore\n');
    // -o with a filter: the config_dump of what the filter keeps.
    const filtered = await view('listeners', '--port', '8080', '-o', 'json');
    const kept = (JSON.parse(filtered) as { configs: { dynamic_listeners: { name: string }[] }[] }).configs[0]!.dynamic_listeners.map((l) => l.name);
    assert.deepEqual(kept, ['inbound']);
    const unknown = await smcAsync(['proxy-config', 'nobody/here', '--admin', admin]);
    assert.equal(unknown.status, 3);
    assert.match(unknown.stderr, /nobody\/here: no proxy with this node id is connected/);
    assert.equal((await smcAsync(['proxy-config', 'bookstore/bookstore', 'pods', '--admin', admin])).status, 2);

    // explain against the controller follows a live policy change.
    const ask = () => smcAsync(['explain', '--from', 'bookbuyer/bookbuyer', '--to', 'bookstore.bookstore:14001', '--path', '/books-bought', '--admin', admin, '-o', 'json']);
    const before = await ask();
    assert.equal(before.status, 0, before.stderr);
    assert.equal((JSON.parse(before.stdout) as { verdict: string }).verdict, 'allowed');
    const policy = join(dir, 'mesh', '40-policy.yaml');
    writeFileSync(policy, readFileSync(policy, 'utf8').replace('matches: [buy-a-book, books-bought]', 'matches: [buy-a-book]'));
    await controller.reload();
    const after = await ask();
    assert.equal(after.status, 1);
    const denied = JSON.parse(after.stdout) as { verdict: string; backends: { destinations: { reasons: string[] }[] }[] };
    assert.equal(denied.verdict, 'denied');
    assert.match(denied.backends[0]!.destinations[0]!.reasons.join('\n'), /#buy-a-book wants a path matching "\/buy-a-book" \(from the start\), not "\/books-bought"/);
    const bad = await smcAsync(['explain', '--from', 'bookbuyer/bookbuyer', '--to', 'bookstore.bookstore:99999', '--admin', admin]);
    assert.equal(bad.status, 2);
  } finally {
    envoy.kill('SIGKILL');
    await controller.close();
  }
});
