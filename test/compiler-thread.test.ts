import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { loadEnvoyProtos } from '../src/adapters/envoy-protos.js';
import type { SourceUnit } from '../src/adapters/source.js';
import { compile } from '../src/compiler/compile.js';
import { resourcesOf, type Snapshot, type WireSet } from '../src/compiler/envoy/snapshot.js';
import type { CertificateInputs, MeshInputs } from '../src/compiler/inputs.js';
import { startCompilerThread } from '../src/runtime/compiler-thread.js';
import { createSnapshotCache } from '../src/runtime/cache.js';
import { createCompileEngine, type CompileEngine, type SnapshotChanges, type WorkerReply, type WorkerRequest } from '../src/runtime/compile-engine.js';
import { compileUnits, type UnitsCompileResult } from '../src/compiler/units.js';
import { planSnapshots, type SnapshotPlans } from '../src/compiler/envoy/snapshot.js';
import { PUSH_ORDER } from '../src/compiler/envoy/codec.js';

/**
 * The controller compiles in a worker thread: the event loop that serves ADS
 * keeps running, the result is the compiler's, byte for byte, and a change
 * crosses the thread boundary as what changed (units in, snapshots out).
 */
function mesh(services: number, o: { permissive?: boolean; moved?: number | readonly number[]; without?: number; port?: number; hub?: boolean; replicas?: number } = {}): Map<string, SourceUnit> {
  const moved = new Set(typeof o.moved === 'number' ? [o.moved] : (o.moved ?? []));
  const units = new Map<string, SourceUnit>();
  const unit = (name: string, value: unknown) => units.set(`gen\u0000${name}`, { documents: [{ origin: { source: name, document: 0, line: 0 }, value }], problems: [] });
  unit('ns', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'big', labels: { 'smc.dev/mesh': 'enabled' } } });
  for (let i = 0; i < services; i++) {
    if (i === o.without) continue;
    // (Service `port` serves on other ports: what it serves and what everyone reaches of it change together.)
    const [port, target] = i === o.port ? [81, 8081] : [80, 8080];
    unit(`p${i}`, { apiVersion: 'v1', kind: 'Pod', metadata: { name: `p${i}`, namespace: 'big', labels: { app: `s${i}` } }, spec: { serviceAccountName: `s${i}`, containers: [{ name: 'c', ports: [{ containerPort: target }] }] }, status: { podIP: `10.${Math.floor(i / 250)}.${i % 250}.${moved.has(i) ? 2 : 1}` } });
    // (Replicas of service 0's pod, as a Deployment scaled up makes them.)
    for (let k = 1; i === 0 && k <= (o.replicas ?? 0); k++) unit(`p${i}-${k}`, { apiVersion: 'v1', kind: 'Pod', metadata: { name: `p${i}-${k}`, namespace: 'big', labels: { app: `s${i}` } }, spec: { serviceAccountName: `s${i}`, containers: [{ name: 'c', ports: [{ containerPort: target }] }] }, status: { podIP: `10.250.0.${k}` } });
    unit(`s${i}`, { apiVersion: 'v1', kind: 'Service', metadata: { name: `s${i}`, namespace: 'big' }, spec: { selector: { app: `s${i}` }, ports: [{ port, targetPort: target }] } });
    // Without permissive mode, each service may be called by the next one.
    if (!o.permissive && i + 1 < services) {
      // (A hub: service 0 may be called by every other one.)
      const sources = (o.hub && i === 0 ? Array.from({ length: services - 1 }, (_, k) => k + 1) : [i + 1]).map((k) => ({ kind: 'ServiceAccount', name: `s${k}`, namespace: 'big' }));
      unit(`t${i}`, { apiVersion: 'access.smi-spec.io/v1alpha3', kind: 'TrafficTarget', metadata: { name: `t${i}`, namespace: 'big' }, spec: { destination: { kind: 'ServiceAccount', name: `s${i}`, namespace: 'big' }, sources, rules: [{ kind: 'TCPRoute', name: 'all' }] } });
    }
  }
  unit('all', { apiVersion: 'specs.smi-spec.io/v1alpha4', kind: 'TCPRoute', metadata: { name: 'all', namespace: 'big' }, spec: {} });
  if (o.permissive) unit('mc', { apiVersion: 'smc.dev/v1alpha1', kind: 'MeshConfig', metadata: { name: 'm', namespace: 'big' }, spec: { permissive: true } });
  return units;
}
const inputsOf = (units: ReadonlyMap<string, SourceUnit>): MeshInputs => {
  const keys = [...units.keys()].sort();
  return { documents: keys.flatMap((k) => units.get(k)!.documents), problems: [] };
};
const certificatesOf = (services: number, renewed = -1): CertificateInputs => ({
  trustBundle: 'bundle',
  identities: Array.from({ length: services }, (_, i) => ({ identity: `spiffe://cluster.local/ns/big/sa/s${i}`, certificateChain: `chain-${i}${i === renewed ? '-renewed' : ''}`, privateKey: `key-${i}` })),
});
const bytesOf = (s: { types: Partial<Record<string, WireSet>> }) => Object.fromEntries(Object.entries(s.types).map(([k, t]) => [k, [t!.version, resourcesOf(t!).map((r) => `${r.name}=${Buffer.from(r.bytes).toString('base64')}`)]]));
const versionsOf = (snapshots: readonly Pick<Snapshot, 'identity' | 'types'>[]) => new Map(snapshots.map((s) => [s.identity, JSON.stringify(Object.values(s.types).map((t) => t.version))]));

test('a large compile runs off the event loop, and gives exactly what the compiler gives in-process', async () => {
  const units = mesh(150, { permissive: true });
  const thread = startCompilerThread();
  try {
    let ticks = 0;
    const timer = setInterval(() => ticks++, 5);
    const compiled = await thread.compile(units);
    const { changed: snapshots, removed } = await thread.snapshots({ trustBundle: '', identities: [] });
    clearInterval(timer);
    // Permissive, 150 identities that each reach every service: a second of work or more, during which timers kept firing.
    assert.ok(ticks >= 5, `the event loop ran ${ticks} timer ticks while the worker compiled`);
    const local = compile(inputsOf(units), loadEnvoyProtos());
    assert.deepEqual(compiled.status, local.status);
    assert.deepEqual(await thread.ir(compiled.compile), local.ir, 'the IR stays in the worker, and is sent when asked for');
    assert.deepEqual([compiled.identities, compiled.namespaces, compiled.settings], [local.snapshots.map((x) => x.identity), local.ir.namespaces, local.ir.settings]);
    assert.deepEqual(removed, []);
    assert.deepEqual(snapshots.map(bytesOf), local.snapshots.map(bytesOf), 'the first answer holds every type of every snapshot');
    // A failure in the worker is an error of the call, not a crash.
    const fresh = startCompilerThread();
    await assert.rejects(fresh.snapshots({ trustBundle: '', identities: [] }), /before any compile/);
    await fresh.close();
  } finally {
    await thread.close();
  }
});

test('a change crosses to the worker and back as what changed: the snapshots that differ come back, merged they equal a fresh compile', async () => {
  const protos = loadEnvoyProtos();
  const thread = startCompilerThread();
  try {
    const N = 60;
    const cached = new Map<string, Pick<Snapshot, 'identity' | 'types'>>();
    // Each changed snapshot comes with the types that changed only: merged into what was there.
    const apply = (r: SnapshotChanges) => {
      for (const s of r.changed) {
        const was = cached.get(s.identity);
        if (!was) assert.deepEqual(Object.keys(s.types).sort(), [...PUSH_ORDER].sort(), `${s.identity} is new: every type is sent`);
        cached.set(s.identity, { identity: s.identity, types: { ...was?.types, ...s.types } as Snapshot['types'] });
      }
      for (const id of r.removed) cached.delete(id);
      return r;
    };
    const step = async (units: Map<string, SourceUnit>, certificates: CertificateInputs) => {
      await thread.compile(units);
      const before = versionsOf([...cached.values()]);
      const r = apply(await thread.snapshots(certificates));
      const fresh = compile({ ...inputsOf(units), certificates }, protos);
      // Merged into what the controller had, the worker's answer is the fresh compile, byte for byte.
      assert.deepEqual([...cached.values()].sort((a, b) => (a.identity < b.identity ? -1 : 1)).map(bytesOf), fresh.snapshots.map(bytesOf));
      // And it sent no more than what changed.
      const after = versionsOf(fresh.snapshots);
      const differing = [...after].filter(([id, v]) => before.get(id) !== v).map(([id]) => id);
      assert.deepEqual(r.changed.map((s) => s.identity).sort(), differing.sort());
      return r;
    };
    const all = await step(mesh(N), certificatesOf(N));
    assert.equal(all.changed.length, N, 'everything, the first time');
    // One pod moves: its own snapshot and its one caller's change, nothing else.
    const moved = await step(mesh(N, { moved: 20 }), certificatesOf(N));
    assert.deepEqual(moved.changed.map((s) => s.identity).sort(), ['spiffe://cluster.local/ns/big/sa/s21']);
    // The endpoint path: only the caller's endpoint assignments cross.
    assert.deepEqual(Object.keys(moved.changed[0]!.types), ['endpoint']);
    // One certificate renewed: that identity alone.
    const renewed = await step(mesh(N, { moved: 20 }), certificatesOf(N, 7));
    assert.deepEqual(renewed.changed.map((s) => s.identity), ['spiffe://cluster.local/ns/big/sa/s7']);
    assert.deepEqual(Object.keys(renewed.changed[0]!.types), ['secret']);
    // A workload leaves: its identity is removed, its caller changes.
    const gone = await step(mesh(N, { moved: 20, without: 40 }), certificatesOf(N, 7));
    assert.deepEqual(gone.removed, ['spiffe://cluster.local/ns/big/sa/s40']);
    // Prepared while certificates are issued (a first start): what the answer then holds is still exactly what changed.
    await thread.prepare(certificatesOf(N, 9));
    const prepared = await step(mesh(N, { moved: 20, without: 40 }), certificatesOf(N, 9));
    // (s7 goes back to its first certificate, s9 gets a new one.)
    assert.deepEqual(prepared.changed.map((s) => s.identity).sort(), ['spiffe://cluster.local/ns/big/sa/s7', 'spiffe://cluster.local/ns/big/sa/s9']);
    // After a reset, every snapshot comes again.
    await thread.reset();
    await thread.compile(mesh(N, { moved: 20, without: 40 }));
    assert.equal((await thread.snapshots(certificatesOf(N, 7))).changed.length, N - 1);
  } finally {
    await thread.close();
  }
});

/**
 * Drives a compiler thread as the controller does, its answers applied to a
 * cache; at each step the cache must equal a fresh compile. Says how the
 * identities crossed: a patch (with how many of its parts are named as held),
 * or in a group (with the moves of its types).
 */
function crossings(thread: ReturnType<typeof startCompilerThread>) {
  const protos = loadEnvoyProtos();
  const cache = createSnapshotCache();
  const held = (set: WireSet | undefined): number => (set === undefined ? 0 : 'held' in set ? 1 : 'parts' in set ? set.parts.reduce((n, p) => n + held(p), 0) : 0);
  const cachedBytes = (identity: string) => {
    const s = cache.get(identity)!;
    return Object.fromEntries(PUSH_ORDER.map((k) => [k, [s.types[k].version, [...s.types[k].resources.values()].map((r) => `${r.name}=${Buffer.from(r.bytes).toString('base64')}`)]]));
  };
  return async (units: Map<string, SourceUnit>, certificates: CertificateInputs) => {
    await thread.compile(units);
    const r = await thread.snapshots(certificates);
    if (r.complete) cache.setSnapshots(r.changed);
    else cache.update(r.changed, r.removed, r.moved);
    const fresh = compile({ ...inputsOf(units), certificates }, protos);
    assert.deepEqual(cache.identities(), fresh.snapshots.map((s) => s.identity));
    for (const s of fresh.snapshots) assert.deepEqual(cachedBytes(s.identity), bytesOf(s), s.identity);
    const crossed = new Map<string, string>();
    for (const c of r.changed) crossed.set(c.identity, `patch ${PUSH_ORDER.reduce((m, k) => m + held(c.types[k]), 0)} held`);
    for (const m of r.moved) for (const id of m.identities) crossed.set(id, `group of ${m.identities.length}: ${m.types.map((t) => `${t.kind}${t.part ? ' part' : ''}${'edit' in t.set ? ' edit' : ''}`).join(', ')}`);
    return [...new Set(crossed.values())].sort();
  };
}

test('a permissive mesh whose shared reach changes: the identities cross as one group that takes the new shared part beside the own part each holds, and the cache the controller keeps equals a fresh compile', async () => {
  const thread = startCompilerThread();
  try {
    const N = 40;
    const step = crossings(thread);
    assert.deepEqual(await step(mesh(N, { permissive: true }), certificatesOf(N)), ['patch 0 held'], 'nothing is held before the first answer');
    // A workload leaves: every identity reaches one service fewer (its shared part changes), its own inbound side is the
    // same: the others take the new shared clusters and listeners beside their own, and the new endpoint set, as one
    // group (the route tables are those of the services left, the same).
    const group = `group of ${N - 1}: cluster part, endpoint, listener part`;
    assert.deepEqual(await step(mesh(N, { permissive: true, without: 12 }), certificatesOf(N)), [group]);
    // Its pod comes back at another address; then a pod moves (endpoints alone: one group takes the new set); then a certificate is renewed.
    assert.deepEqual(await step(mesh(N, { permissive: true, moved: 12 }), certificatesOf(N)), [group, 'patch 0 held']);
    assert.deepEqual(await step(mesh(N, { permissive: true, moved: 3 }), certificatesOf(N)), [`group of ${N}: endpoint`]);
    assert.deepEqual(await step(mesh(N, { permissive: true, moved: 3 }), certificatesOf(N, 5)), ['patch 0 held']);
    // A service moves to other ports: everyone reaches it there (a group), and its own identity serves there too: its own
    // part changed with the shared one, so it crosses on its own.
    assert.deepEqual(await step(mesh(N, { permissive: true, moved: 3, port: 9 }), certificatesOf(N, 5)), [`group of ${N - 1}: cluster part, endpoint, listener part, route`, 'patch 0 held']);
    // After a reset, the answer is complete again and holds no named part.
    await thread.reset();
    await thread.compile(mesh(N, { permissive: true, without: 7 }));
    assert.deepEqual(await step(mesh(N, { permissive: true, without: 7 }), certificatesOf(N, 5)), ['patch 0 held']);
  } finally {
    await thread.close();
  }
});

test('the callers of a hub each hold endpoints of their own: when the hub\'s pod moves, they cross as one group that makes the same edit of the set each holds, and the cache equals a fresh compile', async () => {
  const thread = startCompilerThread();
  try {
    const N = 40;
    const step = crossings(thread);
    assert.deepEqual(await step(mesh(N, { hub: true }), certificatesOf(N)), ['patch 0 held']);
    // Each caller reaches the hub and the service before it: N - 1 endpoint sets, each its own, and one edit of them all.
    assert.deepEqual(await step(mesh(N, { hub: true, moved: 0 }), certificatesOf(N)), [`group of ${N - 1}: endpoint edit`]);
    // The hub's pod moves back and another moves: that one's caller (which calls the hub too) makes an edit of its own, and
    // the moved pod's identity is planned again (its own workload moved): two patches. The others make the hub's edit.
    assert.deepEqual(await step(mesh(N, { hub: true, moved: 7 }), certificatesOf(N)), [`group of ${N - 3}: endpoint edit`, 'patch 0 held']);
    // That pod moves back: its one caller, a patch.
    assert.deepEqual(await step(mesh(N, { hub: true }), certificatesOf(N)), ['patch 0 held']);
    // Plans made but not sent (as at a start, before the certificates): the edit of the hub's next move is of a set the
    // controller does not hold for the caller of the pod that moved in between, which crosses whole.
    await thread.compile(mesh(N, { hub: true, moved: [7] }));
    await thread.prepare(certificatesOf(N));
    assert.deepEqual(await step(mesh(N, { hub: true, moved: [7, 0] }), certificatesOf(N)), [`group of ${N - 2}: endpoint edit`, 'patch 0 held']);
    // The hub's pod moves back while a caller's certificate is renewed, in one planning: that caller's endpoint set is the
    // same edit of the set it held, but its secrets changed too, so it crosses whole (the cache's bytes say its secret is new).
    assert.deepEqual(await step(mesh(N, { hub: true, moved: [7] }), certificatesOf(N, 12)), [`group of ${N - 2}: endpoint edit`, 'patch 0 held']);
    // The hub is scaled up, then down: its callers' plans stay (a plan holds no count of endpoints), and they make one
    // edit. The hub's own snapshot does not change (its replicas serve the same ports).
    for (const replicas of [2, 1, 0]) assert.deepEqual(await step(mesh(N, { hub: true, moved: [7], replicas }), certificatesOf(N, 12)), [`group of ${N - 1}: endpoint edit`]);
  } finally {
    await thread.close();
  }
});

test('the compile engine keeps its state in itself: two engines driven in turn answer each as if it were alone', () => {
  const protos = loadEnvoyProtos();
  const [a, b] = [createCompileEngine(), createCompileEngine()];
  let id = 0;
  const ask = (engine: CompileEngine, m: Record<string, unknown>): WorkerReply => {
    const reply = engine.handle({ id: ++id, ...m } as WorkerRequest);
    if ('error' in reply) throw new Error(reply.error);
    return reply;
  };
  const caches = new Map([a, b].map((e) => [e, createSnapshotCache()]));
  const sentUnits = new Map<CompileEngine, Map<string, SourceUnit>>();
  // What the thread's caller does: units and certificates as deltas, the answer applied to the controller's cache.
  const step = (engine: CompileEngine, units: Map<string, SourceUnit>, certificates: CertificateInputs) => {
    const was = sentUnits.get(engine);
    const set = [...units].filter(([k, u]) => was?.get(k) !== u);
    const deleted = [...(was?.keys() ?? [])].filter((k) => !units.has(k));
    ask(engine, { type: 'compile', delta: { replace: was === undefined, set, deleted } });
    sentUnits.set(engine, units);
    const { snapshots } = ask(engine, { type: 'snapshots', certificates: { replace: true, trustBundle: certificates.trustBundle, set: certificates.identities, deleted: [] } }) as { snapshots: SnapshotChanges };
    const cache = caches.get(engine)!;
    if (snapshots.complete) cache.setSnapshots(snapshots.changed);
    else cache.update(snapshots.changed, snapshots.removed, snapshots.moved);
    const fresh = compile({ ...inputsOf(units), certificates }, protos);
    assert.deepEqual(cache.identities(), fresh.snapshots.map((s) => s.identity));
    for (const s of fresh.snapshots) {
      const cached = cache.get(s.identity)!;
      assert.deepEqual(Object.fromEntries(PUSH_ORDER.map((k) => [k, [cached.types[k].version, [...cached.types[k].resources.values()].map((r) => `${r.name}=${Buffer.from(r.bytes).toString('base64')}`)]])), bytesOf(s), s.identity);
    }
    return [...snapshots.changed.map((s) => s.identity), ...snapshots.moved.flatMap((m) => m.identities)].sort();
  };
  // Meshes of the same names (one permissive), so that a shared state would mix them up.
  step(a, mesh(30), certificatesOf(30));
  step(b, mesh(30, { permissive: true }), certificatesOf(30));
  assert.deepEqual(step(a, mesh(30, { moved: 4 }), certificatesOf(30)), ['spiffe://cluster.local/ns/big/sa/s5'], 'a: only the moved pod\'s caller');
  assert.equal(step(b, mesh(30, { permissive: true, without: 9 }), certificatesOf(30)).length, 29, 'b: everyone but the one gone');
  assert.deepEqual(step(a, mesh(30, { moved: 4 }), certificatesOf(30, 2)), ['spiffe://cluster.local/ns/big/sa/s2'], 'a: the renewed identity alone');
});

test('what a group\'s edit or delta puts is noted as sent: a proxy that has not taken the next move holds an assignment that already carries the objects it was made from, which stay programmed', () => {
  // A hub's callers cross as one edit (the TrafficTarget lets them reach it); a permissive mesh's identities as one delta
  // of the set they all hold (the MeshConfig makes every identity reach it).
  for (const [shape, object] of [[{ hub: true }, 'TrafficTarget big/t0'], [{ permissive: true }, 'MeshConfig big/m']] as const) {
    const engine = createCompileEngine();
    let id = 0;
    const ask = (m: Record<string, unknown>): WorkerReply => {
      const reply = engine.handle({ id: ++id, ...m } as WorkerRequest);
      if ('error' in reply) throw new Error(reply.error);
      return reply;
    };
    const N = 10;
    const certificates = certificatesOf(N);
    let sentUnits: Map<string, SourceUnit> | undefined;
    const step = (units: Map<string, SourceUnit>): SnapshotChanges => {
      const set = [...units].filter(([k, u]) => sentUnits?.get(k) !== u);
      ask({ type: 'compile', delta: { replace: sentUnits === undefined, set, deleted: [] } });
      const first = sentUnits === undefined;
      sentUnits = units;
      // (The certificates once: the same ones after, as the controller sends them, a delta of nothing.)
      const delta = { replace: first, trustBundle: certificates.trustBundle, set: first ? certificates.identities : [], deleted: [] };
      return (ask({ type: 'snapshots', certificates: delta }) as { snapshots: SnapshotChanges }).snapshots;
    };
    const caller = 'spiffe://cluster.local/ns/big/sa/s3';
    step(mesh(N, shape));
    // The hub's pod (or one of a permissive mesh) moves: the group's change puts its new assignment.
    const moved = step(mesh(N, { ...shape, moved: 0 }));
    const change = moved.moved.find((m) => m.identities.includes(caller))?.types.find((t) => t.kind === 'endpoint')?.set;
    assert.ok(change && 'put' in change && change.put.length === 1, `${object}: the group puts one assignment`);
    const [assignment] = change.put;
    // It moves back; the caller's proxy has not taken that yet and holds the assignment of the first move.
    step(mesh(N, shape));
    const { programmed } = ask({
      type: 'programmed',
      query: { full: true, connected: { [caller]: 1 }, progress: [{ stream: 1, identity: caller, node: 'n', pending: [{ kind: 'endpoint', names: [assignment!.name], held: [assignment!.hash], since: 0 }], rejected: [] }], now: 1000 },
    }) as { programmed: { changed: readonly (readonly [string, { reason: string }])[] } };
    const conditions = new Map(programmed.changed);
    // What it holds was sent after the object's last change: the object is in force there.
    assert.equal(conditions.get(object)?.reason, 'Programmed', object);
  }
});

test('an edited set does not keep the set it was made from: a hub moving again and again leaves each caller its one set, not one per move', async () => {
  // (The collector, asked for: what nothing holds any more is gone after it runs.)
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  const protos = loadEnvoyProtos();
  const N = 10;
  const caller = 'spiffe://cluster.local/ns/big/sa/s3';
  // As the compile worker plans: each compile and planning given the previous ones, only the latest kept.
  type State = { units: UnitsCompileResult; plans: SnapshotPlans };
  const certificates = certificatesOf(N);
  const step = (units: Map<string, SourceUnit>, previous?: State): State => {
    const compiled = compileUnits(units, {}, previous?.units);
    return { units: compiled, plans: planSnapshots(compiled.ir, protos, certificates, previous?.plans, undefined, previous?.units.ir) };
  };
  let state = step(mesh(N, { hub: true }));
  state = step(mesh(N, { hub: true, moved: 0 }), state);
  // The caller's set after the first move: an edit of the one before.
  const first = new WeakRef(state.plans.get(caller)!.snapshot.types.endpoint);
  assert.equal(first.deref()!.constructor.name, 'EditedSet');
  for (const moved of [undefined, 0, undefined]) state = step(mesh(N, { hub: true, ...(moved === undefined ? {} : { moved }) }), state);
  assert.notEqual(state.plans.get(caller)!.snapshot.types.endpoint, first.deref(), 'the caller holds a set of a later move');
  await new Promise((r) => setImmediate(r));
  gc();
  assert.equal(first.deref(), undefined, 'the set of the first move is let go: the later sets made from it do not hold it');
});
