import { TYPES, TYPE_PREFIX, type ProtoCodec, type ResourceKind } from '../compiler/envoy/codec.js';
import type { Snapshot } from '../compiler/envoy/snapshot.js';

/**
 * A snapshot in the shape of Envoy's admin `/config_dump` (proto3 JSON of
 * envoy.admin.v3.ConfigDump with the .proto field names, as Envoy prints
 * it), so what `smc compile` prints can be diffed with a running Envoy's. Private keys are redacted the
 * way Envoy's own dump redacts them.
 */
export const REDACTED = '[redacted]';

const dumpType = (t: string) => `${TYPE_PREFIX}envoy.admin.v3.${t}`;

export function configDump(snapshot: Snapshot, codec: ProtoCodec): unknown {
  const items = (kind: ResourceKind) => snapshot.types[kind].resources.map((r) => ({ name: r.name, json: codec.toJson(TYPES[kind], r.bytes) }));
  const v = (kind: ResourceKind) => snapshot.types[kind].version;
  const typed = (kind: ResourceKind, json: unknown) => ({ '@type': `${TYPE_PREFIX}${TYPES[kind]}`, ...(json as object) });
  const dump = {
    configs: [
      {
        '@type': dumpType('ClustersConfigDump'),
        versionInfo: v('cluster'),
        dynamicActiveClusters: items('cluster').map((c) => ({ versionInfo: v('cluster'), cluster: typed('cluster', c.json) })),
      },
      {
        '@type': dumpType('EndpointsConfigDump'),
        dynamicEndpointConfigs: items('endpoint').map((e) => ({ versionInfo: v('endpoint'), endpointConfig: typed('endpoint', e.json) })),
      },
      {
        '@type': dumpType('ListenersConfigDump'),
        versionInfo: v('listener'),
        dynamicListeners: items('listener').map((l) => ({ name: l.name, activeState: { versionInfo: v('listener'), listener: typed('listener', l.json) } })),
      },
      {
        '@type': dumpType('RoutesConfigDump'),
        dynamicRouteConfigs: items('route').map((r) => ({ versionInfo: v('route'), routeConfig: typed('route', r.json) })),
      },
      {
        '@type': dumpType('SecretsConfigDump'),
        dynamicActiveSecrets: items('secret').map((s) => ({ name: s.name, versionInfo: v('secret'), secret: typed('secret', redactSecret(s.json)) })),
      },
    ],
  };
  // Through Envoy's own admin protos: the output is exactly what they define, with the
  // field names Envoy's /config_dump prints (snake_case), so the two can be diffed.
  const canonical = codec.toJson('envoy.admin.v3.ConfigDump', codec.encode('envoy.admin.v3.ConfigDump', dump));
  return codec.withProtoNames('envoy.admin.v3.ConfigDump', canonical);
}

/** A Secret as JSON with every private key replaced by `[redacted]`. */
export function redactSecret(json: unknown): unknown {
  const s = json as { tlsCertificate?: { privateKey?: unknown } };
  if (s.tlsCertificate?.privateKey === undefined) return json;
  return { ...s, tlsCertificate: { ...s.tlsCertificate, privateKey: { inlineString: REDACTED } } };
}
