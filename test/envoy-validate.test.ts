import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { listGoldenCases } from '../src/output/golden.js';
import { validateWithEnvoy } from './helpers/envoy.js';

const BIN = 'dist/src/cli/main.js';

function bootstrapsOf(input: string): string[] {
  const dir = mkdtempSync(join(tmpdir(), 'smc-bootstrap-'));
  const r = spawnSync(process.execPath, [BIN, 'compile', input, '-o', dir, '--bootstrap', '--allow-rejected'], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const found: string[] = [];
  const walk = (d: string) => {
    for (const name of readdirSync(d)) {
      const p = join(d, name);
      if (statSync(p).isDirectory()) walk(p);
      else if (name.endsWith('.bootstrap.json')) found.push(p);
    }
  };
  walk(dir);
  return found.sort();
}

test('real Envoy accepts the --bootstrap output of every proxy in every golden case', async () => {
  let validated = 0;
  for (const name of await listGoldenCases('golden')) {
    for (const file of bootstrapsOf(join('golden', name, 'input'))) {
      const r = validateWithEnvoy(file);
      assert.ok(r.ok, `${name}: ${file}\n${r.output}`);
      validated++;
    }
  }
  // Every case with a workload has a proxy; a run that validated nothing proves nothing.
  assert.ok(validated >= 40, `only ${validated} bootstraps validated`);
});

test('Envoy validation is not a rubber stamp: a route to a missing cluster is refused', () => {
  const [file] = bootstrapsOf('golden/bookstore/input').filter((f) => f.endsWith(join('bookstore', 'bookstore.bootstrap.json')));
  assert.ok(file);
  const config = JSON.parse(readFileSync(file, 'utf8')) as { staticResources: { clusters: { name: string }[] } };
  config.staticResources.clusters = config.staticResources.clusters.filter((c) => !c.name.startsWith('inbound|'));
  const broken = file.replace('.bootstrap.json', '.broken.json');
  writeFileSync(broken, JSON.stringify(config));
  const r = validateWithEnvoy(broken);
  assert.equal(r.ok, false);
  assert.match(r.output, /unknown cluster 'inbound\|8080\|local'/);
});

test('smc compile --bootstrap writes the private key with mode 0600 and the bootstrap names it by file', () => {
  const [file] = bootstrapsOf('golden/bookstore/input').filter((f) => f.endsWith(join('bookbuyer', 'bookbuyer.bootstrap.json')));
  assert.ok(file);
  const key = file.replace('.bootstrap.json', '.key');
  assert.equal(statSync(key).mode & 0o777, 0o600);
  const text = readFileSync(file, 'utf8');
  assert.ok(text.includes(key), 'the bootstrap references the key file');
  assert.ok(!text.includes('PRIVATE KEY'), 'the bootstrap itself holds no key material');
});
