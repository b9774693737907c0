import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { KeyedMemo, PatchedTable, tableChanges, type Read } from '../src/compiler/keyed.js';
import { editedAt, replaceItems, sortedIndex } from '../src/compiler/group.js';
import { identityPorts, patchIdentityPorts } from '../src/compiler/ir/access-checks.js';
import { recordInto } from '../src/compiler/status.js';
import type { ServiceIR } from '../src/compiler/ir/types.js';

/** Tables patched on tables: what the engine's stages hand from one build to the next. */

const key = fc.constantFrom('a', 'b', 'c', 'd', 'e', 'f', 'g', 'h');
const op = fc.oneof(fc.tuple(fc.constant('put' as const), key, fc.integer({ min: 0, max: 3 })), fc.tuple(fc.constant('remove' as const), key));

test('property: a chain of patched tables (longer than the layers it keeps) reads, counts and iterates as a Map given the same puts and removes, and names the keys that changed', () => {
  fc.assert(
    fc.property(fc.dictionary(key, fc.integer({ min: 0, max: 3 })), fc.array(fc.array(op, { maxLength: 6 }), { minLength: 1, maxLength: 20 }), (start, layers) => {
      let table: ReadonlyMap<string, number> = new Map(Object.entries(start));
      const plain = new Map(table);
      for (const ops of layers) {
        const before = new Map(plain);
        const next = new PatchedTable(table);
        for (const o of ops) {
          if (o[0] === 'put') {
            next.put(o[1], o[2]);
            plain.set(o[1], o[2]);
          } else {
            assert.equal(next.remove(o[1]), plain.has(o[1]));
            plain.delete(o[1]);
          }
        }
        assert.equal(next.size, plain.size);
        for (const k of ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h']) {
          assert.equal(next.get(k), plain.get(k));
          assert.equal(next.has(k), plain.has(k));
        }
        // Iterated in the order a copy of the base with the same operations has.
        assert.deepEqual([...next], [...plain]);
        assert.deepEqual([...next.keys()], [...plain.keys()]);
        // Compared with the table it was made from: only the keys whose values differ (as a full comparison finds them).
        assert.deepEqual([...tableChanges(table, next)].sort(), [...tableChanges(before, plain)].sort());
        table = next;
      }
    }),
    { numRuns: 300 },
  );
});

test('replaceItems: a few replacements by scanning, many by one pass; the list itself when none of them is in it', () => {
  const items = Array.from({ length: 40 }, (_, i) => ({ i }));
  const few = new Map([[items[3]!, { i: 103 }]]);
  const many = new Map(items.slice(0, 20).map((x) => [x, { i: x.i + 100 }]));
  assert.deepEqual(replaceItems(items, few).map((x) => x.i), items.map((x) => (x.i === 3 ? 103 : x.i)));
  assert.deepEqual(replaceItems(items, many).map((x) => x.i), items.map((x) => (x.i < 20 ? x.i + 100 : x.i)));
  assert.equal(replaceItems(items, new Map([[{ i: -1 }, { i: -2 }]])), items);
  assert.equal(replaceItems(items, new Map(Array.from({ length: 9 }, (_, i) => [{ i: -i }, { i }]))), items);
});

test('editedAt names the places where a list of the same things holds edited ones, and refuses lists that do not line up; sortedIndex finds by binary search', () => {
  const [a, b, c, b2] = [{ k: 'a' }, { k: 'b' }, { k: 'c' }, { k: 'b' }];
  const same = (x: { k: string }, y: { k: string }) => x.k === y.k;
  assert.deepEqual(editedAt([a, b, c], [a, b2, c], same), [1]);
  assert.deepEqual(editedAt([a, b, c], [a, b, c], same), []);
  assert.equal(editedAt([a, b, c], [a, c, b], same), undefined, 'moved');
  assert.equal(editedAt([a, b], [a, b, c], same), undefined, 'added');
  const sorted = ['a', 'c', 'e', 'g'];
  for (const [key, at] of [['a', 0], ['e', 2], ['g', 3], ['b', -1], ['h', -1], ['0', -1]] as const) assert.equal(sortedIndex(sorted, (x) => (x < key ? -1 : x > key ? 1 : 0)), at, key);
  assert.equal(sortedIndex([], () => 0), -1);
});

type Lookups = { readonly table: ReadonlyMap<string, number>; readonly flag: (arg: string) => boolean };

test('property: carried builds (only the entries whose recorded reads changed are asked) give what full builds give, build after build, with readers kept up to date', () => {
  const entryKeys = ['p', 'q', 'r', 's', 't'];
  // Each entry reads two table keys chosen by its own value of the first (so what it reads changes as the table does), and a flag.
  const derive =
    (k: string) =>
    (read: Read<Lookups>): string => {
      const first = read('table', `${k}0`) ?? 0;
      const second = read('table', String.fromCharCode(97 + (first % 4))) ?? -1;
      return `${k}:${first}:${second}:${k === 'p' ? read('flag', k) : ''}`;
    };
  const tableKey = fc.constantFrom('a', 'b', 'c', 'd', 'p0', 'q0', 'r0', 's0', 't0');
  fc.assert(
    fc.property(fc.array(fc.record({ puts: fc.array(fc.tuple(tableKey, fc.integer({ min: 0, max: 5 })), { maxLength: 4 }), flag: fc.boolean() }), { minLength: 1, maxLength: 15 }), (steps) => {
      let flag = false;
      const lookupsOf = (table: ReadonlyMap<string, number>): Lookups => ({ table, flag: () => flag });
      let table: ReadonlyMap<string, number> = new Map();
      const status = recordInto([]);
      let memo = new KeyedMemo<string, Lookups>(lookupsOf(table));
      for (const k of entryKeys) memo.get(k, status, derive(k));
      memo.seal();
      for (const step of steps) {
        const next = new PatchedTable(table);
        for (const [k, v] of step.puts) next.put(k, v);
        flag = step.flag;
        table = next;
        const carried = KeyedMemo.carried<string, Lookups>(lookupsOf(table), memo);
        const values = new Map<string, string>();
        for (const k of carried.dirty()) values.set(k, carried.get(k, status, derive(k)));
        // Every entry, asked or not, is what a build from nothing gives.
        const fresh = new KeyedMemo<string, Lookups>(lookupsOf(table));
        for (const k of entryKeys) {
          const want = fresh.get(k, status, derive(k));
          const got = values.get(k) ?? carried.get(k, status, () => assert.fail(`${k} was not dirty, yet its reads changed`));
          assert.equal(got, want, k);
        }
        memo = carried.seal();
      }
    }),
    { numRuns: 300 },
  );
});

test('property: identity ports patched for services replaced in place are the ports found anew', () => {
  const ids = ['ns/a', 'ns/b', 'ns/c'];
  const endpoint = fc.record({ identity: fc.constantFrom(...ids), port: fc.constantFrom(80, 8080, 9090) });
  const service = (name: string) =>
    fc.array(fc.record({ port: fc.constantFrom(80, 81), protocol: fc.constantFrom('http' as const, 'tcp' as const), endpoints: fc.array(endpoint, { maxLength: 3 }) }), { maxLength: 2 }).map(
      (ports) =>
        ({
          namespace: 'ns',
          name,
          clusterIPs: [],
          ports: ports.map((p) => ({ name: '', port: p.port, targetPort: p.port, protocol: p.protocol, endpoints: p.endpoints.map((e) => ({ address: '10.0.0.1', port: e.port, workload: '', identity: e.identity, interception: 'redirect' })) })),
          identities: [...new Set(ports.flatMap((p) => p.endpoints.map((e) => e.identity)))].sort(),
        }) as unknown as ServiceIR,
    );
  const services = fc.tuple(service('s0'), service('s1'), service('s2'), service('s3'));
  fc.assert(
    fc.property(services, services, fc.array(fc.boolean(), { minLength: 4, maxLength: 4 }), (before, other, replace) => {
      const after = before.map((s, i) => (replace[i] ? other[i]! : s));
      const replaced = new Map(before.flatMap((s, i) => (replace[i] ? [[s, after[i]!] as const] : [])));
      const patched = patchIdentityPorts(identityPorts(before), after, replaced);
      assert.deepEqual(new Map(patched), identityPorts(after));
    }),
    { numRuns: 300 },
  );
});
