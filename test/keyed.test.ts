import { test } from 'node:test';
import assert from 'node:assert/strict';
import { KeyedMemo, tableChanges } from '../src/compiler/keyed.js';
import { recordInto, type StatusCall } from '../src/compiler/status.js';
import { compileUnits, type InputUnit } from '../src/compiler/units.js';
import { compileIR } from '../src/compiler/compile.js';

/** A table that counts how often it is looked into. */
class CountingMap<V> extends Map<string, V> {
  gets = 0;
  override get(key: string): V | undefined {
    this.gets++;
    return super.get(key);
  }
}

test('a table lookup is compared once per build: entries are checked against the keys that changed, and only those that read one are derived again', () => {
  const calls: StatusCall[] = [];
  const status = recordInto(calls);
  const build = (table: CountingMap<readonly string[]>, previous?: KeyedMemo<string, { item: CountingMap<readonly string[]> }>) => {
    const memo = new KeyedMemo<string, { item: CountingMap<readonly string[]> }>({ item: table }, previous);
    const values = ['a', 'b', 'c', 'd'].map((key) => memo.get(key, status, (read) => (read('item', key) ?? []).join('+')));
    return { memo: memo.seal(), values };
  };
  const shared = ['x'];
  const first = build(new CountingMap(Object.entries({ a: ['1', '2'], b: shared, c: ['3'], d: ['4'] })));
  assert.deepEqual(first.values, ['1+2', 'x', '3', '4']);
  assert.equal(first.memo.derived, 4);

  // The same contents in new lists (a table made again) are no change; `c` got a new value, `d` is gone.
  const table = new CountingMap(Object.entries({ a: ['1', '2'], b: shared, c: ['5'] }));
  const second = build(table, first.memo);
  assert.deepEqual(second.values, ['1+2', 'x', '5', '']);
  assert.equal(second.memo.derived, 2, 'c and d derived again; a and b reused');
  // The build compared the table with the previous one (tableChanges does not count here: it iterates) and looked into it only
  // for the two entries it derived: the reused ones were not looked up at all.
  assert.equal(table.gets, 2);
});

test('a function lookup is asked again for each read it recorded, and its answer compared', () => {
  const status = recordInto([]);
  let flag = false;
  let asked = 0;
  const lookups = {
    flag: () => {
      asked++;
      return flag;
    },
  };
  const build = (previous?: KeyedMemo<string, typeof lookups>) => {
    const memo = new KeyedMemo<string, typeof lookups>(lookups, previous);
    const value = memo.get('k', status, (read) => String(read('flag', '')));
    return { memo: memo.seal(), value };
  };
  const first = build();
  asked = 0;
  const same = build(first.memo);
  assert.equal(same.memo.derived, 0);
  assert.equal(asked, 1);
  flag = true;
  const changed = build(same.memo);
  assert.equal(changed.value, 'true');
  assert.equal(changed.memo.derived, 1);
});

test('tableChanges: values compared by reference, lists item by item; keys added and removed count', () => {
  const o = {};
  const before = new Map<string, unknown>([
    ['same', o],
    ['list', [o, 1]],
    ['moved', 1],
    ['gone', 1],
  ]);
  const after = new Map<string, unknown>([
    ['same', o],
    ['list', [o, 1]],
    ['moved', 2],
    ['new', undefined],
    ['added', 3],
  ]);
  assert.deepEqual([...tableChanges(before, after)].sort(), ['added', 'gone', 'moved']);
  assert.equal(tableChanges(before, before).size, 0);
});

/** One namespace of services, each with a pod, a TrafficTarget letting the previous one call it, and a split on the first. */
function mesh(services: number, edit: { ip?: [number, number]; weight?: number; caller?: number; renamed?: number } = {}): Map<string, InputUnit> {
  const units = new Map<string, InputUnit>();
  const doc = (value: unknown, source: string, document: number) => ({ origin: { source, document, line: 1 }, value });
  units.set('ns.yaml', {
    documents: [doc({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'shop', labels: { 'smc.dev/mesh': 'enabled' } } }, 'ns.yaml', 1), doc({ apiVersion: 'specs.smi-spec.io/v1alpha4', kind: 'TCPRoute', metadata: { name: 'all', namespace: 'shop' }, spec: {} }, 'ns.yaml', 2)],
    problems: [],
  });
  for (let i = 0; i < services; i++) {
    const name = `svc-${i}`;
    const source = `${name}.yaml`;
    const ip = edit.ip?.[0] === i ? edit.ip[1] : i + 10;
    const caller = edit.caller !== undefined && i === 1 ? edit.caller : i - 1;
    const docs: unknown[] = [
      { apiVersion: 'v1', kind: 'Service', metadata: { name: edit.renamed === i ? `${name}-renamed` : name, namespace: 'shop' }, spec: { selector: { app: name }, clusterIP: `10.96.0.${i + 10}`, ports: [{ name: 'http', port: 80, targetPort: 8080 }] } },
      { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name, namespace: 'shop' } },
      { apiVersion: 'v1', kind: 'Pod', metadata: { name: `${name}-pod`, namespace: 'shop', labels: { app: name } }, spec: { serviceAccountName: name, containers: [{ name: 'app', ports: [{ containerPort: 8080 }] }] }, status: { podIP: `10.0.0.${ip}` } },
    ];
    if (i > 0) docs.push({ apiVersion: 'access.smi-spec.io/v1alpha3', kind: 'TrafficTarget', metadata: { name: `to-${name}`, namespace: 'shop' }, spec: { destination: { kind: 'ServiceAccount', name, namespace: 'shop' }, sources: [{ kind: 'ServiceAccount', name: `svc-${caller}`, namespace: 'shop' }], rules: [{ kind: 'TCPRoute', name: 'all' }] } });
    if (i === 0) docs.push({ apiVersion: 'split.smi-spec.io/v1alpha4', kind: 'TrafficSplit', metadata: { name: 'split', namespace: 'shop' }, spec: { service: name, backends: [{ service: name, weight: edit.weight ?? 90 }, { service: 'svc-1', weight: 100 - (edit.weight ?? 90) }] } });
    units.set(source, { documents: docs.map((d, k) => doc(d, source, k + 1)), problems: [] });
  }
  return units;
}

/** The units of `next` that are the same as in `base` are the very values of `base` (as a source keeps unchanged files). */
function keep(base: Map<string, InputUnit>, next: Map<string, InputUnit>): Map<string, InputUnit> {
  return new Map([...next].map(([k, u]) => [k, JSON.stringify(u) === JSON.stringify(base.get(k)) ? base.get(k)! : u]));
}

test('in one namespace, each stage is built again only when something it read changed: a split rebuilds neither its workloads nor its services; a pod move rebuilds one workload and one service, and not the policy', () => {
  const base = mesh(30);
  const first = compileUnits(base);
  const stagesOf = (r: ReturnType<typeof compileUnits>) => r.memo.ir!.stages;
  const partOf = (r: ReturnType<typeof compileUnits>) => r.memo.ir!.parts.get('shop')!;
  const fresh = (units: Map<string, InputUnit>) => compileIR({ documents: [...units.keys()].sort().flatMap((k) => units.get(k)!.documents), problems: [] });

  const split = keep(base, mesh(30, { weight: 50 }));
  const afterSplit = compileUnits(split, {}, first);
  assert.equal(stagesOf(afterSplit).members.derived, 0, 'no workload read changed');
  assert.equal(stagesOf(afterSplit).services.derived, 0, 'no service read changed');
  assert.equal(stagesOf(afterSplit).policy.derived, 1, 'the TrafficSplit is read by the policy stage');
  assert.equal(partOf(afterSplit).services, partOf(first).services);
  assert.deepEqual(afterSplit.ir, fresh(split).ir);

  const moved = keep(split, mesh(30, { weight: 50, ip: [7, 99] }));
  const afterMove = compileUnits(moved, {}, afterSplit);
  assert.equal(stagesOf(afterMove).members.derived, 1);
  assert.equal(partOf(afterMove).members!.memo.derived, 1, 'one workload derived again');
  assert.equal(stagesOf(afterMove).services.derived, 1);
  assert.equal(partOf(afterMove).services!.memo.derived, 1, 'one service derived again (the one whose label list changed)');
  assert.equal(stagesOf(afterMove).ports.derived, 1, 'the ports of its identities are made again from its services');
  assert.equal(stagesOf(afterMove).policy.derived, 0, 'the policy read no address: its service names, identities and ports are the same');
  // Patched, not made again: the namespace's stages keep their messages, and its services stage lists the one service replaced.
  assert.equal(partOf(afterMove).services!.replaced?.services.size, 1, 'the services stage was patched');
  assert.equal(partOf(afterMove).services!.calls, partOf(afterSplit).services!.calls);
  assert.equal(partOf(afterMove).members!.calls, partOf(afterSplit).members!.calls);
  assert.deepEqual(afterMove.ir, fresh(moved).ir);
  assert.deepEqual(afterMove.status, fresh(moved).status);

  const caller = keep(moved, mesh(30, { weight: 50, ip: [7, 99], caller: 5 }));
  const afterCaller = compileUnits(caller, {}, afterMove);
  assert.equal(stagesOf(afterCaller).services.derived, 0);
  assert.equal(partOf(afterCaller).policy!.accessMemo.targets.derived, 1, 'one TrafficTarget derived again');
  assert.equal(partOf(afterCaller).policy!.routeGroups, partOf(afterMove).policy!.routeGroups, 'the policy stage was patched: its route checks stand');
  assert.deepEqual(afterCaller.ir, fresh(caller).ir);
});

test('a TrafficSplit that did not change is checked again when the services it names did: its backend Service renamed away, it is rejected', () => {
  const base = mesh(10);
  const first = compileUnits(base);
  assert.equal(first.ir.splits.length, 1);
  const renamed = keep(base, mesh(10, { renamed: 1 }));
  const after = compileUnits(renamed, {}, first);
  const fresh = compileIR({ documents: [...renamed.keys()].sort().flatMap((k) => renamed.get(k)!.documents), problems: [] });
  // The policy stage was patched (its route checks stand), and still the split is found wanting.
  assert.equal(after.memo.ir!.parts.get('shop')!.policy!.routeGroups, first.memo.ir!.parts.get('shop')!.policy!.routeGroups);
  assert.equal(after.ir.splits.length, 0);
  assert.deepEqual(after.ir, fresh.ir);
  assert.deepEqual(after.status, fresh.status);
});
