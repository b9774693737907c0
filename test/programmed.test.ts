import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { loadEnvoyProtos } from '../src/adapters/envoy-protos.js';
import { loadPaths } from '../src/adapters/yaml-files.js';
import { compile } from '../src/compiler/compile.js';
import { PUSH_ORDER, TYPES } from '../src/compiler/envoy/codec.js';
import type { ResourceSet } from '../src/compiler/envoy/snapshot.js';
import { originsOfName, originsOfResource, programmedConditions, ProgrammedIndex, shapedBy, type ProgrammedQuery } from '../src/compiler/programmed.js';
import { progressOf, recordChanging, recordReply, recordSent, type ProxyRecord, type ReplyEvents } from '../src/runtime/proxy-status.js';

/**
 * The two halves of the Programmed condition on their own: what a proxy has
 * taken, per resource, from the ADS exchange (runtime/proxy-status.ts), and
 * which objects each resource of a compiled mesh traces to
 * (compiler/programmed.ts). e2e-programmed holds both to real Envoy.
 */

const quiet: ReplyEvents = { ack() {}, nack() {}, stale() {} };
const record = (): ProxyRecord => ({ stream: 1, variant: 'delta', identity: 'spiffe://cluster.local/ns/a/sa/a', nodeId: 'a/a/a-1', address: '', connectedSince: '', types: {} });
const send = (r: ProxyRecord, before: Map<string, string>, after: Map<string, string>, changed: string[]) => {
  recordChanging(r, 'listener', changed, before);
  recordSent(r, 'listener', [...after].join(), after);
};

test('a NACK costs the resources its message names: the others of the response are taken, and later changes are tracked on their own', () => {
  const r = record();
  const v1 = new Map([['inbound', '1'], ['outbound|80|explicit', '1']]);
  const v2 = new Map([['inbound', '2'], ['outbound|80|explicit', '2']]);
  send(r, v1, v2, ['inbound', 'outbound|80|explicit']);
  assert.deepEqual(progressOf(r).pending.map((p) => [p.kind, p.names, p.held]), [['listener', ['inbound', 'outbound|80|explicit'], ['1', '1']]], 'sent, not yet taken, with what the proxy holds instead');
  recordReply(r, quiet, 'listener', 'v2', { code: 13, message: "Error adding/updating listener(s) outbound|80|explicit: cannot bind '127.0.0.1:80': Address already in use\n" });
  const after = progressOf(r);
  assert.deepEqual(after.pending, [], 'inbound was taken: Envoy applies what it can of a response');
  assert.deepEqual(after.rejected.map((x) => [x.name, x.held, x.message]), [['outbound|80|explicit', '1', "Error adding/updating listener(s) outbound|80|explicit: cannot bind '127.0.0.1:80': Address already in use"]]);

  // A later change of another resource: pending on its own, and its ACK (delta: it covers that response) keeps the rejection.
  const v3 = new Map([['inbound', '3'], ['outbound|80|explicit', '2']]);
  send(r, v2, v3, ['inbound']);
  assert.deepEqual(progressOf(r).pending.map((p) => p.names), [['inbound']]);
  recordReply(r, quiet, 'listener', 'v3', null);
  assert.deepEqual(progressOf(r).pending, []);
  assert.deepEqual(progressOf(r).rejected.map((x) => x.name), ['outbound|80|explicit'], 'still refused: it was not sent again');

  // The refused resource changed back to what the proxy holds: nothing is waited for any more.
  const v4 = new Map([['inbound', '3'], ['outbound|80|explicit', '1']]);
  send(r, v3, v4, ['outbound|80|explicit']);
  assert.deepEqual(progressOf(r), { pending: [], rejected: [] });
});

test('a NACK that names no resource blames every resource the unanswered responses changed; in state of the world an ACK takes the whole set', () => {
  const r = record();
  send(r, new Map([['a', '1'], ['b', '1'], ['c', '1']]), new Map([['a', '2'], ['b', '1'], ['c', '2']]), ['a', 'c']);
  recordReply(r, quiet, 'listener', 'v2', { code: 3, message: 'something went wrong' }, true);
  assert.deepEqual(progressOf(r).rejected.map((x) => x.name), ['a', 'c'], 'b did not change: it is not blamed');
  // State of the world: the next response carries the refused ones again, and an ACK of it takes everything.
  send(r, new Map([['a', '2'], ['b', '1'], ['c', '2']]), new Map([['a', '2'], ['b', '2'], ['c', '2']]), ['b']);
  recordReply(r, quiet, 'listener', 'v3', null, true);
  assert.deepEqual(progressOf(r), { pending: [], rejected: [] });
});

test('what was published and not yet sent counts as not taken (a proxy behind its snapshot)', () => {
  const r = record();
  const target = new Map([['outbound', 'x1']]);
  send(r, new Map(), target, ['outbound']);
  recordReply(r, quiet, 'listener', 'v', null);
  assert.deepEqual(progressOf(r), { pending: [], rejected: [] });
  const snapshot = (listeners: Map<string, string>, version: string) => {
    const resources = new Map([...listeners].map(([name, v]) => [name, { version: v }]));
    const none = { version: r.types.listener!.sent!, resources: new Map() };
    return { types: { cluster: none, endpoint: none, route: none, secret: none, listener: { version, resources } } };
  };
  assert.deepEqual(progressOf(r, snapshot(target, r.types.listener!.sent!)), { pending: [], rejected: [] }, 'in step with its snapshot');
  const behind = progressOf(r, snapshot(new Map([['outbound', 'x2'], ['inbound', 'y1']]), 'newer'));
  assert.deepEqual(behind.pending.map((p) => [p.names, p.held]), [[['inbound', 'outbound'], [undefined, 'x1']]]);
});

test('every name smc gives traces to the object it was built from', () => {
  const cases: [string, string[]][] = [
    ['TrafficTarget shop/client-to-web spec.rules[0]', ['TrafficTarget shop/client-to-web']],
    ['TrafficTarget app/client-to-server specs[1]', ['TrafficTarget app/client-to-server']],
    ['TrafficSplit shop/beta-to-v2 shop/beta-users#beta', ['TrafficSplit shop/beta-to-v2', 'HTTPRouteGroup shop/beta-users']],
    ['HTTPRoute shop/web exact-health matches[0]', ['HTTPRoute shop/web']],
    ['GRPCRoute shop/prices rules[2] matches[0]', ['GRPCRoute shop/prices']],
    ['Service bookstore/bookstore-v1', ['Service bookstore/bookstore-v1']],
    ['bookstore/bookstore-service-routes#buy-a-book', ['HTTPRouteGroup bookstore/bookstore-service-routes']],
    ['outbound|14001|bookstore.bookstore', ['Service bookstore/bookstore']],
    ['inbound|8080|local', []],
    ['outbound|80|explicit', []],
    ['bookstore-v1.bookstore:14001', ['Service bookstore/bookstore-v1']],
    ['prices-v1.shop.svc.cluster.local:9090', ['Service shop/prices-v1']],
    ['envoy.filters.http.rbac', []],
    ['permissive', []],
  ];
  for (const [name, objects] of cases) assert.deepEqual(originsOfName(name), objects, name);
});

test('on the bookstore mesh: which proxies each object shapes, and which objects a resource not yet taken holds back', async () => {
  const codec = loadEnvoyProtos();
  const result = compile(await loadPaths(['golden/bookstore/input']), codec);
  const snapshotOf = (id: string) => result.snapshots.find((s) => s.identity === id);
  const id = (sa: string) => `spiffe://cluster.local/ns/${sa === 'mysql' ? 'bookwarehouse' : sa}/sa/${sa}`;
  const rulesOf = (tt: string) => (tt === 'TrafficTarget bookstore/bookbuyer-access-bookstore' ? ['HTTPRouteGroup bookstore/bookstore-service-routes'] : []);
  const ask = (q: Partial<ProgrammedQuery>, carries?: (o: string, v: string) => boolean) =>
    programmedConditions({ codec, ir: result.ir, status: result.status, snapshotOf, rulesOf, rulesVersion: '1', ...(carries ? { carries } : {}) }, { connected: { [id('bookbuyer')]: 1, [id('bookstore')]: 2 }, progress: [], now: 10_000, ...q });

  // Whom each object shapes: bookbuyer's TrafficTarget its destination (RBAC, inbound routes) and its source (what it may call).
  const buyer = shapedBy(codec, result.ir, id('bookbuyer'), snapshotOf(id('bookbuyer'))!);
  assert.deepEqual([...buyer.keys()].sort(), ['TrafficSplit bookstore/bookstore-split', 'TrafficTarget bookstore/bookbuyer-access-bookstore']);
  assert.deepEqual([...buyer.get('TrafficSplit bookstore/bookstore-split')!].map(([k, names]) => [k, [...names]]).sort(), [['listener', ['outbound']], ['route', ['outbound|14001|bookstore.bookstore']]], 'its route table, and the listener that names it');
  const store = shapedBy(codec, result.ir, id('bookstore'), snapshotOf(id('bookstore'))!);
  assert.deepEqual([...store.keys()].sort(), ['HTTPRouteGroup bookstore/bookstore-service-routes', 'TrafficTarget bookstore/bookbuyer-access-bookstore', 'TrafficTarget bookwarehouse/bookstore-access-bookwarehouse']);

  const settled = ask({});
  assert.deepEqual(
    [...settled].map(([k, c]) => [k, c.reason, c.proxies]).sort(),
    [
      ['HTTPRouteGroup bookstore/bookstore-service-routes', 'Programmed', 3],
      ['HTTPRouteGroup bookwarehouse/bookwarehouse-service-routes', 'NoProxies', 0],
      ['MeshConfig smc-system/smc', 'Programmed', 3],
      ['TCPRoute bookwarehouse/mysql', 'NoProxies', 0],
      ['TrafficSplit bookstore/bookstore-split', 'Programmed', 1],
      ['TrafficTarget bookstore/bookbuyer-access-bookstore', 'Programmed', 3],
      ['TrafficTarget bookwarehouse/bookstore-access-bookwarehouse', 'Programmed', 2],
      ['TrafficTarget bookwarehouse/bookwarehouse-access-mysql', 'NoProxies', 0],
    ],
  );

  // bookbuyer has not taken its new route table: the objects behind it are Pending there, the others are as they were.
  const pending = ask({ progress: [{ stream: 2, identity: id('bookbuyer'), node: 'bookbuyer/bookbuyer/b-2', pending: [{ kind: 'route', names: ['outbound|14001|bookstore.bookstore'], held: ['old'], since: 7_500 }], rejected: [] }] });
  assert.deepEqual(pending.get('TrafficSplit bookstore/bookstore-split'), {
    status: 'False',
    reason: 'Pending',
    message: 'programmed on 0 of 1 proxies; waiting for 1 to acknowledge (the longest 2.5 s: bookbuyer/bookbuyer/b-2, route)',
    proxies: 1,
    programmed: 0,
    pending: [{ node: 'bookbuyer/bookbuyer/b-2', kind: 'route', resources: ['outbound|14001|bookstore.bookstore'], waitingMs: 2500 }],
  });
  assert.equal(pending.get('TrafficTarget bookstore/bookbuyer-access-bookstore')?.message, 'programmed on 2 of 3 proxies; waiting for 1 to acknowledge (the longest 2.5 s: bookbuyer/bookbuyer/b-2, route)');
  assert.equal(pending.get('TrafficTarget bookwarehouse/bookstore-access-bookwarehouse')?.reason, 'Programmed', 'not behind that route table');

  // The version bookbuyer holds already carries the TrafficTarget as it is (only the split changed): the TrafficTarget stays programmed.
  const carried = ask({ progress: [{ stream: 2, identity: id('bookbuyer'), node: 'bookbuyer/bookbuyer/b-2', pending: [{ kind: 'route', names: ['outbound|14001|bookstore.bookstore'], held: ['old'], since: 7_500 }], rejected: [] }] }, (o) => o !== 'TrafficSplit bookstore/bookstore-split');
  assert.equal(carried.get('TrafficSplit bookstore/bookstore-split')?.reason, 'Pending');
  assert.equal(carried.get('TrafficTarget bookstore/bookbuyer-access-bookstore')?.reason, 'Programmed');

  // A rejection names the proxy, the resource and Envoy's words; a rejection outweighs a wait.
  const rejected = ask({ progress: [{ stream: 3, identity: id('bookstore'), node: 'bookstore/bookstore/s-1', pending: [], rejected: [{ kind: 'listener', name: 'inbound', held: undefined, message: 'no', at: 1 }] }] });
  assert.deepEqual(
    [...rejected].filter(([, c]) => c.reason === 'Rejected').map(([k, c]) => [k, c.message]).sort(),
    [
      ['HTTPRouteGroup bookstore/bookstore-service-routes', 'rejected by 1 of 3 proxies: bookstore/bookstore/s-1 rejected listener inbound: no'],
      ['MeshConfig smc-system/smc', 'rejected by 1 of 3 proxies: bookstore/bookstore/s-1 rejected listener inbound: no'],
      ['TrafficTarget bookstore/bookbuyer-access-bookstore', 'rejected by 1 of 3 proxies: bookstore/bookstore/s-1 rejected listener inbound: no'],
    ],
  );
});

test('the index answers what changed: a stream that moves touches its objects only, settling clears them, a disconnect leaves what only it carried without proxies', async () => {
  const codec = loadEnvoyProtos();
  const result = compile(await loadPaths(['golden/bookstore/input']), codec);
  const id = (sa: string) => `spiffe://cluster.local/ns/${sa}/sa/${sa}`;
  const inp = { codec, ir: result.ir, status: result.status, snapshotOf: (x: string) => result.snapshots.find((s) => s.identity === x), rulesOf: () => [], rulesVersion: '1' };
  const index = new ProgrammedIndex();
  const first = index.conditions(inp, { full: true, connected: { [id('bookbuyer')]: 1, [id('bookstore')]: 1 }, progress: [], now: 0 });
  assert.equal(first.changed.length, 8, 'a full query answers every object');
  assert.deepEqual(index.conditions(inp, { full: false, connected: {}, progress: [], now: 1 }), { changed: [], removed: [] }, 'nothing moved: nothing to say');
  const pendingSplit = { stream: 7, identity: id('bookbuyer'), node: 'bookbuyer/bookbuyer/b-1', pending: [{ kind: 'route' as const, names: ['outbound|14001|bookstore.bookstore'], held: [undefined], since: 0 }], rejected: [] };
  const moved = index.conditions(inp, { full: false, connected: {}, progress: [pendingSplit], now: 2 });
  assert.deepEqual(moved.changed.map(([k, c]) => [k, c.reason]).sort(), [['MeshConfig smc-system/smc', 'Pending'], ['TrafficSplit bookstore/bookstore-split', 'Pending'], ['TrafficTarget bookstore/bookbuyer-access-bookstore', 'Pending']]);
  const settled = index.conditions(inp, { full: false, connected: {}, progress: [{ ...pendingSplit, pending: [] }], now: 3 });
  assert.deepEqual(settled.changed.map(([k, c]) => [k, c.reason]).sort(), [['MeshConfig smc-system/smc', 'Programmed'], ['TrafficSplit bookstore/bookstore-split', 'Programmed'], ['TrafficTarget bookstore/bookbuyer-access-bookstore', 'Programmed']]);
  const gone = index.conditions(inp, { full: false, connected: { [id('bookbuyer')]: 0 }, progress: [], now: 4 });
  assert.deepEqual(gone.changed.map(([k, c]) => [k, c.reason, c.proxies]).sort(), [['MeshConfig smc-system/smc', 'Programmed', 1], ['TrafficSplit bookstore/bookstore-split', 'NoProxies', 0], ['TrafficTarget bookstore/bookbuyer-access-bookstore', 'Programmed', 1]]);
});

/** The reading of origins from decoded JSON, key by key (the oracle the wire reading must agree with). */
function originsOfJson(json: unknown): { origins: string[]; routes: string[] } {
  const names = new Set(['name', 'cluster', 'clusterName', 'routeConfigName']);
  const found = new Set<string>();
  const routes = new Set<string>();
  const add = (name: string) => originsOfName(name).forEach((o) => found.add(o));
  const walk = (v: unknown, key: string | undefined) => {
    if (Array.isArray(v)) for (const x of v) walk(x, key);
    else if (v !== null && typeof v === 'object') {
      for (const [k, x] of Object.entries(v as Record<string, unknown>)) {
        if (key === 'policies') add(k);
        walk(x, k);
      }
    } else if (typeof v === 'string' && key !== undefined && names.has(key)) {
      add(v);
      if (key === 'routeConfigName') routes.add(v);
    }
  };
  walk(json, undefined);
  return { origins: [...found].sort(), routes: [...routes].sort() };
}

test('the origins read from a resource\'s texts on the wire are those its decoded JSON shows, for every resource of every golden case', async () => {
  const codec = loadEnvoyProtos();
  const leaves = (set: ResourceSet): ResourceSet[] => (set.parts ? set.parts.flatMap(leaves) : [set]);
  let compared = 0;
  let traced = 0;
  for (const name of readdirSync('golden').sort()) {
    const input = join('golden', name, 'input');
    const result = compile(await loadPaths([input], { relativeTo: input }), codec);
    const seen = new Set<Uint8Array>();
    for (const snapshot of result.snapshots) {
      for (const kind of PUSH_ORDER) {
        for (const leaf of leaves(snapshot.types[kind])) {
          for (const r of leaf.resources) {
            if (seen.has(r.bytes)) continue;
            seen.add(r.bytes);
            const expected = originsOfJson(codec.toJson(TYPES[kind], r.bytes));
            assert.deepEqual(originsOfResource(codec, TYPES[kind], r.bytes), expected, `${name}: ${kind} ${r.name}`);
            compared++;
            if (expected.origins.length > 0) traced++;
          }
        }
      }
    }
  }
  // Enough of them trace to something for the comparison to mean something (RBAC policies, routes, listeners, clusters).
  assert.ok(compared > 300 && traced > 150, `${compared} resources compared, ${traced} tracing to an object`);
});
