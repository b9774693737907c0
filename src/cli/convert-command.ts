import { parseArgs } from 'node:util';
import { writeFile } from 'node:fs/promises';
import { stringify } from 'yaml';
import { loadPaths } from '../adapters/yaml-files.js';
import { convertSmi } from '../compiler/convert.js';
import { EXIT_OK, EXIT_REJECTED, UsageError } from './usage.js';

export const HELP_CONVERT = `smc convert PATH... [options]

Converts SMI traffic splitting into the Gateway API's mesh routes (GAMMA):
each TrafficSplit in force becomes an HTTPRoute on its root Service (one per
HTTP port), its HTTPRouteGroup matches the matches of one rule, and a second
rule sends every other request to the root Service, as SMI does. Reads files
or folders of YAML the way 'smc compile' does, and prints the HTTPRoutes.

TrafficTargets, HTTPRouteGroups and TCPRoutes stay as they are: they remain
the access policy (a route never lets a caller reach more than they allow).
Apply the routes, then delete the TrafficSplits they name (annotation
smc.dev/converted-from): where both are on a Service port, the route decides.

What cannot be carried over is reported on stderr, with the reason: the split
of a TCP port (the standard channel has no mesh route for TCP), a method an
HTTPRouteMatch cannot name, a backend without the root's port, a TrafficSplit
smc rejects.

Options:
  -o, --output FILE      Write the routes to FILE instead of stdout
      --format yaml|json Output format (default yaml)
  -h, --help             Show this help

Exit status: 0 everything converted, 1 converted with something left out
(see the report), 2 usage error.

Examples:
  smc convert examples/bookstore
  smc convert policy/ -o routes.yaml && smc compile policy/ routes.yaml --status text
`;

/** The options of `convertCommand` (its help lists each; completion and suggestions read them). */
export const OPTIONS_CONVERT = {
  output: { type: 'string', short: 'o' },
  format: { type: 'string', default: 'yaml' },
  help: { type: 'boolean', short: 'h', default: false },
} as const;

export async function convertCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args, options: OPTIONS_CONVERT, allowPositionals: true, strict: true });
  if (values.help) {
    process.stdout.write(HELP_CONVERT);
    return EXIT_OK;
  }
  if (positionals.length === 0) throw new UsageError('smc convert needs at least one PATH (a file or folder of YAML)');
  if (values.format !== 'yaml' && values.format !== 'json') throw new UsageError(`--format expects yaml or json, got ${JSON.stringify(values.format)}`);
  const inputs = await loadPaths(positionals);
  for (const p of inputs.problems) process.stderr.write(`smc convert: ${p.origin.source}: ${p.message}\n`);
  const { documents, replaced, report } = convertSmi(inputs);
  const text =
    values.format === 'json'
      ? `${JSON.stringify({ apiVersion: 'v1', kind: 'List', items: documents }, null, 2)}\n`
      : documents.map((d) => `---\n${stringify(d, { lineWidth: 0 })}`).join('');
  if (values.output) await writeFile(values.output, text);
  else process.stdout.write(text);
  process.stderr.write(`smc convert: ${documents.length} HTTPRoute(s) from ${replaced.length} TrafficSplit(s)${replaced.length > 0 ? ` (${replaced.join(', ')})` : ''}\n`);
  for (const r of report) process.stderr.write(`smc convert: not carried over: ${r}\n`);
  return report.length > 0 || inputs.problems.length > 0 ? EXIT_REJECTED : EXIT_OK;
}
