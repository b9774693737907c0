import { SIDECAR_PORTS } from './capture.js';

/**
 * Health probes through the sidecar. In transparent mode kubelet's probes to
 * an application port would be captured and refused (they carry no mesh
 * certificate), so the injector points them at the sidecar's probe port
 * (15904) and records what they checked in the pod annotation
 * `smc.dev/probes`; the compiler turns that into the probe listener of the
 * pod's identity: HTTP probes are forwarded over loopback, TCP and gRPC
 * probes are answered from Envoy's own active health check of the port.
 * Every injected sidecar also answers `/smc/ready` there once it has its
 * configuration (its startup probe: the application starts after it).
 */
export type ProbeTarget =
  | { readonly kind: 'http'; readonly port: number; readonly path: string; readonly tls: boolean }
  | { readonly kind: 'tcp'; readonly port: number }
  | { readonly kind: 'grpc'; readonly port: number; readonly service: string };

export interface NamedProbe {
  readonly key: string;
  readonly target: ProbeTarget;
}

export const PROBES_ANNOTATION = 'smc.dev/probes';
export const READY_PATH = '/smc/ready';
export const probePath = (key: string): string => `/smc/probe/${key}`;

const KEY = /^[a-z]+-\d{1,5}-[0-9a-f]{10}$/;
const isPort = (x: unknown): x is number => typeof x === 'number' && Number.isInteger(x) && x > 0 && x < 65536;

/** The annotation's probes, or the problem with it (the pod is then served without its probe routes, and says why). */
export function parseProbes(text: string): { probes: NamedProbe[]; problem?: string } {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    return { probes: [], problem: 'expected the JSON the injector writes, got text that does not parse' };
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) return { probes: [], problem: 'expected a JSON object of probes by key' };
  const probes: NamedProbe[] = [];
  for (const [key, t] of Object.entries(doc as Record<string, unknown>)) {
    const o = t as Record<string, unknown> | null;
    const bad = () => ({ probes: [], problem: `probe ${JSON.stringify(key)}: expected {kind: http|tcp|grpc, port, ...} as the injector writes it` });
    if (!KEY.test(key) || typeof o !== 'object' || o === null || !isPort(o.port)) return bad();
    if (SIDECAR_PORTS.includes(o.port)) return { probes: [], problem: `probe ${JSON.stringify(key)}: port ${o.port} is one of the sidecar's own ports (${SIDECAR_PORTS.join(', ')}); a probe there would reach Envoy, not the application` };
    if (o.kind === 'http' && typeof o.path === 'string' && o.path.startsWith('/') && !/\s/.test(o.path) && ![...o.path].some((c) => c.charCodeAt(0) < 32) && typeof o.tls === 'boolean') {
      probes.push({ key, target: { kind: 'http', port: o.port, path: o.path, tls: o.tls } });
    } else if (o.kind === 'tcp') probes.push({ key, target: { kind: 'tcp', port: o.port } });
    else if (o.kind === 'grpc' && typeof o.service === 'string') probes.push({ key, target: { kind: 'grpc', port: o.port, service: o.service } });
    else return bad();
  }
  return { probes: probes.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0)) };
}
