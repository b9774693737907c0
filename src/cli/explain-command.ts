import { stringify } from 'yaml';
import { parseArgs } from 'node:util';
import { loadPaths } from '../adapters/yaml-files.js';
import { compileIR } from '../compiler/compile.js';
import { explain } from '../compiler/explain.js';
import { explanationText, parseExplainQuery, type ExplainArgs, type LiveExplanation } from '../output/explain.js';
import { adminUrl, hostPort, UsageError } from './usage.js';

export const HELP_EXPLAIN = `smc explain --from NS/SA --to SERVICE[.NS]:PORT [request] [SOURCE...]

Says whether a request from one workload identity to a service port would be
allowed, and why: the TrafficTarget rule (and HTTPRouteGroup match) that
allows it, or what is missing (no TrafficTarget for the destination, the
caller not among its sources, a port not granted, a method, path or header
that no match accepts), and the TrafficSplit or Gateway API route rule and the
backends the request would go to. The answer comes from the same mesh model
the proxies' configuration is built from.

With SOURCE (files or folders of YAML), it reads them offline; without, it
asks a running controller (the mesh as the controller currently serves it).

Options:
      --from NS/SA          The caller's service account (or its SPIFFE ID); required
      --to SERVICE[.NS]:PORT
                            The service and service port it calls; a bare name
                            is in the caller's namespace; required
      --method M            HTTP method (default GET)
      --path P              HTTP path (default /; a query string's parameters are
                            matched by Gateway API routes, never by SMI)
      --header NAME=VALUE   A request header; repeat for more
                            (with none of --method/--path/--header an HTTP port
                            is asked about GET /)
      --admin HOST:PORT     The controller's admin port, when no SOURCE is given
                            (default 127.0.0.1:15129)
  -o, --output json|yaml    Print the answer as JSON or YAML
  -h, --help                Show this help

Exit status: 0 allowed, 1 denied (or allowed at some destinations only),
2 usage error, 3 the controller could not be asked, 4 no such service,
service port or caller identity in the mesh (UNKNOWN, not a denial).

Examples:
  smc explain --from bookbuyer/bookbuyer --to bookstore.bookstore:14001 --path /books-bought examples/bookstore
  smc explain --from bookthief/bookthief --to bookstore.bookstore:14001 -o json
`;

/** The options of `explainCommand` (its help lists each; completion and suggestions read them). */
export const OPTIONS_EXPLAIN = {
  from: { type: 'string' },
  to: { type: 'string' },
  method: { type: 'string' },
  path: { type: 'string' },
  header: { type: 'string', multiple: true },
  admin: { type: 'string', default: '127.0.0.1:15129' },
  output: { type: 'string', short: 'o' },
  help: { type: 'boolean', short: 'h', default: false },
} as const;

export async function explainCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: OPTIONS_EXPLAIN,
  });
  if (values.help) {
    process.stdout.write(HELP_EXPLAIN);
    return 0;
  }
  if (values.output !== undefined && values.output !== 'json' && values.output !== 'yaml') throw new UsageError(`-o expects json or yaml (or nothing, for text), got ${JSON.stringify(values.output)}`);
  const asked: ExplainArgs = { from: values.from, to: values.to, method: values.method, path: values.path, headers: values.header ?? [] };
  let answer: LiveExplanation;
  if (positionals.length > 0) {
    const { ir, status } = compileIR(await loadPaths(positionals));
    const parsed = parseExplainQuery(asked, ir.settings.trustDomain);
    if ('errors' in parsed) throw new UsageError(parsed.errors.join('; '));
    answer = explain(ir, parsed.query, status);
  } else {
    // Checked here too, so a typo is a usage error whether or not a controller runs.
    const parsed = parseExplainQuery(asked, 'cluster.local');
    if ('errors' in parsed) throw new UsageError(parsed.errors.join('; '));
    const { host, port } = hostPort(values.admin, '--admin');
    const query = new URLSearchParams();
    for (const [k, v] of Object.entries({ from: values.from, to: values.to, method: values.method, path: values.path })) if (v !== undefined) query.set(k, v);
    for (const h of values.header ?? []) query.append('header', h);
    let res: Response;
    try {
      res = await fetch(`${adminUrl(host, port)}/explain?${query}`);
    } catch (e) {
      process.stderr.write(`smc explain: cannot reach the controller's admin port at ${values.admin} (${(e as Error).message}); give a SOURCE folder to explain offline\n`);
      return 3;
    }
    if (!res.ok) {
      process.stderr.write(`smc explain: the controller answered ${res.status}: ${(await res.text()).trim()}\n`);
      return 3;
    }
    answer = (await res.json()) as LiveExplanation;
  }
  process.stdout.write(values.output === 'json' ? `${JSON.stringify(answer, null, 2)}\n` : values.output === 'yaml' ? stringify(answer, { lineWidth: 0 }) : explanationText(answer));
  return answer.verdict === 'allowed' ? 0 : answer.verdict === 'unknown' ? 4 : 1;
}
