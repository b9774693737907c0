/**
 * `npm run bench`: how smc's compiler and runtime scale, printed as a table.
 * Speed and memory goals live here, never in timed test assertions.
 *
 * For meshes of S services (one pod and one identity each, in namespaces of
 * 50; each service may call the next 5, and every tenth service is split
 * 90/10 between two versions) it measures:
 * - compile: inputs -> IR -> per-identity snapshots;
 * - the snapshot cache: resources referenced by all proxies vs stored once
 *   (interning), and the heap it takes;
 * - one policy change (every split's weights): recompile, and how many identities' route tables changed;
 * - one endpoint change (a pod moves): recompile plus cache update, and how
 *   many identities it touched (its callers), with the heap in use then;
 * All through the engine as the controller's compile worker runs it. The
 * controller and watched-folder tables run the real controller over a
 * folder of files, with proxies connected; the Kubernetes table runs it on
 * the Kubernetes source against a real API server (bench/kube.ts).
 */
import { loadEnvoyProtos } from '../src/adapters/envoy-protos.js';
import { compileUnits, type UnitsCompileResult } from '../src/compiler/units.js';
import { planSnapshots, type SnapshotPlans } from '../src/compiler/envoy/snapshot.js';
import type { SourceUnit } from '../src/adapters/source.js';
import { createSnapshotCache } from '../src/runtime/cache.js';
import { measureControllerIsolated, meshUnits, type ControllerRow, type Variant } from './controller.js';
import { measureFolderIsolated, type FolderRow, type Shape } from './folder.js';
import { measureKubeIsolated, type KubeRow } from './kube.js';

/** The mesh of `units` with `variant` applied: the units it changes are new values, the others the same ones (as a folder source keeps unchanged files). */
function edited(units: ReadonlyMap<string, SourceUnit>, services: number, variant: Variant): Map<string, SourceUnit> {
  const out = new Map(units);
  for (const [k, u] of meshUnits(services, variant)) if (JSON.stringify(u) !== JSON.stringify(units.get(k))) out.set(k, u);
  return out;
}

const ms = (t0: bigint) => Number(process.hrtime.bigint() - t0) / 1e6;
const mib = (bytes: number) => (bytes / 1024 / 1024).toFixed(1);
const gc = () => (globalThis as { gc?: () => void }).gc?.();

interface Row {
  services: number;
  compileMs: number;
  resources: number;
  uniqueResources: number;
  referencedMiB: string;
  storedMiB: string;
  cacheHeapMiB: string;
  changeMs: number;
  changedIdentities: number;
  endpointMs: number;
  endpointIdentities: number;
  heapMiB: string;
}

async function measure(services: number): Promise<Row> {
  const protos = loadEnvoyProtos();
  const units = meshUnits(services);
  // The engine as the controller's compile worker runs it: units compiled, then planned, each given the previous state.
  type State = { units: UnitsCompileResult; plans: SnapshotPlans };
  const engine = (u: ReadonlyMap<string, SourceUnit>, previous?: State): State => {
    const r = compileUnits(u, {}, previous?.units);
    return { units: r, plans: planSnapshots(r.ir, protos, undefined, previous?.plans, undefined, previous?.units.ir) };
  };
  const snapshotsOf = (s: State) => [...s.plans.values()].map((p) => p.snapshot);
  let t0 = process.hrtime.bigint();
  const first = engine(units);
  const compileMs = ms(t0);
  const result = { snapshots: snapshotsOf(first) };

  gc();
  const heapBefore = process.memoryUsage().heapUsed;
  const cache = createSnapshotCache();
  cache.setSnapshots(result.snapshots);
  gc();
  const cacheHeap = process.memoryUsage().heapUsed - heapBefore;
  const stats = cache.stats();
  const referencedBytes = result.snapshots.reduce((n, s) => n + Object.values(s.types).reduce((m, t) => m + t.resources.reduce((k, r) => k + r.bytes.length, 0), 0), 0);

  // One endpoint change: one pod (one with five callers) moves; the compile and cache update until the cache knows who must be pushed.
  const endpointCache = createSnapshotCache();
  endpointCache.setSnapshots(result.snapshots);
  const movedPod = Math.floor(services / 2) + 10;
  const movedUnits = edited(units, services, { movedPod });
  t0 = process.hrtime.bigint();
  const moved = engine(movedUnits, first);
  const endpointChanges = endpointCache.setSnapshots(snapshotsOf(moved));
  const endpointMs = ms(t0);
  const heap = process.memoryUsage().heapUsed;

  // One policy change after it: every split moves from 90/10 to 80/20.
  const splitUnits = edited(movedUnits, services, { movedPod, splitWeight: 80 });
  t0 = process.hrtime.bigint();
  const changed = { snapshots: snapshotsOf(engine(splitUnits, moved)) };
  const changeMs = ms(t0);
  // Which identities' route tables the split change gave new versions (their proxies would be pushed: the controller table times that).
  const changes = cache.setSnapshots(changed.snapshots).filter((c) => c.types.route !== undefined).length;
  return {
    services,
    compileMs: Math.round(compileMs),
    resources: stats.resourceReferences,
    uniqueResources: stats.uniqueResources,
    referencedMiB: mib(referencedBytes),
    storedMiB: mib(stats.uniqueBytes),
    cacheHeapMiB: mib(cacheHeap),
    changeMs: Math.round(changeMs),
    changedIdentities: changes,
    endpointMs: Math.round(endpointMs),
    endpointIdentities: endpointChanges.length,
    heapMiB: mib(heap),
  };
}

function table<R>(rows: R[], cols: [keyof R, string][]): string {
  const cells = [cols.map(([, h]) => h), ...rows.map((r) => cols.map(([k]) => String(r[k] ?? 'n/a')))];
  const widths = cols.map((_, i) => Math.max(...cells.map((row) => row[i]!.length)));
  const line = (row: string[]) => `| ${row.map((c, i) => c.padStart(widths[i]!)).join(' | ')} |`;
  return [line(cells[0]!), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...cells.slice(1).map(line)].join('\n');
}

const COMPILER_COLUMNS: [keyof Row, string][] = [
  ['services', 'proxies'],
  ['compileMs', 'compile ms'],
  ['resources', 'resources (all proxies)'],
  ['uniqueResources', 'stored once'],
  ['referencedMiB', 'MiB referenced'],
  ['storedMiB', 'MiB stored'],
  ['cacheHeapMiB', 'cache heap MiB'],
  ['changeMs', 'recompile ms'],
  ['changedIdentities', 'routes changed'],
  ['endpointMs', 'endpoint change ms'],
  ['endpointIdentities', 'identities changed'],
  ['heapMiB', 'heap MiB'],
];
const CONTROLLER_COLUMNS: [keyof ControllerRow, string][] = [
  ['services', 'services'],
  ['perIdentity', 'proxies per identity'],
  ['proxies', 'proxies'],
  ['startMs', 'start to ready ms'],
  ['rssMiB', 'RSS when ready MiB'],
  ['connectMs', 'connect all ms'],
  ['perProxyKiB', 'KiB per proxy'],
  ['endpointFirstMs', 'first endpoint change ms'],
  ['endpointMs', 'endpoint change ms (median of 5)'],
  ['endpointStreams', 'streams pushed'],
  ['splitMs', 'split change ms'],
  ['splitStreams', 'streams pushed '],
  ['policyMs', 'policy change ms'],
  ['policyStreams', 'streams pushed  '],
  ['splitProgrammedMs', 'split change to Programmed True ms'],
  ['programmedFirstMs', 'Programmed worked out at connect ms (all)'],
  ['programmedRecomputes', 'then recomputes during the changes'],
  ['programmedMeanMs', 'one recompute ms (mean)'],
];

const FOLDER_COLUMNS: [keyof FolderRow, string][] = [
  ['services', 'services (files)'],
  ['shape', 'shape'],
  ['startMs', 'start to ready ms'],
  ['rssMiB', 'RSS when ready MiB'],
  ['podMoveMs', 'pod move ms (median of 5)'],
  ['splitMs', 'split weight ms (median of 3)'],
  ['policyMs', 'TrafficTarget source ms (median of 3)'],
  ['noiseCompiles', 'compiles for 5 pod status writes'],
  ['namespaceMs', 'namespace leaves the mesh ms'],
  ['meshConfigMs', 'MeshConfig access log on ms'],
  ['renamesSeen', 'edits by rename seen'],
  ['sameContentMs', '200 files rewritten unchanged, then one change ms'],
  ['reconcileMs', 'one reconcile pass ms'],
];

// node dist/bench/run.js [SIZES...] [--proxies 1,10] [--only compiler|controller|folder|kube] [--shapes 50,one,permissive,hub,routes]
const args = process.argv.slice(2);
const option = (name: string) => {
  const i = args.indexOf(name);
  return i >= 0 ? args.splice(i, 2)[1] : undefined;
};
const only = option('--only');
// The folder table's shapes: namespaces of 50, all in one namespace, a permissive mesh (namespaces of 50), a hub every service calls, and splits written as HTTPRoutes.
const shapeNames = (option('--shapes') ?? '50,one,permissive,hub,routes').split(',');
const perIdentity = (option('--proxies') ?? '1,10').split(',').map(Number).filter((n) => n > 0);
const sizes = args.map(Number).filter((n) => n > 0);
const chosen = sizes.length > 0 ? sizes : [1000, 2000, 5000, 10000];
const rows: Row[] = [];
if (only === undefined || only === 'compiler') {
  for (const n of chosen) rows.push(await measure(n));
  process.stdout.write(`Compiler (in-process; "endpoint change" is the compile given the previous result plus the cache update)\n\n${table(rows, COMPILER_COLUMNS)}\n\n`);
}
const folderRows: FolderRow[] = [];
if (only === undefined || only === 'folder') {
  // Through the watched folder (the default source): at most 5,000 files, one per service.
  const shapes: [string, (n: number) => Shape | undefined][] = [
    ['50', () => ({ perNamespace: 50, permissive: false })],
    ['one', (n) => ({ perNamespace: n, permissive: false })],
    // Permissive meshes at most 1,000 services unless asked for by size.
    ['permissive', (n) => (n <= 1000 || sizes.length > 0 ? { perNamespace: 50, permissive: true } : undefined)],
    // Namespaces of 50 with one service every other may call: its pod moving changes every caller's endpoints.
    ['hub', () => ({ perNamespace: 50, permissive: false, hub: true })],
    // Namespaces of 50 whose splits are Gateway API HTTPRoutes (with a match each): the split column is a route's weights.
    ['routes', () => ({ perNamespace: 50, permissive: false, routes: true })],
  ];
  for (const n of chosen.filter((x) => x <= 5000)) {
    for (const [name, shapeOf] of shapes) {
      const shape = shapeNames.includes(name) ? shapeOf(n) : undefined;
      if (!shape) continue;
      const row = await measureFolderIsolated(n, shape);
      process.stderr.write(`bench: folder ${JSON.stringify(row)}\n`);
      folderRows.push(row);
    }
  }
  process.stdout.write(`Watched folder (the real controller over a folder of one file per service, push window 0; each change's time is from the file's write until the last proxy it affects has its new snapshot in the cache)\n\n${table(folderRows, FOLDER_COLUMNS)}\n\n`);
}
const KUBE_COLUMNS: [keyof KubeRow, string][] = [
  ['services', 'services'],
  ['shape', 'shape'],
  ['createMs', 'objects created in the API server ms'],
  ['startMs', 'start to ready ms'],
  ['podMoveMs', 'pod IP ms (median of 5)'],
  ['splitMs', 'split weight ms (median of 3)'],
  ['policyMs', 'TrafficTarget source ms (median of 3)'],
  ['noiseCompiles', 'compiles for 5 pod status writes'],
];
const kubeRows: KubeRow[] = [];
if (only === undefined || only === 'kube') {
  // Through the Kubernetes source against a real API server (scripts/install-kube.sh builds it): at most 1,000 services (creating them takes most of the row's time).
  for (const n of chosen.filter((x) => x <= 1000)) {
    const row = await measureKubeIsolated(n);
    process.stderr.write(`bench: kube ${JSON.stringify(row)}\n`);
    kubeRows.push(row);
  }
  if (kubeRows.length > 0) process.stdout.write(`Kubernetes source (the real controller watching a real kube-apiserver; each change is a write to the API server, timed until the last proxy it affects has its new snapshot in the cache)\n\n${table(kubeRows, KUBE_COLUMNS)}\n\n`);
}
const controllerRows: ControllerRow[] = [];
if (only === undefined || only === 'controller') {
  for (const n of chosen) {
    // At most 20,000 streams: one process of proxies on this machine.
    for (const p of perIdentity) if (n * p <= 20_000) controllerRows.push(await measureControllerIsolated(n, p));
    // The endpoint target's case: 5,000 services with 10,000 connected proxies.
    if (n === 5000 && !perIdentity.includes(2)) controllerRows.push(await measureControllerIsolated(n, 2));
  }
  process.stdout.write(`Controller (real controller over a watched folder, push window 0; proxies in another process; times from the file's write to the last affected stream receiving its push)\n\n${table(controllerRows, CONTROLLER_COLUMNS)}\n\n`);
}

// Against the targets.
const compilerAt = (n: number) => rows.find((r) => r.services === n);
const targets: { target: string; result: string; verdict: string }[] = [];
const c10 = compilerAt(10000);
if (c10) targets.push({ target: 'cold compile of 10,000 services <= 10 s, heap <= 1 GiB', result: `${(c10.compileMs / 1000).toFixed(1)} s, heap ${c10.heapMiB} MiB`, verdict: c10.compileMs <= 10_000 && Number(c10.heapMiB) <= 1024 ? 'pass' : 'miss' });
const c2 = compilerAt(2000);
if (c2 && c10) targets.push({ target: 'compile grows linearly: 10,000 <= 5 x 2,000', result: `${(c10.compileMs / c2.compileMs).toFixed(1)} x`, verdict: c10.compileMs <= 5 * c2.compileMs ? 'pass' : 'miss' });
const e = controllerRows.find((r) => r.services === 5000 && r.proxies >= 10_000);
if (e) targets.push({ target: 'one endpoint change, 5,000 services / 10,000 proxies: <= 100 ms to the last push', result: `${e.endpointMs} ms (median of 5; the first after start ${e.endpointFirstMs} ms)`, verdict: e.endpointMs <= 100 ? 'pass' : 'miss' });
// Every single-object change, in every shape, through the watched folder.
for (const r of folderRows) {
  const times = [r.podMoveMs, r.splitMs, ...(r.policyMs === undefined ? [] : [r.policyMs])];
  // Pod status noise passes when it runs no compile at all (nothing to push, nothing spent).
  targets.push({ target: `each single-object change <= 100 ms, status noise free (${r.services} services, ${r.shape})`, result: `pod ${r.podMoveMs}, split ${r.splitMs}, TrafficTarget ${r.policyMs ?? 'n/a'} ms; noise: ${r.noiseCompiles} compiles`, verdict: Math.max(...times) <= 100 && r.noiseCompiles === 0 ? 'pass' : 'miss' });
}
for (const r of kubeRows) {
  targets.push({ target: `each single-object change <= 100 ms, status noise free (${r.services} services, ${r.shape})`, result: `pod ${r.podMoveMs}, split ${r.splitMs}, TrafficTarget ${r.policyMs} ms; noise: ${r.noiseCompiles} compiles`, verdict: Math.max(r.podMoveMs, r.splitMs, r.policyMs) <= 100 && r.noiseCompiles === 0 ? 'pass' : 'miss' });
}
const permissive1000 = folderRows.find((r) => r.services === 1000 && r.shape.startsWith('permissive'));
if (permissive1000) targets.push({ target: 'permissive 1,000 services: start to ready <= 10 s, a pod move <= 200 ms', result: `${(permissive1000.startMs / 1000).toFixed(1)} s, ${permissive1000.podMoveMs} ms`, verdict: permissive1000.startMs <= 10_000 && permissive1000.podMoveMs <= 200 ? 'pass' : 'miss' });
const ready5000 = controllerRows.find((r) => r.services === 5000);
if (ready5000) targets.push({ target: 'start to ready with 5,000 identities <= 10 s', result: `${(ready5000.startMs / 1000).toFixed(1)} s`, verdict: ready5000.startMs <= 10_000 ? 'pass' : 'miss' });
if (controllerRows.length > 0) {
  const worst = Math.max(...controllerRows.map((r) => r.perProxyKiB));
  targets.push({ target: 'memory per connected proxy <= 25 KiB', result: `${worst} KiB (the largest of the rows)`, verdict: worst <= 25 ? 'pass' : 'miss' });
}
if (targets.length > 0) process.stdout.write(`Targets\n\n${table(targets, [['target', 'target'], ['result', 'result'], ['verdict', 'pass/miss']])}\n\n`);
process.stdout.write(`node ${process.version}, ${process.arch}; heap figures need --expose-gc to be exact\n`);
