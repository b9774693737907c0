/**
 * What the Envoy translation needs from Envoy's protos: encoding canonical
 * proto3 JSON to bytes and back. The protos are loaded once at the edge
 * (adapters/envoy-protos.ts) and handed to the compiler, which stays pure.
 */
export interface ProtoCodec {
  /** Encodes canonical proto3 JSON (`@type` for Any, "1.5s" durations) of `typeName`. Throws on a shape Envoy's protos reject. */
  encode(typeName: string, json: unknown): Uint8Array;
  /** Decodes bytes of `typeName` to canonical proto3 JSON. */
  toJson(typeName: string, bytes: Uint8Array): unknown;
  /**
   * The same JSON with the field names of the .proto files (snake_case), the
   * way Envoy's admin /config_dump prints: keys of maps and of Struct values
   * are left as they are.
   */
  withProtoNames(typeName: string, json: unknown): unknown;
  /**
   * The texts of encoded `typeName` that sit under one of `keys` as `toJson`
   * would show it, without decoding the rest: string fields (and the strings
   * of repeated fields) under their field's name, string map values under
   * their map key, and map keys (`isMapKey`) under their map's name.
   * Messages are followed, an Any into the type it names; a Struct's keys
   * and a `google.protobuf.Value`'s string sit under the key of the Struct
   * or Value.
   */
  strings(typeName: string, bytes: Uint8Array, keys: ReadonlySet<string>, visit: (key: string, text: string, isMapKey: boolean) => void): void;
}

export const TYPE_PREFIX = 'type.googleapis.com/';

export const TYPES = {
  cluster: 'envoy.config.cluster.v3.Cluster',
  endpoint: 'envoy.config.endpoint.v3.ClusterLoadAssignment',
  listener: 'envoy.config.listener.v3.Listener',
  route: 'envoy.config.route.v3.RouteConfiguration',
  secret: 'envoy.extensions.transport_sockets.tls.v3.Secret',
} as const;

export type ResourceKind = keyof typeof TYPES;

/** The order a server must push in (make before break). */
export const PUSH_ORDER: readonly ResourceKind[] = ['cluster', 'endpoint', 'listener', 'route', 'secret'];
