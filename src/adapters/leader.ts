import type { Log } from '../runtime/log.js';
import * as k8s from '@kubernetes/client-node';
import { apiError } from './kubernetes-source.js';

/**
 * Leader election with a coordination.k8s.io Lease, as Kubernetes' own
 * controllers do it. Every replica serves xDS from the same inputs (same
 * versions, so a proxy may move between them); only the leader writes status
 * and drives root rotations. The holder renews the Lease every `renewMs`; a
 * Lease not renewed for its duration is taken over by another replica, with
 * the Lease's resourceVersion guarding against two taking it at once.
 */
export interface LeaderElection {
  readonly identity: string;
  isLeader(): boolean;
  /** The current holder, as far as this replica knows. */
  holder(): string | undefined;
  onChange(listener: (leader: boolean) => void): void;
  /** Stops campaigning; with `release`, a held Lease is given up at once (a clean stop). */
  stop(options?: { release?: boolean }): Promise<void>;
}

export interface LeaderElectionOptions {
  readonly kubeconfig?: string;
  readonly namespace: string;
  readonly name: string;
  readonly identity: string;
  /** Lease duration (default 15 s) and renew interval (default 5 s). */
  readonly leaseMs?: number;
  readonly renewMs?: number;
  readonly log: Log;
}

export async function startLeaderElection(o: LeaderElectionOptions): Promise<LeaderElection> {
  const kc = new k8s.KubeConfig();
  if (o.kubeconfig) kc.loadFromFile(o.kubeconfig);
  else kc.loadFromDefault();
  const api = kc.makeApiClient(k8s.CoordinationV1Api);
  const leaseMs = o.leaseMs ?? 15_000;
  const renewMs = o.renewMs ?? 5_000;
  let leader = false;
  let holder: string | undefined;
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  const listeners: ((leader: boolean) => void)[] = [];
  const become = (now: boolean) => {
    if (now === leader) return;
    leader = now;
    o.log(`leader: ${o.identity} ${now ? 'is now the leader' : 'is no longer the leader'} (Lease ${o.namespace}/${o.name})`);
    for (const l of listeners) l(now);
  };

  const attempt = async () => {
    const now = new Date();
    let lease: k8s.V1Lease | undefined;
    try {
      lease = await api.readNamespacedLease({ name: o.name, namespace: o.namespace });
    } catch (e) {
      if ((e as { code?: number }).code !== 404) throw e;
    }
    if (!lease) {
      await api.createNamespacedLease({
        namespace: o.namespace,
        body: { metadata: { name: o.name, namespace: o.namespace }, spec: { holderIdentity: o.identity, leaseDurationSeconds: Math.ceil(leaseMs / 1000), acquireTime: micro(now), renewTime: micro(now), leaseTransitions: 0 } },
      });
      holder = o.identity;
      return become(true);
    }
    const spec = lease.spec ?? {};
    holder = spec.holderIdentity;
    const renewed = spec.renewTime ? new Date(spec.renewTime as unknown as string).getTime() : 0;
    const expired = renewed + (spec.leaseDurationSeconds ?? Math.ceil(leaseMs / 1000)) * 1000 < now.getTime();
    const mine = spec.holderIdentity === o.identity;
    if (!mine && !expired && spec.holderIdentity) return become(false);
    const next: k8s.V1LeaseSpec = mine
      ? { ...spec, acquireTime: micro(spec.acquireTime ? new Date(spec.acquireTime as unknown as string) : now), renewTime: micro(now) }
      : { holderIdentity: o.identity, leaseDurationSeconds: Math.ceil(leaseMs / 1000), acquireTime: micro(now), renewTime: micro(now), leaseTransitions: (spec.leaseTransitions ?? 0) + 1 };
    // Replace carries the resourceVersion read above: of two replicas taking over at once, one gets 409.
    await api.replaceNamespacedLease({ name: o.name, namespace: o.namespace, body: { ...lease, spec: next } });
    holder = o.identity;
    become(true);
  };
  const loop = async () => {
    if (stopped) return;
    try {
      await attempt();
    } catch (e) {
      const code = (e as { code?: number }).code;
      // A conflict means another replica wrote first; anything else, the API server is unreachable: not leader either way.
      if (code !== 409) o.log(`leader: cannot reach the Lease ${o.namespace}/${o.name}: ${apiError(e)}`);
      become(false);
    }
    if (!stopped) timer = setTimeout(() => void loop(), leader ? renewMs : Math.min(renewMs, 2_000));
  };
  await loop();
  return {
    identity: o.identity,
    isLeader: () => leader,
    holder: () => holder,
    onChange: (l) => void listeners.push(l),
    async stop(options = {}) {
      stopped = true;
      clearTimeout(timer);
      if (options.release && leader) {
        try {
          const lease = await api.readNamespacedLease({ name: o.name, namespace: o.namespace });
          if (lease.spec?.holderIdentity === o.identity) {
            await api.replaceNamespacedLease({ name: o.name, namespace: o.namespace, body: { ...lease, spec: { ...lease.spec, holderIdentity: '', renewTime: micro(new Date(0)) } } });
          }
        } catch {
          // Released or not, it expires on its own.
        }
      }
      become(false);
    },
  };
}

/**
 * A Lease's times are MicroTime: RFC 3339 with exactly six fractional digits.
 * The client passes a string through as it is (and a Date with three digits,
 * which the API server refuses), hence the cast.
 */
function micro(d: Date): k8s.V1MicroTime {
  return d.toISOString().replace(/\.(\d{3})Z$/, '.$1000Z') as unknown as k8s.V1MicroTime;
}
