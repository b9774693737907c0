import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** `smc compile --check` fails only when the meaning changed: objects are known by kind/namespace/name, not by where they were read. */
const smc = (...args: string[]) => spawnSync(process.execPath, ['dist/src/cli/main.js', 'compile', ...args], { encoding: 'utf8' });

test('moving, renaming, reformatting and commenting files changes nothing downstream; a change of meaning does', () => {
  const dir = mkdtempSync(join(tmpdir(), 'smc-check-'));
  const mesh = join(dir, 'mesh');
  cpSync('examples/bookstore', mesh, { recursive: true });
  // A deliberately rejected object, so status carries messages too.
  writeFileSync(join(mesh, '90-bad.yaml'), 'apiVersion: split.smi-spec.io/v1alpha4\nkind: TrafficSplit\nmetadata: {name: bad, namespace: bookstore}\nspec: {service: bookstore, backends: [{service: bookstore-v1, weight: "x"}]}\n');
  const expected = join(dir, 'expected');
  assert.equal(smc(mesh, '--update', expected, '--allow-rejected').status, 0);

  // Same meaning, other files: renamed, moved into a subfolder, documents reordered, comments and blank lines added.
  renameSync(join(mesh, '40-policy.yaml'), join(mesh, 'zz-policy.yml'));
  const sub = join(mesh, 'teams', 'store');
  cpSync(join(mesh, '20-bookstore.yaml'), join(sub, 'store.yaml'));
  rmSync(join(mesh, '20-bookstore.yaml'));
  const policy = readFileSync(join(mesh, 'zz-policy.yml'), 'utf8').split('---\n').reverse();
  writeFileSync(join(mesh, 'zz-policy.yml'), `# reviewed by the platform team\n\n${policy.join('---\n# next\n')}`);
  writeFileSync(join(mesh, '90-bad.yaml'), `\n\n# still broken\n${readFileSync(join(mesh, '90-bad.yaml'), 'utf8')}`);
  const same = smc(mesh, '--check', expected, '--allow-rejected');
  assert.equal(same.status, 0, same.stdout + same.stderr);

  // A change of meaning: one weight.
  const split = readFileSync(join(mesh, 'zz-policy.yml'), 'utf8').replace('{service: bookstore-v2, weight: 10}', '{service: bookstore-v2, weight: 20}');
  writeFileSync(join(mesh, 'zz-policy.yml'), split);
  const changed = smc(mesh, '--check', expected, '--allow-rejected');
  assert.equal(changed.status, 1);
  assert.match(changed.stdout, /weight/);
  assert.ok(readdirSync(expected).includes('status.json'));
  assert.doesNotMatch(readFileSync(join(expected, 'status.json'), 'utf8'), /\.yaml:\d+/, 'no line numbers in the expected status');
});
