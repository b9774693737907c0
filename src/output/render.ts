import { meshModelOutput } from './compile-files.js';
import { stringify } from 'yaml';
import { formatOrigin, type Origin } from '../compiler/inputs.js';
import type { CompileResult } from '../compiler/compile.js';
import type { StatusEntry } from '../compiler/status.js';
import { formatMessage } from '../compiler/status.js';
import type { ObjectKey, ProgrammedCondition } from '../compiler/programmed.js';

/**
 * Pure rendering of compiler results into files (path -> text). One function
 * at the edge writes them (see expected.ts), as cdk8s does.
 */
export type OutputFiles = ReadonlyMap<string, string>;

const YAML_OPTIONS = { lineWidth: 0, sortMapEntries: false } as const;

/**
 * Status entries as data. By default in the meaning-only form that output
 * files use: no origins (file, line) and sorted by object, so moving or
 * reformatting a file leaves status.json as it was and `compile --check`
 * fails only when what the mesh means changed. With `origins` (the admin
 * port, where an operator looks for the line to fix) each entry says where
 * it was read. A document that could not be read names its file either way.
 */
export function renderStatus(status: readonly StatusEntry[], options: { origins?: boolean } = {}): unknown[] {
  const rows = status.map((s) => {
    const o = s.object;
    const what = o.kind === '' ? '(unreadable document)' : `${o.kind} ${o.namespace ? `${o.namespace}/` : ''}${o.name || '(no name)'}`;
    return {
      object: what,
      ...(o.apiVersion ? { apiVersion: o.apiVersion } : {}),
      ...(options.origins ? { origin: formatOrigin(s.origin) } : o.kind === '' ? { source: s.origin.source } : {}),
      state: s.state,
      ...(s.messages.length > 0 ? { messages: s.messages.map((m) => `${m.severity}: ${formatMessage(m)}`) } : {}),
      ...(s.parents ? { parents: s.parents } : {}),
    };
  });
  if (options.origins) return rows;
  const key = (r: (typeof rows)[number]) => JSON.stringify([r.object, r.apiVersion ?? '', 'source' in r ? r.source : '', r.state, r.messages ?? []]);
  return rows.map((r) => [key(r), r] as const).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, r]) => r);
}

export function toYaml(value: unknown): string {
  return stringify(stripUndefined(value), YAML_OPTIONS);
}

export function renderIRFiles(result: CompileResult): Map<string, string> {
  return new Map([
    ['ir.yaml', toYaml(meshModelOutput(result.ir))],
    ['status.yaml', toYaml(renderStatus(result.status))],
  ]);
}

function stripUndefined(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(stripUndefined);
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) if (v !== undefined) out[k] = stripUndefined(v);
    return out;
  }
  return value;
}

/** Every input object's state, one line each (with its problems, if any, one line each below it): `compile --status text`. */
export function statusTable(status: readonly StatusEntry[]): string[] {
  const lines: string[] = [];
  for (const s of status) {
    const o = s.object;
    const what = o.kind === '' ? 'document' : `${o.kind} ${o.namespace ? `${o.namespace}/` : ''}${o.name}`;
    lines.push(`${s.state.padEnd(17)} ${what}  (${formatOrigin(s.origin)})`);
    for (const m of s.messages) lines.push(`${''.padEnd(17)}   ${m.severity}: ${formatMessage(m)}`);
    // A route's status per parent, one line each: the conditions as `kubectl get -o yaml` would show them.
    for (const p of s.parents ?? []) {
      const ref = p.parentRef;
      const conditions = p.conditions.map((c) => `${c.type}=${c.status} (${c.reason})`).join(', ');
      lines.push(`${''.padEnd(17)}   parent ${ref.kind} ${ref.namespace}/${ref.name}${ref.port !== undefined ? `:${ref.port}` : ''}: ${conditions}`);
    }
  }
  return lines;
}

/** Rows as aligned columns (the first row is the header), for terminals. */
export function columns(rows: readonly (readonly string[])[]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r) => `${r.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd()}\n`).join('');
}

/**
 * One line per problem, as a terminal user wants to read it. With `lineOf`
 * (which reads the file: adapters/field-lines.ts), each problem is placed at
 * the line of its field rather than of its document.
 */
export function statusLines(status: readonly StatusEntry[], lineOf?: (origin: Origin, path: string) => number | undefined): string[] {
  const lines: string[] = [];
  for (const s of status) {
    if (s.messages.length === 0) continue;
    const o = s.object;
    const what = o.kind === '' ? 'document' : `${o.kind} ${o.namespace ? `${o.namespace}/` : ''}${o.name}`;
    for (const m of s.messages) {
      const line = lineOf?.(s.origin, m.path);
      lines.push(`${formatOrigin(line === undefined ? s.origin : { ...s.origin, line })}: ${what}: ${m.severity}: ${formatMessage(m)} [${s.state}]`);
    }
  }
  return lines;
}

/**
 * Status rows (as `renderStatus` makes them, with origins) with each policy
 * object's `Programmed` condition beside its state: which connected proxies
 * carry it and whether they have taken it (see compiler/programmed.ts).
 */
export function withProgrammed(rows: readonly unknown[], conditions: ReadonlyMap<ObjectKey, ProgrammedCondition>): unknown[] {
  if (conditions.size === 0) return [...rows];
  return rows.map((r) => {
    const c = conditions.get((r as { object: string }).object);
    return c ? { ...(r as object), programmed: c } : r;
  });
}

/** The conditions as a list, objects not programmed first (for the mesh page and `smc status`). */
export function programmedList(conditions: ReadonlyMap<ObjectKey, ProgrammedCondition>): { object: ObjectKey; programmed: ProgrammedCondition }[] {
  const rank = { Rejected: 0, Pending: 1, NoProxies: 2, Programmed: 3 } as const;
  return [...conditions].map(([object, programmed]) => ({ object, programmed })).sort((a, b) => rank[a.programmed.reason] - rank[b.programmed.reason] || (a.object < b.object ? -1 : a.object > b.object ? 1 : 0));
}
