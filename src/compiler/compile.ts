import { decodeDocuments } from './decode/index.js';
import type { ProtoCodec } from './envoy/codec.js';
import { buildSnapshots, type Snapshot } from './envoy/snapshot.js';
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
  const ir = buildIR(objects, status);
  const problemEntries: StatusEntry[] = inputs.problems.map((p) => ({
    origin: p.origin,
    object: { apiVersion: '', kind: '', namespace: '', name: '' },
    state: 'Rejected',
    messages: [error('', p.message)],
  }));
  // Stable sort: objects that share an origin (items of one List) keep their order.
  const entries = [...status.entries(tracked), ...problemEntries].sort((a, b) => compareOrigins(a.origin, b.origin));
  return { ir, status: entries };
}


export interface MeshCompileResult extends CompileResult {
  /** One per proxy identity, sorted by identity. */
  readonly snapshots: readonly Snapshot[];
}

/** The whole compiler: MeshInputs -> mesh IR, status and per-identity Envoy snapshots. */
export function compile(inputs: MeshInputs, codec: ProtoCodec): MeshCompileResult {
  const front = compileIR(inputs);
  return { ...front, snapshots: buildSnapshots(front.ir, codec, inputs.certificates) };
}
