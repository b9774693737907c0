import * as k8s from '@kubernetes/client-node';
import type { InputDocument } from '../compiler/inputs.js';
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
  readonly log: (line: string) => void;
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
 * newest version is watched (it is the one `deploy/crds/` stores).
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

  const unitOf = (w: WatchedKind, obj: k8s.KubernetesObject) => `${w.apiVersion}/${w.kind}/${obj.metadata?.namespace ?? ''}/${obj.metadata?.name ?? ''}`;
  /** A plain object, as the API server sends it (typed client models hold Dates), with its apiVersion and kind (list items lack them). */
  const documentOf = (w: WatchedKind, obj: k8s.KubernetesObject): InputDocument => {
    const value = JSON.parse(JSON.stringify(obj)) as Record<string, unknown>;
    value.apiVersion = w.apiVersion;
    value.kind = w.kind;
    return { origin: { source: `kubernetes:${unitOf(w, obj)}`, document: 0, line: 0 }, value };
  };

  const watch = async (w: WatchedKind): Promise<void> => {
    const list = () => api.list(w.apiVersion, w.kind) as Promise<k8s.KubernetesListObject<k8s.KubernetesObject>>;
    const informer = k8s.makeInformer(kc, pathOf(w), list);
    const set = (obj: k8s.KubernetesObject) => {
      units.get(w)!.add(unitOf(w, obj));
      events?.set(unitOf(w, obj), { documents: [documentOf(w, obj)], problems: [] });
    };
    informer.on('add', set);
    informer.on('update', set);
    informer.on('delete', (obj) => {
      units.get(w)!.delete(unitOf(w, obj));
      events?.delete(unitOf(w, obj));
    });
    let delay = o.retryMs ?? 500;
    const restart = (why: string) => {
      if (closed) return;
      o.log(`kubernetes: watching ${w.kind} (${w.apiVersion}) stopped (${why}); starting again in ${delay} ms`);
      const t = setTimeout(() => {
        timers.delete(t);
        informer.start().then(
          () => {
            delay = o.retryMs ?? 500;
            o.log(`kubernetes: watching ${w.kind} (${w.apiVersion}) again`);
          },
          (e: Error) => restart(e.message),
        );
      }, delay);
      timers.add(t);
      delay = Math.min(delay * 2, 30_000);
    };
    informer.on('error', (e: unknown) => restart(e instanceof Error ? e.message : String(e)));
    informers.push(informer);
    try {
      await informer.start();
    } catch (e) {
      // Most often a CRD that is not installed (404): the kind is retried until it is.
      restart((e as Error).message);
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
          for (const obj of list.items) events?.set(unitOf(w, obj), { documents: [documentOf(w, obj)], problems: [] });
          for (const unit of units.get(w)!) if (!seen.has(unit)) events?.delete(unit);
          units.set(w, seen);
        } catch (err) {
          o.log(`kubernetes: cannot list ${w.kind} (${w.apiVersion}): ${(err as Error).message}`);
        }
      }
    },
    async close() {
      closed = true;
      for (const t of timers) clearTimeout(t);
      await Promise.all(informers.map((i) => i.stop().catch(() => undefined)));
    },
  };
}
