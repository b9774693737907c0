import { spawn } from 'node:child_process';
import { parseArgs } from 'node:util';
import { CAPTURE_ANNOTATIONS, CAPTURE_JUMPS, captureFromAnnotations, captureRules, captureScript, DEFAULT_CAPTURE } from '../compiler/capture.js';
import { UsageError } from './usage.js';

export const HELP_CAPTURE = `smc capture [options]

Prints (or applies) the iptables rules that send a host's TCP traffic
through its smc sidecar in transparent mode: inbound to the inbound listener
(15003), outbound to the outbound listener (15001). The sidecar's own
traffic (its uid), loopback, the admin (15000), stats (15010) and probe
(15904) ports are never captured. IPv4 and TCP only: DNS and other UDP pass.
The injected init container runs 'smc capture --apply'; a VM bundle's
capture.sh holds the same rules.

Options:
      --proxy-uid UID                   The uid Envoy runs as (default ${DEFAULT_CAPTURE.proxyUid})
      --exclude-inbound-ports P,P       Inbound ports that reach the application directly
      --exclude-outbound-ports P,P      Destination ports the application reaches directly
      --exclude-outbound-ip-ranges CIDR,CIDR
                                        Destination ranges the application reaches directly
      --format rules|script             iptables-restore input (default) or a shell script
      --apply                           Apply the rules now (iptables-restore --noflush;
                                        needs CAP_NET_ADMIN in the host's network namespace)
  -h, --help                            Show this help

The same settings, on a pod, are the annotations ${CAPTURE_ANNOTATIONS.excludeInboundPorts},
${CAPTURE_ANNOTATIONS.excludeOutboundPorts} and ${CAPTURE_ANNOTATIONS.excludeOutboundRanges}.

Exit status: 0 when printed or applied, 1 when iptables-restore failed, 2 on a usage error.

Examples:
  smc capture --exclude-outbound-ports 5432 --format script > capture.sh
  sudo smc capture --apply --exclude-inbound-ports 9090
`;

/** The options of `captureCommand` (its help lists each; completion and suggestions read them). */
export const OPTIONS_CAPTURE = {
  'proxy-uid': { type: 'string' },
  'exclude-inbound-ports': { type: 'string' },
  'exclude-outbound-ports': { type: 'string' },
  'exclude-outbound-ip-ranges': { type: 'string' },
  format: { type: 'string', default: 'rules' },
  apply: { type: 'boolean', default: false },
  help: { type: 'boolean', short: 'h', default: false },
} as const;

export async function captureCommand(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: OPTIONS_CAPTURE,
  });
  if (values.help) {
    process.stdout.write(HELP_CAPTURE);
    return 0;
  }
  if (values.format !== 'rules' && values.format !== 'script') throw new UsageError(`--format expects rules or script, got ${JSON.stringify(values.format)}`);
  // The options are read exactly as the pod annotations are: one parser, one set of messages.
  const flags: Record<string, string> = {};
  if (values['exclude-inbound-ports'] !== undefined) flags[CAPTURE_ANNOTATIONS.excludeInboundPorts] = values['exclude-inbound-ports'];
  if (values['exclude-outbound-ports'] !== undefined) flags[CAPTURE_ANNOTATIONS.excludeOutboundPorts] = values['exclude-outbound-ports'];
  if (values['exclude-outbound-ip-ranges'] !== undefined) flags[CAPTURE_ANNOTATIONS.excludeOutboundRanges] = values['exclude-outbound-ip-ranges'];
  const { settings, problems } = captureFromAnnotations(flags);
  if (problems.length > 0) {
    const flag = (field: string) => `--${Object.entries(CAPTURE_ANNOTATIONS).find(([, a]) => field.includes(a))?.[1].split('/')[1] ?? field}`;
    throw new UsageError(problems.map((p) => `${flag(p.field)}: ${p.message}`).join('; '));
  }
  let proxyUid = settings.proxyUid;
  if (values['proxy-uid'] !== undefined) {
    if (!/^\d{1,10}$/.test(values['proxy-uid']) || Number(values['proxy-uid']) > 2 ** 32 - 2) throw new UsageError(`--proxy-uid expects a uid (a number), got ${JSON.stringify(values['proxy-uid'])}`);
    proxyUid = Number(values['proxy-uid']);
  }
  const s = { ...settings, proxyUid };
  if (!values.apply) {
    process.stdout.write(values.format === 'script' ? captureScript(s) : captureRules(s));
    return 0;
  }
  // Applied again (a restarted init container), the rules replace themselves: the jumps into smc's chains go first.
  for (const jump of CAPTURE_JUMPS) await run('iptables', ['-t', 'nat', '-D', ...jump]);
  const { code, stderr } = await run('iptables-restore', ['--noflush'], captureRules(s));
  if (code !== 0) {
    process.stderr.write(`smc capture: iptables-restore failed${code === null ? '' : ` (exit ${code})`}: ${stderr.trim() || 'no message'}\n`);
    return 1;
  }
  process.stderr.write(`smc capture: applied: inbound TCP to ${s.inboundPort}, outbound TCP to ${s.outboundPort}, uid ${s.proxyUid} passes${s.excludeInboundPorts.length ? `, inbound ports ${s.excludeInboundPorts.join(',')} pass` : ''}${s.excludeOutboundPorts.length ? `, outbound ports ${s.excludeOutboundPorts.join(',')} pass` : ''}${s.excludeOutboundRanges.length ? `, ${s.excludeOutboundRanges.join(',')} pass` : ''}\n`);
  return 0;
}

/** Runs a program to its end; a jump that is not there yet makes `iptables -D` fail, which is fine. */
function run(cmd: string, args: readonly string[], input?: string): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { stdio: [input === undefined ? 'ignore' : 'pipe', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', (e) => resolve({ code: null, stderr: e.message }));
    child.on('close', (code) => resolve({ code, stderr }));
    child.stdin?.on('error', () => undefined); // it exited first: its exit code says why
    child.stdin?.end(input);
  });
}
