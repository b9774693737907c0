import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { customResourceDefinitions, renderCrd } from '../output/crds.js';
import { EXIT_OK, EXIT_REJECTED, UsageError } from './usage.js';

export const HELP_CRDS = `smc crds [--output-dir DIR | --check DIR]

Prints the CustomResourceDefinitions of the policy kinds smc reads (SMI's
TrafficTarget, HTTPRouteGroup, TCPRoute, UDPRoute, TrafficSplit, and smc's
MeshConfig and VirtualMachine), generated from the same definitions smc
decodes them with. Their schemas name and describe every field, so
'kubectl explain' documents them and the API server refuses a misspelt
field at apply; 'kubectl get' shows whether smc accepted each object.

Options:
      --output-dir DIR   Write one file per kind into DIR instead
      --check DIR        Exit 1 if the files in DIR differ from what smc
                         generates (naming each one)
  -h, --help             Show this help

Examples:
  smc crds | kubectl apply -f -
  smc crds --output-dir deploy/crds
`;

/** The options of `crdsCommand` (its help lists each; completion and suggestions read them). */
export const OPTIONS_CRDS = { 'output-dir': { type: 'string' }, check: { type: 'string' }, help: { type: 'boolean', short: 'h', default: false } } as const;

export function crdsCommand(args: string[]): number {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: OPTIONS_CRDS,
  });
  if (values.help) {
    process.stdout.write(HELP_CRDS);
    return EXIT_OK;
  }
  if (positionals.length > 0) throw new UsageError(`takes no positional arguments (got ${JSON.stringify(positionals[0])})`);
  if (values['output-dir'] !== undefined && values.check !== undefined) throw new UsageError('--output-dir and --check exclude each other');
  const files = customResourceDefinitions().map((f) => ({ file: f.file, text: renderCrd(f) }));
  if (values.check !== undefined) {
    const dir = values.check;
    const stale = files.filter((f) => {
      try {
        return readFileSync(join(dir, f.file), 'utf8') !== f.text;
      } catch {
        return true;
      }
    });
    for (const f of stale) process.stderr.write(`smc crds: ${join(dir, f.file)} differs from what smc generates; run 'smc crds --output-dir ${dir}'\n`);
    return stale.length > 0 ? EXIT_REJECTED : EXIT_OK;
  }
  if (values['output-dir'] !== undefined) {
    mkdirSync(values['output-dir'], { recursive: true });
    for (const f of files) writeFileSync(join(values['output-dir'], f.file), f.text);
    process.stdout.write(`wrote ${files.length} CRDs to ${values['output-dir']}\n`);
    return EXIT_OK;
  }
  process.stdout.write(files.map((f) => f.text).join('---\n'));
  return EXIT_OK;
}
