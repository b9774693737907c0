import { Worker } from 'node:worker_threads';
import type { CompileResult } from '../compiler/compile.js';
import type { Snapshot } from '../compiler/envoy/snapshot.js';
import type { CertificateInputs, MeshInputs } from '../compiler/inputs.js';
import type { WorkerReply, WorkerRequest } from './compile-worker.js';

/** The controller's side of the compile worker (compile-worker.ts): requests answered in order, as promises. */
export interface CompilerThread {
  compile(inputs: MeshInputs): Promise<CompileResult>;
  /** Snapshots of the latest compile's IR, for every identity or the ones named. */
  snapshots(certificates: CertificateInputs, identities?: readonly string[]): Promise<Snapshot[]>;
  close(): Promise<void>;
}

type Body<T> = T extends unknown ? Omit<T, 'id'> : never;

export function startCompilerThread(): CompilerThread {
  const worker = new Worker(new URL('./compile-worker.js', import.meta.url));
  let next = 0;
  const waiting = new Map<number, { resolve: (r: WorkerReply) => void; reject: (e: Error) => void }>();
  worker.on('message', (r: WorkerReply) => {
    const w = waiting.get(r.id);
    waiting.delete(r.id);
    if (!w) return;
    if ('error' in r) w.reject(new Error(`compile worker: ${r.error}`));
    else w.resolve(r);
  });
  const failAll = (e: Error) => {
    for (const w of waiting.values()) w.reject(e);
    waiting.clear();
  };
  worker.on('error', failAll);
  worker.on('exit', (code) => failAll(new Error(`the compile worker exited (${code})`)));
  const ask = (body: Body<WorkerRequest>) =>
    new Promise<WorkerReply>((resolve, reject) => {
      const id = ++next;
      waiting.set(id, { resolve, reject });
      worker.postMessage({ ...body, id });
    });
  return {
    compile: async (inputs) => ((await ask({ type: 'compile', inputs })) as { compiled: CompileResult }).compiled,
    snapshots: async (certificates, identities) => ((await ask({ type: 'snapshots', certificates, identities })) as { snapshots: Snapshot[] }).snapshots,
    async close() {
      await worker.terminate();
    },
  };
}
