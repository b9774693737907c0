import type { PodObj, VirtualMachineObj } from '../model.js';
import { recordInto, warning, type StatusCall, type StatusCollector } from '../status.js';
import { parseProbes, PROBES_ANNOTATION, type NamedProbe } from '../probes.js';
import { compareStrings, identityOf, type MeshSettings, type Workload } from './types.js';
import { KeyedMemo, PatchedTable, type Read } from '../keyed.js';
import { editedAt } from '../group.js';

/**
 * Pods and VMs become one kind of thing: a workload with an identity. Each
 * is derived from what it reads (its object; for a VM, whether its proxy is
 * connected): given the previous build's memo, an unchanged one is the very
 * value it was (see keyed.ts).
 */
export function buildWorkloads(
  pods: readonly PodObj[],
  vms: readonly VirtualMachineObj[],
  settings: MeshSettings,
  status: StatusCollector,
  connectedVirtualMachines?: ReadonlySet<string>,
  previous?: KeyedMemo<Workload>,
): { workloads: Workload[]; memo: KeyedMemo<Workload> } {
  const lookups = workloadLookups(new Map(pods.map((p) => [p.meta.name, p])), new Map(vms.map((v) => [v.meta.name, v])), connectedVirtualMachines);
  const memo = new KeyedMemo<Workload, WorkloadLookups>(lookups, previous);
  const out: Workload[] = [];
  for (const p of pods) out.push(memo.get(`Pod/${p.meta.name}`, status, deriveWorkload('Pod', p.meta.name, settings)));
  for (const v of vms) out.push(memo.get(`VirtualMachine/${v.meta.name}`, status, deriveWorkload('VirtualMachine', v.meta.name, settings)));
  const workloads = out.sort((a, b) => compareStrings(a.namespace, b.namespace) || compareStrings(a.kind, b.kind) || compareStrings(a.name, b.name));
  return { workloads, memo: memo.seal() };
}

/**
 * `buildWorkloads` of one namespace's pods when they are the previous build's (`previous`, which gave `workloads`)
 * with some replaced at their places by pods of the same names, and its VMs are the previous ones: the workloads of
 * the replaced pods (and of VMs, whose connection is asked again) are derived again, the others kept. The result
 * lists the workloads replaced; undefined when the pods do not line up, or when a message of a workload derived
 * again may differ (what was said is then said again by `buildWorkloads`).
 */
export function patchWorkloads(
  previous: { readonly pods: readonly PodObj[]; readonly workloads: readonly Workload[]; readonly memo: KeyedMemo<Workload> },
  pods: readonly PodObj[],
  settings: MeshSettings,
  connectedVirtualMachines?: ReadonlySet<string>,
): { workloads: Workload[]; memo: KeyedMemo<Workload>; replaced: Map<Workload, Workload> } | undefined {
  const edited = editedAt(previous.pods, pods, (a, b) => a.meta.name === b.meta.name);
  if (!edited) return undefined;
  const was = previous.memo.lookups as WorkloadLookups;
  const pod = new PatchedTable(was.pod);
  const at = new Map<string, number>();
  for (const i of edited) {
    pod.put(pods[i]!.meta.name, pods[i]!);
    at.set(`Pod/${pods[i]!.meta.name}`, i);
  }
  const memo = KeyedMemo.carried<Workload, WorkloadLookups>(workloadLookups(pod, was.vm, connectedVirtualMachines), previous.memo);
  const workloads = previous.workloads.slice();
  const replaced = new Map<Workload, Workload>();
  for (const key of memo.dirty()) {
    const slash = key.indexOf('/');
    const kind = key.slice(0, slash) as Workload['kind'];
    const name = key.slice(slash + 1);
    const i = kind === 'Pod' ? at.get(key) : pods.length + [...was.vm.keys()].indexOf(name);
    const before = workloads[i ?? -1];
    if (before === undefined || before.kind !== kind || before.name !== name || previous.memo.callsOf(key).length > 0) return undefined;
    const said: StatusCall[] = [];
    const after = memo.get(key, recordInto(said), deriveWorkload(kind, name, settings));
    if (said.length > 0) return undefined;
    if (after === before) continue;
    workloads[i!] = after;
    replaced.set(before, after);
  }
  return { workloads, memo: memo.seal(), replaced };
}

type WorkloadLookups = {
  readonly pod: ReadonlyMap<string, PodObj>;
  readonly vm: ReadonlyMap<string, VirtualMachineObj>;
  /** Whether the proxy of a VM's node id is connected (undefined offline: the compile knows no connections). */
  readonly connected: (node: string) => boolean | undefined;
};

const workloadLookups = (pod: ReadonlyMap<string, PodObj>, vm: ReadonlyMap<string, VirtualMachineObj>, connectedVirtualMachines?: ReadonlySet<string>): WorkloadLookups => ({
  pod,
  vm,
  connected: (node: string) => connectedVirtualMachines?.has(node),
});

/** How the workload of a pod or VM is derived, through the lookups (so that what it reads is recorded). */
const deriveWorkload =
  (kind: Workload['kind'], name: string, settings: MeshSettings) =>
  (read: Read<WorkloadLookups>, status: StatusCollector): Workload => {
    if (kind === 'Pod') return podWorkload(read('pod', name)!, settings, status);
    const vm = read('vm', name)!;
    const mode = vm.interceptionMode ?? settings.defaultInterceptionMode;
    // A proxyless VM has no proxy of its own to connect.
    return vmWorkload(vm, mode, settings, status, mode === 'proxyless' ? undefined : read('connected', vmNodeId(vm.meta.namespace, vm.serviceAccount, vm.meta.name)));
  };

function podWorkload(p: PodObj, settings: MeshSettings, status: StatusCollector): Workload {
  if (p.ips.length === 0) status.add(p.key, warning('status.podIP', 'the pod has no IP yet; it is a proxy of its identity but backs no service endpoints'));
  return {
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
  };
}

/**
 * Mesh participants = issued proxy certificates ∩ connected proxies ∩
 * declared endpoints: a VM whose proxy is not connected has its endpoints
 * withheld. `connected` is undefined when that is not asked (an offline
 * compile knows no connections; a proxyless VM has no proxy).
 */
function vmWorkload(v: VirtualMachineObj, mode: Workload['interceptionMode'], settings: MeshSettings, status: StatusCollector, connected: boolean | undefined): Workload {
  const node = vmNodeId(v.meta.namespace, v.serviceAccount, v.meta.name);
  const withheld = connected === false;
  if (withheld && v.addresses.length > 0) {
    status.add(v.key, warning('spec.addresses', `endpoints withheld: no proxy is connected as node ${node} (smc vm bundle writes its bootstrap); callers are sent them once it connects`));
  }
  return {
    kind: 'VirtualMachine',
    namespace: v.meta.namespace,
    name: v.meta.name,
    identity: identityOf(settings.trustDomain, v.meta.namespace, v.serviceAccount),
    serviceAccount: v.serviceAccount,
    addresses: withheld ? [] : [...v.addresses].sort(compareStrings),
    ports: uniquePorts(v.ports),
    labels: v.workloadLabels,
    interceptionMode: mode,
  };
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
