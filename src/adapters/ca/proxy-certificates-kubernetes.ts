import * as k8s from '@kubernetes/client-node';
import { apiError } from '../kubernetes-source.js';
import { StartupError } from '../startup-error.js';
import { keepWatching } from '../keep-watching.js';
import { checkedRecord, normalizeSerial, type ProxyCertificateRecord, type ProxyCertificates } from './proxy-certificates.js';

/**
 * Proxy-certificate records kept in Kubernetes, beside the mesh root's
 * Secret: one `ProxyCertificate` object (smc.dev/v1alpha1, CRD in
 * `deploy/crds/`) per serial, named after it, the record in `spec`. Every
 * replica reads the same records, so a certificate one replica issued (to a
 * pod, or through `smc bootstrap --ca-root-secret`) opens a stream on any
 * other, and a revocation closes its streams everywhere. A claim is a
 * replace guarded by the object's resourceVersion: of two replicas claiming
 * one certificate at once, exactly one wins and the other reads the winner.
 */
export interface KubernetesRecordsOptions {
  readonly namespace: string;
  /** A kubeconfig file; default: $KUBECONFIG, ~/.kube/config, or the in-cluster service account. */
  readonly kubeconfig?: string;
  /** First retry delay after the watch stops (default 500 ms, doubling to 30 s). */
  readonly retryMs?: number;
}

const GROUP = 'smc.dev';
const VERSION = 'v1alpha1';
const PLURAL = 'proxycertificates';

interface ProxyCertificateObject extends k8s.KubernetesObject {
  spec?: unknown;
}

/** What an operator can act on: the CRD missing, or the role not allowing it. */
function kubeProblem(doing: string, e: unknown): Error {
  const code = (e as { code?: number }).code;
  if (code === 404) return new StartupError(`cannot ${doing}: the ProxyCertificate CRD is not installed (kubectl apply -f deploy/crds/smc-proxycertificate.yaml)`);
  if (code === 403) return new StartupError(`cannot ${doing}: forbidden (${apiError(e)}); the controller's Role in deploy/controller.yaml grants get, list, watch, create and update on proxycertificates.smc.dev`);
  return new StartupError(`cannot ${doing}: ${apiError(e)}`);
}

const conflict = (e: unknown) => (e as { code?: number }).code === 409;
const notFound = (e: unknown) => (e as { code?: number }).code === 404;

export function kubernetesProxyCertificates(o: KubernetesRecordsOptions): ProxyCertificates {
  const kc = new k8s.KubeConfig();
  if (o.kubeconfig) kc.loadFromFile(o.kubeconfig);
  else kc.loadFromDefault();
  const api = kc.makeApiClient(k8s.CustomObjectsApi);
  const where = `ProxyCertificate objects in namespace ${o.namespace}`;
  const at = { group: GROUP, version: VERSION, namespace: o.namespace, plural: PLURAL };
  const nameOf = (serial: string) => normalizeSerial(serial);
  const recordOf = (obj: ProxyCertificateObject) => checkedRecord(obj.spec, `ProxyCertificate ${o.namespace}/${obj.metadata?.name ?? '?'}`);

  const read = async (serial: string): Promise<ProxyCertificateObject | undefined> => {
    try {
      return (await api.getNamespacedCustomObject({ ...at, name: nameOf(serial) })) as ProxyCertificateObject;
    } catch (e) {
      if (notFound(e)) return undefined;
      throw kubeProblem(`read ProxyCertificate ${o.namespace}/${nameOf(serial)}`, e);
    }
  };
  const create = async (r: ProxyCertificateRecord, exists?: () => void) => {
    const body = { apiVersion: `${GROUP}/${VERSION}`, kind: 'ProxyCertificate', metadata: { name: nameOf(r.serial), namespace: o.namespace, labels: { 'app.kubernetes.io/managed-by': 'smc' } }, spec: r };
    try {
      await api.createNamespacedCustomObject({ ...at, body });
    } catch (e) {
      if (exists && conflict(e)) return exists();
      throw kubeProblem(`record proxy certificate ${r.serial} (${where})`, e);
    }
  };
  /**
   * Reads the record, lets `change` decide its next state (undefined: leave
   * it), and writes it back guarded by its resourceVersion; a conflict reads
   * again. Returns the record as it is after.
   */
  const update = async (serial: string, change: (r: ProxyCertificateRecord) => ProxyCertificateRecord | undefined) => {
    for (let attempt = 0; attempt < 8; attempt++) {
      const obj = await read(serial);
      if (!obj) return undefined;
      const current = recordOf(obj);
      const next = change(current);
      if (!next) return current;
      try {
        await api.replaceNamespacedCustomObject({ ...at, name: nameOf(serial), body: { ...obj, spec: next } });
        return next;
      } catch (e) {
        if (conflict(e)) continue; // written meanwhile (by another replica): decide again on what it wrote
        throw kubeProblem(`write ProxyCertificate ${o.namespace}/${nameOf(serial)}`, e);
      }
    }
    throw new Error(`cannot write ProxyCertificate ${o.namespace}/${nameOf(serial)}: it kept changing underneath (conflicts)`);
  };
  const list = async () => {
    let items: ProxyCertificateObject[];
    try {
      items = ((await api.listNamespacedCustomObject(at)) as { items: ProxyCertificateObject[] }).items;
    } catch (e) {
      throw kubeProblem(`list ${where}`, e);
    }
    const records: ProxyCertificateRecord[] = [];
    const problems: string[] = [];
    for (const obj of items) {
      try {
        records.push(recordOf(obj));
      } catch (e) {
        problems.push((e as Error).message);
      }
    }
    records.sort((a, b) => (a.identity < b.identity ? -1 : a.identity > b.identity ? 1 : a.issuedAt < b.issuedAt ? -1 : 1));
    return { records, problems };
  };

  return {
    where,
    async recordIssued(r) {
      await create({ serial: normalizeSerial(r.serial), identity: r.identity, issuedAt: r.issuedAt.toISOString(), notAfter: r.notAfter.toISOString(), state: 'unclaimed' });
    },
    async recordIssuedToPod(r) {
      const issuedAt = r.issuedAt.toISOString();
      await create({ serial: normalizeSerial(r.serial), identity: r.identity, issuedAt, notAfter: r.notAfter.toISOString(), state: 'claimed', claimedAt: issuedAt, claimedBy: r.nodeId, pod: r.pod });
    },
    async get(serial) {
      const obj = await read(serial);
      return obj ? recordOf(obj) : undefined;
    },
    list,
    claim: (serial, nodeId, when) => update(serial, (r) => (r.state === 'unclaimed' ? { ...r, state: 'claimed', claimedAt: when.toISOString(), claimedBy: nodeId } : undefined)),
    async revoke(which, when) {
      let targets: string[];
      let problems: string[] = [];
      if ('serial' in which) targets = [which.serial];
      else {
        const all = await list();
        targets = all.records.filter((r) => r.identity === which.identity && r.state !== 'revoked').map((r) => r.serial);
        problems = all.problems;
      }
      const revoked: ProxyCertificateRecord[] = [];
      for (const serial of targets) {
        let changed = false;
        const after = await update(serial, (r) => {
          changed = r.state !== 'revoked';
          return changed ? { ...r, state: 'revoked', revokedAt: when.toISOString() } : undefined;
        });
        if (after && changed) revoked.push(after);
      }
      return { revoked, problems };
    },
    async adopt(r) {
      let taken = true;
      await create({ ...r, serial: normalizeSerial(r.serial) }, () => (taken = false));
      return taken;
    },
    watch(onRecord, onProblem) {
      const path = `/apis/${GROUP}/${VERSION}/namespaces/${o.namespace}/${PLURAL}`;
      const informer = k8s.makeInformer<ProxyCertificateObject>(kc, path, () => api.listNamespacedCustomObject(at) as Promise<k8s.KubernetesListObject<ProxyCertificateObject>>);
      const deliver = (obj: ProxyCertificateObject) => {
        try {
          onRecord(recordOf(obj));
        } catch (e) {
          onProblem((e as Error).message);
        }
      };
      informer.on('add', deliver);
      informer.on('update', deliver);
      // A record deleted is as good as revoked: nothing can be claimed or authorized without it.
      informer.on('delete', (obj) => {
        try {
          const r = recordOf(obj);
          onRecord({ ...r, state: 'revoked', revokedAt: r.revokedAt ?? new Date().toISOString() });
        } catch (e) {
          onProblem((e as Error).message);
        }
      });
      return keepWatching(informer, { what: where, onProblem, firstProblem: (e) => kubeProblem(`watch ${where}`, e).message, ...(o.retryMs !== undefined ? { retryMs: o.retryMs } : {}) });
    },
  };
}
