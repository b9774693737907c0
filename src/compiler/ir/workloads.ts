import type { PodObj, VirtualMachineObj } from '../model.js';
import { warning, type StatusCollector } from '../status.js';
import { parseProbes, PROBES_ANNOTATION, type NamedProbe } from '../probes.js';
import { compareStrings, identityOf, type MeshSettings, type Workload } from './types.js';

/** Pods and VMs become one kind of thing: a workload with an identity. */
export function buildWorkloads(
  pods: readonly PodObj[],
  vms: readonly VirtualMachineObj[],
  settings: MeshSettings,
  status: StatusCollector,
  connectedVirtualMachines?: ReadonlySet<string>,
): Workload[] {
  const out: Workload[] = [];
  for (const p of pods) {
    if (p.ips.length === 0) status.add(p.key, warning('status.podIP', 'the pod has no IP yet; it is a proxy of its identity but backs no service endpoints'));
    out.push({
      kind: 'Pod',
      namespace: p.meta.namespace,
      name: p.meta.name,
      identity: identityOf(settings.trustDomain, p.meta.namespace, p.serviceAccountName),
      serviceAccount: p.serviceAccountName,
      addresses: [...p.ips].sort(compareStrings),
      ports: uniquePorts(p.ports),
      labels: p.meta.labels,
      interceptionMode: p.interceptionMode ?? settings.defaultInterceptionMode,
      ...(p.injected ? { injected: { probes: probesOf(p, status) } } : {}),
    });
  }
  for (const v of vms) {
    const mode = v.interceptionMode ?? settings.defaultInterceptionMode;
    // Mesh participants = issued proxy certificates ∩ connected proxies ∩ declared endpoints. A
    // proxyless VM has no proxy of its own to connect, and an offline compile knows no connections.
    const node = vmNodeId(v.meta.namespace, v.serviceAccount, v.meta.name);
    const withheld = connectedVirtualMachines !== undefined && mode !== 'proxyless' && !connectedVirtualMachines.has(node);
    if (withheld && v.addresses.length > 0) {
      status.add(v.key, warning('spec.addresses', `endpoints withheld: no proxy is connected as node ${node} (smc vm bundle writes its bootstrap); callers are sent them once it connects`));
    }
    out.push({
      kind: 'VirtualMachine',
      namespace: v.meta.namespace,
      name: v.meta.name,
      identity: identityOf(settings.trustDomain, v.meta.namespace, v.serviceAccount),
      serviceAccount: v.serviceAccount,
      addresses: withheld ? [] : [...v.addresses].sort(compareStrings),
      ports: uniquePorts(v.ports),
      labels: v.workloadLabels,
      interceptionMode: mode,
    });
  }
  return out.sort(
    (a, b) => compareStrings(a.namespace, b.namespace) || compareStrings(a.kind, b.kind) || compareStrings(a.name, b.name),
  );
}

function probesOf(p: PodObj, status: StatusCollector): readonly NamedProbe[] {
  if (p.probesAnnotation === undefined) return [];
  const { probes, problem } = parseProbes(p.probesAnnotation);
  if (problem) status.add(p.key, warning(`metadata.annotations["${PROBES_ANNOTATION}"]`, `${problem}; the pod's probes through the sidecar fail until it is fixed (remove the annotation and re-create the pod to inject it again)`));
  return probes;
}

function uniquePorts(ports: readonly { name: string; port: number; protocol: string }[]) {
  const seen = new Map<number, string>();
  for (const p of ports) if (p.protocol === 'TCP' && !seen.has(p.port)) seen.set(p.port, p.name);
  return [...seen.entries()].map(([port, name]) => ({ name, port })).sort((a, b) => a.port - b.port);
}

/** The node id of a VM's proxy: its service account, and its name as the instance (`vm:` tells it from a pod). */
export const vmNodeId = (namespace: string, serviceAccount: string, name: string): string => `${namespace}/${serviceAccount}/vm:${name}`;

export function labelsMatch(selector: Readonly<Record<string, string>>, labels: Readonly<Record<string, string>>): boolean {
  const entries = Object.entries(selector);
  return entries.length > 0 && entries.every(([k, v]) => labels[k] === v);
}
