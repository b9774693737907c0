import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, writeFileSync, cpSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { compileIR } from '../src/compiler/compile.js';
import { isAllowed } from '../src/compiler/ir/query.js';
import { identityOf } from '../src/compiler/ir/types.js';
import { RE2_MAX_PROGRAM_SIZE, re2ProgramSizeBound } from '../src/compiler/regex.js';
import { formatMessage, type StatusEntry } from '../src/compiler/status.js';
import { yamlInputs } from './helpers/inputs.js';
import { validateWithEnvoy } from './helpers/envoy.js';

/** Policy input that would silently mean something else is refused or reported (hardening, items 1-5). */
const BIN = 'dist/src/cli/main.js';
const bookstore = (file: string) => readFileSync(join('examples/bookstore', file), 'utf8');
const allFiles = () => readdirSync('examples/bookstore').sort().map(bookstore);
const id = (ns: string, sa: string) => identityOf('cluster.local', ns, sa);
const entryOf = (status: readonly StatusEntry[], kind: string, name: string) => {
  const e = status.find((s) => s.object.kind === kind && s.object.name === name);
  assert.ok(e, `no status for ${kind} ${name}`);
  return e;
};
const text = (e: StatusEntry) => e.messages.map((m) => `${m.severity}: ${formatMessage(m)}`).join('\n');
const buyABook = { method: 'GET', path: '/buy-a-book', headers: { 'user-agent': 'curl/8' } };

test('a misspelt field in an HTTPRouteGroup rejects it, with did-you-mean, instead of dropping the header condition', () => {
  const before = compileIR(yamlInputs(...allFiles()));
  // With the header condition, a request without bookbuyer's user agent is denied.
  assert.equal(isAllowed(before.ir, id('bookbuyer', 'bookbuyer'), id('bookstore', 'bookstore'), 14001, buyABook), false);

  const typo = allFiles().map((t) => t.replace('      headers:\n', '      header:\n'));
  const after = compileIR(yamlInputs(...typo));
  const group = entryOf(after.status, 'HTTPRouteGroup', 'bookstore-service-routes');
  assert.equal(group.state, 'Rejected');
  assert.match(text(group), /unknown field "spec\.matches\[0\]\.header"; did you mean "headers"\?/);
  // Access did not widen: the same request is still denied (the rule now grants nothing at all).
  assert.equal(isAllowed(after.ir, id('bookbuyer', 'bookbuyer'), id('bookstore', 'bookstore'), 14001, buyABook), false);
  assert.equal(isAllowed(after.ir, id('bookbuyer', 'bookbuyer'), id('bookstore', 'bookstore'), 14001, { ...buyABook, headers: { 'user-agent': 'bookbuyer/1' } }), false);
});

test('unknown fields anywhere in SMI and smc kinds are errors; Kubernetes core kinds keep tolerating fields smc does not model', () => {
  const r = compileIR(yamlInputs(`
apiVersion: specs.smi-spec.io/v1alpha4
kind: HTTPRouteGroup
metadata: {name: g, namespace: default, resourceVersion: "7", lables: {a: b}}
spec:
  extra: 1
  matches:
    - {name: m, methds: [GET]}
---
apiVersion: smc.dev/v1alpha1
kind: MeshConfig
metadata: {name: mesh, namespace: smc-system}
spec: {permisive: true}
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: default}
spec: {ports: [{port: 80}], sessionAffinity: ClientIP, somethingNew: true}
`));
  const group = entryOf(r.status, 'HTTPRouteGroup', 'g');
  assert.equal(group.state, 'Rejected');
  assert.match(text(group), /unknown field "spec\.extra"/);
  assert.match(text(group), /unknown field "spec\.matches\[0\]\.methds"; did you mean "methods"\?/);
  assert.match(text(group), /unknown field "metadata\.lables"; did you mean "labels"\?/);
  assert.doesNotMatch(text(group), /unknown field "metadata\.resourceVersion"/, 'ObjectMeta fields are known');
  const mesh = entryOf(r.status, 'MeshConfig', 'mesh');
  assert.equal(mesh.state, 'Rejected');
  assert.match(text(mesh), /unknown field "spec\.permisive"; did you mean "permissive"\?/);
  assert.equal(r.ir.settings.permissive, false, 'a rejected MeshConfig does not turn permissive mode on');
  assert.notEqual(entryOf(r.status, 'Service', 'web').state, 'Rejected');
});

test('a kind typo in an SMI or smc group is an error naming the kinds of that group; unknown groups stay ignored', () => {
  const r = compileIR(yamlInputs(`
apiVersion: access.smi-spec.io/v1alpha3
kind: TraficTarget
metadata: {name: t, namespace: default}
---
apiVersion: smc.dev/v1alpha1
kind: VirtualMachin
metadata: {name: vm, namespace: default}
---
apiVersion: example.com/v1
kind: Widget
metadata: {name: w, namespace: default}
`));
  const tt = entryOf(r.status, 'TraficTarget', 't');
  assert.equal(tt.state, 'Rejected');
  assert.match(text(tt), /access\.smi-spec\.io has no kind "TraficTarget"; did you mean "TrafficTarget"\?/);
  const vm = entryOf(r.status, 'VirtualMachin', 'vm');
  assert.equal(vm.state, 'Rejected');
  assert.match(text(vm), /its kinds: MeshConfig, VirtualMachine/);
  assert.equal(entryOf(r.status, 'Widget', 'w').state, 'Ignored');
  // The CLI exits 1 on such a file, not 0.
  const dir = mkdtempSync(join(tmpdir(), 'smc-kind-'));
  writeFileSync(join(dir, 'a.yaml'), 'apiVersion: access.smi-spec.io/v1alpha3\nkind: TraficTarget\nmetadata: {name: t}\n');
  const cli = spawnSync(process.execPath, [BIN, 'compile', dir], { encoding: 'utf8' });
  assert.equal(cli.status, 1, cli.stderr);
});

test('references to nothing are warnings on the object: missing service accounts, route groups and matches', () => {
  const policy = bookstore('40-policy.yaml')
    .replace('name: bookbuyer, namespace: bookbuyer}', 'name: bookbuyr, namespace: bookbuyer}')
    .replace('matches: [restock-books]', 'matches: [restock-book]')
    .replace('{kind: TCPRoute, name: mysql}', '{kind: TCPRoute, name: mysq}');
  const files = readdirSync('examples/bookstore').sort().filter((f) => f !== '40-policy.yaml').map(bookstore);
  const r = compileIR(yamlInputs(...files, policy, `
apiVersion: access.smi-spec.io/v1alpha3
kind: TrafficTarget
metadata: {name: to-nobody, namespace: bookstore}
spec:
  destination: {kind: ServiceAccount, name: ghost, namespace: bookstore}
  rules: [{kind: HTTPRouteGroup, name: bookstore-service-routes}]
  sources: [{kind: ServiceAccount, name: bookbuyer, namespace: bookbuyer}]
`));
  const source = entryOf(r.status, 'TrafficTarget', 'bookbuyer-access-bookstore');
  assert.equal(source.state, 'Accepted');
  assert.match(text(source), /warning: spec\.sources\[0\]\.name: no Pod, VirtualMachine or ServiceAccount of the mesh is service account bookbuyer\/bookbuyr/);
  const match = entryOf(r.status, 'TrafficTarget', 'bookstore-access-bookwarehouse');
  assert.match(text(match), /warning: spec\.rules\[0\]\.matches\[0\]: HTTPRouteGroup bookwarehouse\/bookwarehouse-service-routes has no match named "restock-book"/);
  const route = entryOf(r.status, 'TrafficTarget', 'bookwarehouse-access-mysql');
  assert.match(text(route), /warning: spec\.rules\[0\]\.name: TCPRoute bookwarehouse\/mysq not found/);
  const ghost = entryOf(r.status, 'TrafficTarget', 'to-nobody');
  assert.match(text(ghost), /warning: spec\.destination\.name: no Pod, VirtualMachine or ServiceAccount of the mesh is service account bookstore\/ghost/);
  // Warnings, not errors: a TrafficTarget whose references all exist says nothing.
  const clean = compileIR(yamlInputs(...allFiles()));
  for (const e of clean.status.filter((s) => s.object.kind === 'TrafficTarget')) assert.deepEqual(e.messages, [], text(e));
});

test('a path pattern Envoy would refuse for its size is rejected by the compiler, saying so; one within the bound is accepted', () => {
  const group = (pattern: string) => `
apiVersion: v1
kind: Namespace
metadata: {name: default, labels: {smc.dev/mesh: enabled}}
---
apiVersion: specs.smi-spec.io/v1alpha4
kind: HTTPRouteGroup
metadata: {name: g, namespace: default}
spec:
  matches: [{name: m, pathRegex: '${pattern}'}]
`;
  const ok = compileIR(yamlInputs(group('/books-bought/[a-z0-9]{1,64}/[a-z]{1,64}')));
  assert.equal(entryOf(ok.status, 'HTTPRouteGroup', 'g').state, 'Accepted');
  const big = compileIR(yamlInputs(group('/books-bought/[a-z0-9]{1,200}/[a-z]{1,400}/[0-9]{1,400}')));
  const e = entryOf(big.status, 'HTTPRouteGroup', 'g');
  assert.equal(e.state, 'PartiallyAccepted');
  assert.match(text(e), new RegExp(`spec\\.matches\\[0\\]\\.pathRegex: expected an RE2 pattern: its RE2 program may take up to \\d+ instructions, more than the ${RE2_MAX_PROGRAM_SIZE} Envoy is allowed`));
});

test('real Envoy, configured as smc bootstrap configures it, accepts every pattern the compiler accepts, up to the bound', () => {
  // Patterns of several shapes, each grown until the next size would pass the compiler's bound.
  const shapes = [
    (n: number) => `/books-bought/[a-z0-9]{1,${n}}/[a-z]{1,64}`,
    (n: number) => `/x/[^/]{1,${n}}`,
    (n: number) => `/(?i)Books/.{1,${n}}`,
    (n: number) => `/é/[a-zà-ÿ]{1,${n}}`,
  ];
  const dir = mkdtempSync(join(tmpdir(), 'smc-re2-'));
  const mesh = join(dir, 'mesh');
  cpSync('examples/bookstore', mesh, { recursive: true });
  const patterns = shapes.map((shape) => {
    let n = 1;
    while (n < 1000 && (re2ProgramSizeBound(`(?:${shape(n + 1)}).*`) ?? Infinity) <= RE2_MAX_PROGRAM_SIZE) n++;
    return shape(n);
  });
  const policy = bookstore('40-policy.yaml').replace(
    '    - name: books-bought\n      pathRegex: /books-bought\n',
    patterns.map((p, i) => `    - name: p${i}\n      pathRegex: '${p}'\n      methods: [GET]\n`).join('') + '    - name: books-bought\n      pathRegex: /books-bought\n',
  ).replace('matches: [buy-a-book, books-bought]', `matches: [buy-a-book, books-bought, ${patterns.map((_, i) => `p${i}`).join(', ')}]`);
  writeFileSync(join(mesh, '40-policy.yaml'), policy);
  const out = join(dir, 'out');
  const r = spawnSync(process.execPath, [BIN, 'compile', mesh, '-o', out, '--bootstrap'], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const file = join(out, 'bookstore', 'bookstore.bootstrap.json');
  const config = readFileSync(file, 'utf8');
  for (const p of patterns) assert.ok(config.includes(JSON.stringify(`(?:${p}).*`).slice(1, -1)), `the bootstrap carries ${p}`);
  const v = validateWithEnvoy(file);
  assert.ok(v.ok, v.output);
  // Without smc's runtime layer, Envoy's default limit refuses the same file: the test exercises the limit.
  const bare = JSON.parse(config) as Record<string, unknown>;
  delete bare.layeredRuntime;
  writeFileSync(join(dir, 'bare.json'), JSON.stringify(bare));
  const refused = validateWithEnvoy(join(dir, 'bare.json'));
  assert.equal(refused.ok, false);
  assert.match(refused.output, /RE2 program size of \d+ > max program size of 100/);
});

test('YAML aliases within sane bounds work; a billion-laughs document is that file\'s error and the rest of the mesh compiles', () => {
  const dir = mkdtempSync(join(tmpdir(), 'smc-yaml-'));
  cpSync('examples/bookstore', dir, { recursive: true });
  const anchors = ['apiVersion: v1', 'kind: ServiceAccount', 'metadata: {name: &n reuse, namespace: bookstore, labels: {a: *n}}', 'x:', ...Array.from({ length: 300 }, () => '  - *n')];
  writeFileSync(join(dir, '50-anchors.yaml'), `${anchors.join('\n')}\n`);
  let bomb = 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n';
  let prev = 'a';
  for (const n of 'bcdefghi') {
    bomb += `${n}: &${n} [${Array(9).fill(`*${prev}`).join(',')}]\n`;
    prev = n;
  }
  writeFileSync(join(dir, '60-bomb.yaml'), bomb);
  const r = spawnSync(process.execPath, [BIN, 'compile', dir, '--status', 'json'], { encoding: 'utf8' });
  assert.equal(r.status, 1, 'the bomb is an input error (exit 1), not an internal one (exit 3)');
  assert.doesNotMatch(r.stderr, /internal error|at .*\.js:\d+/);
  // With --status the status is on stdout (and not repeated on stderr).
  assert.match(r.stdout, /60-bomb\.yaml[^}]*aliases expand past/);
  assert.doesNotMatch(r.stderr, /aliases expand past/);
  const status = JSON.parse(r.stdout) as { objects: { object: string; state: string }[] };
  const state = (object: string) => status.objects.find((o) => o.object === object)?.state;
  assert.equal(state('ServiceAccount bookstore/reuse'), 'Accepted', 'the anchored file is read');
  assert.equal(state('TrafficTarget bookstore/bookbuyer-access-bookstore'), 'Accepted', 'the rest of the mesh compiles');
});

test('a namespace labelled for OSM is told what smc looks for instead', () => {
  const r = compileIR(yamlInputs('apiVersion: v1\nkind: Namespace\nmetadata: {name: shop, labels: {openservicemesh.io/monitored-by: osm}}\n'));
  assert.match(text(entryOf(r.status, 'Namespace', 'shop')), /openservicemesh\.io\/monitored-by, which smc does not read: add smc\.dev\/mesh: enabled/);
});

test('items of a kind: List are named by their own line; expectations read as words; a rejected object gets one line per problem', () => {
  const list = [
    'apiVersion: v1',
    'kind: List',
    'items:',
    '- apiVersion: v1',
    '  kind: Namespace',
    '  metadata: {name: shop, labels: {smc.dev/mesh: enabled}}',
    '- apiVersion: specs.smi-spec.io/v1alpha4',
    '  kind: HTTPRouteGroup',
    '  metadata: {name: r, namespace: shop}',
    '  spec:',
    '    matches:',
    '    - {name: m, methods: GET}',
    '- apiVersion: split.smi-spec.io/v1alpha4',
    '  kind: TrafficSplit',
    '  metadata: {name: s, namespace: shop}',
    '  spec: {service: a, backends: [3]}',
  ].join('\n');
  const r = compileIR(yamlInputs(`${list}\n`));
  assert.equal(entryOf(r.status, 'Namespace', 'shop').origin.line, 4);
  const routes = entryOf(r.status, 'HTTPRouteGroup', 'r');
  assert.equal(routes.origin.line, 7);
  assert.equal(routes.state, 'Rejected');
  assert.equal(text(routes), 'error: items[1].spec.matches[0].methods: expected a list of HTTP methods, got "GET"', 'one line, in words');
  const split = entryOf(r.status, 'TrafficSplit', 's');
  assert.equal(split.origin.line, 13);
  assert.equal(text(split), 'error: items[2].spec.backends[0]: expected a TrafficSplitBackend object, got 3');
});
