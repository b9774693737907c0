import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadPaths } from '../src/adapters/yaml-files.js';
import { parse as parseYaml } from 'yaml';

const BIN = 'dist/src/cli/main.js';
const smc = (...args: string[]) => spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8' });

test('smc compile prints the mesh model and exits 0 when every input is accepted', () => {
  const r = smc('compile', 'examples/bookstore');
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /destination: spiffe:\/\/cluster\.local\/ns\/bookstore\/sa\/bookstore/);
});

test('smc compile exits 1 and names file, line, object and field when an input is rejected', () => {
  const r = smc('compile', 'golden/broken-yaml/input');
  assert.equal(r.status, 1);
  // The line of the field, not of its document.
  assert.match(r.stderr, /wrong-types\.yaml:7 \(document 1\): TrafficSplit app\/string-weight: error: spec\.backends\[0\]\.weight: expected non-negative integer, got "80"/);
  assert.match(r.stderr, /wrong-types\.yaml:12 \(document 2\): Service app\/bad-port: error: spec\.ports\[1\]\.targetPort/);
  assert.match(r.stderr, /broken\.yaml:4 \(document 1\): document: error: YAML syntax error/);
  assert.equal(smc('compile', 'golden/broken-yaml/input', '--allow-rejected').status, 0);
});

test('smc compile --status json prints machine-readable status', () => {
  const r = smc('compile', 'golden/split-conflict/input', '--status', 'json', '--allow-rejected');
  assert.equal(r.status, 0, r.stderr);
  const status = (JSON.parse(r.stdout) as { objects: { object: string; state: string }[] }).objects;
  assert.equal(status.find((s) => s.object === 'TrafficSplit shop/newer')?.state, 'Rejected');
  assert.equal(status.find((s) => s.object === 'TrafficSplit shop/older')?.state, 'Accepted');
});

test('smc compile --check passes on an unchanged mesh and prints a diff after a policy change', () => {
  const dir = mkdtempSync(join(tmpdir(), 'smc-check-'));
  cpSync('examples/bookstore', join(dir, 'mesh'), { recursive: true });
  // --update writes YAML here; --check then reads the format from the folder.
  assert.equal(smc('compile', join(dir, 'mesh'), '--update', join(dir, 'expected'), '--format', 'yaml').status, 0);
  assert.equal(smc('compile', join(dir, 'mesh'), '--check', join(dir, 'expected')).status, 0);
  const policy = join(dir, 'mesh', '40-policy.yaml');
  writeFileSync(policy, readFileSync(policy, 'utf8').replace('weight: 90', 'weight: 50'));
  const r = smc('compile', join(dir, 'mesh'), '--check', join(dir, 'expected'));
  assert.equal(r.status, 1);
  assert.match(r.stdout, /^-\s+weight: 9$/m);
  assert.match(r.stdout, /^\+\s+weight: 5$/m);
  // The per-proxy diff names the caller whose route table changed.
  assert.match(r.stdout, /^\+\+\+ actual\/bookbuyer\/bookbuyer\.yaml/m);
  assert.match(r.stderr, /differ from .*bookbuyer\/bookbuyer\.yaml/);
});

test('usage errors exit 2 with help; a missing path is named', () => {
  assert.equal(smc('compile').status, 2);
  assert.equal(smc('frobnicate').status, 2);
  const r = smc('compile', 'no/such/dir');
  assert.equal(r.status, 2);
  assert.match(r.stderr, /no\/such\/dir: no such file or folder/);
  const help = smc('help', 'compile');
  assert.equal(help.status, 0);
  assert.match(help.stdout, /--check DIR/);
});

test('the loader reads .yaml, .yml and .json recursively, skips other files, and keeps origins', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'smc-load-'));
  cpSync('golden/split-matches/input', join(dir, 'nested', 'deeper'), { recursive: true });
  writeFileSync(join(dir, 'a.json'), JSON.stringify({ apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'j' } }));
  writeFileSync(join(dir, 'b.yml'), '# comment\n---\napiVersion: v1\nkind: ServiceAccount\nmetadata: {name: y}\n---\n---\n');
  writeFileSync(join(dir, 'notes.txt'), 'not yaml: [');
  const inputs = await loadPaths([dir], { relativeTo: dir });
  const sources = [...new Set(inputs.documents.map((d) => d.origin.source))];
  assert.deepEqual(sources, ['a.json', 'b.yml', 'nested/deeper/base.yaml', 'nested/deeper/client.yaml', 'nested/deeper/split.yaml']);
  const y = inputs.documents.find((d) => d.origin.source === 'b.yml')!;
  assert.deepEqual(y.origin, { source: 'b.yml', document: 0, line: 3 });
  assert.equal(inputs.problems.length, 0);
});

test('smc compile -o writes one config_dump per proxy identity, status.json and ir.json', () => {
  const dir = mkdtempSync(join(tmpdir(), 'smc-out-'));
  const r = smc('compile', 'examples/bookstore', '-o', dir);
  assert.equal(r.status, 0, r.stderr);
  const status = JSON.parse(readFileSync(join(dir, 'status.json'), 'utf8')) as { proxies: { identity: string; config: string }[] };
  assert.deepEqual(status.proxies.map((p) => p.config), ['bookbuyer/bookbuyer.json', 'bookstore/bookstore.json', 'bookthief/bookthief.json', 'bookwarehouse/bookwarehouse.json', 'bookwarehouse/mysql.json']);
  const dump = JSON.parse(readFileSync(join(dir, 'bookbuyer', 'bookbuyer.json'), 'utf8')) as { configs: { '@type': string; version_info?: string }[] };
  assert.deepEqual(dump.configs.map((c) => c['@type'].split('.').pop()), ['ClustersConfigDump', 'EndpointsConfigDump', 'ListenersConfigDump', 'RoutesConfigDump', 'SecretsConfigDump']);
  assert.match(dump.configs[0]!.version_info!, /^[0-9a-f]{16}$/);
  assert.ok(JSON.parse(readFileSync(join(dir, 'ir.json'), 'utf8')).access);
  // -o never deletes what it did not write.
  writeFileSync(join(dir, 'mine.txt'), 'keep');
  assert.equal(smc('compile', 'examples/bookstore', '-o', dir).status, 0);
  assert.equal(readFileSync(join(dir, 'mine.txt'), 'utf8'), 'keep');
});

test('smc compile --identity prints one proxy, in YAML with --format yaml, and names the known ones when it is wrong', () => {
  const r = smc('compile', 'examples/bookstore', '--identity', 'bookstore/bookstore', '--format', 'yaml');
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /^configs:\n {2}- "@type": type\.googleapis\.com\/envoy\.admin\.v3\.ClustersConfigDump/);
  assert.match(r.stdout, /name: inbound\|8080\|local/);
  assert.doesNotMatch(r.stdout, /bookbuyer\/sa\/bookbuyer"?\n\s+sds_config/, 'only its own certificate is referenced');
  const wrong = smc('compile', 'examples/bookstore', '--identity', 'bookstore/nobody');
  assert.equal(wrong.status, 1);
  assert.match(wrong.stderr, /no proxy identity bookstore\/nobody.*known: bookbuyer\/bookbuyer, bookstore\/bookstore/);
  assert.equal(smc('compile', 'examples/bookstore', '--identity', 'nonsense').status, 2);
  assert.equal(smc('compile', 'examples/bookstore', '--format', 'xml').status, 2);
  assert.equal(smc('compile', 'examples/bookstore', '--bootstrap').status, 2);
});

test('proxy warnings reach stderr and status.json', () => {
  const dir = mkdtempSync(join(tmpdir(), 'smc-warn-'));
  const r = smc('compile', 'golden/explicit-mode/input', '-o', dir);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stderr, /proxy spiffe:\/\/cluster\.local\/ns\/legacy\/sa\/billing: warning: legacy\/queue:6379: explicit mode listens once per port/);
  const status = JSON.parse(readFileSync(join(dir, 'status.json'), 'utf8')) as { proxies: { identity: string; warnings?: string[] }[] };
  assert.equal(status.proxies.find((p) => p.identity.endsWith('/sa/billing'))?.warnings?.length, 1);
});

test('CLI hygiene: smc version and --version, help for no such command, one line for an unknown option, -o values checked', () => {
  const version = JSON.parse(readFileSync('package.json', 'utf8')).version as string;
  for (const flag of ['version', '--version']) {
    const r = smc(flag);
    assert.equal(r.status, 0);
    assert.equal(r.stdout, `smc ${version} (node ${process.version})\n`);
  }
  const help = smc('help', 'nosuch');
  assert.equal(help.status, 2);
  assert.match(help.stderr, /^smc: no help for "nosuch": there is no such command \(controller, bootstrap, .*compile, /);
  const unknown = smc('compile', 'examples/bookstore', '--nosuch');
  assert.equal(unknown.status, 2);
  assert.equal(unknown.stderr, "smc compile: unknown option --nosuch (see 'smc help compile')\n");
  const output = smc('proxy-status', '-o', 'xml');
  assert.equal(output.status, 2);
  assert.equal(output.stderr, 'smc proxy-status: -o expects json or yaml (or nothing, for a table), got "xml"\n');
  assert.equal(smc('help', 'controller').status, 0);
  assert.deepEqual(JSON.parse(smc('version', '-o', 'json').stdout), { version, node: process.version });
});

test('every command has help with its options and an example, by "smc help CMD" and "smc CMD --help" alike', () => {
  const commands = [...smc('--help').stdout.matchAll(/^ {2}smc ([a-z-]+)/gm)].map((m) => m[1]!).filter((c) => c !== 'help');
  assert.ok(commands.length >= 14, commands.join(' '));
  for (const c of new Set(commands)) {
    const byHelp = smc('help', c);
    assert.equal(byHelp.status, 0, c);
    assert.match(byHelp.stdout, new RegExp(`^smc ${c}`), `${c}: the help starts with its usage`);
    assert.match(byHelp.stdout, /^Examples?\b/m, `${c}: an example`);
    assert.match(byHelp.stdout, /(-h, --help|--help)/, `${c}: its options`);
    const byFlag = smc(c, '--help');
    assert.equal(byFlag.status, 0, `${c} --help: ${byFlag.stderr}`);
    assert.equal(byFlag.stdout, byHelp.stdout, `${c} --help prints the same help`);
  }
  // Output cut short by a reader that stops early is no error.
  const piped = spawnSync('sh', ['-c', 'node dist/src/cli/main.js kinds | head -1'], { encoding: 'utf8' });
  assert.equal(piped.stderr, '');
});

test('smc compile --status text prints every object\'s state, with its problems under it (not the mesh model)', () => {
  const r = smc('compile', 'golden/split-conflict/input', '--status', 'text', '--allow-rejected');
  assert.equal(r.status, 0, r.stderr);
  const lines = r.stdout.split('\n');
  assert.match(lines[0]!, /^Accepted {10}Namespace shop {2}\(golden\/split-conflict\/input\/base\.yaml:1 \(document 1\)\)$/);
  const rejected = lines.findIndex((l) => l.startsWith('Rejected          TrafficSplit shop/newer'));
  assert.ok(rejected > 0, r.stdout);
  assert.match(lines[rejected + 1]!, /^ {20}error: spec\.service: TrafficSplit shop\/older \(older\) already splits shop\/web/);
  assert.doesNotMatch(r.stdout, /trustDomain:/, 'not the mesh model');
});

test('a CLI people can type: misspelt commands, subcommands, options and types get a suggestion on one line with one prefix, exit 2', () => {
  const cases: [string[], string][] = [
    [['proxy-stauts'], 'smc: unknown command "proxy-stauts"; did you mean "proxy-status"? (\'smc help\' lists the commands)\n'],
    [['compile', 'examples/bookstore', '--outptu', 'x'], "smc compile: unknown option --outptu; did you mean --output? (see 'smc help compile')\n"],
    [['certs', 'lsit'], 'smc certs: unknown subcommand "lsit"; did you mean "list"? (list or revoke)\n'],
    [['proxy-config', 'a/b', 'rouets'], 'smc proxy-config: the type must be clusters, endpoints, listeners, routes or secrets, got "rouets"; did you mean routes?\n'],
  ];
  for (const [args, stderr] of cases) {
    const r = smc(...args);
    assert.equal(r.status, 2, args.join(' '));
    assert.equal(r.stderr, stderr);
    assert.equal(r.stdout, '');
  }
});

test('help cannot drift from the options: every option a command parses is in its help, and every option its help names is parsed', () => {
  const commands = [...smc('--help').stdout.matchAll(/^ {2}smc ([a-z-]+)/gm)].map((m) => m[1]!).filter((c) => c !== 'help');
  for (const c of new Set(commands)) {
    // The parser's own table, as completion reads it.
    const parsed = smc('__complete', c, '--').stdout.split('\n').filter(Boolean).sort();
    assert.ok(parsed.includes('--help'), `${c}: ${parsed.join(' ')}`);
    const help = smc('help', c).stdout;
    // The option entries: lines that start (indented) with an option, or a list of them ("--ca, --kubeconfig").
    const entries = [...help.matchAll(/^ {2,}((?:-[a-zA-Z]|--[a-z][a-z0-9-]*)(?:, (?:-[a-zA-Z]|--[a-z][a-z0-9-]*))*)/gm)].flatMap((m) => m[1]!.split(', '));
    const documented = [...new Set(entries.filter((o) => o.startsWith('--')))].sort();
    for (const o of parsed) assert.ok(documented.includes(o), `smc ${c}: ${o} is parsed but its help does not mention it`);
    for (const o of documented) assert.ok(parsed.includes(o), `smc ${c}: its help mentions ${o}, which it does not parse`);
  }
});

test('shell completion: bash completes commands, options, option values and subcommands through smc __complete; zsh and fish scripts ask the same', () => {
  const script = smc('completion', 'bash').stdout;
  const complete = (line: string) => {
    const words = line.split(' ');
    const r = spawnSync('bash', ['-c', `smc() { node ${BIN} "$@"; }\n${script}\nCOMP_WORDS=(${words.map((w) => `'${w}'`).join(' ')}); COMP_CWORD=${words.length - 1}; _smc; printf '%s\\n' "\${COMPREPLY[@]}"`], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    return r.stdout.split('\n').filter(Boolean);
  };
  assert.deepEqual(complete('smc proxy-'), ['proxy-status', 'proxy-config']);
  assert.deepEqual(complete('smc proxy-config a/b --dir'), ['--direction']);
  assert.deepEqual(complete('smc proxy-config a/b --direction '), ['inbound', 'outbound']);
  assert.deepEqual(complete('smc proxy-config a/b '), ['clusters', 'endpoints', 'listeners', 'routes', 'secrets']);
  assert.deepEqual(complete('smc certs '), ['list', 'revoke']);
  assert.deepEqual(complete('smc compile x -o '), ['json', 'yaml']);
  assert.deepEqual(complete('smc help exp'), ['explain']);
  assert.equal(smc('completion', 'tcsh').status, 2);
});

test('shell completion in fish and zsh: their scripts complete what bash does', () => {
  const [zsh, fish] = execFileSync('bash', ['scripts/install-shells.sh'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim().split('\n');
  // `smc` on the PATH, as an installed CLI is.
  const bin = mkdtempSync(join(tmpdir(), 'smc-bin-'));
  writeFileSync(join(bin, 'smc'), `#!/bin/sh\nexec "${process.execPath}" "${join(process.cwd(), BIN)}" "$@"\n`, { mode: 0o755 });
  const env = { ...process.env, PATH: `${bin}:${process.env['PATH']}` };
  const dir = mkdtempSync(join(tmpdir(), 'smc-completion-'));
  for (const shell of ['zsh', 'fish']) writeFileSync(join(dir, `smc.${shell}`), smc('completion', shell).stdout);
  // fish completes for real (complete -C asks the completions it loaded).
  const inFish = (line: string) => spawnSync(fish!, ['-c', `source ${join(dir, 'smc.fish')}; complete -C '${line}'`], { encoding: 'utf8', env }).stdout.split('\n').filter(Boolean).sort();
  assert.deepEqual(inFish('smc proxy-'), ['proxy-config', 'proxy-status']);
  assert.deepEqual(inFish('smc proxy-config a/b --direction '), ['inbound', 'outbound']);
  assert.deepEqual(inFish('smc certs '), ['list', 'revoke']);
  // zsh: the completion function runs as zsh would run it; compadd (zsh's completion builtin, only in a live completion) prints what it is given.
  const inZsh = (words: string[]) => {
    const r = spawnSync(zsh!, ['-f', '-c', `compdef() { :; }; compadd() { [[ $1 == -a ]] && print -l -- \${(P)2}; }; source ${join(dir, 'smc.zsh')}; words=(${words.map((w) => `'${w}'`).join(' ')}); CURRENT=${words.length}; _smc`], { encoding: 'utf8', env });
    return r.stdout.split('\n').filter(Boolean).sort();
  };
  assert.deepEqual(inZsh(['smc', 'proxy-']), ['proxy-config', 'proxy-status']);
  assert.deepEqual(inZsh(['smc', 'proxy-config', 'a/b', '']), ['clusters', 'endpoints', 'listeners', 'routes', 'secrets']);
  assert.match(smc('completion', 'zsh').stdout, /^#compdef smc/);
});

test('explain says UNKNOWN (exit 4) for a service, port or caller that does not exist, apart from a denial (exit 1)', () => {
  const ask = (from: string, to: string) => smc('explain', '--from', from, '--to', to, 'examples/bookstore');
  const service = ask('bookbuyer/bookbuyer', 'nosuch.bookstore:14001');
  assert.equal(service.status, 4);
  assert.match(service.stdout, /^UNKNOWN: bookbuyer\/bookbuyer -> bookstore\/nosuch:14001\n {2}- no Service bookstore\/nosuch in the mesh/);
  assert.equal(ask('bookbuyer/bookbuyer', 'bookstore.bookstore:9999').status, 4);
  const caller = ask('nobody/here', 'bookstore.bookstore:14001');
  assert.equal(caller.status, 4);
  assert.match(caller.stdout, /no Pod or VirtualMachine of the mesh runs as nobody\/here/);
  const denied = ask('bookthief/bookthief', 'bookstore.bookstore:14001');
  assert.equal(denied.status, 1);
  assert.match(denied.stdout, /^DENIED: /);
});

test('smc certs refuses a folder that holds no mesh CA instead of listing nothing', () => {
  const empty = mkdtempSync(join(tmpdir(), 'smc-nostate-'));
  for (const sub of ['list', 'revoke']) {
    const r = smc('certs', sub, '--state', empty, '--serial', 'ab');
    assert.equal(r.status, 2, r.stderr);
    assert.match(r.stderr, /^smc certs: .* holds no mesh CA \(no ca\/root\.crt\) and no proxy-certificate records/);
  }
});

test('a misspelt field is reported at its own line', () => {
  const dir = mkdtempSync(join(tmpdir(), 'smc-typo-'));
  cpSync('examples/bookstore', dir, { recursive: true });
  const file = join(dir, '40-policy.yaml');
  const text = readFileSync(file, 'utf8').replace('      matches: [buy-a-book, books-bought]', '      matchs: [buy-a-book, books-bought]');
  writeFileSync(file, text);
  const line = text.split('\n').findIndex((l) => l.includes('matchs:')) + 1;
  const r = smc('compile', dir);
  assert.equal(r.status, 1);
  assert.match(r.stderr, new RegExp(`40-policy\\.yaml:${line} \\(document 2\\): TrafficTarget bookstore/bookbuyer-access-bookstore: error: spec\\.rules\\[0\\]\\.matchs: unknown field`));
  assert.ok(line > 20, 'deep inside its document');
});

test('commands that print data take -o json and -o yaml, and both say the same', () => {
  for (const args of [['kinds'], ['version'], ['explain', '--from', 'bookbuyer/bookbuyer', '--to', 'bookstore.bookstore:14001', 'examples/bookstore']]) {
    const json = smc(...args, '-o', 'json');
    const yaml = smc(...args, '-o', 'yaml');
    assert.ok(json.status === 0 || json.status === 1, `${args[0]}: ${json.stderr}`);
    assert.equal(yaml.status, json.status, `${args[0]}: ${yaml.stderr}`);
    assert.deepEqual(parseYaml(yaml.stdout), JSON.parse(json.stdout), args[0]);
  }
});
