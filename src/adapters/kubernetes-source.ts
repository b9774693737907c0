import type { Log } from '../runtime/log.js';
import { MEMBERSHIP_CODECS, project } from '../compiler/decode/project.js';
import * as k8s from '@kubernetes/client-node';
import type { InputDocument } from '../compiler/inputs.js';
import { CONTROLLER_NAME, formatMessage, type RouteParentStatus } from '../compiler/status.js';
import { objectKey, type ObjectKey, type ProgrammedCondition } from '../compiler/programmed.js';
import { checkDocument } from '../compiler/decode/index.js';
import { createLastAccepted } from './last-accepted.js';
import type { Source, SourceEvents } from './source.js';

/**
 * `smc controller --source kubernetes`: informers (list, then watch) for the
 * core kinds smc reads and for every SMI and smc kind, each object one unit.
 * An informer that stops (the client library's informer stops itself on a
 * watch error, or when the API server goes away) is started again with a
 * back-off; it resumes from its last resourceVersion, and a `410 Gone` makes
 * it list again.
 *
 * A failed list is never taken as "nothing there": the source is synced only
 * once every kind has listed (until then `waitingFor` names the kinds that
 * have not, and why: a 403, an API server that does not answer). One case
 * counts as listed without a list: a kind whose CRD is not installed, which
 * the API server's discovery shows (no version of its group serves it), so
 * no object of it can exist. It is watched for, and its objects count once
 * the CRD is applied. A CRD that serves the kind in other versions only is
 * not that case: its objects may exist, and the source waits.
 */
export interface KubernetesSourceOptions {
  /** A kubeconfig file; default $KUBECONFIG, ~/.kube/config, or the pod's service account. */
  readonly kubeconfig?: string;
  readonly log: Log;
  /** First retry delay after an informer stops (default 500 ms, doubling to 30 s). */
  readonly retryMs?: number;
  /** Status writes: at most this many a second over all objects (default 20) ... */
  readonly statusWritesPerSecond?: number;
  /** ... and one an object per this many ms (default 1000; the latest status wins). */
  readonly statusWriteIntervalMs?: number;
  /** A Programmed condition of Pending is written once it has lasted this long (default 5000 ms): a push that is taken at once writes nothing. */
  readonly pendingWriteDelayMs?: number;
}

export interface WatchedKind {
  readonly apiVersion: string;
  readonly kind: string;
  readonly plural: string;
}

/**
 * What is watched. Of an SMI kind, one version: a CRD without a conversion
 * webhook serves every object under each version it lists, unchanged, so
 * watching several versions would see each object several times. The
 * newest version is watched (it is the one `deploy/crds/` stores); each
 * object is decoded as the version it was written in (`writtenVersion`).
 */
export const WATCHED_KINDS: readonly WatchedKind[] = [
  { apiVersion: 'v1', kind: 'Namespace', plural: 'namespaces' },
  { apiVersion: 'v1', kind: 'Service', plural: 'services' },
  { apiVersion: 'v1', kind: 'Pod', plural: 'pods' },
  { apiVersion: 'v1', kind: 'ServiceAccount', plural: 'serviceaccounts' },
  { apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice', plural: 'endpointslices' },
  { apiVersion: 'access.smi-spec.io/v1alpha3', kind: 'TrafficTarget', plural: 'traffictargets' },
  { apiVersion: 'specs.smi-spec.io/v1alpha4', kind: 'HTTPRouteGroup', plural: 'httproutegroups' },
  { apiVersion: 'specs.smi-spec.io/v1alpha4', kind: 'TCPRoute', plural: 'tcproutes' },
  { apiVersion: 'specs.smi-spec.io/v1alpha4', kind: 'UDPRoute', plural: 'udproutes' },
  { apiVersion: 'split.smi-spec.io/v1alpha4', kind: 'TrafficSplit', plural: 'trafficsplits' },
  { apiVersion: 'smc.dev/v1alpha1', kind: 'MeshConfig', plural: 'meshconfigs' },
  { apiVersion: 'smc.dev/v1alpha1', kind: 'VirtualMachine', plural: 'virtualmachines' },
  { apiVersion: 'gateway.networking.k8s.io/v1', kind: 'HTTPRoute', plural: 'httproutes' },
  { apiVersion: 'gateway.networking.k8s.io/v1', kind: 'GRPCRoute', plural: 'grpcroutes' },
  { apiVersion: 'gateway.networking.k8s.io/v1beta1', kind: 'ReferenceGrant', plural: 'referencegrants' },
];

const pathOf = (w: WatchedKind) => (w.apiVersion.includes('/') ? `/apis/${w.apiVersion}/${w.plural}` : `/api/${w.apiVersion}/${w.plural}`);

export function createKubernetesSource(o: KubernetesSourceOptions): Source {
  const kc = new k8s.KubeConfig();
  if (o.kubeconfig) kc.loadFromFile(o.kubeconfig);
  else kc.loadFromDefault();
  const api = k8s.KubernetesObjectApi.makeApiClient(kc);
  const informers: { stop(): Promise<void> }[] = [];
  const timers = new Set<NodeJS.Timeout>();
  let closed = false;
  let events: SourceEvents | undefined;
  // Units delivered so far, by kind: a resync removes those the API server no longer lists.
  const units = new Map<WatchedKind, Set<string>>(WATCHED_KINDS.map((w) => [w, new Set()]));
  // What was delivered per unit (a status write or a resync that changes nothing is not a change),
  // and, for policy objects, what status.conditions holds now.
  const delivered = new Map<string, string>();
  const owned = new Map<string, Owned>();
  const customObjects = kc.makeApiClient(k8s.CustomObjectsApi);
  // Writes wait in a queue (the latest status of an object wins), drained within a global rate and at most one write
  // per object per interval: a burst of changes costs the API server a bounded number of writes.
  const writes = { total: new Map<string, number>() };
  const queue = new Set<string>();
  const rate = o.statusWritesPerSecond ?? 20;
  const perObject = o.statusWriteIntervalMs ?? 1000;
  let tokens = rate;
  let refilled = Date.now();
  let pumpTimer: NodeJS.Timeout | undefined;
  const pump = () => {
    pumpTimer = undefined;
    if (closed) return;
    const now = Date.now();
    tokens = Math.min(rate, tokens + ((now - refilled) / 1000) * rate);
    refilled = now;
    let next = Infinity;
    for (const unit of queue) {
      const target = owned.get(unit);
      if (!target) {
        queue.delete(unit);
        continue;
      }
      const due = target.writtenAt + perObject;
      if (due > now) {
        next = Math.min(next, due);
        continue;
      }
      if (tokens < 1) {
        next = Math.min(next, now + 1000 / rate);
        break;
      }
      queue.delete(unit);
      const status = statusOf(target);
      const key = statusKey(status, target);
      if (key === target.condition) continue;
      tokens--;
      target.condition = key;
      target.writtenAt = now;
      writes.total.set(target.kind.kind, (writes.total.get(target.kind.kind) ?? 0) + 1);
      writeStatus(target, status);
    }
    if (queue.size > 0 && next < Infinity) {
      pumpTimer = setTimeout(pump, Math.max(1, next - now));
      timers.add(pumpTimer);
    }
  };
  const enqueue = (unit: string) => {
    queue.add(unit);
    if (pumpTimer === undefined) {
      pumpTimer = setTimeout(pump, 0);
      timers.add(pumpTimer);
    }
  };
  const writeStatus = (target: Owned, status: object) => {
    const [group, version] = target.kind.apiVersion.split('/') as [string, string];
    customObjects
      .patchNamespacedCustomObjectStatus({ group, version, plural: target.kind.plural, namespace: target.namespace, name: target.name, body: [{ op: 'add', path: '/status', value: status }] })
      .then(
        () => undefined,
        (e: unknown) => {
          target.condition = '';
          o.log(`kubernetes: cannot write the status of ${target.kind.kind} ${target.namespace}/${target.name}: ${apiError(e)}`, { level: 'warn' });
        },
      );
  };
  // The latest Programmed conditions (leader only), and when each object's Pending began.
  let programmed: ReadonlyMap<ObjectKey, ProgrammedCondition> | undefined;
  const pendingDelay = o.pendingWriteDelayMs ?? 5000;
  let programmedTimer: NodeJS.Timeout | undefined;
  const applyProgrammed = () => {
    programmedTimer = undefined;
    if (closed || !programmed) return;
    const now = Date.now();
    let recheck = Infinity;
    for (const [unit, target] of owned) {
      const c = programmed.get(objectKey({ kind: target.kind.kind, namespace: target.namespace, name: target.name }));
      if (c?.reason === 'Pending') {
        target.pendingSince ??= now;
        if (now - target.pendingSince < pendingDelay) {
          recheck = Math.min(recheck, target.pendingSince + pendingDelay);
          continue;
        }
      } else target.pendingSince = undefined;
      const next = c ? programmedCondition(c, target.generation, target.programmed) : undefined;
      if (conditionKey(next) === conditionKey(target.programmed)) continue;
      target.programmed = next;
      enqueue(unit);
    }
    if (recheck < Infinity) {
      programmedTimer = setTimeout(applyProgrammed, recheck - now);
      timers.add(programmedTimer);
    }
  };
  const lastAccepted = createLastAccepted();

  const unitOf = (w: WatchedKind, obj: k8s.KubernetesObject) => `${w.apiVersion}/${w.kind}/${obj.metadata?.namespace ?? ''}/${obj.metadata?.name ?? ''}`;
  /** A plain object, as the API server sends it (typed client models hold Dates), with its apiVersion and kind (list items lack them). */
  const documentOf = (w: WatchedKind, obj: k8s.KubernetesObject): InputDocument => {
    const raw = JSON.parse(JSON.stringify(obj)) as Record<string, unknown>;
    // A membership object is kept as far as smc reads it (its codec says what): a status write smc does not read is no change.
    const membership = isPolicy(w) ? undefined : MEMBERSHIP_CODECS[w.kind];
    const value = (membership ? project(membership, raw) : raw) as Record<string, unknown>;
    const meta = value.metadata as Record<string, unknown>;
    value.apiVersion = isPolicy(w) ? writtenVersion(w, meta.managedFields) : w.apiVersion;
    value.kind = w.kind;
    // One form of a timestamp: the typed client's list gives Dates (written with milliseconds), a watch event the API
    // server's text (seconds); an object listed, then seen in an event, must not look changed.
    for (const k of ['creationTimestamp', 'deletionTimestamp']) if (typeof meta[k] === 'string') meta[k] = rfc3339(meta[k]);
    // Bookkeeping the compiler does not read: a status write would otherwise look like a change.
    delete meta.resourceVersion;
    delete meta.managedFields;
    if (isPolicy(w)) delete value.status;
    return { origin: { source: `kubernetes:${unitOf(w, obj)}`, document: 0, line: 0 }, value };
  };
  const deliver = (w: WatchedKind, obj: k8s.KubernetesObject) => {
    const unit = unitOf(w, obj);
    units.get(w)!.add(unit);
    if (isPolicy(w)) {
      const base = { kind: w, namespace: obj.metadata?.namespace ?? '', name: obj.metadata?.name ?? '', generation: obj.metadata?.generation ?? 0 };
      const was = owned.get(unit);
      const kept = { writtenAt: was?.writtenAt ?? 0, pendingSince: was?.pendingSince };
      if (isGateway(w)) {
        // A route's status holds a list per controller: smc's own entries are what it compares; the others are kept as they are.
        const parents = (obj as { status?: { parents?: { controllerName?: string }[] } }).status?.parents ?? [];
        const mine = parents.filter((p) => p.controllerName === CONTROLLER_NAME) as unknown as RouteParentStatus[];
        const programmedNow = (mine[0]?.conditions as readonly Condition[] | undefined)?.find((c) => c.type === 'Programmed');
        // What smc means to write stays what it was (a read-back of an older write must not undo a newer one); the API server's copy is `condition`.
        owned.set(unit, {
          ...base,
          ...kept,
          condition: parentsKey(mine, base.generation),
          otherParents: parents.filter((p) => p.controllerName !== CONTROLLER_NAME),
          parents: was?.parents ?? mine.map((p) => ({ ...p, conditions: p.conditions.filter((c) => (c as { type: string }).type !== 'Programmed') })),
          programmed: was ? was.programmed : programmedNow,
        });
      } else {
        const conditions = (obj as { status?: { conditions?: Condition[] } }).status?.conditions ?? [];
        const accepted = conditions.find((c) => c.type === 'Accepted');
        const programmedNow = conditions.find((c) => c.type === 'Programmed');
        owned.set(unit, { ...base, ...kept, condition: conditionsKey([accepted, programmedNow]), accepted: was?.accepted ?? accepted, programmed: was ? was.programmed : programmedNow });
      }
      // Status someone else changed (or a write of ours that a newer one follows): what smc means is written again.
      const target = owned.get(unit)!;
      if (was && statusKey(statusOf(target), target) !== target.condition) enqueue(unit);
    }
    const document = documentOf(w, obj);
    const text = JSON.stringify(document.value);
    if (delivered.get(unit) === text) return;
    delivered.set(unit, text);
    const content = { documents: [document], problems: [] };
    // A policy object whose new version is rejected keeps its accepted version in force.
    events?.set(unit, isPolicy(w) ? lastAccepted.hold(unit, content, [checkDocument(document)]) : content);
  };
  const forget = (w: WatchedKind, unit: string) => {
    units.get(w)!.delete(unit);
    delivered.delete(unit);
    owned.delete(unit);
    lastAccepted.forget(unit);
    events?.delete(unit);
  };

  /** Kinds not yet listed, and why (until the first failure: "listing"). */
  const unlisted = new Map<WatchedKind, string>(WATCHED_KINDS.map((w) => [w, 'listing']));
  /** Kinds whose CRD is not installed: no object of them can exist. */
  const absent = new Set<WatchedKind>();
  let onListed: (() => void) | undefined;
  const listed = (w: WatchedKind) => {
    if (!unlisted.delete(w) && !absent.delete(w)) return;
    if (absent.size === 0 && unlisted.size === 0) o.log('kubernetes: every kind listed');
    onListed?.();
  };

  /** Whether the API server serves `w` in no version at all (its CRD is not installed); else which versions serve it. */
  const served = async (w: WatchedKind): Promise<string[]> => {
    const group = w.apiVersion.split('/')[0]!;
    const groups = await kc.makeApiClient(k8s.ApisApi).getAPIVersions();
    const found = groups.groups.find((g) => g.name === group);
    const discovery = kc.makeApiClient(Discovery);
    const versions: string[] = [];
    for (const v of found?.versions ?? []) if (await discovery.serves(v.groupVersion, w.kind)) versions.push(v.groupVersion);
    return versions;
  };

  const watch = (w: WatchedKind): void => {
    // The informer's own start resolves even when its list failed (the failure goes to 'error'): a list counts when it answers.
    let delay = o.retryMs ?? 500;
    let lastWhy = '';
    const list = () =>
      (api.list(w.apiVersion, w.kind) as Promise<k8s.KubernetesListObject<k8s.KubernetesObject>>).then((r) => {
        delay = o.retryMs ?? 500;
        if (lastWhy !== '') o.log(`kubernetes: watching ${w.kind} (${w.apiVersion}) again`);
        lastWhy = '';
        // After the informer has delivered the items (it does so right after this resolves).
        setImmediate(() => listed(w));
        return r;
      });
    const informer = k8s.makeInformer(kc, pathOf(w), list);
    informer.on('add', (obj) => deliver(w, obj));
    informer.on('update', (obj) => deliver(w, obj));
    informer.on('delete', (obj) => forget(w, unitOf(w, obj)));
    const restart = (why: string) => {
      if (closed) return;
      // The same failure again is not news: said once at warn, then at debug (the retries back off to 30 s).
      o.log(`kubernetes: watching ${w.kind} (${w.apiVersion}) stopped (${why}); starting again in ${delay} ms`, { level: why === lastWhy ? 'debug' : 'warn', kind: w.kind });
      lastWhy = why;
      const t = setTimeout(() => {
        timers.delete(t);
        informer.start().catch((e: unknown) => restart(apiError(e)));
      }, delay);
      timers.add(t);
      delay = Math.min(delay * 2, 30_000);
    };
    const failed = async (e: unknown) => {
      const why = apiError(e);
      if (unlisted.has(w)) {
        unlisted.set(w, why);
        // A kind the API server does not serve fails its list with a 404, or in the client's discovery before any list.
        if (isPolicy(w) && ((e as { code?: unknown }).code === 404 || /Unrecognized API version and kind/.test(why))) {
          const versions = await served(w).catch(() => undefined);
          if (versions && versions.length === 0 && unlisted.has(w)) {
            unlisted.delete(w);
            absent.add(w);
            const install = isGateway(w) ? "the Gateway API's CRDs are not installed (the standard channel of sigs.k8s.io/gateway-api)" : 'its CRD is not installed: kubectl apply -f deploy/crds/';
            o.log(`kubernetes: ${w.kind} is not served by the API server (${install}); no ${w.kind} can exist, so the mesh goes on without them and ${w.kind} is watched for`, { level: 'warn', kind: w.kind });
            onListed?.();
          } else if (versions && versions.length > 0) {
            unlisted.set(w, `the API server serves ${w.kind} as ${versions.join(', ')} but not ${w.apiVersion}: ${isGateway(w) ? "install a Gateway API release that serves it (v1.1 or newer)" : "apply smc's CRDs (deploy/crds/)"}`);
          }
        }
      }
      restart(why);
    };
    informer.on('error', (e: unknown) => void failed(e));
    informers.push(informer);
    informer.start().catch((e: unknown) => void failed(e));
  };

  return {
    name: 'kubernetes',
    async start(e) {
      events = e;
      // Nothing is published before every kind has listed once (or is known not to exist).
      const all = new Promise<void>((resolve) => {
        onListed = () => {
          if (unlisted.size === 0 || closed) resolve();
        };
      });
      for (const w of WATCHED_KINDS) watch(w);
      await all;
      if (closed) return;
      e.synced();
    },
    waitingFor() {
      if (unlisted.size === 0) return undefined;
      return [...unlisted].map(([w, why]) => `${w.kind} (${w.apiVersion}): ${why === 'listing' ? 'not listed yet' : `cannot be listed: ${why}`}`).join('; ');
    },
    async resync() {
      // Informers hold the API server's current state; a resync lists every kind again.
      for (const w of WATCHED_KINDS) {
        try {
          const list = (await api.list(w.apiVersion, w.kind)) as k8s.KubernetesListObject<k8s.KubernetesObject>;
          const seen = new Set(list.items.map((obj) => unitOf(w, obj)));
          for (const obj of list.items) deliver(w, obj);
          for (const unit of [...units.get(w)!]) if (!seen.has(unit)) forget(w, unit);
        } catch (err) {
          o.log(`kubernetes: cannot list ${w.kind} (${w.apiVersion}): ${apiError(err)}`, { level: 'error', kind: w.kind });
        }
      }
    },
    reportStatus(status) {
      for (const entry of status) {
        if (!entry.origin.source.startsWith('kubernetes:')) continue;
        const unit = entry.origin.source.slice('kubernetes:'.length);
        const target = owned.get(unit);
        if (!target) continue;
        if (isGateway(target.kind)) {
          if (entry.parents === undefined) continue;
          // The route's status per parent: written only when smc's part of it changed.
          const now = nowRfc3339();
          // A condition keeps its transition time while its status stays.
          const since = (parent: number, type: string, status: string) => {
            const c = (target.parents?.[parent]?.conditions as readonly Condition[] | undefined)?.find((x) => x.type === type);
            return c?.status === status && c.lastTransitionTime ? c.lastTransitionTime : now;
          };
          target.parents = entry.parents.map((p, i) => ({ ...p, conditions: p.conditions.map((c) => ({ ...c, message: c.message.slice(0, 2048), observedGeneration: target.generation, lastTransitionTime: since(i, c.type, c.status) })) }));
          enqueue(unit);
          continue;
        }
        const accepted = entry.state === 'Accepted' || entry.state === 'PartiallyAccepted';
        const status = accepted ? 'True' : 'False';
        target.accepted = {
          type: 'Accepted',
          status,
          reason: entry.state,
          message: entry.messages.map((m) => `${m.severity}: ${formatMessage(m)}`).join('; ').slice(0, 2048) || 'accepted by smc',
          observedGeneration: target.generation,
          lastTransitionTime: target.accepted?.status === status && target.accepted.lastTransitionTime ? target.accepted.lastTransitionTime : nowRfc3339(),
        };
        // Written only when it changed: the same status again is not another write.
        enqueue(unit);
      }
    },
    reportProgrammed(conditions) {
      programmed = conditions;
      clearTimeout(programmedTimer);
      programmedTimer = setTimeout(applyProgrammed, 0);
      timers.add(programmedTimer);
    },
    statusWrites: () => writes.total,
    async close() {
      closed = true;
      onListed?.();
      for (const t of timers) clearTimeout(t);
      await Promise.all(informers.map((i) => i.stop().catch(() => undefined)));
    },
  };
}

/** The API server's discovery of one group version: does it serve a kind. */
class Discovery extends k8s.KubernetesObjectApi {
  async serves(apiVersion: string, kind: string): Promise<boolean> {
    const found = await this.resource(apiVersion, kind).catch((e: { code?: number }) => {
      if (e.code === 404) return undefined; // the group version is not served
      throw e;
    });
    return found !== undefined;
  }
}

interface Condition {
  type: string;
  status: string;
  reason: string;
  message: string;
  observedGeneration?: number;
  lastTransitionTime?: string;
}

/**
 * The version an SMI or smc object was last written in. The CRDs have no
 * conversion webhook, so the API server serves every object unchanged under
 * whichever version is asked for: an object written as TrafficTarget
 * v1alpha1 comes back labelled v1alpha3 with its v1alpha1 shape. The
 * version its writer used is in its managedFields (the latest write of the
 * object itself, not of its status); it is decoded by that version's codec,
 * as the same object in a folder would be.
 */
export function writtenVersion(w: WatchedKind, managedFields: unknown): string {
  const group = w.apiVersion.split('/')[0]!;
  let latest: { apiVersion: string; time: string } | undefined;
  for (const f of Array.isArray(managedFields) ? (managedFields as { apiVersion?: unknown; time?: unknown; subresource?: unknown }[]) : []) {
    if (typeof f.apiVersion !== 'string' || !f.apiVersion.startsWith(`${group}/`) || (f.subresource !== undefined && f.subresource !== '')) continue;
    const time = typeof f.time === 'string' ? f.time : '';
    if (!latest || time >= latest.time) latest = { apiVersion: f.apiVersion, time };
  }
  return latest?.apiVersion ?? w.apiVersion;
}

const isPolicy = (w: WatchedKind) => w.apiVersion.includes('.smi-spec.io/') || w.apiVersion.startsWith('smc.dev/') || isGateway(w);
/** The Gateway API's kinds: their CRDs are upstream's, and a route's status is per parent (`status.parents`). */
const isGateway = (w: WatchedKind) => w.apiVersion.startsWith('gateway.networking.k8s.io/');

/**
 * smc's part of a route's status as far as a change matters (transition
 * times aside), field by field: the same whether made here or read back
 * from the API server (which may order keys its own way).
 */
function parentsKey(parents: readonly RouteParentStatus[], generation: number): string {
  return JSON.stringify([
    generation,
    parents.map((p) => [
      [p.parentRef.group ?? '', p.parentRef.kind ?? '', p.parentRef.namespace ?? '', p.parentRef.name, p.parentRef.port ?? null, p.parentRef.sectionName ?? null],
      p.controllerName,
      p.conditions.map((c) => [c.type, c.status, c.reason, c.message.slice(0, 2048), (c as { observedGeneration?: number }).observedGeneration ?? generation]),
    ]),
  ]);
}

/** A condition as far as a change matters (the transition time aside). */
const conditionKey = (c: Condition | undefined) => (c ? JSON.stringify([c.status, c.reason, c.message, c.observedGeneration ?? 0]) : '');
const conditionsKey = (cs: readonly (Condition | undefined)[]) => JSON.stringify(cs.map(conditionKey));

/** A policy object smc writes the status of: what it holds (read back or written), and what smc would write. */
interface Owned {
  kind: WatchedKind;
  namespace: string;
  name: string;
  generation: number;
  /** What status holds now, as far as a change matters. */
  condition: string;
  writtenAt: number;
  otherParents?: readonly unknown[];
  /** A route's entries per parent (its Programmed condition aside). */
  parents?: readonly RouteParentStatus[];
  accepted?: Condition;
  programmed?: Condition;
  pendingSince?: number;
}

/** The status smc writes for an object: Accepted (per parent for a route) and Programmed. */
function statusOf(t: Owned): object {
  if (isGateway(t.kind)) {
    const mine = (t.parents ?? []).map((p) => ({ ...p, conditions: [...p.conditions, ...(t.programmed ? [t.programmed] : [])] }));
    return { parents: [...(t.otherParents ?? []), ...mine] };
  }
  return { conditions: [t.accepted, t.programmed].filter((c) => c !== undefined) };
}

function statusKey(status: object, t: Owned): string {
  if (isGateway(t.kind)) return parentsKey(((status as { parents: RouteParentStatus[] }).parents).filter((p) => p.controllerName === CONTROLLER_NAME), t.generation);
  const conditions = (status as { conditions: Condition[] }).conditions;
  return conditionsKey([conditions.find((c) => c.type === 'Accepted'), conditions.find((c) => c.type === 'Programmed')]);
}

/**
 * The Programmed condition as the API server holds it: its message changes
 * only with what an operator acts on (not with counts of proxies or ages;
 * `smc status` has those), so connections coming and going write nothing.
 */
function programmedCondition(c: ProgrammedCondition, generation: number, before: Condition | undefined): Condition {
  const message =
    c.reason === 'Programmed'
      ? 'every connected proxy it shapes has acknowledged it'
      : c.reason === 'Pending'
        ? 'sent; not yet acknowledged by every connected proxy it shapes (smc status names them)'
        : c.reason === 'NoProxies'
          ? 'no connected proxy carries it'
          : c.rejected?.[0]
            ? `${c.rejected[0].node} rejected ${c.rejected[0].kind} ${c.rejected[0].resource}: ${c.rejected[0].message}`.slice(0, 2048)
            : c.message.slice(0, 2048);
  const now = nowRfc3339();
  return { type: 'Programmed', status: c.status, reason: c.reason, message, observedGeneration: generation, lastTransitionTime: before?.status === c.status && before.lastTransitionTime ? before.lastTransitionTime : now };
}

/** One line for an API error: the HTTP code and the API server's own message (the client's text spans headers and body). */
export function apiError(e: unknown): string {
  const err = e as { code?: unknown; body?: unknown; message?: string };
  let message: string | undefined;
  try {
    const body = typeof err.body === 'string' ? (JSON.parse(err.body) as { message?: string }) : (err.body as { message?: string } | undefined);
    message = body?.message;
  } catch {
    message = undefined;
  }
  const text = message ?? err.message ?? String(e);
  const code = typeof err.code === 'number' ? `HTTP ${err.code}: ` : '';
  return `${code}${text.split('\n')[0]!.slice(0, 500)}`;
}

/** A Kubernetes metadata timestamp (seconds precision) as the API server writes it: `2026-01-01T00:00:00Z`. */
/** Now, in the API server's form (seconds). */
const nowRfc3339 = (): string => rfc3339(new Date().toISOString());

function rfc3339(text: string): string {
  const t = Date.parse(text);
  return Number.isNaN(t) ? text : new Date(t).toISOString().replace(/\.\d{3}Z$/, 'Z');
}
