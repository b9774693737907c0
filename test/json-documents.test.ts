import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { parseJsonDocuments, parseText, parseYaml } from '../src/adapters/yaml-files.js';

/**
 * Files of JSON documents are read by JSON.parse (adapters/yaml-files.ts):
 * whatever the text, what is read must be what the YAML parser reads of it,
 * origins (document index, line) and problems included.
 */
const same = (text: string) => assert.deepEqual(parseText(text, 'f.json'), parseYaml(text, 'f.json'), JSON.stringify(text));

// Strings of any UTF-16 code units (control characters, lone surrogates), which JSON escapes and YAML must read back the same.
const objectArb = fc.dictionary(fc.oneof(fc.string({ maxLength: 5, unit: 'binary' }), fc.constantFrom('items', 'kind', 'a', '__proto__', 'é', 'x"y', 'a:b', '\\')), fc.jsonValue({ maxDepth: 2, stringUnit: 'binary' }), { maxKeys: 4 });

test('JSON documents between --- lines: read as the YAML parser reads them', () => {
  let byJson = 0;
  let runs = 0;
  fc.assert(
    fc.property(
      fc.array(fc.tuple(objectArb, fc.constantFrom(0, 2, undefined), fc.constantFrom('', '\n', '\n\n', '  \n')), { minLength: 1, maxLength: 4 }),
      fc.constantFrom('', '---\n', '\n---\n', '\n'),
      fc.constantFrom('---', '--- ', '---\t'),
      fc.constantFrom('', '\n', '\n---\n', '\n...\n'),
      (docs, lead, marker, tail) => {
        const text = lead + docs.map(([o, indent, gap]) => gap + JSON.stringify(o, null, indent)).join(`\n${marker}\n`) + tail;
        same(text);
        runs++;
        if (parseJsonDocuments(text, 'f.json')) byJson++;
      },
    ),
    { numRuns: 600 },
  );
  // Most of these texts take the JSON path (the rest: an `items` key, a trailing marker, ...), so it is what is held to the YAML parser.
  assert.ok(byJson > runs / 3, `${byJson} of ${runs} read as JSON`);
});

test('the files a generator writes take the JSON path', () => {
  const docs = [{ apiVersion: 'v1', kind: 'Service', metadata: { name: 'a', namespace: 'n' }, spec: { ports: [{ port: 80 }] } }, { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'a-1', namespace: 'n' } }];
  for (const text of [docs.map((d) => JSON.stringify(d)).join('\n---\n'), `${JSON.stringify(docs[0], null, 2)}\n`, `---\n${JSON.stringify(docs[1])}`]) {
    const read = parseJsonDocuments(text, 'f.json');
    assert.ok(read, text);
    assert.deepEqual(read, parseYaml(text, 'f.json'));
  }
});

test('text the JSON path must leave to the YAML parser is read the same way too', () => {
  const cases = [
    '{"a": 1, "a": 2}',
    '{"a": {"b": 1, "b": 1}}',
    '{"a": 1}\n---\n{"a": 1, "a": 1}',
    '{"a": 1} # a comment',
    '# a comment\n{"a": 1}',
    '{"a": 1}\n--- {"b": 2}',
    '{"a": 1}\n---\n\n---\n{"b": 2}',
    '{"a": 1}\n...\n{"b": 2}',
    '{"kind": "List", "items": [{"a": 1}, {"b": 2}]}',
    '{"kind":\n "List",\n "items":\n [\n{"a": 1}]}',
    '{"a": "x:y", "b": "\\"c:"}',
    '{"a": 1e400, "b": -0, "c": 12345678901234567890}',
    '{"a": "\\ud800"}',
    '{"a": [1, 2, {"c": null}]}',
    '{"a": 1',
    '{"a": 1}}',
    '["a"]',
    '"text"',
    '---\n{"a": 1}\n---\n{"b": 2}\n',
    '\n\n---\n{"a": 1}',
    '{"a": 1}\r\n---\r\n{"b": 2}\r\n',
    '\ufeff{"a": 1}',
    `{${Array.from({ length: 10_001 }, (_, i) => `"k${i}": 1`).join(',')}}`,
  ];
  for (const text of cases) same(text);
});
