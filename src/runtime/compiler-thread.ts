import { startWorkerCalls } from '../adapters/worker-calls.js';
import type { SourceUnit } from '../adapters/source.js';
import type { MeshIR } from '../compiler/ir/types.js';
import type { CertificateInputs, LiveInputs } from '../compiler/inputs.js';
import type { ExplainArgs } from '../output/explain.js';
import type { ProgrammedAnswer, ProgrammedQuery } from '../compiler/programmed.js';
import type { meshGraph, MeshGraph } from '../output/mesh-graph.js';
import type { CertificateDelta, CompiledMesh, CompiledReply, InputDelta, SnapshotChanges, WorkerReply, WorkerRequest } from './compile-engine.js';

export type { CompiledMesh };

/**
 * The controller's side of the compile worker (compile-worker.ts): requests
 * answered in order, as promises. It remembers what the worker was sent
 * (units and certificates, by reference: they are immutable values) and
 * sends only what differs; after a failed call it sends everything again.
 */
export interface CompilerThread {
  compile(units: ReadonlyMap<string, SourceUnit>, live?: LiveInputs): Promise<CompiledMesh>;
  /** The mesh IR of that compile (of the latest, should it be too old to be kept). */
  ir(compile: number): Promise<MeshIR>;
  /** `smc explain` against that compile, answered in the worker (an HTTP code and body). */
  explain(compile: number, query: ExplainArgs): Promise<{ code: number; body: unknown }>;
  /** The mesh graph of that compile with these proxies, built in the worker. */
  graph(compile: number, proxies: Parameters<typeof meshGraph>[1]): Promise<MeshGraph>;
  /**
   * Snapshots of the latest compile's IR that changed since the last answer,
   * for every identity or the ones named, and the identities gone.
   */
  snapshots(certificates: CertificateInputs, identities?: readonly string[]): Promise<SnapshotChanges>;
  /**
   * Plans and translates the latest compile with the certificates known so
   * far, sending nothing back: while the controller issues the certificates
   * a first start needs, the worker translates everything but the secrets.
   */
  prepare(certificates: CertificateInputs): Promise<void>;
  /** The Programmed condition of each policy object, given what the connected proxies have not taken (compiler/programmed.ts). */
  programmed(query: ProgrammedQuery): Promise<ProgrammedAnswer>;
  /** Forgets the snapshots sent: the next answer holds every one (after the controller could not use an answer). */
  reset(): Promise<void>;
  close(): Promise<void>;
}

type Certificate = CertificateInputs['identities'][number];

export function startCompilerThread(): CompilerThread {
  const { ask, close } = startWorkerCalls<WorkerRequest, WorkerReply>(new URL('./compile-worker.js', import.meta.url), 'compile worker');

  // What the worker holds, as far as this side knows (undefined: nothing known, send everything).
  let sentUnits: Map<string, SourceUnit> | undefined;
  let sentCertificates: Map<string, Certificate> | undefined;
  let lists: Pick<CompiledMesh, 'identities' | 'namespaces' | 'pods'> = { identities: [], namespaces: [], pods: [] };
  const changes = <V>(now: ReadonlyMap<string, V>, sent: Map<string, V> | undefined, same: (a: V, b: V) => boolean = (a, b) => a === b) => {
    const set: [string, V][] = [];
    const deleted: string[] = [];
    for (const [k, v] of now) {
      const was = sent?.get(k);
      if (was === undefined || !same(was, v)) set.push([k, v]);
    }
    if (sent) for (const k of sent.keys()) if (!now.has(k)) deleted.push(k);
    return { replace: sent === undefined, set, deleted };
  };
  // The certificates value last sent: the same value again is the same certificates (nothing to compare or send).
  let sentValue: CertificateInputs | undefined;
  const certificateDelta = (certificates: CertificateInputs) => {
    if (certificates === sentValue && sentCertificates) {
      const delta: CertificateDelta = { replace: false, trustBundle: certificates.trustBundle, set: [], deleted: [] };
      return { now: sentCertificates, delta };
    }
    const now = new Map(certificates.identities.map((c) => [c.identity, c]));
    const d = changes(now, sentCertificates, (a, b) => a === b || (a.certificateChain === b.certificateChain && a.privateKey === b.privateKey));
    const delta: CertificateDelta = { replace: d.replace, trustBundle: certificates.trustBundle, set: d.set.map(([, c]) => c), deleted: d.deleted };
    return { now, delta };
  };
  /** A request carrying the certificates that differ from what the worker holds (all of them again should it fail). */
  const withCertificates = async (certificates: CertificateInputs, send: (delta: CertificateDelta) => Promise<WorkerReply>) => {
    const { now, delta } = certificateDelta(certificates);
    sentCertificates = undefined;
    const reply = await send(delta);
    sentCertificates = now;
    sentValue = certificates;
    return reply;
  };
  return {
    async compile(units, live = {}) {
      // The units as they are now: the store may change while the worker compiles.
      const now = new Map(units);
      const delta: InputDelta = { ...changes(now, sentUnits), ...live };
      sentUnits = undefined;
      const { compiled } = (await ask({ type: 'compile', delta })) as { compiled: CompiledReply };
      sentUnits = now;
      // Lists the worker left out are the previous answer's (the very arrays: the controller can tell they did not change).
      const full: CompiledMesh = { ...compiled, identities: compiled.identities ?? lists.identities, namespaces: compiled.namespaces ?? lists.namespaces, pods: compiled.pods ?? lists.pods };
      lists = full;
      return full;
    },
    async snapshots(certificates, identities) {
      const reply = (await withCertificates(certificates, (delta) => ask({ type: 'snapshots', certificates: delta, ...(identities ? { identities } : {}) }))) as { snapshots: SnapshotChanges };
      return reply.snapshots;
    },
    async prepare(certificates) {
      await withCertificates(certificates, (delta) => ask({ type: 'prepare', certificates: delta }));
    },
    ir: async (compile) => ((await ask({ type: 'ir', compile })) as { ir: MeshIR }).ir,
    explain: async (compile, query) => ((await ask({ type: 'explain', compile, query })) as { answer: { code: number; body: unknown } }).answer,
    programmed: async (query) => ((await ask({ type: 'programmed', query })) as { programmed: ProgrammedAnswer }).programmed,
    graph: async (compile, proxies) => ((await ask({ type: 'graph', compile, proxies })) as { graph: MeshGraph }).graph,
    async reset() {
      await ask({ type: 'reset' });
    },
    close,
  };
}
