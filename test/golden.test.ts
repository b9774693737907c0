import { test } from 'node:test';
import assert from 'node:assert/strict';
import { listGoldenCases, runGoldenCase } from '../src/output/golden.js';

const ROOT = 'golden';

test('there are golden cases for every SMI decision (at least 15)', async () => {
  const cases = await listGoldenCases(ROOT);
  assert.ok(cases.length >= 15, `only ${cases.length} golden cases`);
});

for (const name of await listGoldenCases(ROOT)) {
  test(`golden case ${name} compiles to exactly its expected output`, async () => {
    const result = await runGoldenCase(ROOT, name, false);
    const report = result.differences.map((d) => `${d.kind}: ${d.path}\n${d.diff}`).join('\n');
    assert.equal(result.differences.length, 0, `output of ${name} changed (npm run golden:update rewrites it):\n${report}`);
  });
}
