import { fieldLine } from '../adapters/field-lines.js';
import { parseArgs } from 'node:util';
import { loadPaths } from '../adapters/yaml-files.js';
import { chmod, mkdir, readdir, writeFile } from 'node:fs/promises';
import { dirname, join, relative, resolve } from 'node:path';
import { throwawayCertificates } from '../adapters/ca/throwaway.js';
import { loadEnvoyProtos } from '../adapters/envoy-protos.js';
import { compile, type MeshCompileResult } from '../compiler/compile.js';
import type { ProtoCodec } from '../compiler/envoy/codec.js';
import { inconsistencies } from '../compiler/envoy/consistency.js';
import { supportedKinds } from '../compiler/decode/index.js';
import { compareWithFolder, writeFolder } from '../output/expected.js';
import { listGoldenCases, runGoldenCase } from '../output/golden.js';
import { proxyPath, renderCompileFiles, renderProxy, serialize, statusDocument, type Format } from '../output/compile-files.js';
import { statusLines, statusTable } from '../output/render.js';
import { staticBootstrap } from '../output/static-bootstrap.js';
import { EXIT_OK, EXIT_REJECTED, EXIT_USAGE, UsageError } from './usage.js';
import { stringify } from 'yaml';

export const HELP_COMPILE = `smc compile PATH... [options]

Reads files or folders of YAML/JSON the way 'kubectl apply -f' takes them
(.yaml, .yml, .json; folders recursively; several documents per file) and
compiles them into the exact Envoy configuration every proxy identity would
receive from the controller: clusters, endpoints, listeners, routes and
secrets (by SDS name), in the shape of Envoy's admin /config_dump. Every input
object gets a status: Accepted, PartiallyAccepted, Rejected or Ignored, with
the file, line, field path and reason of each problem (printed on stderr).

Output:
  -o, --output DIR     Write DIR/<namespace>/<serviceaccount>.json per proxy,
                       DIR/status.json (inputs and proxies) and DIR/ir.json
                       (the mesh model: who may call whom, split how)
      --identity NS/SA Only this proxy identity; without -o, print its
                       configuration on stdout
      --format json|yaml
                       Output format (default json; --check and --update use
                       the format already in DIR)
      --bootstrap      With -o: also write, per proxy, a static Envoy bootstrap
                       holding its configuration (<sa>.bootstrap.json) and
                       throwaway test certificates next to it (<sa>.crt,
                       <sa>.key mode 0600, ca.crt). Check one with
                       'envoy --mode validate -c DIR/NS/SA.bootstrap.json'
      --status json|yaml|text
                       With no DIR and no --identity: print the status on
                       stdout instead of the mesh model

Regression tests for your mesh:
      --check DIR      Compare with the expected output in DIR; print a
                       per-proxy diff and exit 1 on any difference
      --update DIR     Rewrite the expected output in DIR (files nobody
                       produces any more are deleted)

      --allow-rejected Exit 0 even when some input was rejected
  -h, --help           Show this help

Private keys never appear in the output: secrets print as [redacted].

Exit status: 0 when every input was accepted (or --allow-rejected), 1 when some
input was rejected or --check found a difference, 2 on a usage error, 3 on an
internal error.

Examples:
  smc compile policy/ -o out/                 # review out/ like code
  smc compile policy/ --identity bookstore/bookstore --format yaml
  smc compile policy/ --update expected/      # accept a change
  smc compile policy/ --check expected/       # in CI: fail on drift
`;

export const HELP_GOLDEN = `smc golden [--update] [DIR]

Each folder DIR/<case>/ holds input/ (YAML) and expected/ (what smc makes of
it). Without --update, prints a diff for every case whose output changed and
exits 1; with --update, rewrites expected/ (review the diff like code).

Options:
      --update     Rewrite expected/ of every case instead of comparing
  -h, --help       Show this help
  DIR              The folder of cases (default golden)

Exit status: 0 every case matches (or was updated), 1 some case differs,
2 usage error.

Examples:
  smc golden                  # in CI: fail on any change of output
  npm run golden:update       # accept a change, then read 'git diff golden/'
`;

/** The options of `compileCommand` (its help lists each; completion and suggestions read them). */
export const OPTIONS_COMPILE = {
  output: { type: 'string', short: 'o' },
  check: { type: 'string' },
  update: { type: 'string' },
  format: { type: 'string' },
  identity: { type: 'string' },
  bootstrap: { type: 'boolean', default: false },
  status: { type: 'string' },
  'allow-rejected': { type: 'boolean', default: false },
  help: { type: 'boolean', short: 'h', default: false },
} as const;

export async function compileCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: OPTIONS_COMPILE,
  });
  if (values.help) {
    process.stdout.write(HELP_COMPILE);
    return EXIT_OK;
  }
  if (positionals.length === 0) return usage('smc compile: expected at least one PATH', HELP_COMPILE);
  const modes = [values.output, values.check, values.update].filter((x) => x !== undefined).length;
  if (modes > 1) return usage('smc compile: use only one of --output, --check, --update', HELP_COMPILE);
  if (values.status !== undefined && !['json', 'yaml', 'text'].includes(values.status)) {
    return usage(`smc compile: --status expects json, yaml or text, got ${JSON.stringify(values.status)}`, HELP_COMPILE);
  }
  if (values.format !== undefined && values.format !== 'json' && values.format !== 'yaml') {
    return usage(`smc compile: --format expects json or yaml, got ${JSON.stringify(values.format)}`, HELP_COMPILE);
  }
  if (values.bootstrap && values.output === undefined) return usage('smc compile: --bootstrap needs -o DIR (it writes certificate files)', HELP_COMPILE);
  let only: string | undefined;
  if (values.identity !== undefined) {
    const m = /^([^/]+)\/([^/]+)$/.exec(values.identity);
    if (!m) return usage(`smc compile: --identity expects NAMESPACE/SERVICEACCOUNT, got ${JSON.stringify(values.identity)}`, HELP_COMPILE);
    only = `${m[1]}/${m[2]}`;
  }

  const inputs = await loadPaths(positionals);
  const codec = loadEnvoyProtos();
  let result = compile(inputs, codec);
  const broken = result.snapshots.flatMap((s) => inconsistencies(s, codec));
  if (broken.length > 0) throw new Error(`inconsistent snapshot (a bug in smc):\n${broken.join('\n')}`);
  const rejected = result.status.some((s) => s.state === 'Rejected' || s.state === 'PartiallyAccepted');
  // With --status the status goes to stdout; stderr does not say it twice.
  if (values.status === undefined) for (const line of statusLines(result.status, fieldLine)) process.stderr.write(`${line}\n`);
  for (const s of result.snapshots) for (const w of s.warnings) process.stderr.write(`proxy ${s.identity}: warning: ${w}\n`);
  let code = rejected && !values['allow-rejected'] ? EXIT_REJECTED : EXIT_OK;

  if (only !== undefined) {
    const wanted = only;
    const snapshots = result.snapshots.filter((s) => proxyPath(s.identity, 'json') === `${wanted}.json`);
    if (snapshots.length === 0) {
      const known = result.snapshots.map((s) => proxyPath(s.identity, 'json').replace(/\.json$/, ''));
      process.stderr.write(`smc compile: no proxy identity ${wanted} (no workload runs as service account ${wanted}); known: ${known.join(', ') || 'none'}\n`);
      return EXIT_REJECTED;
    }
    result = { ...result, snapshots };
  }

  const folder = values.check ?? values.update;
  const format: Format = (values.format as Format | undefined) ?? (folder !== undefined ? await formatIn(folder) : 'json');
  if (values.check !== undefined) {
    const diffs = await compareWithFolder(values.check, renderCompileFiles(result, codec, format));
    for (const d of diffs) process.stdout.write(d.diff);
    if (diffs.length > 0) {
      process.stderr.write(`smc compile: ${diffs.length} file(s) differ from ${values.check}: ${diffs.map((d) => d.path).join(', ')} (run with --update ${values.check} to accept)\n`);
      code = EXIT_REJECTED;
    }
  } else if (values.update !== undefined) {
    await writeFolder(values.update, renderCompileFiles(result, codec, format), { prune: true });
  } else if (values.output !== undefined) {
    await writeFolder(values.output, renderCompileFiles(result, codec, format), { prune: false });
    if (values.bootstrap) await writeBootstraps(values.output, result, codec);
  } else if (only !== undefined) {
    for (const s of result.snapshots) process.stdout.write(renderProxy(s, codec, format));
  } else if (values.status === 'json' || values.status === 'yaml') {
    process.stdout.write(serialize(statusDocument(result, values.status), values.status));
  } else if (values.status === 'text') {
    for (const line of statusTable(result.status)) process.stdout.write(`${line}\n`);
  } else {
    process.stdout.write(serialize(result.ir, (values.format as Format | undefined) ?? 'yaml'));
  }
  return code;
}

/** The format of an existing expected-output folder (json when it holds none yet). */
async function formatIn(dir: string): Promise<Format> {
  try {
    const names = await readdir(dir);
    return names.includes('status.yaml') ? 'yaml' : 'json';
  } catch {
    return 'json';
  }
}

async function writeBootstraps(dir: string, result: MeshCompileResult, codec: ProtoCodec): Promise<void> {
  const certs = await throwawayCertificates(result.ir.settings.trustDomain, result.snapshots.map((s) => s.identity));
  const root = resolve(dir);
  await writeFile(join(root, 'ca.crt'), certs.trustBundle);
  for (const s of result.snapshots) {
    // A proxyless gRPC application has no Envoy to start; it takes its configuration over xDS only.
    if (s.dataPlane === 'proxyless') continue;
    const base = join(root, proxyPath(s.identity, 'json').replace(/\.json$/, ''));
    const cert = certs.identities.find((c) => c.identity === s.identity)!;
    await mkdir(dirname(base), { recursive: true });
    await writeFile(`${base}.crt`, cert.certificateChain);
    await writeFile(`${base}.key`, cert.privateKey, { mode: 0o600 });
    await chmod(`${base}.key`, 0o600);
    const files = { certificateChain: `${base}.crt`, privateKey: `${base}.key`, trustBundle: join(root, 'ca.crt') };
    const nodeId = relative(root, base);
    await writeFile(`${base}.bootstrap.json`, serialize(staticBootstrap(s, codec, files, nodeId), 'json'));
  }
  const envoys = result.snapshots.filter((s) => s.dataPlane === 'envoy').length;
  process.stderr.write(`smc compile: wrote ${envoys} bootstrap(s) with throwaway certificates under ${dir}\n`);
}

/** The options of `goldenCommand` (its help lists each; completion and suggestions read them). */
export const OPTIONS_GOLDEN = { update: { type: 'boolean', default: false }, help: { type: 'boolean', short: 'h', default: false } } as const;

export async function goldenCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: OPTIONS_GOLDEN,
  });
  if (values.help) {
    process.stdout.write(HELP_GOLDEN);
    return EXIT_OK;
  }
  const root = positionals[0] ?? 'golden';
  let failed = 0;
  for (const name of await listGoldenCases(root)) {
    const r = await runGoldenCase(root, name, values.update);
    if (r.differences.length > 0) {
      failed++;
      process.stdout.write(`--- ${name}: ${r.differences.length} file(s) differ\n`);
      for (const d of r.differences) process.stdout.write(d.diff);
    } else process.stdout.write(`${values.update ? 'updated' : 'ok'}      ${name}\n`);
  }
  return failed > 0 ? EXIT_REJECTED : EXIT_OK;
}

export const HELP_KINDS = `smc kinds [-o json|yaml]

Lists every kind smc reads and the apiVersions it accepts of each (a folder
may hold any of them; on Kubernetes the newest SMI version of each kind is
watched). Objects of other kinds are reported as Ignored by 'smc compile'.

Options:
  -o, --output json|yaml  Machine-readable
  -h, --help              Show this help

Example:
  smc kinds | grep TrafficTarget
`;

/** The options of `kindsCommand` (its help lists each; completion and suggestions read them). */
export const OPTIONS_KINDS = { output: { type: 'string', short: 'o' }, help: { type: 'boolean', short: 'h', default: false } } as const;

export function kindsCommand(args: string[]): number {
  const { values } = parseArgs({ args, options: OPTIONS_KINDS });
  if (values.help) {
    process.stdout.write(HELP_KINDS);
    return EXIT_OK;
  }
  if (values.output !== undefined && values.output !== 'json' && values.output !== 'yaml') throw new UsageError(`-o expects json or yaml (or nothing, for a list), got ${JSON.stringify(values.output)}`);
  const kinds = supportedKinds();
  if (values.output === 'json') process.stdout.write(`${JSON.stringify({ kinds }, null, 2)}\n`);
  else if (values.output === 'yaml') process.stdout.write(stringify({ kinds }, { lineWidth: 0 }));
  else for (const k of kinds) process.stdout.write(`${k.kind.padEnd(16)} ${k.apiVersions.join(', ')}\n`);
  return EXIT_OK;
}

function usage(message: string, help: string): number {
  process.stderr.write(`${message}\n\n${help}`);
  return EXIT_USAGE;
}
