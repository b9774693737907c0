import { decodeDocuments, type DecodedDocuments, type TrackedObject } from './decode/index.js';
import type { ProtoCodec } from './envoy/codec.js';
import { planSnapshots, type Snapshot, type SnapshotPlans } from './envoy/snapshot.js';
import { compareOrigins, type MeshInputs } from './inputs.js';
import { buildIR, type IRMemo } from './ir/build.js';
import type { MeshIR } from './ir/types.js';
import { createStatusCollector, error, type StatusEntry } from './status.js';

export interface CompileResult {
  readonly ir: MeshIR;
  /** One entry per input object (and per input problem), sorted by origin. */
  readonly status: readonly StatusEntry[];
  /** Decoded documents, for the next compile: unchanged documents are not decoded again. */
  readonly decoded?: DecodedDocuments;
  /** The IR's parts, for the next compile: namespaces whose objects did not change are not built again. */
  readonly memo?: IRMemo;
  /** Each object's status entry, for the next compile: an unchanged entry is the same value again. */
  readonly entries?: ReadonlyMap<TrackedObject, StatusEntry>;
}

/**
 * The compiler's front half: MeshInputs -> mesh IR plus status. Pure and
 * total: no IO, no clock, never throws on user input.
 */
export function compileIR(inputs: MeshInputs, previous?: Pick<CompileResult, 'decoded' | 'memo' | 'entries'>): CompileResult {
  const status = createStatusCollector();
  const { objects, tracked, decoded } = decodeDocuments(inputs.documents, status, previous?.decoded);
  const live = { ...(inputs.connectedVirtualMachines ? { connectedVirtualMachines: inputs.connectedVirtualMachines } : {}), ...(inputs.runningTrustDomain ? { runningTrustDomain: inputs.runningTrustDomain } : {}) };
  const { ir, memo } = buildIR(objects, status, live, previous?.memo);
  const problemEntries: StatusEntry[] = inputs.problems.map((p) => ({
    origin: p.origin,
    object: { apiVersion: '', kind: '', namespace: '', name: '' },
    state: 'Rejected',
    messages: [error('', p.message)],
  }));
  const byObject = status.entries(tracked, previous?.entries);
  // Stable sort: objects that share an origin (items of one List) keep their order.
  const entries = [...byObject.values(), ...problemEntries].sort((a, b) => compareOrigins(a.origin, b.origin));
  return { ir, status: entries, decoded, memo, entries: byObject };
}


export interface MeshCompileResult extends CompileResult {
  /** One per proxy identity, sorted by identity. */
  readonly snapshots: readonly Snapshot[];
  /** Each identity's plan fingerprint and snapshot, for the next compile. */
  readonly plans: SnapshotPlans;
}

/**
 * The whole compiler: MeshInputs -> mesh IR, status and per-identity Envoy
 * snapshots. Given the previous result, identities whose plan did not change
 * keep their snapshots without being translated again; the result is the
 * same, byte for byte, as a compile from scratch.
 */
export function compile(inputs: MeshInputs, codec: ProtoCodec, previous?: MeshCompileResult): MeshCompileResult {
  const front = compileIR(inputs, previous);
  const plans = planSnapshots(front.ir, codec, inputs.certificates, previous?.plans, undefined, previous?.ir);
  return { ...front, snapshots: [...plans.values()].map((p) => p.snapshot), plans };
}
