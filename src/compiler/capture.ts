import { clientText } from './client-text.js';
import { isIpAddress } from './decode/common.js';
import { ADMIN_PORT, INBOUND_PORT, OUTBOUND_PORT, STATS_PORT } from './envoy/names.js';

/**
 * Traffic capture for `transparent` workloads: the iptables rules that send
 * an application's TCP traffic through its sidecar. One pure function, used
 * by the injected init container (`smc capture --apply`), by the VM bundle's
 * `capture.sh`, and by the tests, which apply its output in a network
 * namespace.
 *
 * What the rules do (IPv4, nat table, TCP only; UDP such as DNS is left alone):
 * - inbound: every TCP connection to the host goes to the inbound listener
 *   (15003), except the sidecar's admin (15000) and stats (15010) ports, the
 *   probe port, and the excluded inbound ports;
 * - outbound: every TCP connection the host opens goes to the outbound
 *   listener (15001), except the sidecar's own (its uid), connections to
 *   loopback or to the host's own addresses, the excluded outbound ports and
 *   the excluded outbound ranges.
 * The rules live in chains of their own (SMC_*), entered by one jump each
 * from PREROUTING and OUTPUT. Applying them again replaces them: the chains
 * are flushed by iptables-restore, and the jumps are deleted first
 * (`CAPTURE_JUMPS`), so nothing is doubled.
 */
export interface CaptureSettings {
  /** The uid Envoy runs as: its own connections are never captured. */
  readonly proxyUid: number;
  readonly inboundPort: number;
  readonly outboundPort: number;
  /** Inbound ports that reach the application directly (no mTLS, no policy). */
  readonly excludeInboundPorts: readonly number[];
  /** Destination ports the application reaches directly, without the sidecar. */
  readonly excludeOutboundPorts: readonly number[];
  /** Destination ranges (IPv4 CIDR) the application reaches directly. */
  readonly excludeOutboundRanges: readonly string[];
  /** Further inbound ports of the sidecar itself (the probe port). */
  readonly sidecarPorts: readonly number[];
}

/** Envoy's uid in injected pods and VM bundles (OSM's choice, as are the ports). */
export const PROXY_UID = 1500;

/** The port kubelet's rewritten probes reach the sidecar on (see inject). */
export const PROBE_PORT = 15904;

/** The ports the sidecar itself listens on in the pod: no probe may target them (it would reach Envoy, not the application). */
export const SIDECAR_PORTS: readonly number[] = [ADMIN_PORT, OUTBOUND_PORT, INBOUND_PORT, STATS_PORT, PROBE_PORT];

export const DEFAULT_CAPTURE: CaptureSettings = {
  proxyUid: PROXY_UID,
  inboundPort: INBOUND_PORT,
  outboundPort: OUTBOUND_PORT,
  excludeInboundPorts: [],
  excludeOutboundPorts: [],
  excludeOutboundRanges: [],
  sidecarPorts: [PROBE_PORT],
};

/** The chains smc owns in the nat table. */
export const CAPTURE_CHAINS = ['SMC_INBOUND', 'SMC_INBOUND_REDIRECT', 'SMC_OUTBOUND', 'SMC_OUTBOUND_REDIRECT'] as const;

/** The jumps into smc's chains, as `iptables -t nat -D` takes them: deleted before the rules are applied again. */
export const CAPTURE_JUMPS: readonly (readonly string[])[] = [
  ['PREROUTING', '-p', 'tcp', '-j', 'SMC_INBOUND'],
  ['OUTPUT', '-p', 'tcp', '-j', 'SMC_OUTBOUND'],
];

/** The rules in `iptables-restore --noflush` input format. */
export function captureRules(s: CaptureSettings): string {
  const inboundBypass = unique([ADMIN_PORT, STATS_PORT, ...s.sidecarPorts, ...s.excludeInboundPorts]);
  const outboundBypassPorts = unique(s.excludeOutboundPorts);
  const lines = [
    '*nat',
    ...CAPTURE_CHAINS.map((c) => `:${c} - [0:0]`),
    // Inbound: whatever arrives for the host over TCP, once the bypasses are out of the way.
    `-A SMC_INBOUND_REDIRECT -p tcp -j REDIRECT --to-ports ${s.inboundPort}`,
    `-A ${CAPTURE_JUMPS[0]!.join(' ')}`,
    ...inboundBypass.map((p) => `-A SMC_INBOUND -p tcp --dport ${p} -j RETURN`),
    '-A SMC_INBOUND -p tcp -j SMC_INBOUND_REDIRECT',
    // Outbound: the application's connections; the sidecar's own leave as they are.
    `-A SMC_OUTBOUND_REDIRECT -p tcp -j REDIRECT --to-ports ${s.outboundPort}`,
    `-A ${CAPTURE_JUMPS[1]!.join(' ')}`,
    `-A SMC_OUTBOUND -m owner --uid-owner ${s.proxyUid} -j RETURN`,
    '-A SMC_OUTBOUND -d 127.0.0.0/8 -j RETURN',
    // Connections to the host's own addresses leave through lo.
    '-A SMC_OUTBOUND -o lo -j RETURN',
    ...outboundBypassPorts.map((p) => `-A SMC_OUTBOUND -p tcp --dport ${p} -j RETURN`),
    ...unique(s.excludeOutboundRanges).map((r) => `-A SMC_OUTBOUND -d ${r} -j RETURN`),
    '-A SMC_OUTBOUND -p tcp -j SMC_OUTBOUND_REDIRECT',
    'COMMIT',
  ];
  return `${lines.join('\n')}\n`;
}

/** A POSIX shell script that applies the rules (the VM bundle's capture.sh). */
export function captureScript(s: CaptureSettings): string {
  return [
    '#!/bin/sh',
    '# Sends this host\'s TCP traffic through its smc sidecar (written by smc; see captureRules).',
    `# Envoy must run as uid ${s.proxyUid}. Running it again replaces the rules.`,
    'set -eu',
    ...CAPTURE_JUMPS.map((j) => `iptables -t nat -D ${j.join(' ')} 2>/dev/null || true`),
    "iptables-restore --noflush <<'EOF'",
    captureRules(s).trimEnd(),
    'EOF',
    '',
  ].join('\n');
}

/** Annotations that tune capture, on a pod (or a VirtualMachine's metadata). */
export const CAPTURE_ANNOTATIONS = {
  excludeInboundPorts: 'traffic.smc.dev/exclude-inbound-ports',
  excludeOutboundPorts: 'traffic.smc.dev/exclude-outbound-ports',
  excludeOutboundRanges: 'traffic.smc.dev/exclude-outbound-ip-ranges',
} as const;

export type CaptureProblem = { readonly field: string; readonly message: string };

/**
 * Capture settings from annotations. Malformed values are problems that name
 * the annotation: a typo must not silently capture (or bypass) a port.
 */
/** An annotation of ports or ranges longer than this is refused whole (65,535 ports written out fit). */
const MAX_ANNOTATION_LENGTH = 400_000;
/** Bad parts named in a message; the rest are counted. */
const REPORTED_PARTS = 3;

export function captureFromAnnotations(annotations: Readonly<Record<string, string>>): { settings: CaptureSettings; problems: CaptureProblem[] } {
  const problems: CaptureProblem[] = [];
  const field = (key: string) => `metadata.annotations["${key}"]`;
  /**
   * The parts of a comma-separated annotation, each kept or refused. What a pod says is untrusted (a webhook
   * request need not come through the API server): one problem per annotation names the first few bad parts,
   * escaped and cut, and counts the rest; the good parts are kept once each.
   */
  const list = <T>(key: string, expected: string, parse: (part: string) => T | undefined): T[] => {
    const v = annotations[key];
    if (v === undefined || v.trim() === '') return [];
    if (v.length > MAX_ANNOTATION_LENGTH) {
      problems.push({ field: field(key), message: `expected ${expected}, got ${v.length} characters (at most ${MAX_ANNOTATION_LENGTH})` });
      return [];
    }
    const out = new Set<T>();
    const bad: string[] = [];
    let badCount = 0;
    for (const raw of v.split(',')) {
      const part = raw.trim();
      const parsed = parse(part);
      if (parsed !== undefined) out.add(parsed);
      else if (++badCount <= REPORTED_PARTS) bad.push(clientText(JSON.stringify(part.length > 32 ? `${part.slice(0, 32)}…` : part)));
    }
    if (badCount > 0) problems.push({ field: field(key), message: `expected ${expected}, got ${bad.join(', ')}${badCount > bad.length ? ` and ${badCount - bad.length} more` : ''}` });
    return [...out];
  };
  const ports = (key: string): number[] =>
    list(key, 'a comma-separated list of ports (1-65535)', (part) => {
      const n = /^\d{1,5}$/.test(part) ? Number(part) : NaN;
      return n >= 1 && n <= 65535 ? n : undefined;
    });
  const ranges = (key: string): string[] => list(key, 'a comma-separated list of IPv4 ranges such as 10.0.0.0/8', (part) => (isIPv4Cidr(part) ? part : undefined));
  const settings: CaptureSettings = {
    ...DEFAULT_CAPTURE,
    excludeInboundPorts: ports(CAPTURE_ANNOTATIONS.excludeInboundPorts),
    excludeOutboundPorts: ports(CAPTURE_ANNOTATIONS.excludeOutboundPorts),
    excludeOutboundRanges: ranges(CAPTURE_ANNOTATIONS.excludeOutboundRanges),
  };
  return { settings, problems };
}

export function isIPv4Cidr(s: string): boolean {
  const [address = '', prefix, ...rest] = s.split('/');
  return rest.length === 0 && !address.includes(':') && isIpAddress(address) && (prefix === undefined || (/^\d{1,2}$/.test(prefix) && Number(prefix) <= 32));
}

const unique = <T extends number | string>(xs: readonly T[]): T[] => [...new Set(xs)];
