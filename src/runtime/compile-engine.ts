import { loadEnvoyProtos } from '../adapters/envoy-protos.js';
import type { SourceUnit } from '../adapters/source.js';
import { sameItems } from '../compiler/group.js';
import { compileUnits, type UnitsCompileResult } from '../compiler/units.js';
import { editOf, onWire, planSnapshots, replannedOf, type PlannedSnapshot, type SetEdit, type WireSet } from '../compiler/envoy/snapshot.js';
import { PUSH_ORDER, type ResourceKind } from '../compiler/envoy/codec.js';
import type { SetDelta, SetMove, SnapshotPatch } from './cache.js';
import type { CertificateInputs } from '../compiler/inputs.js';
import { meshIndex } from '../compiler/ir/index.js';
import type { MeshIR, MeshSettings } from '../compiler/ir/types.js';
import type { StatusEntry } from '../compiler/status.js';
import { explain } from '../compiler/explain.js';
import { meshGraph, type MeshGraph } from '../output/mesh-graph.js';
import { parseExplainQuery, type ExplainArgs } from '../output/explain.js';
import { PROGRAMMED_KINDS, ProgrammedIndex, objectKey, type ObjectKey, type ProgrammedAnswer, type ProgrammedQuery } from '../compiler/programmed.js';
import type { MeshObject } from '../compiler/model.js';
import { resourceHash, type EncodedResource, type ResourceSet } from '../compiler/envoy/snapshot.js';

/**
 * The compile engine the controller's worker thread runs (compile-worker.ts):
 * it keeps what it was last sent (input units, certificates), the plan of
 * every identity and what the controller was last sent, so a change costs
 * what it touches at both ends: the controller sends the units and
 * certificates that changed, and receives the snapshots that changed. Its
 * state is the engine's own (one per `createCompileEngine`), not the module's:
 * tests drive one in-process, request by request, as the thread does.
 */
export interface InputDelta {
  /** Every unit is in `set` (the worker forgets the others). */
  readonly replace: boolean;
  /** Units (by source and unit name) that are new or changed. */
  readonly set: readonly (readonly [string, SourceUnit])[];
  readonly deleted: readonly string[];
  readonly connectedVirtualMachines?: readonly string[];
  readonly runningTrustDomain?: string;
}

export interface CertificateDelta {
  readonly replace: boolean;
  readonly trustBundle: string;
  readonly set: CertificateInputs['identities'];
  readonly deleted: readonly string[];
}

export interface SnapshotChanges {
  /**
   * Snapshots that changed since the worker's last answer, each with only
   * the types that changed (every type of an identity not sent before: all
   * of them the first time, or after a reset). A resource set many
   * identities share is one object in the answer, copied across once; a set
   * made of parts crosses as its parts (see `composeSets`), so a part shared
   * by the whole mesh is copied once however many sets hold it.
   */
  readonly changed: SnapshotPatch[];
  /**
   * Groups of identities whose snapshots changed alike (see `SetMove`): in
   * each type, to one set all of them now hold (a permissive mesh's endpoint
   * set after a pod moved), or to one new shared part beside the own part
   * each holds (a split in a permissive mesh). A group and its sets cross
   * once, not a patch per identity; none of them is in `changed`.
   */
  readonly moved: SetMove[];
  /** Identities that are no longer in the mesh. */
  readonly removed: string[];
  /** What does not close in the changed snapshots (a compiler bug): the controller then publishes none of them. */
  readonly inconsistencies: string[];
  /** `changed` holds every identity's snapshot (nothing had been sent, or the worker was reset). */
  readonly complete: boolean;
}

/**
 * What the controller needs of a compile on its own thread: the status (only
 * when it differs from the last one sent), and the few facts it serves from
 * (identities, namespaces, pods, settings). The IR itself stays in the
 * worker; the admin port asks for it (`ir`) when someone wants to see it.
 */
export interface CompiledMesh {
  /** Which compile this is (the IR of the latest few can be asked for by it). */
  readonly compile: number;
  /** Undefined: the same as the previous compile's. */
  readonly status: readonly StatusEntry[] | undefined;
  /** Identities that have a workload, sorted. */
  readonly identities: readonly string[];
  readonly namespaces: readonly string[];
  /** `ns/name` of every pod in the mesh. */
  readonly pods: readonly string[];
  readonly settings: MeshSettings;
}

export type WorkerRequest =
  | { readonly id: number; readonly type: 'compile'; readonly delta: InputDelta }
  | { readonly id: number; readonly type: 'snapshots'; readonly certificates: CertificateDelta; readonly identities?: readonly string[] }
  | { readonly id: number; readonly type: 'prepare'; readonly certificates: CertificateDelta }
  | { readonly id: number; readonly type: 'reset' }
  | { readonly id: number; readonly type: 'ir'; readonly compile: number }
  | { readonly id: number; readonly type: 'explain'; readonly compile: number; readonly query: ExplainArgs }
  | { readonly id: number; readonly type: 'graph'; readonly compile: number; readonly proxies: Parameters<typeof meshGraph>[1] }
  | { readonly id: number; readonly type: 'programmed'; readonly query: ProgrammedQuery };

/** A compile's answer as it crosses the thread boundary: a list the same as in the previous answer is left out. */
export type CompiledReply = Omit<CompiledMesh, 'identities' | 'namespaces' | 'pods'> & Partial<Pick<CompiledMesh, 'identities' | 'namespaces' | 'pods'>>;

export type WorkerReply =
  | { readonly id: number; readonly compiled: CompiledReply }
  | { readonly id: number; readonly ir: MeshIR }
  | { readonly id: number; readonly answer: { readonly code: number; readonly body: unknown } }
  | { readonly id: number; readonly graph: MeshGraph }
  | { readonly id: number; readonly programmed: ProgrammedAnswer }
  | { readonly id: number; readonly snapshots: SnapshotChanges }
  | { readonly id: number; readonly reset: true }
  | { readonly id: number; readonly prepared: true }
  | { readonly id: number; readonly error: string };

export interface CompileEngine {
  /** Answers one request (an error is an answer too: `{ error }`). */
  handle(m: WorkerRequest): WorkerReply;
}

export function createCompileEngine(): CompileEngine {
  // The latest compile.
  let current: UnitsCompileResult | undefined;
  let compiles = 0;
  // The IR and status of the latest compiles, by number: the one being served may be a compile or two behind the latest.
  const irs = new Map<number, { ir: MeshIR; status: readonly StatusEntry[] }>();
  const KEPT_IRS = 4;
  let answeredStatus: readonly StatusEntry[] | undefined;
  const units = new Map<string, SourceUnit>();
  /** The keys of `units` set or deleted since the last compile that went through; undefined when every unit is to be looked at. */
  let touchedUnits: Set<string> | undefined;
  let connectedVirtualMachines: readonly string[] | undefined;
  const certificates = new Map<string, CertificateInputs['identities'][number]>();
  // What plans are made with: a new value only when a certificate or the trust bundle changed.
  let certificateInputs: CertificateInputs = { trustBundle: '', identities: [] };
  const unsent = new Set<string>();
  // The identities of the latest answer: when a compile's are the same array, none can be gone.
  let sentIdentities: readonly string[] | undefined;
  let podSet: ReadonlySet<string> | undefined;
  let pods: readonly string[] = [];
  // The latest plan of every identity: an identity whose plan did not change keeps its snapshot, untranslated and unsent.
  let plans = new Map<string, PlannedSnapshot>();
  // What the controller was last sent, by identity: it is sent what differs from this.
  let sent = new Map<string, PlannedSnapshot>();
  // The IR those plans were made from: the next compile's IR is compared with it to find the identities to plan again.
  let plannedIR: MeshIR | undefined;

  // For Programmed (see compiler/programmed.ts): the compile at which each policy object last changed, and at
  // which each resource version was first sent. A version sent since an object's last change carries it as it is.
  // Versions are kept two generations of GENERATION compiles: one not found counts as older than any object.
  const changedAt = new Map<ObjectKey, { readonly text: string; readonly compile: number }>();
  const objectTexts = new WeakMap<MeshObject, string>();
  let firstSent = new Map<string, number>();
  let firstSentBefore = new Map<string, number>();
  const walkedSets = new WeakSet<ResourceSet>();
  // Which connected identities each policy object shapes, kept from one query to the next.
  const programmedIndex = new ProgrammedIndex();
  // Each TrafficTarget's rules' routes (kept as units change), and a count of their changes.
  const rules = { map: new Map<ObjectKey, readonly ObjectKey[]>(), version: 0 };
  const rulesOfUnit = new Map<string, ObjectKey[]>();
  // Identities whose snapshot was sent since the last Programmed query (all of them after a reset).
  let resent = new Set<string>();
  let resentAll = true;
  const GENERATION = 64;

  // A number per set, for the key of a group of identities that moved alike (sets are told apart by identity).
  const setIds = new WeakMap<ResourceSet, number>();
  let numbered = 0;
  // (The set each type's last one took: a group's identities come one after another with the same sets.)
  const lastOf = new Map<ResourceKind, { set: ResourceSet; n: number }>();
  const idOf = (kind: ResourceKind, set: ResourceSet): number => {
    const last = lastOf.get(kind);
    if (last?.set === set) return last.n;
    let n = setIds.get(set);
    if (n === undefined) setIds.set(set, (n = ++numbered));
    lastOf.set(kind, { set, n });
    return n;
  };

  // The lists the controller was last answered (it keeps them: a compile sends only those that changed).
  let answered: Partial<Pick<CompiledMesh, 'identities' | 'namespaces' | 'pods'>> = {};

  /** GET /explain on the admin port: `smc explain` against the mesh as it is served. */
  function explainQuery(ir: MeshIR, q: ExplainArgs, status: readonly StatusEntry[]): { code: number; body: unknown } {
    const parsed = parseExplainQuery(q, ir.settings.trustDomain);
    if ('errors' in parsed) return { code: 400, body: parsed };
    return { code: 200, body: explain(ir, parsed.query, status) };
  }

  /** The Programmed condition of each policy object of `compiled`, given what the proxies have taken (see compiler/programmed.ts). */
  function programmedOf(compiled: UnitsCompileResult, query: ProgrammedQuery): ProgrammedAnswer {
    const carries = (o: ObjectKey, version: string) => {
      const at = firstSent.get(version) ?? firstSentBefore.get(version);
      return at !== undefined && at >= (changedAt.get(o)?.compile ?? 0);
    };
    const changedIdentities = resentAll ? undefined : resent;
    const answer = programmedIndex.conditions(
      { codec: loadEnvoyProtos(), ir: compiled.ir, status: compiled.status, snapshotOf: (id) => sent.get(id)?.snapshot, rulesOf: (tt) => rules.map.get(tt) ?? [], rulesVersion: String(rules.version), carries, ...(changedIdentities ? { changedIdentities } : {}) },
      query,
    );
    resent = new Set();
    resentAll = false;
    return answer;
  }

  /**
   * Stamps the policy objects of the units a compile read again whose content
   * changed, and keeps each TrafficTarget's rules' routes (by unit: a unit read
   * again replaces its TrafficTargets), counting a change of them in `rules`.
   */
  function noteObjectChanges(unitKeys: readonly string[], deleted: readonly string[], replace: boolean, compiled: UnitsCompileResult, compile: number): void {
    const read = new Set(unitKeys);
    const gone = [...deleted, ...unitKeys, ...(replace ? [...rulesOfUnit.keys()].filter((k) => !read.has(k)) : [])];
    // What the units held before, then what they hold now: a TrafficTarget that moved between two of them is kept.
    const before = new Map<ObjectKey, string>();
    for (const unit of gone) {
      for (const k of rulesOfUnit.get(unit) ?? []) {
        before.set(k, rules.map.get(k)?.join('\n') ?? '');
        rules.map.delete(k);
      }
      rulesOfUnit.delete(unit);
    }
    for (const key of unitKeys) {
      const now: ObjectKey[] = [];
      for (const objects of compiled.memo.units.get(key)?.groups.values() ?? []) {
        for (const o of objects) {
          if (!PROGRAMMED_KINDS.has(o.kind)) continue;
          let text = objectTexts.get(o);
          if (text === undefined) objectTexts.set(o, (text = JSON.stringify(o, (k, v: unknown) => (k === 'origin' || k === 'key' ? undefined : v))));
          const k = objectKey({ kind: o.kind, namespace: o.meta.namespace, name: o.meta.name });
          if (changedAt.get(k)?.text !== text) changedAt.set(k, { text, compile });
          if (o.kind !== 'TrafficTarget') continue;
          now.push(k);
          rules.map.set(k, o.rules.map((r) => `${r.kind} ${o.meta.namespace}/${r.name}`));
        }
      }
      if (now.length > 0) rulesOfUnit.set(key, now);
    }
    for (const [k, text] of before) if (rules.map.get(k)?.join('\n') !== text) rules.version++;
    for (const unit of unitKeys) for (const k of rulesOfUnit.get(unit) ?? []) if (!before.has(k)) rules.version++;
  }

  /** Stamps the resource versions of a set sent to the controller that were not sent before (a set is walked once). */
  function noteSent(set: ResourceSet): void {
    if (walkedSets.has(set)) return;
    walkedSets.add(set);
    if (set.parts) for (const part of set.parts) noteSent(part);
    else noteResources(set.resources);
  }
  function noteResources(resources: readonly EncodedResource[]): void {
    for (const r of resources) {
      const h = r.hash ?? resourceHash(r.bytes);
      if (!firstSent.has(h)) firstSent.set(h, firstSentBefore.get(h) ?? compiles);
    }
  }

  return {
    handle(m: WorkerRequest): WorkerReply {
      try {
        if (m.type === 'reset') {
          plans = new Map();
          sent = new Map();
          resentAll = true;
          plannedIR = undefined;
          unsent.clear();
          sentIdentities = undefined;
          return { id: m.id, reset: true };
        }
        if (m.type === 'compile') {
          if (m.delta.replace) units.clear();
          for (const k of m.delta.deleted) units.delete(k);
          for (const [k, u] of m.delta.set) units.set(k, u);
          connectedVirtualMachines = m.delta.connectedVirtualMachines;
          // Only the units this delta (and any whose compile failed before it) touched are looked at (see compiler/units.ts).
          if (m.delta.replace) touchedUnits = undefined;
          else if (touchedUnits) for (const k of [...m.delta.deleted, ...m.delta.set.map(([k]) => k)]) touchedUnits.add(k);
          const before = current;
          current = compileUnits(units, { ...(connectedVirtualMachines ? { connectedVirtualMachines } : {}), ...(m.delta.runningTrustDomain ? { runningTrustDomain: m.delta.runningTrustDomain } : {}) }, before, touchedUnits);
          touchedUnits = new Set();
          const compile = ++compiles;
          noteObjectChanges(m.delta.replace ? [...units.keys()] : m.delta.set.map(([k]) => k), m.delta.deleted, m.delta.replace, current, compile);
          if (compile % GENERATION === 0) {
            firstSentBefore = firstSent;
            firstSent = new Map();
          }
          irs.set(compile, { ir: current.ir, status: current.status });
          irs.delete(compile - KEPT_IRS);
          // The decoded documents and the IR stay here; the controller gets the status when it changed, and what it serves from.
          // An unchanged status is the previous compile's very array.
          const status = current.status === answeredStatus ? undefined : current.status;
          answeredStatus = current.status;
          // The index of this IR is the previous one's with what changed patched in.
          const index = meshIndex(current.ir, before?.ir);
          // The pods' list is made again only when the set is a new one (an index patched without pod changes keeps it).
          if (index.podSet !== podSet) {
            podSet = index.podSet;
            pods = [...podSet];
          }
          const lists = { identities: index.identities, namespaces: current.ir.namespaces, pods };
          const changedLists = Object.fromEntries((['identities', 'namespaces', 'pods'] as const).filter((k) => !sameItems(lists[k], answered[k])).map((k) => [k, lists[k]]));
          const compiled: CompiledReply = { compile, status, settings: current.ir.settings, ...changedLists };
          answered = lists;
          return { id: m.id, compiled };
        }
        if (m.type === 'ir' || m.type === 'explain' || m.type === 'graph') {
          // Answered here, where the IR is: only the answer crosses the thread (a whole mesh model would block the controller's loop).
          const served = irs.get(m.compile) ?? (current ? { ir: current.ir, status: current.status } : undefined);
          if (!served) throw new Error('no compile yet');
          if (m.type === 'ir') return { id: m.id, ir: served.ir };
          else if (m.type === 'graph') return { id: m.id, graph: meshGraph(served.ir, m.proxies) };
          else return { id: m.id, answer: explainQuery(served.ir, m.query, served.status) };
        }
        if (m.type === 'programmed') {
          // Against the snapshots the controller was sent (what it serves) and the latest compile's objects.
          const programmed = current ? programmedOf(current, m.query) : { changed: [], removed: [] };
          return { id: m.id, programmed };
        }
        if (!current) throw new Error('snapshots asked for before any compile');
        const c = m.certificates;
        if (c.replace) certificates.clear();
        for (const id of c.deleted) certificates.delete(id);
        for (const cert of c.set) certificates.set(cert.identity, cert);
        // The same certificates are the same value: the plans can tell that none changed without comparing them.
        if (c.replace || c.deleted.length > 0 || c.set.length > 0 || c.trustBundle !== certificateInputs.trustBundle) {
          certificateInputs = { trustBundle: c.trustBundle, identities: [...certificates.values()] };
        }
        const subset = m.type === 'snapshots' ? m.identities : undefined;
        // Some identities only (renewals) are planned from the latest IR; should the other plans be of an older one, they are forgotten.
        if (subset && plannedIR !== current.ir) {
          plans = new Map();
          plannedIR = undefined;
        }
        const next = planSnapshots(current.ir, loadEnvoyProtos(), certificateInputs, plans, subset, subset ? current.ir : plannedIR);
        // Which identities may hold a plan the controller has not been sent: those planned now, and those prepared before.
        for (const id of replannedOf(next) ?? next.keys()) unsent.add(id);
        // A copy: the plans of a whole planning remember what they were made with (planSnapshots), and these no longer are.
        if (subset) plans = new Map([...plans, ...next]);
        else {
          plans = next;
          plannedIR = current.ir;
        }
        if (m.type === 'prepare') {
          return { id: m.id, prepared: true };
        }
        // What changed since the controller was last sent snapshots (a prepared plan is sent once it is asked for).
        const complete = !subset && sent.size === 0;
        const changed: SnapshotPatch[] = [];
        // Identities whose changed types all moved alike, by what they moved to (see `moveOf`).
        const groups = new Map<string, { moves: Move[]; identities: string[]; first: { p: PlannedSnapshot; was: PlannedSnapshot } }>();
        // Identities whose one changed type was made by an edit of the set they held (see `editOf`), by that edit.
        const edits = new Map<SetEdit, { kind: ResourceKind; identities: string[] }>();
        const inconsistencies: string[] = [];
        for (const id of [...unsent].sort()) {
          const p = next.get(id);
          const was = sent.get(id);
          if (p === undefined || was === p) continue;
          sent.set(id, p);
          resent.add(id);
          if (!was) {
            for (const m of p.inconsistencies) inconsistencies.push(m);
            changed.push({ identity: id, types: Object.fromEntries(PUSH_ORDER.map((k) => [k, onWire(p.snapshot.types[k], undefined)])) });
            for (const k of PUSH_ORDER) noteSent(p.snapshot.types[k]);
            continue;
          }
          let one: ResourceKind | undefined;
          let changes = 0;
          for (const k of PUSH_ORDER) if (p.snapshot.types[k] !== was.snapshot.types[k] && changes++ === 0) one = k;
          const edit = changes === 1 ? editOf(p.snapshot.types[one!], was.snapshot.types[one!]) : undefined;
          if (edit) {
            for (const m of p.inconsistencies) inconsistencies.push(m);
            const group = edits.get(edit);
            if (group) group.identities.push(id);
            else {
              // (What an edit keeps of a set was sent with it; what it puts is noted once for all who make it.)
              edits.set(edit, { kind: one!, identities: [id] });
              noteResources(edit.put);
            }
            continue;
          }
          const moves: Move[] = [];
          let key = '';
          let alike = true;
          for (const k of PUSH_ORDER) {
            const set = p.snapshot.types[k];
            const before = was.snapshot.types[k];
            if (set === before) continue;
            const move = alike ? moveOf(k, set, before) : undefined;
            if (!move) alike = false;
            else {
              moves.push(move);
              key += `${k}${move.part ? '~' : '='}${idOf(k, move.to)} `;
            }
          }
          // A plan made again with the same snapshot (it read other keys this time): nothing to send.
          if (moves.length === 0 && alike) continue;
          for (const m of p.inconsistencies) inconsistencies.push(m);
          if (alike) {
            const group = groups.get(key);
            if (!group) groups.set(key, { moves, identities: [id], first: { p, was } });
            else {
              group.identities.push(id);
              // (What they moved from is kept only where it is the same for all.)
              group.moves.forEach((m, i) => m.from !== moves[i]!.from && (m.from = undefined));
            }
            continue;
          }
          // The types that changed; of a set made of parts, the parts the controller holds for this identity are named, not sent.
          const types: Partial<Record<ResourceKind, WireSet>> = {};
          for (const k of PUSH_ORDER) {
            const set = p.snapshot.types[k];
            if (set === was.snapshot.types[k]) continue;
            types[k] = onWire(set, was.snapshot.types[k]);
            noteSent(set);
          }
          changed.push({ identity: id, types });
        }
        unsent.clear();
        // A group of one is that identity's patch; a group's sets cross once, as what differs from the set they all moved
        // from; an edit crosses once for all who made it (the callers of a moved hub, each with endpoints of its own).
        const moved: SetMove[] = [];
        for (const { moves, identities, first } of groups.values()) {
          if (identities.length === 1) {
            for (const m of moves) noteSent(m.to);
            changed.push({ identity: identities[0]!, types: Object.fromEntries(moves.map((m) => [m.kind, onWire(first.p.snapshot.types[m.kind], first.was.snapshot.types[m.kind])])) });
            continue;
          }
          const types = moves.map((m) => {
            if (!m.from || m.from.parts || m.to.parts) {
              noteSent(m.to);
              return { kind: m.kind, part: m.part, set: onWire(m.to, undefined) };
            }
            // (What the delta keeps was noted when the set they all held was sent: a pod move notes one assignment, not the mesh's.)
            const delta = setDelta(m.from, m.to);
            noteResources(delta.put);
            return { kind: m.kind, part: m.part, set: delta };
          });
          moved.push({ identities, types });
        }
        for (const [edit, { kind, identities }] of edits) {
          if (identities.length > 1) moved.push({ identities, types: [{ kind, part: false, set: edit }] });
          else changed.push({ identity: identities[0]!, types: { [kind]: onWire(next.get(identities[0]!)!.snapshot.types[kind], undefined) } });
        }
        changed.sort((a, b) => (a.identity < b.identity ? -1 : 1));
        const removed: string[] = [];
        const identities = meshIndex(current.ir).identities;
        if (!subset && identities !== sentIdentities) {
          for (const id of sent.keys()) if (!next.has(id)) removed.push(id);
          for (const id of removed) sent.delete(id);
          sentIdentities = identities;
        }
        return { id: m.id, snapshots: { changed, moved, removed, inconsistencies, complete } };
      } catch (e) {
        return { id: m.id, error: e instanceof Error ? (e.stack ?? e.message) : String(e) };
      }
    },
  };
}

/** How one type of an identity's snapshot moved: to another set (`part` false), or to another shared part with its own part kept (`part`). */
interface Move {
  readonly kind: ResourceKind;
  readonly part: boolean;
  readonly to: ResourceSet;
  /** The set (or shared part) it moved from: where a group moved from several, undefined. */
  from: ResourceSet | undefined;
}

/** The move of `kind` from `before` to `set`, when it is one a group can make alike: a set without parts, or a new shared part beside the same own part. */
function moveOf(kind: ResourceKind, set: ResourceSet, before: ResourceSet): Move | undefined {
  if (!set.parts) return { kind, part: false, to: set, from: before };
  const [shared, own] = set.parts;
  if (set.parts.length === 2 && before.parts?.length === 2 && before.parts[1] === own && before.parts[0] !== shared) return { kind, part: true, to: shared!, from: before.parts[0] };
  return undefined;
}

/** `to` as what differs from `from` (both in name order): the resources put in or replaced, the names removed. */
function setDelta(from: ResourceSet, to: ResourceSet): SetDelta {
  const put: EncodedResource[] = [];
  const removed: string[] = [];
  const [a, b] = [from.resources, to.resources];
  let i = 0;
  let j = 0;
  while (i < a.length || j < b.length) {
    const x = a[i];
    const y = b[j];
    if (y === undefined || (x !== undefined && x.name < y.name)) {
      removed.push(x!.name);
      i++;
    } else if (x === undefined || y.name < x.name) {
      put.push(y);
      j++;
    } else {
      if (x !== y && (x.hash ?? resourceHash(x.bytes)) !== (y.hash ?? resourceHash(y.bytes))) put.push(y);
      i++;
      j++;
    }
  }
  return { version: to.version, from: from.version, put, removed };
}
