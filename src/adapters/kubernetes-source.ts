import type { Log } from '../runtime/log.js';
import * as k8s from '@kubernetes/client-node';
import type { InputDocument } from '../compiler/inputs.js';
import { formatMessage } from '../compiler/status.js';
import type { Source, SourceEvents } from './source.js';

/**
 * `smc controller --source kubernetes`: informers (list, then watch) for the
 * core kinds smc reads and for every SMI and smc kind, each object one unit.
 * An informer that stops (the client library's informer stops itself on a
 * watch error, or when the API server goes away) is started again with a
 * back-off; it resumes from its last resourceVersion, and a `410 Gone` makes
 * it list again. A kind whose CRD is not installed is logged and retried.
 */
export interface KubernetesSourceOptions {
  /** A kubeconfig file; default $KUBECONFIG, ~/.kube/config, or the pod's service account. */
  readonly kubeconfig?: string;
  readonly log: Log;
  /** First retry delay after an informer stops (default 500 ms, doubling to 30 s). */
  readonly retryMs?: number;
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
  const owned = new Map<string, { kind: WatchedKind; namespace: string; name: string; generation: number; condition: string }>();
  const customObjects = kc.makeApiClient(k8s.CustomObjectsApi);

  const unitOf = (w: WatchedKind, obj: k8s.KubernetesObject) => `${w.apiVersion}/${w.kind}/${obj.metadata?.namespace ?? ''}/${obj.metadata?.name ?? ''}`;
  /** A plain object, as the API server sends it (typed client models hold Dates), with its apiVersion and kind (list items lack them). */
  const documentOf = (w: WatchedKind, obj: k8s.KubernetesObject): InputDocument => {
    const value = JSON.parse(JSON.stringify(obj)) as Record<string, unknown>;
    const meta = value.metadata as Record<string, unknown>;
    value.apiVersion = isPolicy(w) ? writtenVersion(w, meta.managedFields) : w.apiVersion;
    value.kind = w.kind;
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
      const conditions = (obj as { status?: { conditions?: Condition[] } }).status?.conditions ?? [];
      owned.set(unit, { kind: w, namespace: obj.metadata?.namespace ?? '', name: obj.metadata?.name ?? '', generation: obj.metadata?.generation ?? 0, condition: conditionKey(conditions.find((c) => c.type === 'Accepted')) });
    }
    const document = documentOf(w, obj);
    const text = JSON.stringify(document.value);
    if (delivered.get(unit) === text) return;
    delivered.set(unit, text);
    events?.set(unit, { documents: [document], problems: [] });
  };
  const forget = (w: WatchedKind, unit: string) => {
    units.get(w)!.delete(unit);
    delivered.delete(unit);
    owned.delete(unit);
    events?.delete(unit);
  };

  const watch = async (w: WatchedKind): Promise<void> => {
    const list = () => api.list(w.apiVersion, w.kind) as Promise<k8s.KubernetesListObject<k8s.KubernetesObject>>;
    const informer = k8s.makeInformer(kc, pathOf(w), list);
    informer.on('add', (obj) => deliver(w, obj));
    informer.on('update', (obj) => deliver(w, obj));
    informer.on('delete', (obj) => forget(w, unitOf(w, obj)));
    let delay = o.retryMs ?? 500;
    const restart = (why: string) => {
      if (closed) return;
      o.log(`kubernetes: watching ${w.kind} (${w.apiVersion}) stopped (${why}); starting again in ${delay} ms`, { level: 'warn', kind: w.kind });
      const t = setTimeout(() => {
        timers.delete(t);
        informer.start().then(
          () => {
            delay = o.retryMs ?? 500;
            o.log(`kubernetes: watching ${w.kind} (${w.apiVersion}) again`);
          },
          (e: unknown) => restart(apiError(e)),
        );
      }, delay);
      timers.add(t);
      delay = Math.min(delay * 2, 30_000);
    };
    informer.on('error', (e: unknown) => restart(apiError(e)));
    informers.push(informer);
    try {
      await informer.start();
    } catch (e) {
      // Most often a CRD that is not installed (404): the kind is retried until it is.
      restart(apiError(e));
    }
  };

  return {
    name: 'kubernetes',
    async start(e) {
      events = e;
      await Promise.all(WATCHED_KINDS.map(watch));
      e.synced();
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
        const accepted = entry.state === 'Accepted' || entry.state === 'PartiallyAccepted';
        const condition: Condition = {
          type: 'Accepted',
          status: accepted ? 'True' : 'False',
          reason: entry.state,
          message: entry.messages.map((m) => `${m.severity}: ${formatMessage(m)}`).join('; ').slice(0, 2048) || 'accepted by smc',
          observedGeneration: target.generation,
          lastTransitionTime: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
        };
        // Written only when it changed: the same status again is not another write.
        const key = conditionKey(condition);
        if (key === target.condition) continue;
        target.condition = key;
        const [group, version] = target.kind.apiVersion.split('/') as [string, string];
        customObjects
          .patchNamespacedCustomObjectStatus({ group, version, plural: target.kind.plural, namespace: target.namespace, name: target.name, body: [{ op: 'add', path: '/status', value: { conditions: [condition] } }] })
          .then(
            () => undefined,
            (e: unknown) => {
              target.condition = '';
              o.log(`kubernetes: cannot write the status of ${target.kind.kind} ${target.namespace}/${target.name}: ${apiError(e)}`, { level: 'warn' });
            },
          );
      }
    },
    async close() {
      closed = true;
      for (const t of timers) clearTimeout(t);
      await Promise.all(informers.map((i) => i.stop().catch(() => undefined)));
    },
  };
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

const isPolicy = (w: WatchedKind) => w.apiVersion.includes('.smi-spec.io/') || w.apiVersion.startsWith('smc.dev/');

/** A condition as far as a change matters (the transition time aside). */
const conditionKey = (c: Condition | undefined) => (c ? JSON.stringify([c.status, c.reason, c.message, c.observedGeneration ?? 0]) : '');

/** One line for an API error: the HTTP code and the API server's own message (the client's text spans headers and body). */
export function apiError(e: unknown): string {
  const err = e as { code?: number; body?: unknown; message?: string };
  let message: string | undefined;
  try {
    const body = typeof err.body === 'string' ? (JSON.parse(err.body) as { message?: string }) : (err.body as { message?: string } | undefined);
    message = body?.message;
  } catch {
    message = undefined;
  }
  const text = message ?? err.message ?? String(e);
  return `${err.code ? `HTTP ${err.code}: ` : ''}${text.split('\n')[0]!.slice(0, 500)}`;
}
