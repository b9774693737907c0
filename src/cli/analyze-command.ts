import { parseArgs } from 'node:util';
import { stringify } from 'yaml';
import { createInputStore } from '../adapters/source.js';
import { compileIR } from '../compiler/compile.js';
import { renderStatus, statusTable } from '../output/render.js';
import { durationMs } from './runtime-commands.js';
import { EXIT_OK, EXIT_REJECTED, UsageError } from './usage.js';

export const HELP_ANALYZE = `smc analyze [--kubeconfig FILE] [--status text|json|yaml] [options]

Reads a live cluster as the controller would (Namespaces, Services, Pods,
ServiceAccounts, EndpointSlices, and the SMI and smc kinds), read only, and
prints every object's status as 'smc compile --status' does: Accepted,
PartiallyAccepted, Rejected or Ignored, with each problem and warning and the
field it concerns. Nothing is written to the cluster (no status, no CA).

Options:
      --kubeconfig FILE        The cluster (default $KUBECONFIG, ~/.kube/config,
                               or the pod's service account)
      --status text|json|yaml  Output format (default text)
      --all                    Also list objects with nothing to say (text)
      --timeout DURATION       How long to wait for every kind to list
                               (default 30s)
  -h, --help                   Show this help

Exit status: 0 when nothing is rejected, 1 when an object is rejected or
partly accepted, 2 usage error, 3 the cluster could not be read (a kind that
cannot be listed is named).

Examples:
  smc analyze
  smc analyze --kubeconfig ~/.kube/prod --status json | jq '.objects[] | select(.state != "Accepted")'
`;

export const OPTIONS_ANALYZE = {
  kubeconfig: { type: 'string' },
  status: { type: 'string', default: 'text' },
  all: { type: 'boolean', default: false },
  timeout: { type: 'string', default: '30s' },
  help: { type: 'boolean', short: 'h', default: false },
} as const;

export async function analyzeCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args, allowPositionals: true, options: OPTIONS_ANALYZE });
  if (values.help) {
    process.stdout.write(HELP_ANALYZE);
    return EXIT_OK;
  }
  if (positionals.length > 0) throw new UsageError(`takes no positional arguments (got ${JSON.stringify(positionals[0])}); to analyze files, use smc compile PATH --status text`);
  const format = values.status;
  if (format !== 'text' && format !== 'json' && format !== 'yaml') throw new UsageError(`--status expects text, json or yaml, got ${JSON.stringify(format)}`);
  const timeoutMs = durationMs(values.timeout, '--timeout');
  // Loaded only here: the Kubernetes client is large.
  const { createKubernetesSource } = await import('../adapters/kubernetes-source.js');
  const problems: string[] = [];
  const source = createKubernetesSource({ ...(values.kubeconfig ? { kubeconfig: values.kubeconfig } : {}), log: (line) => problems.push(line), retryMs: 1000 });
  const store = createInputStore([source]);
  let timer: NodeJS.Timeout | undefined;
  try {
    const started = source.start(store.events(source));
    const timedOut = new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), timeoutMs)));
    if ((await Promise.race([started.then(() => 'synced' as const), timedOut])) === 'timeout') {
      process.stderr.write(`smc analyze: the cluster could not be read within ${values.timeout}: ${source.waitingFor?.() ?? problems.slice(-1)[0] ?? 'no answer'}\n`);
      process.exit(3);
    }
  } catch (e) {
    process.stderr.write(`smc analyze: ${(e as Error).message}\n`);
    return 3;
  } finally {
    clearTimeout(timer);
  }
  const { status } = compileIR(store.inputs());
  await source.close();
  if (format === 'text') {
    const shown = values.all ? status : status.filter((s) => s.messages.length > 0 || s.state !== 'Accepted');
    for (const line of statusTable(shown)) process.stdout.write(`${line}\n`);
    const count = (state: string) => status.filter((s) => s.state === state).length;
    process.stdout.write(`${status.length} objects: ${count('Accepted')} accepted, ${count('PartiallyAccepted')} partly accepted, ${count('Rejected')} rejected, ${count('Ignored')} ignored\n`);
  } else {
    const doc = { objects: renderStatus(status, { origins: true }) };
    process.stdout.write(format === 'json' ? `${JSON.stringify(doc, null, 2)}\n` : stringify(doc, { lineWidth: 0 }));
  }
  const code = status.some((s) => s.state === 'Rejected' || s.state === 'PartiallyAccepted') ? EXIT_REJECTED : EXIT_OK;
  // The client library keeps its connections to the API server open after its watches stop: once the output
  // is out, the command ends rather than waiting for them to time out.
  await new Promise<void>((resolve) => process.stdout.write('', () => resolve()));
  process.exit(code);
}
