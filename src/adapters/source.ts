import type { InputDocument, InputProblem, MeshInputs } from '../compiler/inputs.js';
import type { ObjectKey, ProgrammedCondition } from '../compiler/programmed.js';
import type { StatusEntry } from '../compiler/status.js';

/**
 * One source of mesh inputs (a watched folder, Kubernetes informers, a VM
 * registry). Every source speaks in units: a unit is what it reads as a
 * whole (a file; an object), and the source tells the whole content of a
 * unit each time it changes. It delivers its initial set, says `synced`, and
 * then follows change until it is closed.
 */
export interface SourceUnit {
  readonly documents: readonly InputDocument[];
  readonly problems: readonly InputProblem[];
}

export interface SourceEvents {
  /** The whole content of `unit` as it now is (new or changed). */
  set(unit: string, content: SourceUnit): void;
  /** `unit` is gone, and its objects with it. */
  delete(unit: string): void;
  /** Everything there was at start has been delivered. */
  synced(): void;
  /** `unit` was found changed by a reconcile, not by the source's watch (an event was missed): counted. */
  drifted(unit: string): void;
}

export interface Source {
  /** For messages: `folder examples/bookstore`. */
  readonly name: string;
  /**
   * Delivers the initial set, then `synced`; resolves once synced. Throws
   * (StartupError) when the source cannot be used at all. Until it resolves,
   * `waitingFor` says what it waits for (a kind that cannot be listed).
   */
  start(events: SourceEvents): Promise<void>;
  waitingFor?(): string | undefined;
  /** Reads everything again (SIGHUP); changes come through the events as usual. */
  resync(): Promise<void>;
  /**
   * The compiler's status of every input, after each compile: a source that
   * can hold status (Kubernetes) writes it back to the objects it owns.
   */
  reportStatus?(status: readonly StatusEntry[]): void;
  /** The leader's latest Programmed conditions, by object key (see compiler/programmed.ts): a source that holds status writes them back, bounded in rate. */
  reportProgrammed?(conditions: ReadonlyMap<ObjectKey, ProgrammedCondition>): void;
  /** Status writes made so far, by kind (a source that writes status). */
  statusWrites?(): ReadonlyMap<string, number>;
  close(): Promise<void>;
}

/**
 * What every source has delivered, as one MeshInputs value. Units of all
 * sources are kept by `source name + unit`, and inputs list them in that
 * order, so the result does not depend on the order events arrived in.
 */
export interface InputStore {
  readonly events: (source: Source) => SourceEvents;
  /** Whether every source has delivered its initial set. */
  synced(): boolean;
  inputs(): MeshInputs;
  /** The units themselves, by source and unit (each an immutable value, replaced whole when it changes). */
  units(): ReadonlyMap<string, SourceUnit>;
  /** Called after every change (and when the last source syncs). */
  onChange(listener: () => void): void;
  /** Called for every unit a source found changed without an event. */
  onDrift(listener: (source: string, unit: string) => void): void;
}

export function createInputStore(sources: readonly Source[]): InputStore {
  const units = new Map<string, SourceUnit>();
  const pending = new Set(sources.map((s) => s.name));
  const listeners: (() => void)[] = [];
  const drift: ((source: string, unit: string) => void)[] = [];
  let cached: MeshInputs | undefined;
  const changed = () => {
    cached = undefined;
    for (const l of listeners) l();
  };
  return {
    events: (source) => ({
      set(unit, content) {
        units.set(`${source.name}\u0000${unit}`, content);
        changed();
      },
      delete(unit) {
        if (units.delete(`${source.name}\u0000${unit}`)) changed();
      },
      synced() {
        if (pending.delete(source.name)) changed();
      },
      drifted(unit) {
        for (const l of drift) l(source.name, unit);
      },
    }),
    synced: () => pending.size === 0,
    inputs() {
      if (cached) return cached;
      const keys = [...units.keys()].sort();
      cached = {
        documents: keys.flatMap((k) => units.get(k)!.documents),
        problems: keys.flatMap((k) => units.get(k)!.problems),
      };
      return cached;
    },
    units: () => units,
    onChange: (l) => void listeners.push(l),
    onDrift: (l) => void drift.push(l),
  };
}
