import type { MeshConfigObj, NamespaceObj } from '../model.js';
import { error, warning, type StatusCollector } from '../status.js';
import { MESH_NAMESPACE_LABEL } from '../decode/kubernetes.js';
import { compareStrings, type MeshSettings } from './types.js';

export const DEFAULT_SETTINGS: MeshSettings = {
  trustDomain: 'cluster.local',
  permissive: false,
  defaultInterceptionMode: 'transparent',
  // Class E, never routed: Istio allocates from the same range for the same purpose.
  virtualIPRange: '240.240.0.0/16',
  accessLog: false,
};

/** An IPv4 CIDR with a prefix from /8 to /28: base address and size. */
export function parseIPv4Range(cidr: string): { base: number; size: number } | undefined {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})\/(\d{1,2})$/.exec(cidr);
  if (!m) return undefined;
  const octets = m.slice(1, 5).map(Number);
  const prefix = Number(m[5]);
  if (octets.some((o) => o > 255) || prefix < 8 || prefix > 28) return undefined;
  const size = 2 ** (32 - prefix);
  const address = octets.reduce((n, o) => n * 256 + o, 0);
  return { base: address - (address % size), size };
}

const TRUST_DOMAIN = /^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$/;

/**
 * At most one MeshConfig applies: the oldest (creation time, then
 * namespace/name). Others are rejected, so two teams cannot silently fight
 * over the mesh's settings.
 */
export function meshSettings(configs: readonly MeshConfigObj[], status: StatusCollector, runningTrustDomain?: string): MeshSettings {
  const valid = configs.filter((c) => {
    if (c.trustDomain !== undefined && !TRUST_DOMAIN.test(c.trustDomain)) {
      status.reject(c.key, error('spec.trustDomain', `expected a lower-case DNS name such as "cluster.local", got ${JSON.stringify(c.trustDomain)}`));
      return false;
    }
    if (c.virtualIPRange !== undefined && !parseIPv4Range(c.virtualIPRange)) {
      status.reject(c.key, error('spec.virtualIPRange', `expected an IPv4 range from /8 to /28 such as "240.240.0.0/16", got ${JSON.stringify(c.virtualIPRange)}`));
      return false;
    }
    return true;
  });
  const ordered = [...valid].sort(
    (a, b) =>
      compareStrings(a.meta.creationTimestamp, b.meta.creationTimestamp) ||
      compareStrings(a.meta.namespace, b.meta.namespace) ||
      compareStrings(a.meta.name, b.meta.name),
  );
  const [winner, ...losers] = ordered;
  for (const l of losers) {
    status.reject(l.key, error('', `another MeshConfig is in force (${winner!.meta.namespace}/${winner!.meta.name}, the oldest); only one applies`));
  }
  const trustDomain = winner?.trustDomain ?? DEFAULT_SETTINGS.trustDomain;
  if (runningTrustDomain !== undefined && trustDomain !== runningTrustDomain) {
    // Proxies hold certificates of the running domain and the xDS port admits only those: a switch is a restart.
    if (winner) status.add(winner.key, error('spec.trustDomain', `the running controller serves trust domain ${JSON.stringify(runningTrustDomain)}; ${JSON.stringify(trustDomain)} takes effect when the controller restarts (every proxy then needs a certificate of the new domain); the rest of this MeshConfig applies`));
    if (!winner) return { ...DEFAULT_SETTINGS, trustDomain: runningTrustDomain };
  }
  if (!winner) return DEFAULT_SETTINGS;
  return {
    trustDomain: runningTrustDomain ?? trustDomain,
    permissive: winner.permissive ?? DEFAULT_SETTINGS.permissive,
    defaultInterceptionMode: winner.defaultInterceptionMode ?? DEFAULT_SETTINGS.defaultInterceptionMode,
    virtualIPRange: winner.virtualIPRange ?? DEFAULT_SETTINGS.virtualIPRange,
    accessLog: winner.accessLog ?? DEFAULT_SETTINGS.accessLog,
  };
}

/** A namespace is in the mesh when it carries the label `smc.dev/mesh: enabled`. */
export function meshNamespaces(namespaces: readonly NamespaceObj[], status: StatusCollector): Set<string> {
  const inMesh = new Set<string>();
  for (const ns of namespaces) {
    const value = ns.meta.labels[MESH_NAMESPACE_LABEL];
    if (value === 'enabled' || value === 'true') inMesh.add(ns.meta.name);
    else if (value !== undefined) {
      status.add(ns.key, warning(`metadata.labels["${MESH_NAMESPACE_LABEL}"]`, `expected "enabled" to join the mesh, got ${JSON.stringify(value)}; not in the mesh`));
    } else {
      // A namespace labelled for OSM was meant to be in a mesh: say what smc looks for instead.
      const osm = ns.meta.labels['openservicemesh.io/monitored-by'] !== undefined;
      status.add(ns.key, warning('', `not in the mesh (no label ${MESH_NAMESPACE_LABEL}: enabled)${osm ? '; it carries OSM\'s openservicemesh.io/monitored-by, which smc does not read: add smc.dev/mesh: enabled' : ''}`));
    }
  }
  return inMesh;
}
