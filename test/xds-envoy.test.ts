import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PUSH_ORDER } from '../src/compiler/envoy/codec.js';
import { startEnvoy } from './helpers/envoy.js';
import { startTestController, testController } from './helpers/controller.js';
import { waitFor } from './helpers/wait.js';

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
    const { envoy, adminPort, stderr } = await startEnvoy('bookbuyer/bookbuyer', controller.xdsPort, dir, state, { delta: variant === 'delta' });
    try {
      const identity = 'spiffe://cluster.local/ns/bookbuyer/sa/bookbuyer';
      // State of the world: Envoy reports, per resource, the version of the response in which that resource last changed
      // (a resource sent again unchanged keeps its version); delta: each resource's own version.
      const changedIn = new Map<string, { hash: string; version: string }>();
      const expected = () => {
        const s = controller.cache.get(identity)!;
        return Object.fromEntries(
          PUSH_ORDER.map((k) => {
            const rs = [...s.types[k].resources.values()];
            if (k === 'endpoint') return [k, rs.map((r) => r.name).sort()];
            if (variant === 'delta') return [k, [...new Set(rs.map((r) => r.version))].sort()];
            const versions = rs.map((r) => {
              const key = `${k}\0${r.name}`;
              const known = changedIn.get(key);
              if (known?.hash === r.version) return known.version;
              changedIn.set(key, { hash: r.version, version: s.types[k].version });
              return s.types[k].version;
            });
            return [k, [...new Set(versions)].sort()];
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
        throw new Error(`${e.message}\n${lastSeen}\ncontroller:\n${logs.join('\n')}\nproxies: ${JSON.stringify(controller.proxies.list())}\nenvoy stderr:\n${stderr().slice(-2000)}`);
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
      assert.match(metrics, /^smc_xds_convergence_seconds_count\{type="route"\} [1-9]/m);
    } finally {
      envoy.kill('SIGKILL');
      await controller.close();
    }
  });
}

/** Envoy's counters of clusters and listeners replaced by an update: they move only when configuration really changed. */
async function churn(adminPort: number): Promise<Record<string, number>> {
  const text = await (await fetch(`http://127.0.0.1:${adminPort}/stats?filter=(cluster_modified|listener_modified|cluster_added|listener_added)$`)).text();
  return Object.fromEntries(text.trim().split('\n').map((l) => l.split(': ')).map(([k, v]) => [k!, Number(v)]));
}

test('restarting the controller: Envoy reconnects and ends on the same versions, with no cluster or listener replaced', async () => {
  const first = await testController('examples/bookstore');
  const { dir, state } = first;
  const xdsPort = first.controller.xdsPort;
  const { envoy, adminPort, stderr } = await startEnvoy('bookbuyer/bookbuyer', xdsPort, dir, state);
  let current = first;
  const identity = 'spiffe://cluster.local/ns/bookbuyer/sa/bookbuyer';
  const synced = (c: typeof first) => () => {
    const p = c.controller.proxies.list().find((x) => x.nodeId === 'bookbuyer/bookbuyer');
    const s = c.controller.cache.get(identity)!;
    return p && PUSH_ORDER.every((k) => p.types[k]?.acked === s.types[k].version) ? p : undefined;
  };
  try {
    await waitFor('Envoy to sync with the first controller', synced(first)).catch((e: Error) => {
      throw new Error(`${e.message}\n${first.logs.join('\n')}\nenvoy:\n${stderr().slice(-2000)}`);
    });
    const dump = async () => versionsOf((await (await fetch(`http://127.0.0.1:${adminPort}/config_dump?include_eds`)).json()) as Dump);
    const before = await dump();
    const churnBefore = await churn(adminPort);
    assert.ok(Object.keys(churnBefore).length >= 4, JSON.stringify(churnBefore));

    await first.controller.close();
    current = await startTestController(dir, { xdsPort });
    const record = await waitFor('Envoy to reconnect and ACK the restarted controller', synced(current), 30_000).catch((e: Error) => {
      throw new Error(`${e.message}\n${current.logs.join('\n')}\nenvoy:\n${stderr().slice(-2000)}`);
    });
    assert.deepEqual(await dump(), before, 'the same versions as before the restart');
    assert.deepEqual(Object.fromEntries(PUSH_ORDER.map((k) => [k, record.types[k]?.acked])), Object.fromEntries(PUSH_ORDER.map((k) => [k, first.controller.cache.get(identity)!.types[k].version])));
    assert.deepEqual(await churn(adminPort), churnBefore, 'no cluster or listener was added or replaced');
  } finally {
    envoy.kill('SIGKILL');
    await current.controller.close();
  }
});
