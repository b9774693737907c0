import { decodeDocuments } from './decode/index.js';
import type { ProtoCodec } from './envoy/codec.js';
import { planSnapshots, type Snapshot, type SnapshotPlans } from './envoy/snapshot.js';
import { compareOrigins, type MeshInputs } from './inputs.js';
import { buildIR } from './ir/build.js';
import type { MeshIR } from './ir/types.js';
import { createStatusCollector, error, type StatusEntry } from './status.js';

export interface CompileResult {
  readonly ir: MeshIR;
  /** One entry per input object (and per input problem), sorted by origin. */
  readonly status: readonly StatusEntry[];
}

/**
 * The compiler's front half: MeshInputs -> mesh IR plus status. Pure and
 * total: no IO, no clock, never throws on user input.
 */
export function compileIR(inputs: MeshInputs): CompileResult {
  const status = createStatusCollector();
  const { objects, tracked } = decodeDocuments(inputs.documents, status);
  const live = { ...(inputs.connectedVirtualMachines ? { connectedVirtualMachines: inputs.connectedVirtualMachines } : {}), ...(inputs.runningTrustDomain ? { runningTrustDomain: inputs.runningTrustDomain } : {}) };
  const { ir } = buildIR(objects, status, live);
  const problemEntries: StatusEntry[] = inputs.problems.map((p) => ({
    origin: p.origin,
    object: { apiVersion: '', kind: '', namespace: '', name: '' },
    state: 'Rejected',
    messages: [error('', p.message)],
  }));
  const byObject = status.entries(tracked);
  // Stable sort: objects that share an origin (items of one List) keep their order.
  const entries = [...byObject.values(), ...problemEntries].sort((a, b) => compareOrigins(a.origin, b.origin));
  return { ir, status: entries };
}


export interface MeshCompileResult extends CompileResult {
  /** One per proxy identity, sorted by identity. */
  readonly snapshots: readonly Snapshot[];
  /** Each identity's plan and snapshot. */
  readonly plans: SnapshotPlans;
}

/**
 * The whole compiler: MeshInputs -> mesh IR, status and per-identity Envoy
 * snapshots. It is the engine the controller runs (`compileUnits`, then
 * `planSnapshots`), starting empty: a running controller gives each compile the
 * previous one's state, and gets the same result, byte for byte.
 */
export function compile(inputs: MeshInputs, codec: ProtoCodec): MeshCompileResult {
  const front = compileIR(inputs);
  const plans = planSnapshots(front.ir, codec, inputs.certificates);
  return { ...front, snapshots: [...plans.values()].map((p) => p.snapshot), plans };
}
