#!/usr/bin/env node
import { parseArgs } from 'node:util';
import { loadPaths, PathNotFoundError } from '../adapters/yaml-files.js';
import { compileIR } from '../compiler/compile.js';
import { supportedKinds } from '../compiler/decode/index.js';
import { compareWithFolder, writeFolder } from '../output/expected.js';
import { listGoldenCases, runGoldenCase } from '../output/golden.js';
import { renderIRFiles, statusLines, toYaml, renderStatus } from '../output/render.js';

/** Exit codes scripts can trust. */
const EXIT_OK = 0;
const EXIT_REJECTED = 1; // some input was rejected, or --check found a difference
const EXIT_USAGE = 2;

const HELP = `smc - a service-mesh control plane for SMI policy and Envoy

Usage:
  smc compile PATH... [options]   Compile YAML (files or folders) into the mesh model
  smc golden [--update] [DIR]     Check (or rewrite) the golden cases under DIR (default: golden)
  smc kinds                       List the kinds and apiVersions smc reads
  smc help [COMMAND]              Show help

Run 'smc help compile' for the options of a command.
`;

const HELP_COMPILE = `smc compile PATH... [options]

Reads files or folders of YAML/JSON the way 'kubectl apply -f' takes them
(.yaml, .yml, .json; folders recursively; several documents per file) and
compiles them into the mesh model: workloads, services and endpoints, who may
call whom on which routes (deny by default), and the effective traffic splits.
Every input object gets a status: Accepted, PartiallyAccepted, Rejected or
Ignored, with the file, line, field path and reason of each problem.

Options:
  -o, --output DIR     Write ir.yaml and status.yaml into DIR
      --check DIR      Compare with the expected output in DIR; print a diff and
                       exit 1 on any difference (regression tests for your mesh)
      --update DIR     Rewrite the expected output in DIR
      --status json|yaml|text
                       How to print the status on stdout when no DIR is given
                       (default: text on stderr, model as YAML on stdout)
      --allow-rejected Exit 0 even when some input was rejected
  -h, --help           Show this help

Exit status: 0 when every input was accepted (or --allow-rejected), 1 when some
input was rejected or --check found a difference, 2 on a usage error.
`;

const HELP_GOLDEN = `smc golden [--update] [DIR]

Each folder DIR/<case>/ holds input/ (YAML) and expected/ (what smc makes of
it). Without --update, prints a diff for every case whose output changed and
exits 1; with --update, rewrites expected/ (review the diff like code).
`;

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      process.stdout.write(rest[0] === 'compile' ? HELP_COMPILE : rest[0] === 'golden' ? HELP_GOLDEN : HELP);
      return EXIT_OK;
    case 'compile':
      return compile(rest);
    case 'golden':
      return golden(rest);
    case 'kinds':
      for (const k of supportedKinds()) process.stdout.write(`${k.kind.padEnd(16)} ${k.apiVersions.join(', ')}\n`);
      return EXIT_OK;
    default:
      process.stderr.write(`smc: unknown command ${JSON.stringify(command)}\n\n${HELP}`);
      return EXIT_USAGE;
  }
}

async function compile(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      output: { type: 'string', short: 'o' },
      check: { type: 'string' },
      update: { type: 'string' },
      status: { type: 'string' },
      'allow-rejected': { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
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

  const inputs = await loadPaths(positionals);
  const result = compileIR(inputs);
  const files = renderIRFiles(result);
  const rejected = result.status.some((s) => s.state === 'Rejected' || s.state === 'PartiallyAccepted');
  for (const line of statusLines(result.status)) process.stderr.write(`${line}\n`);

  let code = rejected && !values['allow-rejected'] ? EXIT_REJECTED : EXIT_OK;
  if (values.check !== undefined) {
    const diffs = await compareWithFolder(values.check, files);
    for (const d of diffs) process.stdout.write(d.diff);
    if (diffs.length > 0) {
      process.stderr.write(`smc compile: ${diffs.length} file(s) differ from ${values.check} (run with --update ${values.check} to accept)\n`);
      code = EXIT_REJECTED;
    }
  } else if (values.update !== undefined) {
    await writeFolder(values.update, files);
  } else if (values.output !== undefined) {
    await writeFolder(values.output, files);
  } else if (values.status === 'json') {
    process.stdout.write(`${JSON.stringify(renderStatus(result.status), null, 2)}\n`);
  } else if (values.status === 'yaml') {
    process.stdout.write(toYaml(renderStatus(result.status)));
  } else {
    process.stdout.write(files.get('ir.yaml') ?? '');
  }
  return code;
}

async function golden(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: { update: { type: 'boolean', default: false }, help: { type: 'boolean', short: 'h', default: false } },
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

function usage(message: string, help: string): number {
  process.stderr.write(`${message}\n\n${help}`);
  return EXIT_USAGE;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (e: unknown) => {
    if (e instanceof PathNotFoundError || (e instanceof TypeError && 'code' in e && String(e.code).startsWith('ERR_PARSE_ARGS'))) {
      process.stderr.write(`smc: ${e.message}\n`);
      process.exitCode = EXIT_USAGE;
      return;
    }
    process.stderr.write(`smc: internal error: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    process.exitCode = 3;
  },
);

