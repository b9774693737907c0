import { TYPES, type ProtoCodec } from '../compiler/envoy/codec.js';
import { ADMIN_PORT, TRUST_BUNDLE_SECRET, IDENTITY_SECRET } from '../compiler/envoy/names.js';
import type { Snapshot } from '../compiler/envoy/snapshot.js';
import { LAYERED_RUNTIME } from './ads-bootstrap.js';

/**
 * A snapshot turned into a self-contained Envoy bootstrap: every resource
 * static (EDS clusters carry their assignment inline, HTTP connection
 * managers their route table, SDS references name static secrets read from
 * files). `envoy --mode validate` checks it without a control plane, and the
 * same file runs a sidecar offline.
 */
export interface CertificateFiles {
  readonly certificateChain: string;
  readonly privateKey: string;
  readonly trustBundle: string;
}

export function staticBootstrap(snapshot: Snapshot, codec: ProtoCodec, files: CertificateFiles, nodeId: string): unknown {
  const decode = <T>(kind: keyof typeof TYPES) => snapshot.types[kind].resources.map((r) => codec.toJson(TYPES[kind], r.bytes) as T);
  const assignments = new Map(decode<{ clusterName: string }>('endpoint').map((a) => [a.clusterName, a]));
  const routes = new Map(decode<{ name: string }>('route').map((r) => [r.name, r]));

  const clusters = decode<Record<string, unknown> & { name: string; type?: string }>('cluster').map((c) => {
    if (c.type !== 'EDS') return c;
    const { edsClusterConfig: _eds, ...rest } = c;
    return { ...rest, type: 'STATIC', loadAssignment: assignments.get(c.name) ?? { clusterName: c.name } };
  });
  const make = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(make);
    if (v === null || typeof v !== 'object') return v;
    const o = v as Record<string, unknown>;
    // HCM: rds -> the route table inline.
    if (typeof o['rds'] === 'object' && o['rds'] !== null) {
      const { rds, ...rest } = o;
      const name = (rds as { routeConfigName: string }).routeConfigName;
      return make({ ...rest, routeConfig: routes.get(name) ?? { name } });
    }
    // An SDS reference without a config source names a static secret.
    if (typeof o['sdsConfig'] === 'object' && typeof o['name'] === 'string') return { name: o['name'] };
    return Object.fromEntries(Object.entries(o).map(([k, x]) => [k, make(x)]));
  };

  const bootstrap = {
    node: { id: nodeId, cluster: nodeId.split('/')[0] ?? nodeId },
    admin: { address: { socketAddress: { address: '127.0.0.1', portValue: ADMIN_PORT } } },
    layeredRuntime: LAYERED_RUNTIME,
    staticResources: {
      clusters: make(clusters),
      listeners: make(decode('listener')),
      secrets: [
        {
          name: IDENTITY_SECRET,
          tlsCertificate: { certificateChain: { filename: files.certificateChain }, privateKey: { filename: files.privateKey } },
        },
        { name: TRUST_BUNDLE_SECRET, validationContext: { trustedCa: { filename: files.trustBundle } } },
      ],
    },
  };
  const type = 'envoy.config.bootstrap.v3.Bootstrap';
  return codec.toJson(type, codec.encode(type, bootstrap));
}
