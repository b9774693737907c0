import { parentPort } from 'node:worker_threads';
import { loadEnvoyProtos } from '../adapters/envoy-protos.js';
import { compileIR, type CompileResult } from '../compiler/compile.js';
import { planSnapshots, type PlannedSnapshot, type Snapshot } from '../compiler/envoy/snapshot.js';
import type { CertificateInputs, MeshInputs } from '../compiler/inputs.js';

/**
 * The compiler, in a worker thread: a compile of a large mesh never holds the
 * event loop that serves ADS. It keeps the IR of its latest compile, so
 * building snapshots (once certificates are known) sends only certificates.
 */
export type WorkerRequest =
  | { readonly id: number; readonly type: 'compile'; readonly inputs: MeshInputs }
  | { readonly id: number; readonly type: 'snapshots'; readonly certificates: CertificateInputs; readonly identities?: readonly string[] };

export type WorkerReply =
  | { readonly id: number; readonly compiled: CompileResult }
  | { readonly id: number; readonly snapshots: Snapshot[] }
  | { readonly id: number; readonly error: string };

const protos = loadEnvoyProtos();
let current: CompileResult | undefined;
// The latest plan of every identity: an identity whose plan did not change keeps its snapshot, untranslated.
let plans = new Map<string, PlannedSnapshot>();

parentPort?.on('message', (m: WorkerRequest) => {
  try {
    if (m.type === 'compile') {
      current = compileIR(m.inputs, current?.decoded);
      // The decoded documents stay here, for the next compile; the controller needs the IR and status.
      parentPort!.postMessage({ id: m.id, compiled: { ir: current.ir, status: current.status } } satisfies WorkerReply);
      return;
    }
    if (!current) throw new Error('snapshots asked for before any compile');
    const next = planSnapshots(current.ir, protos, m.certificates, plans, m.identities);
    if (m.identities) for (const [id, p] of next) plans.set(id, p);
    else plans = next;
    parentPort!.postMessage({ id: m.id, snapshots: [...next.values()].map((p) => p.snapshot) } satisfies WorkerReply);
  } catch (e) {
    parentPort!.postMessage({ id: m.id, error: e instanceof Error ? (e.stack ?? e.message) : String(e) } satisfies WorkerReply);
  }
});
