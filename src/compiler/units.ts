import { compileIR } from './compile.js';
import { decodeDocuments, type DecodedDocuments, type TrackedObject } from './decode/index.js';
import { compareOrigins, type InputDocument, type InputProblem, type LiveInputs, type Origin } from './inputs.js';
import { buildGroupedIR, isMeshWide, type IRMemo } from './ir/build.js';
import type { MeshIR } from './ir/types.js';
import type * as m from './model.js';
import { sameItems, sortedIndex } from './group.js';
import { PatchedTable, putIn } from './keyed.js';
import { createStatusCollector, error, recordInto, replay, type StatusCall, type StatusEntry } from './status.js';

/**
 * The compiler's front half over input units (a file, a Kubernetes object:
 * what a source delivers as one), for a controller that keeps compiling as
 * units change. `compileUnits(units)` is `compileIR` of the units'
 * documents and problems in the order of their keys: the same IR, the same
 * status. Given the previous result, it costs what changed: units that are
 * the very values as before are not looked into, namespaces none of whose
 * units changed keep their objects list and their IR parts (see ir/build.ts),
 * and only the status entries of objects whose messages may have changed are
 * made again (the status is the previous array itself when none did).
 */
export interface InputUnit {
  readonly documents: readonly InputDocument[];
  readonly problems: readonly InputProblem[];
}

export interface UnitsCompileResult {
  readonly ir: MeshIR;
  /** One entry per input object and per input problem, sorted by origin (the previous array when unchanged). */
  readonly status: readonly StatusEntry[];
  readonly memo: UnitsMemo;
}

/** What a compile keeps for the next, as plain data. */
export interface UnitsMemo {
  /** Each unit's part (patched over the previous build's when the changed keys were given). */
  readonly units: ReadonlyMap<string, UnitPart>;
  /** Objects by group (a namespace, or MESH for the mesh-wide kinds), gathered from the units. */
  readonly groups: ReadonlyMap<string, readonly m.MeshObject[]>;
  /** The units with objects in each group, sorted. */
  readonly members: ReadonlyMap<string, readonly string[]>;
  /** Where each member's objects start in its group's list (for groups patched in place; made when first needed). */
  readonly offsets: ReadonlyMap<string, ReadonlyMap<string, number>>;
  /** Which unit each source (of a document or problem) belongs to. */
  readonly owners: ReadonlyMap<string, string>;
  readonly ir: IRMemo | undefined;
  /** Groups given messages outside their IR parts in that compile. */
  readonly direct: ReadonlySet<string>;
  readonly status: readonly StatusEntry[];
  /** The compile was made as one whole (units naming the same source): no part of it is kept. */
  readonly whole?: true;
}

interface UnitPart {
  readonly unit: InputUnit;
  readonly decoded: DecodedDocuments;
  readonly tracked: readonly TrackedObject[];
  /** What decoding said, in order. */
  readonly calls: readonly StatusCall[];
  readonly groups: ReadonlyMap<string, readonly m.MeshObject[]>;
  readonly sources: ReadonlySet<string>;
  /** One per tracked object, then one per input problem. */
  readonly entries: readonly StatusEntry[];
  /** What building the IR said of the unit's objects when `entries` were made (in the order of its objects). */
  readonly irCalls?: readonly StatusCall[];
}

const NO_CALLS: readonly StatusCall[] = [];

/** The group of the mesh-wide objects: no namespace is named so. */
const MESH = '/mesh';

/**
 * `touched`, when the caller knows it, names the keys set or deleted in `units` since `previous` was compiled: the
 * other units are then taken to be the very values they were, and not looked at (else every key is looked up).
 */
export function compileUnits(units: ReadonlyMap<string, InputUnit>, live: LiveInputs = {}, previous?: UnitsCompileResult, touched?: Iterable<string>): UnitsCompileResult {
  const before = previous?.memo;
  const changed: string[] = [];
  let parts: Map<string, UnitPart> | PatchedTable<UnitPart>;
  // (A memo of a compile made as one whole keeps no parts: every unit is looked at then.)
  if (before && touched && !before.whole) {
    const patched = new PatchedTable(before.units);
    for (const key of new Set(touched)) {
      const unit = units.get(key);
      const was = before.units.get(key);
      if (unit === undefined) {
        if (was) patched.remove(key);
      } else if (was?.unit !== unit) patched.put(key, decodeUnit(unit, was?.decoded));
      else continue;
      if (unit !== undefined || was) changed.push(key);
    }
    parts = patched;
  } else {
    const all = new Map<string, UnitPart>();
    let added = 0;
    units.forEach((unit, key) => {
      const was = before?.units.get(key);
      if (was?.unit === unit) {
        all.set(key, was);
        return;
      }
      if (!was) added++;
      all.set(key, decodeUnit(unit, was?.decoded));
      changed.push(key);
    });
    // Units gone (only looked for when some are).
    if (before && before.units.size > all.size - added) before.units.forEach((_, key) => void (units.has(key) || changed.push(key)));
    parts = all;
  }

  // Each source belongs to one unit; should two units name the same source, their messages would mix: compiled as one whole then.
  // (A unit that names the same sources as before changes no ownership: the map is kept as it was.)
  const sameSources = before !== undefined && changed.every((key) => sameSet(before.units.get(key)?.sources, parts.get(key)?.sources));
  let owners = before?.owners ?? new Map<string, string>();
  if (!sameSources) {
    const next = new Map(owners);
    let shared = false;
    for (const key of changed) {
      for (const source of before?.units.get(key)?.sources ?? []) if (next.get(source) === key) next.delete(source);
    }
    for (const key of changed) {
      for (const source of parts.get(key)?.sources ?? []) {
        const owner = next.get(source);
        if (owner !== undefined && owner !== key) shared = true;
        else next.set(source, key);
      }
    }
    if (shared) return whole(units, live);
    owners = next;
  }

  // The groups the changed units had objects in, before or now, are gathered again (in the order of unit keys).
  // Per group, the changed units with objects in it now (in the order of `changed`) and those that had and no longer have.
  const intoOf = new Map<string, string[]>();
  const outOf = new Map<string, Set<string>>();
  for (const key of changed) {
    const now = parts.get(key)?.groups;
    for (const g of now?.keys() ?? []) {
      const into = intoOf.get(g);
      if (into === undefined) intoOf.set(g, [key]);
      else into.push(key);
    }
    for (const g of before?.units.get(key)?.groups.keys() ?? []) {
      if (now?.has(g) === true) continue;
      const out = outOf.get(g);
      if (out === undefined) outOf.set(g, new Set([key]));
      else out.add(key);
    }
  }
  const dirty = new Set([...intoOf.keys(), ...outOf.keys()]);
  const members = new Map(before?.members);
  const groups = new Map(before?.groups);
  const offsets = new Map(before?.offsets);
  for (const g of dirty) {
    const was = members.get(g) ?? [];
    const into = intoOf.get(g) ?? [];
    const out = outOf.get(g) ?? new Set<string>();
    const kept = out.size === 0 ? was : was.filter((key) => !out.has(key));
    const order = kept.length === was.length && into.every((key) => sortedIndex(was, (k) => (k < key ? -1 : k > key ? 1 : 0)) >= 0) ? was : [...new Set([...kept, ...into])].sort();
    if (order.length === 0) {
      members.delete(g);
      groups.delete(g);
      offsets.delete(g);
      continue;
    }
    members.set(g, order);
    // The same units, each with as many objects in the group as before: their objects are written over theirs.
    if (order === was && into.every((key) => before!.units.get(key)?.groups.get(g)?.length === parts.get(key)!.groups.get(g)!.length)) {
      const at = offsets.get(g) ?? offsetsOf(g, order, before!.units);
      offsets.set(g, at);
      const list = groups.get(g)!.slice();
      for (const key of into) parts.get(key)!.groups.get(g)!.forEach((o, i) => (list[at.get(key)! + i] = o));
      groups.set(g, list);
      continue;
    }
    offsets.delete(g);
    groups.set(g, order.flatMap((key) => parts.get(key)!.groups.get(g)!));
  }

  // The IR: namespaces whose objects are the same list as before keep their parts.
  const byNamespace = new Map(groups);
  byNamespace.delete(MESH);
  const irCalls: StatusCall[] = [];
  const built = buildGroupedIR(groups.get(MESH) ?? [], byNamespace, recordInto(irCalls), live, before?.ir);

  // Status: made again for the changed units, and for the units of every group whose messages may differ.
  const redo = new Set(changed.filter((key) => parts.has(key)));
  for (const g of [MESH, ...built.rebuilt, ...built.direct, ...(before?.direct ?? [])]) for (const key of members.get(g) ?? []) redo.add(key);
  const callsOf = new Map<string, StatusCall[]>();
  for (const call of irCalls) {
    const list = callsOf.get(call[1]);
    if (list) list.push(call);
    else callsOf.set(call[1], [call]);
  }
  // A unit gone takes its entries with it.
  let statusChanged = before === undefined || changed.some((key) => !parts.has(key));
  for (const key of redo) {
    const part = parts.get(key)!;
    let irCalls: readonly StatusCall[] = NO_CALLS;
    for (const t of part.tracked) {
      const calls = callsOf.get(t.key);
      if (calls) irCalls = irCalls === NO_CALLS ? calls : [...irCalls, ...calls];
    }
    // An unchanged unit that the IR told the same things (the same messages, by reference) keeps its entries.
    if (part.irCalls !== undefined && sameCalls(part.irCalls, irCalls)) continue;
    const entries = entriesOf(part, callsOf, before?.units.get(key)?.entries);
    if (!sameItems(entries, before?.units.get(key)?.entries)) statusChanged = true;
    putIn(parts, key, { ...part, entries, irCalls });
  }
  let status = before?.status ?? [];
  if (statusChanged) {
    // As compileIR orders them: units in key order, each one's objects then its problems; sorted (stably) by origin.
    status = [...parts.keys()].sort().flatMap((key) => parts.get(key)!.entries).sort((a, b) => compareOrigins(a.origin, b.origin));
  }
  return { ir: built.ir, status, memo: { units: parts, groups, members, offsets, owners, ir: built.memo, direct: built.direct, status } };
}

/** The units compiled as one whole (no memo of parts is kept: the next compile starts afresh). */
function whole(units: ReadonlyMap<string, InputUnit>, live: LiveInputs): UnitsCompileResult {
  const keys = [...units.keys()].sort();
  const r = compileIR({
    documents: keys.flatMap((k) => units.get(k)!.documents),
    problems: keys.flatMap((k) => units.get(k)!.problems),
    ...live,
  });
  return { ir: r.ir, status: r.status, memo: { units: new Map(), groups: new Map(), members: new Map(), offsets: new Map(), owners: new Map(), ir: undefined, direct: new Set(), status: r.status, whole: true } };
}

function decodeUnit(unit: InputUnit, previous?: DecodedDocuments): UnitPart {
  const calls: StatusCall[] = [];
  const { objects, tracked, decoded } = decodeDocuments(unit.documents, recordInto(calls), previous);
  const groups = new Map<string, m.MeshObject[]>();
  for (const o of objects) {
    const g = isMeshWide(o) ? MESH : o.meta.namespace;
    const list = groups.get(g);
    if (list) list.push(o);
    else groups.set(g, [o]);
  }
  const sources = new Set([...unit.documents.map((d) => d.origin.source), ...unit.problems.map((p) => p.origin.source)]);
  return { unit, decoded, tracked, calls, groups, sources, entries: [] };
}

/** A unit's status entries: what decoding said of each object, then what building the IR said; then one per input problem. */
function entriesOf(part: UnitPart, irCalls: ReadonlyMap<string, readonly StatusCall[]>, previous: readonly StatusEntry[] | undefined): StatusEntry[] {
  const status = createStatusCollector();
  replay(part.calls, status);
  for (const t of part.tracked) replay(irCalls.get(t.key) ?? [], status);
  const made: StatusEntry[] = [...status.entries(part.tracked).values()];
  for (const p of part.unit.problems) made.push({ origin: p.origin, object: { apiVersion: '', kind: '', namespace: '', name: '' }, state: 'Rejected', messages: [error('', p.message)] });
  // An entry equal to the previous one is that value itself: the status is recognised as unchanged by reference.
  return made.map((e, i) => {
    const was = previous?.[i];
    return was !== undefined && sameEntry(was, e) ? was : e;
  });
}

function sameEntry(a: StatusEntry, b: StatusEntry): boolean {
  return (
    a.state === b.state &&
    sameOrigin(a.origin, b.origin) &&
    a.object.apiVersion === b.object.apiVersion &&
    a.object.kind === b.object.kind &&
    a.object.namespace === b.object.namespace &&
    a.object.name === b.object.name &&
    JSON.stringify(a.parents) === JSON.stringify(b.parents) &&
    a.messages.length === b.messages.length &&
    a.messages.every((m, i) => {
      const n = b.messages[i]!;
      return m === n || (m.severity === n.severity && m.path === n.path && m.message === n.message);
    })
  );
}

const sameOrigin = (a: Origin, b: Origin) => a === b || (a.source === b.source && a.document === b.document && a.line === b.line);

function sameCalls(a: readonly StatusCall[], b: readonly StatusCall[]): boolean {
  return a.length === b.length && a.every((c, i) => c[0] === b[i]![0] && c[1] === b[i]![1] && c[2] === b[i]![2]);
}

/** Where each unit's objects start in a group's list (the units in order, with their counts of objects in it). */
function offsetsOf(g: string, order: readonly string[], parts: ReadonlyMap<string, UnitPart>): ReadonlyMap<string, number> {
  const at = new Map<string, number>();
  let offset = 0;
  for (const key of order) {
    at.set(key, offset);
    offset += parts.get(key)!.groups.get(g)!.length;
  }
  return at;
}

function sameSet<T>(a: ReadonlySet<T> | undefined, b: ReadonlySet<T> | undefined): boolean {
  return a !== undefined && b !== undefined && a.size === b.size && [...a].every((x) => b.has(x));
}
