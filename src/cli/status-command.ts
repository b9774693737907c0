import { parseArgs } from 'node:util';
import { stringify } from 'yaml';
import { clientText } from '../compiler/client-text.js';
import { waitText, type ProgrammedCondition } from '../compiler/programmed.js';
import { columns } from '../output/render.js';
import { adminUrl, durationMs, hostPort, UsageError } from './usage.js';

export const HELP_STATUS = `smc status [-n NAMESPACE] [--all] [--admin HOST:PORT] [-o json|yaml] [--wait DURATION]

Lists the policy objects of a running controller (SMI kinds, Gateway API
routes, MeshConfig) that are not programmed: accepted, but not yet in force on
every connected proxy whose configuration they shape. For each, whether it is
Pending (sent, not acknowledged: which proxies, which resources, for how long),
Rejected (a proxy refused a resource built from it: which proxy, which
resource, and Envoy's own message) or NoProxies (no connected proxy carries it).

Options:
  -n, --namespace NS      Only objects of this namespace
  -A, --all               Every policy object, programmed ones too
      --admin HOST:PORT   The controller's admin port (default 127.0.0.1:15129)
  -o, --output json|yaml  Machine-readable (every field of each condition)
      --wait DURATION     Ask again until nothing shown is Pending or Rejected,
                          for at most DURATION (e.g. 30s); prints the last answer
  -h, --help              Show this help

Exit status 0 when nothing shown is Pending or Rejected, 1 otherwise (with
--wait: still so when DURATION ran out), 2 usage error, 3 the controller could
not be asked.

Examples:
  smc status
  smc status --wait 60s && echo "the mesh is in force"
  smc status -A -n bookstore
  smc status -o json | jq '.objects[] | select(.programmed.reason == "Rejected")'
`;

/** The options of `statusCommand` (its help lists each; completion and suggestions read them). */
export const OPTIONS_STATUS = {
  namespace: { type: 'string', short: 'n' },
  all: { type: 'boolean', short: 'A', default: false },
  admin: { type: 'string', default: '127.0.0.1:15129' },
  output: { type: 'string', short: 'o' },
  wait: { type: 'string' },
  help: { type: 'boolean', short: 'h', default: false },
} as const;

interface Row {
  readonly object: string;
  readonly state: string;
  readonly programmed?: ProgrammedCondition;
}

/** `Kind ns/name` -> its namespace (mesh-wide objects have none). */
const namespaceOf = (object: string): string | undefined => /^\S+ ([^/\s]+)\//.exec(object)?.[1];

export async function statusCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args, allowPositionals: true, options: OPTIONS_STATUS });
  if (values.help) {
    process.stdout.write(HELP_STATUS);
    return 0;
  }
  if (positionals.length > 0) throw new UsageError(`status takes no arguments, got ${positionals.map((p) => JSON.stringify(p)).join(' ')} (use -n NAMESPACE to narrow the list)`);
  if (values.output !== undefined && values.output !== 'json' && values.output !== 'yaml') throw new UsageError(`-o expects json or yaml (or nothing, for a table), got ${JSON.stringify(values.output)}`);
  const waitMs = values.wait === undefined ? undefined : durationMs(values.wait, '--wait');
  const { host, port } = hostPort(values.admin, '--admin');
  const troubled = (r: Row) => r.programmed?.reason === 'Pending' || r.programmed?.reason === 'Rejected';
  const ask = async (): Promise<Row[] | undefined> => {
    try {
      const res = await fetch(`${adminUrl(host, port)}/status/inputs`);
      if (!res.ok) throw new Error(`HTTP ${res.status}`);
      const doc = (await res.json()) as { objects: Row[] };
      return doc.objects.filter((o) => o.programmed !== undefined && (values.namespace === undefined || namespaceOf(o.object) === values.namespace) && (values.all || o.programmed.status !== 'True'));
    } catch (e) {
      process.stderr.write(`smc status: cannot reach the controller's admin port at ${values.admin}: ${(e as Error).message}\n`);
      return undefined;
    }
  };
  let rows = await ask();
  if (rows === undefined) return 3;
  const end = waitMs === undefined ? 0 : Date.now() + waitMs;
  while (waitMs !== undefined && rows.some(troubled) && Date.now() < end) {
    await new Promise((r) => setTimeout(r, Math.min(500, Math.max(0, end - Date.now()))));
    const again = await ask();
    if (again === undefined) return 3;
    rows = again;
  }
  if (values.output === 'json') process.stdout.write(`${JSON.stringify({ objects: rows }, null, 2)}\n`);
  else if (values.output === 'yaml') process.stdout.write(stringify({ objects: rows }, { lineWidth: 0 }));
  else if (rows.length === 0) process.stdout.write(values.all ? 'no policy object\n' : 'every policy object is programmed on every connected proxy it shapes\n');
  else {
    const header = ['OBJECT', 'PROGRAMMED', 'REASON', 'PROXIES'];
    process.stdout.write(columns([header, ...rows.map((r) => [r.object, r.programmed!.status, r.programmed!.reason, `${r.programmed!.programmed}/${r.programmed!.proxies}`])]));
    // What proxies said is printed escaped, even from a controller that did not escape it.
    for (const r of rows) {
      for (const x of r.programmed!.rejected ?? []) process.stdout.write(`${r.object}: ${clientText(x.node, 128)} rejected ${x.kind} ${clientText(x.resource, 256)}: ${clientText(x.message)}\n`);
      for (const x of r.programmed!.pending ?? []) process.stdout.write(`${r.object}: waiting ${waitText(x.waitingMs)} for ${clientText(x.node, 128)} to take ${x.kind} ${x.resources.slice(0, 5).map((n) => clientText(n, 256)).join(', ')}${x.resources.length > 5 ? ` and ${x.resources.length - 5} more` : ''}\n`);
    }
  }
  return rows.some(troubled) ? 1 : 0;
}
