import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { testController } from './helpers/controller.js';
import { startEnvoy } from './helpers/envoy.js';
import { waitFor } from './helpers/wait.js';

/** A running controller keeps what was in force when a new version of an object is rejected, and says so. */

const BOOKBUYER = 'spiffe://cluster.local/ns/bookbuyer/sa/bookbuyer';
const BOOKSTORE_CLUSTER = 'outbound|14001|bookstore-v1.bookstore';

interface InputRow {
  object: string;
  state: string;
  messages?: string[];
}
const inputs = async (adminPort: number) => ((await (await fetch(`http://127.0.0.1:${adminPort}/status/inputs`)).json()) as { objects: InputRow[] }).objects;
const row = async (adminPort: number, object: string) => (await inputs(adminPort)).find((r) => r.object === object);
const explain = async (adminPort: number, path: string) =>
  (await (await fetch(`http://127.0.0.1:${adminPort}/explain?from=bookbuyer/bookbuyer&to=bookstore.bookstore:14001&path=${encodeURIComponent(path)}`)).json()) as { verdict: string; rejected?: string[] };

test('a misspelt field in a new version of an HTTPRouteGroup keeps the accepted version in force: bookbuyer keeps its access, and the status and explain say why', async () => {
  const { controller, dir } = await testController('examples/bookstore', { pushWindowMs: 0 });
  const policy = join(dir, 'mesh', '40-policy.yaml');
  const original = readFileSync(policy, 'utf8');
  try {
    assert.equal((await explain(controller.adminPort, '/books-bought')).verdict, 'allowed');
    const served = controller.cache.get(BOOKBUYER)!;
    // The demo's typo: one match of the route group bookbuyer uses, misspelt.
    const typo = original.replace('      pathRegex: /books-bought', '      pathRegx: /books-bought');
    assert.notEqual(typo, original);
    writeFileSync(policy, typo);
    const group = await waitFor('the new version to be rejected', async () => {
      const r = await row(controller.adminPort, 'HTTPRouteGroup bookstore/bookstore-service-routes');
      return r?.state === 'Rejected' ? r : undefined;
    });
    assert.match(group.messages!.join('\n'), /unknown field "spec\.matches\[1\]\.pathRegx"; did you mean "pathRegex"\?/);
    assert.match(group.messages!.join('\n'), /this version is not applied; the version accepted at \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ stays in force/);
    // What bookbuyer's proxy is served did not change at all, and explain says what allows it.
    assert.equal(controller.cache.get(BOOKBUYER), served);
    const e = await explain(controller.adminPort, '/books-bought');
    assert.equal(e.verdict, 'allowed');
    assert.match(e.rejected!.join('\n'), /HTTPRouteGroup bookstore\/bookstore-service-routes is rejected: spec\.matches\[1\]\.pathRegx: unknown field .*\(the version accepted at .* stays in force\)/);
    // A second bad edit still holds the same accepted version.
    writeFileSync(policy, typo.replace('methods: ["GET"]', 'methods: "GET"'));
    await waitFor('the second bad version', async () => ((await row(controller.adminPort, 'HTTPRouteGroup bookstore/bookstore-service-routes'))?.messages?.some((m) => m.includes('stays in force')) ? true : undefined));
    assert.equal((await explain(controller.adminPort, '/books-bought')).verdict, 'allowed');
    // Fixed: accepted again, nothing held.
    writeFileSync(policy, original);
    await waitFor('the fix to be accepted', async () => ((await row(controller.adminPort, 'HTTPRouteGroup bookstore/bookstore-service-routes'))?.state === 'Accepted' ? true : undefined));

    // A new object that is rejected is simply not applied.
    writeFileSync(join(dir, 'mesh', '50-new.yaml'), 'apiVersion: access.smi-spec.io/v1alpha3\nkind: TrafficTarget\nmetadata: {name: thief, namespace: bookstore}\nspec:\n  destination: {kind: ServiceAccount, name: bookstore, namespace: bookstore}\n  sources: [{kind: ServiceAccount, name: bookthief, namespace: bookthief}]\n  rules: [{kind: HTTPRouteGroup, name: bookstore-service-routes}]\n  extra: true\n');
    const fresh = await waitFor('the new object', async () => row(controller.adminPort, 'TrafficTarget bookstore/thief'));
    assert.equal(fresh.state, 'Rejected');
    assert.ok(!fresh.messages!.some((m) => m.includes('stays in force')), 'nothing was accepted before it');
  } finally {
    await controller.close();
  }
});

test('offline, the same typo is strict: smc compile rejects the group and smc explain names it as the reason bookbuyer is denied', () => {
  const copy = mkdtempSync(join(tmpdir(), 'smc-typo-'));
  cpSync('examples/bookstore', copy, { recursive: true });
  const policy = join(copy, '40-policy.yaml');
  writeFileSync(policy, readFileSync(policy, 'utf8').replace('      pathRegex: /books-bought', '      pathRegx: /books-bought'));
  const r = spawnSync(process.execPath, ['dist/src/cli/main.js', 'explain', copy, '--from', 'bookbuyer/bookbuyer', '--to', 'bookstore.bookstore:14001', '--path', '/books-bought'], { encoding: 'utf8' });
  assert.equal(r.status, 1, r.stderr);
  assert.doesNotMatch(r.stdout, /no TrafficTarget has destination/);
  assert.match(r.stdout, /no TrafficTarget in force grants access to bookstore\/bookstore/);
  assert.match(r.stdout, /TrafficTarget bookstore\/bookbuyer-access-bookstore spec\.rules\[0\] grants nothing: it names HTTPRouteGroup bookstore\/bookstore-service-routes, which is rejected \(spec\.matches\[1\]\.pathRegx: unknown field/);
});

test('a MeshConfig that changes the trust domain on a running controller is refused: connected proxies keep being served, the status says a restart applies it', async () => {
  const { controller, dir, state } = await testController('examples/bookstore', { pushWindowMs: 0 });
  const envoy = await startEnvoy('bookbuyer/bookbuyer', controller.xdsPort, dir, state);
  const mesh = join(dir, 'mesh', '00-mesh.yaml');
  const has = async (name: string) => (await (await fetch(`http://127.0.0.1:${envoy.adminPort}/clusters`)).text()).includes(`${name}::`);
  try {
    await waitFor('Envoy to receive bookstore', async () => ((await has(BOOKSTORE_CLUSTER)) ? true : undefined));
    writeFileSync(mesh, readFileSync(mesh, 'utf8').replace('trustDomain: cluster.local', 'trustDomain: other.example\n  permissive: true').replace('  permissive: false\n', ''));
    const config = await waitFor('the MeshConfig status', async () => {
      const r = await row(controller.adminPort, 'MeshConfig smc-system/smc');
      return r?.state === 'PartiallyAccepted' ? r : undefined;
    });
    assert.match(config.messages!.join('\n'), /spec\.trustDomain: the running controller serves trust domain "cluster\.local"; "other\.example" takes effect when the controller restarts/);
    // The rest of the MeshConfig applies (permissive), under the running domain: bookbuyer is still served, by the same stream.
    await waitFor('permissive to apply', () => (controller.cache.get(BOOKBUYER)?.types.cluster.resources.has('outbound|3306|mysql.bookwarehouse') ? true : undefined), 10_000);
    assert.ok(await has(BOOKSTORE_CLUSTER));
    assert.deepEqual(controller.proxies.list().map((p) => p.identity), [BOOKBUYER]);
    assert.equal(controller.cache.get('spiffe://other.example/ns/bookbuyer/sa/bookbuyer'), undefined);
  } finally {
    envoy.envoy.kill('SIGKILL');
    await controller.close();
  }
});
