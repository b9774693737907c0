import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { PUSH_ORDER } from '../src/compiler/envoy/codec.js';
import { envoyPath } from './helpers/envoy.js';
import { testController } from './helpers/controller.js';
import { waitFor } from './helpers/wait.js';

const BIN = 'dist/src/cli/main.js';

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}


type Dump = { configs: ({ '@type': string; version_info?: string; dynamic_active_clusters?: { version_info: string }[]; dynamic_listeners?: { active_state?: { version_info: string }; warming_state?: unknown }[]; dynamic_endpoint_configs?: { endpoint_config: { cluster_name: string } }[]; dynamic_route_configs?: { version_info: string }[]; dynamic_active_secrets?: { version_info: string }[] })[] };

/** The version Envoy reports per type (one per type when it is in sync). */
function versionsOf(dump: Dump): Record<string, string[]> {
  const get = (t: string) => dump.configs.find((c) => c['@type'].endsWith(`.${t}`));
  const uniq = (xs: (string | undefined)[]) => [...new Set(xs.filter((x): x is string => x !== undefined))].sort();
  return {
    cluster: uniq((get('ClustersConfigDump')?.dynamic_active_clusters ?? []).map((c) => c.version_info)),
    // Envoy keeps no version for EDS: compare the assignments it holds by cluster name.
    endpoint: uniq((get('EndpointsConfigDump')?.dynamic_endpoint_configs ?? []).map((c) => c.endpoint_config.cluster_name)),
    listener: uniq((get('ListenersConfigDump')?.dynamic_listeners ?? []).map((l) => l.active_state?.version_info)),
    route: uniq((get('RoutesConfigDump')?.dynamic_route_configs ?? []).map((c) => c.version_info)),
    secret: uniq((get('SecretsConfigDump')?.dynamic_active_secrets ?? []).map((c) => c.version_info)),
  };
}


for (const variant of ['sotw', 'delta'] as const) {
  test(`real Envoy started from smc bootstrap (${variant}) syncs the compiler's versions over mTLS and converges after an input change`, async () => {
    const { controller, dir, state, logs } = await testController('examples/bookstore');
    const adminPort = await freePort();
    const out = join(dir, 'bootstrap');
    const b = spawnSync(process.execPath, [BIN, 'bootstrap', '--identity', 'bookbuyer/bookbuyer', '--xds-address', `127.0.0.1:${controller.xdsPort}`, '--state', state, '-o', out, '--admin-port', String(adminPort), ...(variant === 'delta' ? ['--delta'] : [])], { encoding: 'utf8' });
    assert.equal(b.status, 0, b.stderr);
    const envoy = spawn(envoyPath(), ['-c', join(out, 'bootstrap.json'), '-l', 'warning', '--base-id', String(adminPort), '--drain-time-s', '1'], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    envoy.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    envoy.on('exit', (code, signal) => (stderr += `\n[envoy exited: ${code ?? signal}]`));
    try {
      const identity = 'spiffe://cluster.local/ns/bookbuyer/sa/bookbuyer';
      const expected = () => {
        const s = controller.cache.get(identity)!;
        // State of the world: Envoy reports the response's version; delta: each resource's own version.
        return Object.fromEntries(
          PUSH_ORDER.map((k) => {
            const rs = [...s.types[k].resources.values()];
            if (k === 'endpoint') return [k, rs.map((r) => r.name).sort()];
            if (variant === 'delta') return [k, [...new Set(rs.map((r) => r.version))].sort()];
            return [k, rs.length > 0 ? [s.types[k].version] : []];
          }),
        );
      };
      let lastSeen = '';
      const inSync = async () => {
        const dump = (await (await fetch(`http://127.0.0.1:${adminPort}/config_dump?include_eds`)).json()) as Dump;
        const got = versionsOf(dump);
        lastSeen = `envoy has ${JSON.stringify(got)}, compiler made ${JSON.stringify(expected())}`;
        return JSON.stringify(got) === JSON.stringify(expected()) ? got : undefined;
      };
      await waitFor('Envoy to report the compiler\'s versions', inSync).catch((e: Error) => {
        throw new Error(`${e.message}\n${lastSeen}\ncontroller:\n${logs.join('\n')}\nproxies: ${JSON.stringify(controller.proxies.list())}\nenvoy stderr:\n${stderr.slice(-2000)}`);
      });
      const proxies = (await (await fetch(`http://127.0.0.1:${controller.adminPort}/status/proxies`)).json()) as { proxies: { nodeId: string; types: Record<string, { state: string }> }[] };
      assert.deepEqual(proxies.proxies.map((p) => [p.nodeId, ...PUSH_ORDER.map((k) => p.types[k]?.state)]), [['bookbuyer/bookbuyer', 'SYNCED', 'SYNCED', 'SYNCED', 'SYNCED', 'SYNCED']]);

      // A policy change: the split moves to 50/50. Only route versions change for bookbuyer.
      const before = expected();
      const policy = join(dir, 'mesh', '40-policy.yaml');
      writeFileSync(policy, readFileSync(policy, 'utf8').replace('weight: 90', 'weight: 50'));
      const changes = await controller.reload();
      assert.ok(changes.some((c) => c.identity === identity && c.types.route !== undefined));
      const after = expected();
      assert.notDeepEqual(after.route, before.route);
      assert.deepEqual(after.cluster, before.cluster);
      await waitFor('Envoy to converge to the new route version', inSync);
      const metrics = await (await fetch(`http://127.0.0.1:${controller.adminPort}/metrics`)).text();
      assert.match(metrics, /^smc_xds_connected_proxies 1$/m);
      assert.match(metrics, /^smc_xds_convergence_seconds_count [1-9]/m);
    } finally {
      envoy.kill('SIGKILL');
      await controller.close();
    }
  });
}
