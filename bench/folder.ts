/**
 * The controller fed by its real default source: the generated mesh as a
 * folder of files (one per service, bench/controller.ts's mesh), watched.
 * Measured: start to ready (reading every file included) and the process's
 * memory then; for one pod moving (its file written in place), the time
 * from the write to the snapshot of a caller changing in the controller's
 * cache (median of 5); how many of 10 edits made by rename over the file (as
 * `sed -i` and editors' safe write do) were seen within 10 s; a burst of 200
 * files rewritten with the same content (nothing to do), then one change; and
 * what one pass of the folder reconcile costs (a stat of every file).
 * Runs in a process of its own per row (bench/folder-row.ts).
 */
import { fork } from 'node:child_process';
import { mkdirSync, mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startController } from '../src/runtime/controller.js';
import { meshUnits } from './controller.js';
import type { startFolderReader as StartFolderReader } from '../src/adapters/folder-reader.js';

/** The mesh's shape: services per namespace, and whether the mesh is permissive. */
export interface Shape {
  readonly perNamespace: number;
  readonly permissive: boolean;
  /** Service 0 may be called by every other service; its pod is the one that moves. */
  readonly hub?: boolean;
  /** The splits are Gateway API HTTPRoutes (a split weight change is a route's). */
  readonly routes?: boolean;
}

export const shapeName = (s: Shape, services: number): string => `${s.permissive ? 'permissive, ' : ''}${s.hub ? 'a hub every service calls, ' : ''}${s.routes ? 'HTTPRoutes for splits, ' : ''}${s.perNamespace >= services ? 'one namespace' : `namespaces of ${s.perNamespace}`}`;

export interface FolderRow {
  services: number;
  shape: string;
  startMs: number;
  rssMiB: number;
  podMoveMs: number;
  splitMs: number;
  /** Undefined in a permissive mesh (no proxy's configuration changes). */
  policyMs: number | undefined;
  /** Compiles run for 5 writes of a pod's status conditions (nothing smc reads): 0 when the source sees they are no change. */
  noiseCompiles: number;
  /** A namespace leaving the mesh (its label removed): until its proxies' snapshots are gone. */
  namespaceMs: number;
  /** The MeshConfig turning access logs on: until every proxy has its new snapshot. */
  meshConfigMs: number;
  renamesSeen: string;
  sameContentMs: number;
  reconcileMs: string;
}

const json = (docs: readonly { value: unknown }[]) => docs.map((d) => JSON.stringify(d.value)).join('\n---\n');

export async function measureFolder(services: number, shape: Shape = { perNamespace: 50, permissive: false }): Promise<FolderRow> {
  const v = { perNamespace: shape.perNamespace, permissive: shape.permissive, hub: shape.hub ?? false, routes: shape.routes ?? false };
  // The folder-watching columns are the same whatever the shape: measured on the default one only (in the hub shape the moved
  // pod is service 0's, which has no service before it to wait on, so those columns read nothing there).
  const watching = shape.perNamespace === 50 && !shape.permissive && !shape.hub && !shape.routes;
  const dir = mkdtempSync(join(tmpdir(), 'smc-bench-folder-'));
  const mesh = join(dir, 'mesh');
  mkdirSync(mesh);
  const units = meshUnits(services, v);
  for (const [name, u] of units) writeFileSync(join(mesh, name.replace(/\.yaml$/, '.json')), json(u.documents));
  const t0 = performance.now();
  // Each compile is published once, and says so in the log.
  let publishes = 0;
  const log = (message: string) => {
    if (message.startsWith('controller: published')) publishes++;
  };
  const controller = await startController({ source: [mesh], stateDir: join(dir, 'state'), xdsHost: '127.0.0.1', xdsPort: 0, adminHost: '127.0.0.1', adminPort: 0, insecureXds: true, pushWindowMs: 0, log });
  const startMs = Math.round(performance.now() - t0);
  const rssMiB = Math.round(process.memoryUsage().rss / 1048576);
  try {
    const identityOf = (i: number) => `spiffe://cluster.local/ns/ns-${Math.floor(i / shape.perNamespace)}/sa/svc-${i}`;
    const sameNamespace = (a: number, b: number) => Math.floor(a / shape.perNamespace) === Math.floor(b / shape.perNamespace);
    /** Whose configuration a move of service i's pod changes: its callers (the five before it in its namespace, or every other for the hub), or every other proxy in a permissive mesh. */
    const affectedBy = (i: number) =>
      shape.permissive || (shape.hub && i === 0)
        ? Array.from({ length: services }, (_, k) => k).filter((k) => k !== i).map(identityOf)
        : [1, 2, 3, 4, 5].map((d) => i - d).filter((c) => c >= 0 && sameNamespace(c, i)).map(identityOf);
    const inPlace = (file: string, text: string) => writeFileSync(file, text);
    const byRename = (file: string, text: string) => {
      writeFileSync(`${file}.tmp`, text);
      renameSync(`${file}.tmp`, file);
    };
    /** Writes `file` and waits (at most 30 s) until each of `identities` has a new snapshot: the time to the last, or undefined when one did not change. */
    const timed = async (write: (file: string, text: string) => void, file: string, text: string, identities: string | readonly string[]): Promise<number | undefined> => {
      const ids = typeof identities === 'string' ? [identities] : identities;
      const waiting = new Set(ids);
      const stops: (() => void)[] = [];
      let start = 0;
      let last = 0;
      const changed = new Promise<boolean>((resolve) => {
        for (const id of ids) {
          const before = controller.cache.get(id);
          stops.push(
            controller.cache.watch(id, () => {
              if (controller.cache.get(id) === before || !waiting.delete(id)) return;
              last = performance.now();
              if (waiting.size === 0) resolve(true);
            }),
          );
        }
        setTimeout(() => resolve(false), 30_000);
      });
      start = performance.now();
      write(file, text);
      const seen = await changed;
      for (const stop of stops) stop();
      return seen ? last - start : undefined;
    };
    // A pod of a service in the middle of a namespace moves (and moves back): its callers' endpoints change. With a hub, the hub's pod.
    const pod = (k: number) => {
      const i = shape.hub ? 0 : Math.floor(services / 2) + 10 + k * 50;
      return { file: join(mesh, `svc-${i}.json`), moved: json(meshUnits(services, { ...v, movedPod: i }).get(`svc-${i}.yaml`)!.documents), back: json(units.get(`svc-${i}.yaml`)!.documents), caller: identityOf(i - 1), affected: affectedBy(i) };
    };
    const moves: number[] = [];
    for (let k = 0; k < 5; k++) {
      const p = pod(k);
      moves.push((await timed(inPlace, p.file, p.moved, p.affected)) ?? 30_000);
      await timed(inPlace, p.file, p.back, p.affected);
    }
    moves.sort((a, b) => a - b);
    /** The median of three edits of one file and their undoing, each timed to the last proxy it affects. */
    const median3 = async (edit: (k: number) => { file: string; changed: string; back: string; affected: readonly string[] }) => {
      const times: number[] = [];
      for (let k = 0; k < 3; k++) {
        const e = edit(k);
        times.push((await timed(inPlace, e.file, e.changed, e.affected)) ?? 30_000);
        await timed(inPlace, e.file, e.back, e.affected);
      }
      return Math.round(times.sort((a, b) => a - b)[1]!);
    };
    // A split's weights change (service i, a multiple of 10): its callers' routes change.
    const splitMs = await median3((k) => {
      const i = Math.floor(services / 2) + k * 50 - ((Math.floor(services / 2) + k * 50) % 10) + 20;
      const file = join(mesh, `svc-${i}.json`);
      // A route's weights reach only callers that may call both backends (the fifth caller back may not call i + 1, so its single
      // backend's cluster is the same); a TrafficSplit's weighted cluster changes even with one backend left.
      const affected = shape.routes ? affectedBy(i).filter((id) => id !== identityOf(i - 5)) : affectedBy(i);
      return { file, changed: json(meshUnits(services, { ...v, splitWeight: 50 }).get(`svc-${i}.yaml`)!.documents), back: json(units.get(`svc-${i}.yaml`)!.documents), affected };
    });
    // A TrafficTarget gains a source (service i lets j call it): i's inbound policy changes, and j may now reach i.
    // (In a permissive mesh every proxy may already call every other: a TrafficTarget changes no proxy's configuration.)
    const policyMs = shape.permissive ? undefined : await median3((k) => {
      const i = Math.floor(services / 2) + 30 + k * 50;
      const j = i - 7;
      const file = join(mesh, `svc-${i}.json`);
      return { file, changed: json(meshUnits(services, { ...v, extraCaller: [i, j] }).get(`svc-${i}.yaml`)!.documents), back: json(units.get(`svc-${i}.yaml`)!.documents), affected: [identityOf(i), identityOf(j)] };
    });
    // A pod's status conditions written 5 times (Ready, not Ready, ...): smc reads none of it.
    const noisy = Math.floor(services / 2) + 40;
    const noisyFile = join(mesh, `svc-${noisy}.json`);
    // Counted once the controller is quiet (no publish for a second): a compile of an earlier change is not counted.
    for (let seen = -1; seen !== publishes; ) {
      seen = publishes;
      await new Promise((r) => setTimeout(r, 1000));
    }
    const publishedBefore = publishes;
    for (let k = 0; k < 5; k++) {
      writeFileSync(noisyFile, json(meshUnits(services, { ...v, podReady: [noisy, k % 2 === 0] }).get(`svc-${noisy}.yaml`)!.documents));
      await new Promise((r) => setTimeout(r, 300));
    }
    const noiseCompiles = publishes - publishedBefore;
    writeFileSync(noisyFile, json(units.get(`svc-${noisy}.yaml`)!.documents));
    await new Promise((r) => setTimeout(r, 300));
    // A namespace in the middle leaves the mesh (and comes back): its proxies' snapshots go.
    const namespacesFile = join(mesh, 'namespaces.json');
    const middle = Math.floor(services / 2 / shape.perNamespace);
    const members = Array.from({ length: services }, (_, k) => k).filter((k) => Math.floor(k / shape.perNamespace) === middle).map(identityOf);
    const namespaceMs = Math.round((await timed(inPlace, namespacesFile, json(meshUnits(services, { ...v, outOfMesh: middle }).get('namespaces.yaml')!.documents), members)) ?? 30_000);
    await timed(inPlace, namespacesFile, json(units.get('namespaces.yaml')!.documents), members);
    // The MeshConfig turns access logs on (and off again): every proxy's inbound listener changes.
    const everyone = Array.from({ length: services }, (_, k) => identityOf(k));
    const meshConfigMs = Math.round((await timed(inPlace, namespacesFile, json(meshUnits(services, { ...v, accessLog: true }).get('namespaces.yaml')!.documents), everyone)) ?? 30_000);
    await timed(inPlace, namespacesFile, json(units.get('namespaces.yaml')!.documents), everyone);
    const base = { services, shape: shapeName(shape, services), startMs, rssMiB, podMoveMs: Math.round(moves[2]!), splitMs, policyMs, noiseCompiles, namespaceMs, meshConfigMs };
    if (!watching) return { ...base, renamesSeen: '', sameContentMs: 0, reconcileMs: '' };
    let renames = 0;
    for (let k = 0; k < 5; k++) {
      const p = pod(k);
      if ((await timed(byRename, p.file, p.moved, p.caller)) !== undefined) renames++;
      if ((await timed(byRename, p.file, p.back, p.caller)) !== undefined) renames++;
    }
    // 200 files written again with what they hold: read, found the same, nothing compiled.
    const s0 = performance.now();
    for (let i = 0; i < 200; i++) writeFileSync(join(mesh, `svc-${i}.json`), json(units.get(`svc-${i}.yaml`)!.documents));
    // A marker file after them: once its service is seen, the burst before it was read.
    const marker = Math.min(services - 1, 201);
    await timed(inPlace, join(mesh, `svc-${marker}.json`), json(meshUnits(services, { ...v, movedPod: marker }).get(`svc-${marker}.yaml`)!.documents), identityOf(marker - 1));
    const sameContentMs = Math.round(performance.now() - s0);
    // One reconcile pass: the reader's scan of the folder when nothing changed.
    // (Looked up by name: the bench also runs against versions of smc that read the folder without it.)
    const readerModule = '../src/adapters/folder-reader.js';
    const { startFolderReader } = (await import(readerModule).catch(() => ({}))) as { startFolderReader?: typeof StartFolderReader };
    let reconcileMs = 'n/a';
    if (startFolderReader) {
      const reader = startFolderReader([mesh]);
      await reader.scan([mesh]);
      const r0 = performance.now();
      await reader.scan([mesh]);
      reconcileMs = String(Math.round(performance.now() - r0));
      await reader.close();
    }
    return { ...base, renamesSeen: `${renames} of 10`, sameContentMs, reconcileMs };
  } finally {
    await controller.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** `measureFolder` in a fresh process (bench/folder-row.ts). */
export function measureFolderIsolated(services: number, shape: Shape = { perNamespace: 50, permissive: false }): Promise<FolderRow> {
  return new Promise((resolve, reject) => {
    const child = fork(new URL('./folder-row.js', import.meta.url), [String(services), String(shape.perNamespace), String(shape.permissive), String(shape.hub ?? false), String(shape.routes ?? false)], { execArgv: ['--expose-gc'] });
    child.once('message', (row) => resolve(row as FolderRow));
    child.once('exit', (code) => (code === 0 ? undefined : reject(new Error(`the folder bench row for ${services} services exited (${code})`))));
  });
}
