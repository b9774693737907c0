import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import protobuf from 'protobufjs';
import protojson from 'protobufjs/ext/protojson.js';
import type { ProtoCodec } from '../compiler/envoy/codec.js';

/**
 * Loads Envoy's v3 API protos from the npm package that ships them
 * (@grpc/grpc-js-xds, under deps/) - never from copies in this repository.
 * The entry files are listed in protos/envoy-entries.txt.
 */
export interface EnvoyProtos extends ProtoCodec {
  /** The reflected message type, for the runtime's own wire messages (DiscoveryRequest and friends). */
  lookupType(typeName: string): protobuf.Type;
}

const require = createRequire(import.meta.url);
const PROJECT = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

let cached: EnvoyProtos | undefined;

export function loadEnvoyProtos(): EnvoyProtos {
  if (cached) return cached;
  const xds = dirname(require.resolve('@grpc/grpc-js-xds/package.json'));
  const pbjs = dirname(require.resolve('protobufjs/package.json'));
  const searchPath = ['envoy-api', 'xds', 'googleapis', 'protoc-gen-validate'].map((d) => join(xds, 'deps', d)).concat(pbjs);
  const root = new protobuf.Root();
  root.resolvePath = (_origin, target) => searchPath.map((dir) => join(dir, target)).find((p) => existsSync(p)) ?? target;
  const entries = readFileSync(join(PROJECT, 'protos', 'envoy-entries.txt'), 'utf8')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'));
  root.loadSync(entries);
  root.resolveAll();
  freezeFullNames(root);
  // protojson looks up the type of every Any it converts by name, walking the tree each time: the tree is fixed, so each name is looked up once.
  const rootLookupType = root.lookupType.bind(root);
  const byName = new Map<string, protobuf.Type>();
  root.lookupType = (path: string | string[]) => {
    if (typeof path !== 'string') return rootLookupType(path);
    let t = byName.get(path);
    if (!t) byName.set(path, (t = rootLookupType(path)));
    return t;
  };
  const types = new Map<string, protobuf.Type>();
  const lookupType = (typeName: string) => {
    let t = types.get(typeName);
    if (!t) {
      t = root.lookupType(typeName);
      types.set(typeName, t);
    }
    return t;
  };
  cached = {
    lookupType,
    encode(typeName, json) {
      const type = lookupType(typeName);
      return type.encode(protojson.fromJson(type, json)).finish();
    },
    toJson(typeName, bytes) {
      const type = lookupType(typeName);
      return protojson.toJson(type, type.decode(bytes));
    },
    withProtoNames: (typeName, json) => protoNames(lookupType(typeName), json, lookupType),
  };
  return cached;
}

/**
 * protobufjs computes `fullName` by walking up the parents on every read, and
 * protojson reads it for every message it converts (a tenth of a large
 * compile). The tree is complete and never changes after resolveAll, so each
 * object's full name is fixed once as a plain property.
 */
/**
 * Renames the fields of canonical proto3 JSON of `type` (lowerCamelCase) to
 * their .proto names, through the type's reflection: a map's keys and the
 * contents of well-known types (Struct, Duration, wrappers) are data and stay
 * as they are; an Any is followed into the type its `@type` names.
 */
/** A message type's fields by their JSON name, built once per type (a dump holds thousands of messages of few types). */
const fieldsByJson = new WeakMap<protobuf.Type, Map<string, protobuf.Field>>();
function fieldsByJsonName(type: protobuf.Type): Map<string, protobuf.Field> {
  let known = fieldsByJson.get(type);
  if (!known) fieldsByJson.set(type, (known = new Map(type.fieldsArray.map((f) => [f.resolve().jsonName ?? f.name, f]))));
  return known;
}

function protoNames(type: protobuf.Type, json: unknown, lookup: (name: string) => protobuf.Type): unknown {
  if (json === null || typeof json !== 'object' || Array.isArray(json)) return json;
  const full = type.fullName.replace(/^\./, '');
  if (full === 'google.protobuf.Any') {
    const { '@type': url, ...rest } = json as Record<string, unknown>;
    const inner = typeof url === 'string' ? lookup(url.slice(url.lastIndexOf('/') + 1)) : undefined;
    if (!inner || inner.fullName.startsWith('.google.protobuf.')) return json;
    return { '@type': url, ...(protoNames(inner, rest, lookup) as object) };
  }
  if (full.startsWith('google.protobuf.')) return json;
  const byJson = fieldsByJsonName(type);
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(json as Record<string, unknown>)) {
    const field = byJson.get(key);
    if (!field) {
      out[key] = value;
      continue;
    }
    const inner = field.resolvedType instanceof protobuf.Type ? field.resolvedType : undefined;
    const one = (v: unknown) => (inner ? protoNames(inner, v, lookup) : v);
    const name = field.protoName ?? field.name;
    if (field.map) out[name] = Object.fromEntries(Object.entries(value as Record<string, unknown>).map(([k, v]) => [k, one(v)]));
    else if (field.repeated && Array.isArray(value)) out[name] = value.map(one);
    else out[name] = one(value);
  }
  return out;
}

function freezeFullNames(root: protobuf.Root): void {
  const walk = (o: protobuf.ReflectionObject) => {
    Object.defineProperty(o, 'fullName', { value: o.fullName, enumerable: false });
    const x = o as unknown as { nestedArray?: protobuf.ReflectionObject[]; fieldsArray?: protobuf.ReflectionObject[]; oneofsArray?: protobuf.ReflectionObject[] };
    for (const child of [...(x.nestedArray ?? []), ...(x.fieldsArray ?? []), ...(x.oneofsArray ?? [])]) walk(child);
  };
  walk(root);
}
