import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startKubeApi } from './helpers/kube.js';
import { waitFor } from './helpers/wait.js';

/**
 * The CRDs of the policy kinds are generated from smc's codecs (smc crds):
 * deploy/crds is what the generator writes, and the real API server, given
 * them, refuses what smc would refuse for an unknown field, documents every
 * field, and keeps an object written in an older version whole.
 */
const SMC = 'dist/src/cli/main.js';
const smc = (args: string[]) => spawnSync(process.execPath, [SMC, ...args], { encoding: 'utf8' });

test('deploy/crds is exactly what smc crds generates, and --check names a file that drifted', () => {
  const check = smc(['crds', '--check', 'deploy/crds']);
  assert.equal(check.status, 0, `deploy/crds is stale (run npm run crds:update): ${check.stderr}`);
  const drifted = mkdtempSync(join(tmpdir(), 'smc-crds-'));
  cpSync('deploy/crds', drifted, { recursive: true });
  const file = join(drifted, 'access-traffictarget.yaml');
  writeFileSync(file, readFileSync(file, 'utf8').replace('minLength: 1\n', ''));
  const stale = smc(['crds', '--check', drifted]);
  assert.equal(stale.status, 1);
  assert.match(stale.stderr, /access-traffictarget\.yaml differs from what smc generates/);
  // The printed CRDs are the files, one document each.
  const printed = smc(['crds']);
  assert.equal(printed.status, 0);
  assert.equal(printed.stdout.split(/^---$/m).length, 7);
});

test('on a real API server the generated CRDs refuse a misspelt or mistyped field naming it, keep an older version\'s object whole, and explain every field', async () => {
  const api = await startKubeApi();
  try {
    api.kubectl(['apply', '-f', 'deploy/crds']);
    api.kubectl(['wait', '--for', 'condition=established', '--timeout', '60s', 'crd', '--all']);
    api.kubectl(['create', 'namespace', 'bookstore']);
    const apply = (yaml: string) => {
      try {
        return { ok: true, text: api.kubectl(['apply', '-f', '-'], yaml) };
      } catch (e) {
        return { ok: false, text: (e as Error).message };
      }
    };

    // A misspelt field in one rule: refused at apply (kubectl validates strictly), the field named.
    const typo = apply(`apiVersion: access.smi-spec.io/v1alpha3
kind: TrafficTarget
metadata: {name: typo, namespace: bookstore}
spec:
  destination: {kind: ServiceAccount, name: bookstore}
  rules: [{kind: HTTPRouteGroup, name: routes, matchs: [buy-a-book]}]
  sources: [{kind: ServiceAccount, name: bookbuyer, namespace: bookbuyer}]
`);
    assert.equal(typo.ok, false, 'the API server stored a misspelt field');
    assert.match(typo.text, /unknown field "spec\.rules\[0\]\.matchs"/);
    // A wrong type and a value out of range, each named.
    const methods = apply(`apiVersion: specs.smi-spec.io/v1alpha4
kind: HTTPRouteGroup
metadata: {name: routes, namespace: bookstore}
spec: {matches: [{name: buy, methods: GET}]}
`);
    assert.equal(methods.ok, false);
    assert.match(methods.text, /spec\.matches\[0\]\.methods: Invalid value: "string": spec\.matches\[0\]\.methods in body must be of type array/);
    const port = apply(`apiVersion: smc.dev/v1alpha1
kind: VirtualMachine
metadata: {name: vm, namespace: bookstore}
spec: {serviceAccount: bookstore, addresses: [198.18.0.9], ports: [{port: 70000}]}
`);
    assert.equal(port.ok, false);
    assert.match(port.text, /spec\.ports\[0\]\.port: Invalid value: 70000: spec\.ports\[0\]\.port in body should be less than or equal to 65535/);

    // A TrafficTarget written as v1alpha1 (no spec; a string port; rules called specs) is stored and read back whole as v1alpha3.
    const old = apply(`apiVersion: access.smi-spec.io/v1alpha1
kind: TrafficTarget
metadata: {name: old, namespace: bookstore}
destination: {kind: ServiceAccount, name: bookstore, port: "8080"}
specs: [{kind: HTTPRouteGroup, name: routes, matches: [buy]}]
sources: [{kind: ServiceAccount, name: bookbuyer, namespace: bookbuyer}]
`);
    assert.equal(old.ok, true, old.text);
    const read = JSON.parse(api.kubectl(['get', 'traffictargets.v1alpha3.access.smi-spec.io', 'old', '-n', 'bookstore', '-o', 'json'])) as Record<string, unknown>;
    assert.equal(read.apiVersion, 'access.smi-spec.io/v1alpha3');
    assert.deepEqual(read.destination, { kind: 'ServiceAccount', name: 'bookstore', port: '8080' });
    assert.deepEqual(read.specs, [{ kind: 'HTTPRouteGroup', name: 'routes', matches: ['buy'] }]);

    // kubectl explain describes the fields, from the same definitions smc decodes with.
    const explained = await waitFor('kubectl explain to know the CRD', () => {
      try {
        return api.kubectl(['explain', 'traffictargets.spec.rules.matches', '--api-version', 'access.smi-spec.io/v1alpha3']);
      } catch {
        return undefined;
      }
    }, 30_000);
    assert.match(explained, /the names of its matches this rule grants/);
    assert.match(api.kubectl(['explain', 'virtualmachines.spec', '--api-version', 'smc.dev/v1alpha1']), /serviceAccount\s+<string> -required-/);
    // kubectl get has the columns smc's status fills.
    assert.match(api.kubectl(['get', 'traffictargets', '-n', 'bookstore']).split('\n')[0]!, /^NAME\s+DESTINATION\s+ACCEPTED\s+REASON\s+AGE$/);
  } finally {
    await api.stop();
  }
});
