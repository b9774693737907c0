import type { Origin } from './inputs.js';

/**
 * - Accepted: fully applied (may carry warnings).
 * - PartiallyAccepted: applied, but some parts were dropped (see errors).
 * - Rejected: not applied at all.
 * - Ignored: not a kind smc uses, or outside the mesh.
 */
export type StatusState = 'Accepted' | 'PartiallyAccepted' | 'Rejected' | 'Ignored';

export interface StatusMessage {
  readonly severity: 'error' | 'warning';
  /** Field path inside the object, e.g. `spec.backends[0].weight`; empty for the whole object. */
  readonly path: string;
  readonly message: string;
}

export interface ObjectRef {
  readonly apiVersion: string;
  readonly kind: string;
  readonly namespace: string;
  readonly name: string;
}

export interface StatusEntry {
  readonly origin: Origin;
  readonly object: ObjectRef;
  readonly state: StatusState;
  readonly messages: readonly StatusMessage[];
  /** A Gateway API route: its status for each parent smc is the controller of (its Service parents), as the specification defines it. */
  readonly parents?: readonly RouteParentStatus[];
}

/** The name smc writes as `controllerName` in a route's status. */
export const CONTROLLER_NAME = 'smc.dev/mesh-controller';

export interface RouteCondition {
  readonly type: 'Accepted' | 'ResolvedRefs';
  readonly status: 'True' | 'False';
  /** The specification's reasons: Accepted, NoMatchingParent, UnsupportedValue; ResolvedRefs, BackendNotFound, InvalidKind, RefNotPermitted. */
  readonly reason: string;
  readonly message: string;
}

/** RouteParentStatus of the Gateway API, without what the writer adds (observedGeneration, lastTransitionTime). */
export interface RouteParentStatus {
  readonly parentRef: { readonly group: string; readonly kind: string; readonly namespace: string; readonly name: string; readonly port?: number; readonly sectionName?: string };
  readonly controllerName: string;
  readonly conditions: readonly RouteCondition[];
}

export const error = (path: string, message: string): StatusMessage => ({ severity: 'error', path, message });
export const warning = (path: string, message: string): StatusMessage => ({ severity: 'warning', path, message });

/**
 * Collects messages per input object while the compiler works. Only the
 * compiler's own passes write to it; the result is frozen into `StatusEntry[]`.
 */
export interface StatusCollector {
  add(key: string, message: StatusMessage): void;
  /** Marks the object as not applied at all. */
  reject(key: string, message: StatusMessage): void;
  ignore(key: string, message: StatusMessage): void;
  /** A route's status per parent (the last one given counts). */
  parents(key: string, parents: readonly RouteParentStatus[]): void;
}

/** One thing said to a status collector, as data: recorded once, replayed into the collector of each compile that reuses it. */
export type StatusCall = readonly ['add' | 'reject' | 'ignore', string, StatusMessage] | readonly ['parents', string, readonly RouteParentStatus[]];

/** A collector that appends what it is told to `calls`. */
export function recordInto(calls: StatusCall[]): StatusCollector {
  return {
    add: (k, msg) => void calls.push(['add', k, msg]),
    reject: (k, msg) => void calls.push(['reject', k, msg]),
    ignore: (k, msg) => void calls.push(['ignore', k, msg]),
    parents: (k, list) => void calls.push(['parents', k, list]),
  };
}

/** Tells `into` what `calls` recorded, in order. */
export function replay(calls: Iterable<StatusCall>, into: StatusCollector): void {
  for (const call of calls) {
    if (call[0] === 'parents') into.parents(call[1], call[2]);
    else into[call[0]](call[1], call[2]);
  }
}

export function createStatusCollector(): StatusCollector & {
  /**
   * One entry per object. Given the previous compile's entries by object, an
   * object whose state and messages are the very same values as then keeps
   * its entry (so an unchanged status is the same entries again, and is
   * recognised without being serialised).
   */
  entries<O extends { key: string; origin: Origin; ref: ObjectRef }>(objects: ReadonlyArray<O>, previous?: ReadonlyMap<O, StatusEntry>): Map<O, StatusEntry>;
} {
  const messages = new Map<string, StatusMessage[]>();
  const forced = new Map<string, StatusState>();
  const parentsOf = new Map<string, readonly RouteParentStatus[]>();
  const push = (key: string, m: StatusMessage) => {
    const list = messages.get(key);
    if (list) list.push(m);
    else messages.set(key, [m]);
  };
  return {
    add: push,
    reject(key, m) {
      push(key, m);
      forced.set(key, 'Rejected');
    },
    ignore(key, m) {
      push(key, m);
      if (forced.get(key) !== 'Rejected') forced.set(key, 'Ignored');
    },
    parents(key, list) {
      parentsOf.set(key, list);
    },
    entries(objects, previous) {
      const out = new Map<(typeof objects)[number], StatusEntry>();
      for (const o of objects) {
        const { key, origin, ref } = o;
        const list = dedupe(messages.get(key) ?? []);
        const state: StatusState =
          forced.get(key) ?? (list.some((m) => m.severity === 'error') ? 'PartiallyAccepted' : 'Accepted');
        const parents = parentsOf.get(key);
        const before = previous?.get(o);
        const same = before !== undefined && before.state === state && before.origin === origin && before.parents === parents && before.messages.length === list.length && list.every((m, i) => m === before.messages[i]);
        out.set(o, same ? before : { origin, object: ref, state, messages: list, ...(parents ? { parents } : {}) });
      }
      return out;
    },
  };
}

function dedupe(list: StatusMessage[]): StatusMessage[] {
  const seen = new Set<string>();
  const out: StatusMessage[] = [];
  for (const m of list) {
    const k = `${m.severity}\u0000${m.path}\u0000${m.message}`;
    if (!seen.has(k)) {
      seen.add(k);
      out.push(m);
    }
  }
  return out;
}

export function formatMessage(m: StatusMessage): string {
  return m.path === '' ? m.message : `${m.path}: ${m.message}`;
}
