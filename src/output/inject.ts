import { createHash } from 'node:crypto';
import { captureFromAnnotations, PROBE_PORT, PROXY_UID, SIDECAR_PORTS } from '../compiler/capture.js';
import { INJECTED_ANNOTATION, INTERCEPTION_ANNOTATION } from '../compiler/decode/kubernetes.js';
import { STATS_PORT } from '../compiler/envoy/names.js';
import { PROBES_ANNOTATION, READY_PATH, probePath, type ProbeTarget } from '../compiler/probes.js';

/**
 * Sidecar injection: what the admission webhook does to a pod, as a pure
 * function from the pod (as the API server sends it) to a JSON patch. The
 * webhook server (runtime/webhook-server.ts) only decodes, calls this, and
 * answers.
 */

/** Annotations (and labels, where said) that steer injection; the README's table lists them all. */
export const INJECT_ANNOTATION = 'smc.dev/inject';

export const SIDECAR_NAME = 'smc-proxy';
export const CAPTURE_NAME = 'smc-capture';
export const PROXY_VOLUME = 'smc-proxy';
export const TOKEN_VOLUME = 'smc-token';
/** Where the sidecar finds its service-account token (audience `smc`), bound to the pod by the kubelet. */
export const TOKEN_DIR = '/var/run/secrets/smc.dev';
export const TOKEN_AUDIENCE = 'smc';
export const PROXY_DIR = '/etc/smc-proxy';

export interface InjectOptions {
  /** The image holding smc and Envoy (`deploy/Dockerfile`). */
  readonly image: string;
  /** Where sidecars reach the controller's xDS port. */
  readonly xdsAddress: string;
  /** Where sidecars exchange their token for a proxy certificate (the controller's webhook port). */
  readonly certificateUrl: string;
  /** The roots the sidecar trusts the controller with (the xDS port's trust bundle). */
  readonly trustBundle: string;
  /** The mesh's default interception mode (MeshConfig). */
  readonly defaultInterceptionMode: 'transparent' | 'explicit' | 'proxyless';
  /** Envoy as a native sidecar (an init container with restartPolicy Always), or, on clusters before 1.29, a first container. */
  readonly nativeSidecar: boolean;
}

export type JsonPatch = { op: 'add'; path: string; value: unknown }[];

export type InjectDecision =
  | { readonly action: 'skip'; readonly reason: string }
  | { readonly action: 'reject'; readonly message: string }
  | { readonly action: 'inject'; readonly patch: JsonPatch; readonly summary: string };

type Obj = Record<string, unknown>;
const isObj = (x: unknown): x is Obj => typeof x === 'object' && x !== null && !Array.isArray(x);
const strings = (x: unknown): Record<string, string> => (isObj(x) ? Object.fromEntries(Object.entries(x).filter((e): e is [string, string] => typeof e[1] === 'string')) : {});

const OFF = ['disabled', 'false'];

/** Injects `pod` (in a mesh namespace), or says why not. */
export function injectPod(pod: unknown, o: InjectOptions): InjectDecision {
  if (!isObj(pod) || !isObj(pod.metadata) || !isObj(pod.spec)) return { action: 'reject', message: 'expected a Pod with metadata and spec' };
  const meta = pod.metadata;
  const spec = pod.spec;
  const annotations = strings(meta.annotations);
  const labels = strings(meta.labels);
  const optOut = annotations[INJECT_ANNOTATION] ?? labels[INJECT_ANNOTATION];
  if (optOut !== undefined && OFF.includes(optOut)) return { action: 'skip', reason: `${INJECT_ANNOTATION}: ${optOut}` };
  if (optOut !== undefined && optOut !== 'enabled' && optOut !== 'true') {
    return { action: 'reject', message: `metadata.annotations["${INJECT_ANNOTATION}"]: expected "enabled" or "disabled", got ${JSON.stringify(optOut)}` };
  }
  if (!Array.isArray(spec.containers) || !spec.containers.every(isObj)) return { action: 'reject', message: 'spec.containers: expected a list of containers' };
  const containers = spec.containers;
  const initContainers = Array.isArray(spec.initContainers) ? spec.initContainers.filter(isObj) : [];
  if (annotations[INJECTED_ANNOTATION] !== undefined || [...containers, ...initContainers].some((c) => c.name === SIDECAR_NAME)) {
    return { action: 'skip', reason: 'already injected' };
  }
  if (spec.hostNetwork === true) return { action: 'skip', reason: 'the pod uses the host network: a sidecar would capture the node\'s traffic' };
  // The names the injector adds: a pod that uses them already would get a patch with two of each.
  const volumesIn = Array.isArray(spec.volumes) ? spec.volumes.filter(isObj) : [];
  const taken = [
    ...[...containers, ...initContainers].filter((c) => c.name === CAPTURE_NAME).map(() => `container ${CAPTURE_NAME}`),
    ...volumesIn.filter((v) => v.name === PROXY_VOLUME || v.name === TOKEN_VOLUME).map((v) => `volume ${String(v.name)}`),
  ];
  if (taken.length > 0) {
    return { action: 'reject', message: `${taken.join(', ')}: the names ${CAPTURE_NAME} and ${SIDECAR_NAME} (containers), ${PROXY_VOLUME} and ${TOKEN_VOLUME} (volumes) are reserved for the sidecar injector; rename yours, or set ${INJECT_ANNOTATION}: disabled` };
  }

  const modeText = annotations[INTERCEPTION_ANNOTATION];
  if (modeText !== undefined && modeText !== 'transparent' && modeText !== 'explicit' && modeText !== 'proxyless') {
    return { action: 'reject', message: `metadata.annotations["${INTERCEPTION_ANNOTATION}"]: expected "transparent", "explicit" or "proxyless", got ${JSON.stringify(modeText)}` };
  }
  const chosen = modeText ?? o.defaultInterceptionMode;
  if (chosen === 'proxyless') return { action: 'skip', reason: 'proxyless: the application speaks xDS itself' };
  const mode: 'transparent' | 'explicit' = chosen;
  const capture = captureFromAnnotations(annotations);
  if (capture.problems.length > 0) return { action: 'reject', message: capture.problems.map((p) => `${p.field}: ${p.message}`).join('; ') };

  // Probes pass through the sidecar only when the sidecar captures the app's ports.
  const probes: Record<string, ProbeTarget> = {};
  const refused: string[] = [];
  const rewritten = containers.map((c, i) => {
    if (mode !== 'transparent') return c;
    const out: Obj = { ...c };
    for (const kind of ['livenessProbe', 'readinessProbe', 'startupProbe'] as const) {
      const probe = c[kind];
      if (!isObj(probe)) continue;
      const r = rewriteProbe(probe, c);
      if (r === undefined) continue;
      if (SIDECAR_PORTS.includes(r.target.port)) {
        refused.push(`spec.containers[${i}].${kind}: port ${r.target.port} is one of the sidecar's own ports (${SIDECAR_PORTS.join(', ')}); a probe there would reach Envoy, not the application`);
        continue;
      }
      probes[r.key] = r.target;
      out[kind] = r.probe;
    }
    return out;
  });
  if (refused.length > 0) return { action: 'reject', message: refused.join('; ') };

  const args = ['sidecar', '--xds-address', o.xdsAddress, '--certificate-url', o.certificateUrl, '--token-file', `${TOKEN_DIR}/token`, '--dir', PROXY_DIR];
  const ready = { httpGet: { path: READY_PATH, port: PROBE_PORT } };
  const sidecar: Obj = {
    name: SIDECAR_NAME,
    image: o.image,
    args,
    env: [
      { name: 'SMC_POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
      { name: 'SMC_POD_NAMESPACE', valueFrom: { fieldRef: { fieldPath: 'metadata.namespace' } } },
      { name: 'SMC_SERVICE_ACCOUNT', valueFrom: { fieldRef: { fieldPath: 'spec.serviceAccountName' } } },
      { name: 'SMC_TRUST_BUNDLE', value: o.trustBundle },
    ],
    ports: [{ name: 'smc-stats', containerPort: STATS_PORT, protocol: 'TCP' }],
    // The app starts once Envoy has its configuration (native sidecars start in order and wait for this).
    startupProbe: { ...ready, periodSeconds: 1, failureThreshold: 300 },
    readinessProbe: { ...ready, periodSeconds: 5 },
    resources: { requests: { cpu: '50m', memory: '64Mi' } },
    securityContext: {
      runAsUser: PROXY_UID,
      runAsGroup: PROXY_UID,
      runAsNonRoot: true,
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      capabilities: { drop: ['ALL'] },
    },
    volumeMounts: [
      { name: PROXY_VOLUME, mountPath: PROXY_DIR },
      { name: TOKEN_VOLUME, mountPath: TOKEN_DIR, readOnly: true },
    ],
    ...(o.nativeSidecar ? { restartPolicy: 'Always' } : { lifecycle: { postStart: { exec: { command: ['smc', 'sidecar', '--wait-ready'] } } } }),
  };
  const captureFlags = [
    ...(capture.settings.excludeInboundPorts.length ? ['--exclude-inbound-ports', capture.settings.excludeInboundPorts.join(',')] : []),
    ...(capture.settings.excludeOutboundPorts.length ? ['--exclude-outbound-ports', capture.settings.excludeOutboundPorts.join(',')] : []),
    ...(capture.settings.excludeOutboundRanges.length ? ['--exclude-outbound-ip-ranges', capture.settings.excludeOutboundRanges.join(',')] : []),
  ];
  const captureContainer: Obj = {
    name: CAPTURE_NAME,
    image: o.image,
    args: ['capture', '--apply', '--proxy-uid', String(PROXY_UID), ...captureFlags],
    resources: { requests: { cpu: '10m', memory: '16Mi' } },
    // iptables needs NET_ADMIN (and NET_RAW for the legacy backend) in the pod's network namespace, as root; nothing more.
    securityContext: {
      runAsUser: 0,
      runAsNonRoot: false,
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      capabilities: { add: ['NET_ADMIN', 'NET_RAW'], drop: ['ALL'] },
    },
  };
  const front = [...(mode === 'transparent' ? [captureContainer] : []), ...(o.nativeSidecar ? [sidecar] : [])];
  const volumes = [
    ...(Array.isArray(spec.volumes) ? spec.volumes : []),
    { name: PROXY_VOLUME, emptyDir: { medium: 'Memory', sizeLimit: '8Mi' } },
    { name: TOKEN_VOLUME, projected: { sources: [{ serviceAccountToken: { audience: TOKEN_AUDIENCE, expirationSeconds: 3600, path: 'token' } }] } },
  ];
  // Prometheus finds the sidecar's stats by the usual annotations, unless the pod already says where its own metrics are.
  const scrape: Record<string, string> = Object.keys(annotations).some((k) => k.startsWith('prometheus.io/'))
    ? {}
    : { 'prometheus.io/scrape': 'true', 'prometheus.io/port': String(STATS_PORT), 'prometheus.io/path': '/stats/prometheus' };
  const newAnnotations: Record<string, string> = {
    ...scrape,
    ...annotations,
    [INJECTED_ANNOTATION]: JSON.stringify({ mode, nativeSidecar: o.nativeSidecar }),
    [PROBES_ANNOTATION]: JSON.stringify(Object.fromEntries(Object.entries(probes).sort(([a], [b]) => (a < b ? -1 : 1)))),
  };
  const patch: JsonPatch = [
    { op: 'add', path: '/metadata/annotations', value: newAnnotations },
    { op: 'add', path: '/spec/initContainers', value: [...front, ...initContainers] },
    { op: 'add', path: '/spec/containers', value: o.nativeSidecar ? rewritten : [sidecar, ...rewritten] },
    { op: 'add', path: '/spec/volumes', value: volumes },
  ];
  const n = Object.keys(probes).length;
  return { action: 'inject', patch, summary: `${o.nativeSidecar ? 'native sidecar' : 'sidecar container'}, ${mode}${mode === 'transparent' ? ' (capture init container)' : ''}${n ? `, ${n} probe(s) through the sidecar` : ''}` };
}

/**
 * A probe kubelet sends to the application's port would be captured (and
 * refused without mTLS): it is sent to the sidecar's probe port instead,
 * which forwards it over loopback (see compiler/probes.ts).
 */
function rewriteProbe(probe: Obj, container: Obj): { key: string; target: ProbeTarget; probe: Obj } | undefined {
  const resolvePort = (p: unknown): number | undefined => {
    if (typeof p === 'number' && Number.isInteger(p) && p > 0 && p < 65536) return p;
    if (typeof p === 'string' && /^\d+$/.test(p)) return resolvePort(Number(p));
    if (typeof p !== 'string') return undefined;
    const ports = Array.isArray(container.ports) ? container.ports.filter(isObj) : [];
    const named = ports.find((x) => x.name === p);
    return typeof named?.containerPort === 'number' ? named.containerPort : undefined;
  };
  // Exec probes run inside the container: nothing to rewrite.
  const handler = PROBE_HANDLERS.find((h) => isObj(probe[h]));
  if (!handler) return undefined;
  const spec = probe[handler] as Obj;
  const port = resolvePort(spec.port);
  if (port === undefined) return undefined;
  const target: ProbeTarget =
    handler === 'httpGet'
      ? { kind: 'http', port, path: typeof spec.path === 'string' && spec.path.startsWith('/') ? spec.path : '/', tls: spec.scheme === 'HTTPS' }
      : handler === 'tcpSocket'
        ? { kind: 'tcp', port }
        : { kind: 'grpc', port, service: typeof spec.service === 'string' ? spec.service : '' };
  const key = probeKey(target);
  // kubelet reaches the sidecar over plain HTTP whatever the probe was; an HTTP probe keeps its headers.
  const headers = handler === 'httpGet' && Array.isArray(spec.httpHeaders) ? { httpHeaders: spec.httpHeaders } : {};
  const { [handler]: _replaced, ...rest } = probe;
  return { key, target, probe: { ...rest, httpGet: { path: probePath(key), port: PROBE_PORT, scheme: 'HTTP', ...headers } } };
}

const PROBE_HANDLERS = ['httpGet', 'tcpSocket', 'grpc'] as const;

/** Named by what it checks: the same probe on every pod of an identity is one route, and two different ones never collide. */
export function probeKey(t: ProbeTarget): string {
  return `${t.kind}-${t.port}-${createHash('sha256').update(JSON.stringify(t)).digest('hex').slice(0, 10)}`;
}
