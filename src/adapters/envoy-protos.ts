import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import protobuf from 'protobufjs';
import protojson from 'protobufjs/ext/protojson.js';
import type { ProtoCodec } from '../compiler/envoy/codec.js';
import { NotHandled, ProtoJsonWriter } from './proto-json-writer.js';

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
  // protobufjs's own conversion, for what the direct writer leaves to it (and the errors of JSON its protos reject).
  const general = (type: protobuf.Type, json: unknown) => type.encode(protojson.fromJson(type, json)).finish();
  const writer = new ProtoJsonWriter((name) => root.lookupType(name), general);
  cached = {
    lookupType,
    encode(typeName, json) {
      const type = lookupType(typeName);
      try {
        return writer.encode(type, json);
      } catch (e) {
        if (!(e instanceof NotHandled)) throw e;
      }
      return general(type, json);
    },
    toJson(typeName, bytes) {
      const type = lookupType(typeName);
      return protojson.toJson(type, type.decode(bytes));
    },
    withProtoNames: (typeName, json) => protoNames(lookupType(typeName), json, lookupType),
    strings: (typeName, bytes, keys, visit) => {
      const reader = protobuf.Reader.create(bytes);
      scanStrings(lookupType(typeName), reader, reader.len, keys, visit, lookupType, '');
    },
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
  if (!known) fieldsByJson.set(type, (known = new Map(type.fieldsArray.map((f) => [jsonNameOf(f.resolve()), f]))));
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

/** A field's JSON name (what `toJson` writes). */
const jsonNameOf = (field: protobuf.Field) => field.jsonName ?? field.name;

const ANY = '.google.protobuf.Any';
const STRUCT = '.google.protobuf.Struct';
const VALUE = '.google.protobuf.Value';
const LIST_VALUE = '.google.protobuf.ListValue';

/**
 * Whether a message of `type` can hold a text under one of `keys`: a string
 * field or map of that name, or anything whose keys are data (an Any, a
 * Struct, a map with text keys). Worked out once per type and set of keys;
 * a type met again while it is being worked out (a recursive type) counts as
 * able to.
 */
const reachCache = new WeakMap<ReadonlySet<string>, Map<protobuf.Type, boolean>>();
function canHold(type: protobuf.Type, keys: ReadonlySet<string>): boolean {
  let known = reachCache.get(keys);
  if (!known) reachCache.set(keys, (known = new Map()));
  const was = known.get(type);
  if (was !== undefined) return was;
  known.set(type, true);
  let can = type.fullName === ANY || type.fullName === STRUCT || type.fullName === VALUE || type.fullName === LIST_VALUE;
  for (const field of type.fieldsArray) {
    if (can) break;
    field.resolve();
    if (keys.has(jsonNameOf(field))) can = true;
    else if (field.map && (field as unknown as protobuf.MapField).keyType === 'string') can = true;
    else if (field.resolvedType instanceof protobuf.Type) can = canHold(field.resolvedType, keys);
  }
  known.set(type, can);
  return can;
}

/**
 * The texts of one encoded message under `keys` (see `ProtoCodec.strings`),
 * read from the wire format by the message's reflected type with one reader
 * over the whole buffer: fields that cannot hold such a text are skipped,
 * and no text is decoded unless it is one. `place` is the key the message
 * sits under (what a Struct's keys and a Value's string are shown under).
 */
function scanStrings(type: protobuf.Type, reader: protobuf.Reader, end: number, keys: ReadonlySet<string>, visit: (key: string, text: string, isMapKey: boolean) => void, lookup: (name: string) => protobuf.Type, place: string): void {
  const full = type.fullName;
  const nested = (inner: protobuf.Type, at: string) => {
    const stop = reader.uint32() + reader.pos;
    if (canHold(inner, keys)) scanStrings(inner, reader, stop, keys, visit, lookup, at);
    reader.pos = stop;
  };
  if (full === ANY) {
    let url = '';
    let value: [number, number] | undefined;
    while (reader.pos < end) {
      const tag = reader.uint32();
      if (tag >>> 3 === 1 && (tag & 7) === 2) url = reader.string();
      else if (tag >>> 3 === 2 && (tag & 7) === 2) {
        const length = reader.uint32();
        value = [reader.pos, reader.pos + length];
        reader.pos += length;
      } else reader.skipType(tag & 7);
    }
    let inner: protobuf.Type | undefined;
    try {
      inner = lookup(url.slice(url.lastIndexOf('/') + 1));
    } catch {
      inner = undefined;
    }
    if (value && inner && canHold(inner, keys)) {
      reader.pos = value[0];
      scanStrings(inner, reader, value[1], keys, visit, lookup, place);
    }
    reader.pos = end;
    return;
  }
  if (full === VALUE || full === LIST_VALUE) {
    // A Value shows as the JSON value itself (a list's items too): its string under the key the Value sits under.
    while (reader.pos < end) {
      const tag = reader.uint32();
      const id = tag >>> 3;
      if ((tag & 7) !== 2) reader.skipType(tag & 7);
      else if (full === VALUE && id === 3 && keys.has(place)) visit(place, reader.string(), false);
      else if (full === VALUE && id === 5) nested(lookup('google.protobuf.Struct'), place);
      else if (full === VALUE && id === 6) nested(lookup('google.protobuf.ListValue'), place);
      else if (full === LIST_VALUE && id === 1) nested(lookup('google.protobuf.Value'), place);
      else reader.skipType(2);
    }
    return;
  }
  const struct = full === STRUCT;
  while (reader.pos < end) {
    const tag = reader.uint32();
    const field = type.fieldsById[tag >>> 3];
    if (!field || (tag & 7) !== 2) {
      reader.skipType(tag & 7);
      continue;
    }
    field.resolve();
    const name = jsonNameOf(field);
    if (field.map) {
      const stop = reader.uint32() + reader.pos;
      const map = field as unknown as protobuf.MapField;
      const keyPlace = struct ? place : name;
      let key: string | undefined;
      let text: [number, number] | undefined;
      let message: [number, number] | undefined;
      while (reader.pos < stop) {
        const t = reader.uint32();
        if (t >>> 3 === 1 && (t & 7) === 2 && map.keyType === 'string') key = reader.string();
        else if (t >>> 3 === 2 && (t & 7) === 2 && (map.resolvedType instanceof protobuf.Type || map.type === 'string')) {
          const length = reader.uint32();
          if (map.type === 'string') text = [reader.pos, reader.pos + length];
          else message = [reader.pos, reader.pos + length];
          reader.pos += length;
        } else reader.skipType(t & 7);
      }
      if (key !== undefined) {
        // A Struct shows as a plain object: its keys are keys of the object the Struct sits under.
        if (keys.has(keyPlace)) visit(keyPlace, key, true);
        if (text && keys.has(key)) visit(key, protobuf.util.utf8.read(reader.buf, text[0], text[1]), false);
      }
      // A message value is followed whatever its key's type (`toJson` writes any key as text).
      if (message && canHold(map.resolvedType as protobuf.Type, keys)) {
        reader.pos = message[0];
        scanStrings(map.resolvedType as protobuf.Type, reader, message[1], keys, visit, lookup, key ?? '');
      }
      reader.pos = stop;
      continue;
    }
    if (field.type === 'string') {
      if (keys.has(name)) visit(name, reader.string(), false);
      else reader.skipType(2);
    } else if (field.resolvedType instanceof protobuf.Type) nested(field.resolvedType, name);
    else reader.skipType(2);
  }
}

function freezeFullNames(root: protobuf.Root): void {
  const walk = (o: protobuf.ReflectionObject) => {
    Object.defineProperty(o, 'fullName', { value: o.fullName, enumerable: false });
    const x = o as unknown as { nestedArray?: protobuf.ReflectionObject[]; fieldsArray?: protobuf.ReflectionObject[]; oneofsArray?: protobuf.ReflectionObject[] };
    for (const child of [...(x.nestedArray ?? []), ...(x.fieldsArray ?? []), ...(x.oneofsArray ?? [])]) walk(child);
  };
  walk(root);
}
