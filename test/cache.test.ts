import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { loadEnvoyProtos } from '../src/adapters/envoy-protos.js';
import { compile } from '../src/compiler/compile.js';
import type { MeshInputs } from '../src/compiler/inputs.js';
import { createSnapshotCache } from '../src/runtime/cache.js';
import { composedVersion, resourcesOf, setVersion } from '../src/compiler/envoy/snapshot.js';
import { asSnapshot, withResources } from './helpers/snapshots.js';

const codec = loadEnvoyProtos();

/** `clients` pods, each its own identity, all allowed to call one HTTP server. */
function fanIn(clients: number): MeshInputs {
  const docs: unknown[] = [
    { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'app', labels: { 'smc.dev/mesh': 'enabled' } } },
    { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'server', namespace: 'app', labels: { app: 'server' } }, spec: { serviceAccountName: 'server', containers: [{ name: 's', ports: [{ name: 'http', containerPort: 8080 }] }] }, status: { podIP: '198.18.0.2' } },
    { apiVersion: 'v1', kind: 'Service', metadata: { name: 'server', namespace: 'app' }, spec: { selector: { app: 'server' }, clusterIP: '198.19.0.2', ports: [{ name: 'http', port: 80, targetPort: 8080 }] } },
    { apiVersion: 'specs.smi-spec.io/v1alpha4', kind: 'TCPRoute', metadata: { name: 'all', namespace: 'app' }, spec: {} },
    {
      apiVersion: 'access.smi-spec.io/v1alpha3',
      kind: 'TrafficTarget',
      metadata: { name: 'to-server', namespace: 'app' },
      spec: { destination: { kind: 'ServiceAccount', name: 'server', namespace: 'app' }, sources: Array.from({ length: clients }, (_, i) => ({ kind: 'ServiceAccount', name: `client-${i}`, namespace: 'app' })), rules: [{ kind: 'TCPRoute', name: 'all' }] },
    },
  ];
  for (let i = 0; i < clients; i++) {
    docs.push({ apiVersion: 'v1', kind: 'Pod', metadata: { name: `client-${i}`, namespace: 'app', labels: { app: 'client' } }, spec: { serviceAccountName: `client-${i}` }, status: { podIP: `198.18.${1 + Math.floor(i / 250)}.${(i % 250) + 1}` } });
  }
  return { documents: docs.map((value, document) => ({ origin: { source: 'test', document, line: 0 }, value })), problems: [] };
}

test('a resource identical for 1,000 proxies is encoded and stored once', () => {
  const { snapshots } = compile(fanIn(1000), codec);
  assert.equal(snapshots.length, 1001);
  const cache = createSnapshotCache();
  cache.setSnapshots(snapshots);
  const clients = cache.identities().filter((id) => id.includes('/sa/client-'));
  assert.equal(clients.length, 1000);
  const cluster = 'outbound|80|server.app';
  const first = cache.get(clients[0]!)!.types.cluster.resources.get(cluster)!;
  for (const id of clients) assert.equal(cache.get(id)!.types.cluster.resources.get(cluster), first, `${id} holds its own copy`);
  const stats = cache.stats();
  // Per client: cluster, assignment, listener, route; all four are the same for every client.
  assert.ok(stats.resourceReferences >= 4000, JSON.stringify(stats));
  assert.ok(stats.uniqueResources < 20, `stored ${stats.uniqueResources} resources for ${stats.resourceReferences} references`);
});

test('setSnapshots reports per identity, type and resource what changed, what was removed, and identities that left', () => {
  const { snapshots } = compile(fanIn(2), codec);
  const cache = createSnapshotCache();
  const initial = cache.setSnapshots(snapshots);
  assert.equal(initial.length, 3, 'every identity is new');
  assert.deepEqual(cache.setSnapshots(snapshots), [], 'the same snapshots again change nothing');

  const [client0, client1] = snapshots.filter((s) => s.identity.includes('/sa/client-'));
  const cla = client0!.types.endpoint.resources[0]!;
  const moved = codec.encode('envoy.config.endpoint.v3.ClusterLoadAssignment', { clusterName: cla.name, endpoints: [] });
  const edited = withResources(asSnapshot(cache.get(client0!.identity)!), 'endpoint', 'e2', [{ name: cla.name, bytes: moved }]);
  const noRoute = { ...edited, types: { ...edited.types, route: { version: 'r2', resources: [] } } };
  const changes = cache.setSnapshots([noRoute, client1!]);
  const byId = new Map(changes.map((c) => [c.identity, c]));
  assert.deepEqual(byId.get(client0!.identity)?.types, { endpoint: { changed: [cla.name], removed: [] }, route: { changed: [], removed: ['outbound|80|server.app'] } });
  assert.equal(byId.get(client1!.identity), undefined, 'an identity whose snapshot did not change is not reported');
  const server = snapshots.find((s) => s.identity.endsWith('/sa/server'))!;
  assert.equal(byId.get(server.identity)?.gone, true, 'an identity left out of the new set is gone');
  assert.equal(cache.get(server.identity), undefined);
});

test('a set made of parts (as the compile worker sends a permissive mesh\'s) is cached as its parts: one stored part for every identity, looked up and iterated in name order, changed part by part, released with its last holder', () => {
  const r = (name: string, text: string) => ({ name, bytes: Buffer.from(text) });
  const set = (version: string, ...resources: ReturnType<typeof r>[]) => ({ version, resources });
  // What a structured clone of composed sets gives: { version, parts } and no resources.
  const shared1 = set('s1', r('outbound|80|a', 'a1'), r('outbound|80|c', 'c1'));
  const shared2 = set('s2', r('outbound|80|a', 'a2'), r('outbound|80|d', 'd1'));
  const own = (who: string) => set(`own-${who}`, r(`inbound|8080|${who}`, who));
  const empty = set('e');
  const snapshot = (identity: string, shared: typeof shared1) => ({
    identity,
    types: { cluster: { version: `${shared.version}+${identity}`, parts: [shared, own(identity)] }, endpoint: empty, listener: empty, route: empty, secret: empty },
  });
  const cache = createSnapshotCache();
  // A first publish: every name of both parts is new.
  const first = cache.setSnapshots([snapshot('x', shared1), snapshot('y', shared1)]);
  assert.deepEqual(first.map((c) => [c.identity, c.types.cluster]), [
    ['x', { changed: ['inbound|8080|x', 'outbound|80|a', 'outbound|80|c'], removed: [] }],
    ['y', { changed: ['inbound|8080|y', 'outbound|80|a', 'outbound|80|c'], removed: [] }],
  ]);
  assert.equal(first[0]!.types.endpoint, undefined, 'an empty set is no change');
  const x = cache.get('x')!.types.cluster;
  assert.deepEqual([...x.resources.keys()], ['inbound|8080|x', 'outbound|80|a', 'outbound|80|c']);
  assert.equal(x.resources.size, 3);
  assert.equal(Buffer.from(x.resources.get('outbound|80|c')!.bytes).toString(), 'c1');
  assert.equal(x.resources.has('inbound|8080|y'), false);
  // The shared part is one cached type, held by both identities.
  assert.equal(x.parts![0], cache.get('y')!.types.cluster.parts![0]);
  assert.deepEqual(cache.stats().uniqueResources, 4);
  // The shared part changes: a changed, c removed, d added; the own parts did not move.
  const changes = cache.update([snapshot('x', shared2), snapshot('y', shared2)]);
  assert.deepEqual(changes.map((c) => [c.identity, c.types.cluster]), [
    ['x', { changed: ['outbound|80|a', 'outbound|80|d'], removed: ['outbound|80|c'] }],
    ['y', { changed: ['outbound|80|a', 'outbound|80|d'], removed: ['outbound|80|c'] }],
  ]);
  // The first shared part had no holder left: its resources are gone from the store.
  assert.deepEqual(cache.stats().uniqueResources, 4);
  assert.deepEqual([...cache.get('y')!.types.cluster.resources.values()].map((v) => Buffer.from(v.bytes).toString()), ['y', 'a2', 'd1']);
  // An identity leaves: every name it held is removed.
  const gone = cache.setSnapshots([snapshot('x', shared2)]);
  assert.deepEqual(gone.map((c) => [c.identity, c.gone, c.types.cluster]), [['y', true, { changed: [], removed: ['inbound|8080|y', 'outbound|80|a', 'outbound|80|d'] }]]);
});

test('property: whatever the sequence of updates and removals (resource objects given again, as in-process, or anew, as across the thread), the cache holds each resource once while some snapshot holds it, and no more', () => {
  // A pool of resource objects: the same object may be given in many sets and many updates.
  const pool = Array.from({ length: 6 }, (_, i) => ({ name: `r${i % 3}`, bytes: Buffer.from(`content-${i}`), hash: `h${i}` }));
  const kinds = ['cluster', 'endpoint', 'listener', 'route', 'secret'] as const;
  const op = fc.record({ identity: fc.constantFrom('a', 'b', 'c'), remove: fc.boolean(), picks: fc.uniqueArray(fc.nat(5), { selector: (i) => i % 3, maxLength: 3 }), fresh: fc.boolean() });
  fc.assert(
    fc.property(fc.array(op, { maxLength: 25 }), (ops) => {
      const cache = createSnapshotCache();
      const model = new Map<string, { name: string; bytes: Buffer; hash: string }[]>();
      for (const o of ops) {
        if (o.remove) {
          cache.update([], [o.identity]);
          model.delete(o.identity);
          continue;
        }
        const resources = o.picks.map((i) => (o.fresh ? { ...pool[i]! } : pool[i]!)).sort((x, y) => (x.name < y.name ? -1 : 1));
        // A set per kind (as the compiler makes them), holding the very resource objects.
        cache.update([{ identity: o.identity, types: Object.fromEntries(kinds.map((k) => [k, { version: resources.map((r) => r.hash).join('+'), resources }])) as never }]);
        model.set(o.identity, resources);
      }
      const held = new Set([...model.values()].flatMap((rs) => rs.map((r) => `${r.name}=${r.hash}`)));
      assert.equal(cache.stats().uniqueResources, held.size * kinds.length);
      for (const [id, rs] of model) for (const k of kinds) assert.deepEqual([...cache.get(id)!.types[k].resources.values()].map((r) => `${r.name}=${r.version}=${Buffer.from(r.bytes).toString()}`), rs.map((r) => `${r.name}=${r.hash}=${r.bytes.toString()}`));
    }),
    { numRuns: 300 },
  );
});

test('property: groups that move alike (one set for all, or a new shared part beside each one\'s own, whole or as what differs, or the same edit of each one\'s own set) leave the cache as patches one by one would, holding each resource once while some snapshot holds it, and tell what changed', () => {
  const pool = Array.from({ length: 8 }, (_, i) => ({ name: `r${i % 4}`, bytes: Buffer.from(`content-${i}`), hash: `h${i}` }));
  const identities = ['a', 'b', 'c', 'd'];
  type R = { name: string; bytes: Buffer; hash: string };
  // (Versions as the compiler makes them: the cache makes an edited set's version itself.)
  const plain = (rs: readonly R[]) => ({ version: setVersion(rs, (r) => r.hash), resources: rs });
  const picked = (picks: readonly number[], fresh: boolean) => picks.map((i) => (fresh ? { ...pool[i]! } : pool[i]!)).sort((x, y) => (x.name < y.name ? -1 : 1));
  // Each identity's clusters: a shared part and its own (one resource named after it); its endpoints: one set.
  const own = (id: string): R[] => [{ name: `own-${id}`, bytes: Buffer.from(`own-${id}`), hash: `o-${id}` }];
  const composed = (shared: readonly R[], id: string) => {
    const [s, o] = [plain(shared), plain(own(id))];
    return { version: composedVersion(s.version, o.version), parts: [s, o] };
  };
  const picks = fc.uniqueArray(fc.nat(7), { selector: (i) => i % 4, maxLength: 4 });
  // (Patches pick from a few sets, so that identities often hold the same one and moves make groups.)
  const few = fc.constantFrom([], [0], [0, 1], [1, 6]);
  const op = fc.oneof(
    fc.record({ kind: fc.constant('patch' as const), identity: fc.constantFrom(...identities), shared: few, endpoints: few, fresh: fc.boolean() }),
    fc.record({ kind: fc.constant('remove' as const), identity: fc.constantFrom(...identities) }),
    fc.record({ kind: fc.constant('move' as const), part: fc.boolean(), to: picks, delta: fc.boolean(), fresh: fc.boolean() }),
    // The identities picked (bits of `who`) each put the same resources in their own endpoint set, and remove the same names.
    fc.record({ kind: fc.constant('edit' as const), who: fc.nat(15), put: picks, removed: fc.uniqueArray(fc.constantFrom<string>('r0', 'r1', 'r2', 'r3'), { maxLength: 2 }), fresh: fc.boolean() }),
  );
  fc.assert(
    fc.property(fc.array(op, { maxLength: 20 }), (ops) => {
      const cache = createSnapshotCache();
      const model = new Map<string, { shared: R[]; endpoints: R[] }>();
      for (const o of ops) {
        if (o.kind === 'remove') {
          cache.update([], [o.identity]);
          model.delete(o.identity);
        } else if (o.kind === 'patch') {
          const [shared, endpoints] = [picked(o.shared, o.fresh), picked(o.endpoints, o.fresh)];
          const types = { cluster: composed(shared, o.identity), endpoint: plain(endpoints), listener: plain([]), route: plain([]), secret: plain(own(o.identity)) };
          cache.update([{ identity: o.identity, types }]);
          model.set(o.identity, { shared, endpoints });
        } else if (o.kind === 'edit') {
          const group = [...model.keys()].sort().filter((id) => o.who & (1 << identities.indexOf(id)));
          const put = picked(o.put, o.fresh);
          const removed = o.removed.filter((n) => !put.some((r) => r.name === n));
          if (group.length === 0) continue;
          const told = cache.update([], [], [{ identities: group, types: [{ kind: 'endpoint', part: false, set: { edit: true, put, removed } }] }]);
          const expected = [];
          for (const id of group) {
            const was = model.get(id)!.endpoints;
            const endpoints = [...was.filter((r) => !removed.includes(r.name) && !put.some((p) => p.name === r.name)), ...put].sort((x, y) => (x.name < y.name ? -1 : 1));
            model.set(id, { ...model.get(id)!, endpoints });
            // What it tells: the names put whose content is new to this identity, and the names it held that are removed.
            const changed = put.filter((r) => was.find((w) => w.name === r.name)?.hash !== r.hash).map((r) => r.name);
            const gone = removed.filter((n) => was.some((w) => w.name === n));
            if (changed.length + gone.length > 0) expected.push({ identity: id, types: { endpoint: { changed, removed: gone } }, gone: false });
          }
          assert.deepEqual(told, expected);
        } else {
          // The identities that hold the same set (or shared part) as the first one: a group the worker would make.
          const at = (id: string) => (o.part ? model.get(id)!.shared : model.get(id)!.endpoints);
          const first = [...model.keys()].sort()[0];
          if (first === undefined) continue;
          const from = plain(at(first));
          const group = [...model.keys()].sort().filter((id) => plain(at(id)).version === from.version);
          const to = picked(o.to, o.fresh);
          const set = o.delta ? { version: plain(to).version, from: from.version, put: to.filter((r) => !from.resources.some((f) => f.name === r.name && f.hash === r.hash)), removed: from.resources.filter((f) => !to.some((r) => r.name === f.name)).map((f) => f.name) } : plain(to);
          cache.update([], [], [{ identities: group, types: [{ kind: o.part ? 'cluster' : 'endpoint', part: o.part, set }] }]);
          for (const id of group) model.set(id, o.part ? { ...model.get(id)!, shared: to } : { ...model.get(id)!, endpoints: to });
        }
      }
      // Each identity's sets are what patches would have made, versions included; each resource is held once.
      const held = new Set<string>();
      for (const [id, m] of model) {
        const types = cache.get(id)!.types;
        const expected = { cluster: composed(m.shared, id), endpoint: plain(m.endpoints) };
        for (const k of ['cluster', 'endpoint'] as const) {
          assert.equal(types[k].version, expected[k].version, `${id} ${k}`);
          assert.deepEqual([...types[k].resources.values()].map((r) => `${r.name}=${r.version}=${Buffer.from(r.bytes).toString()}`), resourcesOf(expected[k]).map((r) => `${r.name}=${r.hash}=${Buffer.from(r.bytes).toString()}`), `${id} ${k}`);
          for (const r of resourcesOf(expected[k])) held.add(`${k} ${r.name}=${r.hash}`);
        }
        held.add(`secret own-${id}`);
      }
      assert.equal(cache.stats().uniqueResources, held.size);
    }),
    { numRuns: 400 },
  );
});
