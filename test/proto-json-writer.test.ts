import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import fc from 'fast-check';
import protobuf from 'protobufjs';
import protojson from 'protobufjs/ext/protojson.js';
import { loadEnvoyProtos } from '../src/adapters/envoy-protos.js';
import { NotHandled, ProtoJsonWriter } from '../src/adapters/proto-json-writer.js';
import { loadPaths } from '../src/adapters/yaml-files.js';
import { compile, compileIR } from '../src/compiler/compile.js';
import { throwawayCertificates } from '../src/adapters/ca/throwaway.js';
import { listGoldenCases } from '../src/output/golden.js';
import { TYPES } from '../src/compiler/envoy/codec.js';

/**
 * The direct JSON-to-bytes writer (adapters/proto-json-writer.ts) must give
 * exactly the bytes of protobufjs's own conversion, or leave the value to
 * it: translation's encodings are what proxies receive and what versions
 * are made of.
 */
const codec = loadEnvoyProtos();
const general = (type: protobuf.Type, json: unknown) => type.encode(protojson.fromJson(type, json)).finish();
const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
/** What encoding gives: the bytes, or that it was refused. */
const outcome = (encode: () => Uint8Array) => {
  try {
    return hex(encode());
  } catch {
    return 'refused';
  }
};

test('every resource of every golden case is written directly, to the bytes protobufjs gives', async () => {
  const writer = new ProtoJsonWriter((name) => codec.lookupType(name), general);
  const seen: [string, unknown][] = [];
  const recording = { ...codec, encode: (typeName: string, json: unknown) => (seen.push([typeName, json]), codec.encode(typeName, json)) };
  for (const name of await listGoldenCases('golden')) {
    const input = join('golden', name, 'input');
    const inputs = await loadPaths([input], { relativeTo: input });
    // With certificates, so that secrets are encoded too.
    const { ir } = compileIR(inputs);
    const certificates = await throwawayCertificates(ir.settings.trustDomain, [...new Set(ir.workloads.map((w) => w.identity))]);
    compile({ ...inputs, certificates }, recording);
  }
  const types = new Set(seen.map(([t]) => t));
  for (const t of Object.values(TYPES)) assert.ok(types.has(t), `the golden cases encode no ${t}`);
  for (const [typeName, json] of seen) {
    const type = codec.lookupType(typeName);
    let direct: Uint8Array;
    try {
      direct = writer.encode(type, json);
    } catch (e) {
      assert.ok(!(e instanceof NotHandled), `${typeName} left to the general path (${(e as Error).message}): ${JSON.stringify(json).slice(0, 400)}`);
      throw e;
    }
    assert.equal(hex(direct), hex(general(type, json)), `${typeName}: ${JSON.stringify(json).slice(0, 400)}`);
  }
  assert.ok(seen.length > 300, `only ${seen.length} encodings`);
});

/** Random JSON for a message type, from its reflection: mostly valid, sometimes not (a wrong JSON type, an unknown or repeated field, two oneof members, null). */
function jsonOf(type: protobuf.Type, depth: number): fc.Arbitrary<unknown> {
  const full = type.fullName;
  if (full === '.google.protobuf.Duration') return fc.oneof(fc.constantFrom('0s', '1s', '1.5s', '-2.000000001s', '315576000001s', '1.5', 3), fc.integer({ min: 0, max: 1e6 }).map((n) => `${n / 1000}s`));
  if (full === '.google.protobuf.Any') {
    const inner = ['envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy', 'envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext', 'google.protobuf.UInt32Value', 'google.protobuf.Duration', 'google.protobuf.Struct'];
    const unknown = fc.constant({ '@type': 'type.googleapis.com/envoy.no.such.Type' });
    return fc.oneof({ weight: 1, arbitrary: unknown }, { weight: 9, arbitrary: fc.constantFrom(...inner) }).chain((name) => {
      if (typeof name !== 'string') return fc.constant(name);
      const t = codec.lookupType(name);
      const body = depth > 2 ? fc.constant({}) : jsonOf(t, depth + 1);
      return name.startsWith('google.') ? body.map((value) => ({ '@type': `type.googleapis.com/${name}`, value })) : body.map((b) => ({ '@type': `type.googleapis.com/${name}`, ...(b as object) }));
    });
  }
  if (full === '.google.protobuf.Struct') return fc.dictionary(fc.string({ maxLength: 4 }), fc.jsonValue({ maxDepth: 1 }), { maxKeys: 2 });
  if (full === '.google.protobuf.Value') return fc.jsonValue({ maxDepth: 1 });
  if (full === '.google.protobuf.ListValue') return fc.array(fc.jsonValue({ maxDepth: 1 }), { maxLength: 2 });
  if (full === '.google.protobuf.Timestamp') return fc.constantFrom('2026-12-07T10:00:00Z', '2026-12-07T10:00:00.5Z', 'yesterday');
  if (full === '.google.protobuf.FieldMask') return fc.constantFrom('a,bC', '');
  const wrapper = /^\.google\.protobuf\.(\w+)Value$/.exec(full);
  if (wrapper) return valueOf(type.fields.value!.resolve(), depth);
  if (depth > 3) return fc.constant({});
  const fields = type.fieldsArray.map((f) => f.resolve()).filter((f) => !f.declaringField);
  if (fields.length === 0) return fc.constant({});
  return fc.subarray(fields, { maxLength: Math.min(4, fields.length) }).chain((chosen) =>
    fc
      .tuple(
        fc.tuple(
          ...chosen.map((f) => {
          const name = f.jsonName ?? f.name;
          const one = f.map ? fc.dictionary(fc.oneof({ weight: 6, arbitrary: fc.string({ maxLength: 3 }) }, { weight: 1, arbitrary: fc.constant('\udc00') }), valueOf(f, depth), { maxKeys: 2 }) : f.repeated ? fc.array(valueOf(f, depth), { maxLength: 2 }) : valueOf(f, depth);
          // Now and then a field under its .proto name, null, or a JSON value of another kind.
            return fc.tuple(fc.constantFrom(name, name, name, name, name, (f as { protoName?: string }).protoName ?? name), fc.oneof({ weight: 12, arbitrary: one }, { weight: 1, arbitrary: fc.constantFrom<unknown>(null, 'x', 7, true, [], {}) }));
          }),
        ),
        fc.constantFrom(undefined, undefined, undefined, undefined, undefined, undefined, 'noSuchField'),
      )
      .map(([pairs, extra]) => {
        const out: Record<string, unknown> = {};
        for (const [k, v] of pairs as unknown as [string, unknown][]) out[k] = v;
        if (extra) out[extra] = 1;
        return out;
      }),
  );
}

function valueOf(field: protobuf.Field, depth: number): fc.Arbitrary<unknown> {
  const t = field.resolvedType;
  if (t instanceof protobuf.Type) return fc.constant(null).chain(() => jsonOf(t, depth + 1));
  if (t instanceof protobuf.Enum) return fc.oneof(fc.constantFrom(...Object.keys(t.values)), fc.constantFrom(...Object.values(t.values)), fc.constant('NO_SUCH_VALUE'));
  switch (field.type) {
    case 'string':
      return fc.oneof({ weight: 8, arbitrary: fc.string({ maxLength: 6 }) }, { weight: 1, arbitrary: fc.constantFrom('', '\ud800', 'é☃') });
    case 'bool':
      return fc.oneof(fc.boolean(), fc.constant('true'));
    case 'bytes':
      return fc.oneof(fc.base64String({ maxLength: 8 }), fc.constantFrom('', 'a-b_', '%%'));
    case 'double':
    case 'float':
      return fc.oneof(fc.double({ noNaN: true, noDefaultInfinity: true, min: -1e6, max: 1e6 }), fc.constantFrom(0, -0, 1e39, 'NaN', '1.5', Infinity));
    default:
      return fc.oneof(fc.integer(), fc.constantFrom(0, -0, -1, 2 ** 31, 2 ** 32, 2 ** 53, '12', '00', '-0', '9007199254740993', 1.5, '1e2', ''));
  }
}

test('random JSON of the resource types: the codec gives the bytes (or the refusal) protobufjs gives', () => {
  const counts = { bytes: 0, refused: 0 };
  // The resource types, the bootstrap, and a few small types whose fields are of every scalar kind (packed lists of them too).
  const scalars = ['validate.FloatRules', 'validate.DoubleRules', 'validate.Int64Rules', 'validate.UInt64Rules', 'validate.SInt32Rules', 'validate.Fixed64Rules', 'validate.BytesRules', 'envoy.type.v3.FractionalPercent'];
  for (const typeName of [...Object.values(TYPES), 'envoy.config.bootstrap.v3.Bootstrap', ...scalars]) {
    const type = codec.lookupType(typeName);
    fc.assert(
      fc.property(jsonOf(type, 0), (json) => {
        const expected = outcome(() => general(type, json));
        counts[expected === 'refused' ? 'refused' : 'bytes']++;
        assert.equal(outcome(() => codec.encode(typeName, json)), expected, JSON.stringify(json));
      }),
      { numRuns: 400 },
    );
  }
  // Both sides are exercised: values encoded, and values refused.
  assert.ok(counts.bytes > counts.refused / 2 && counts.refused > 100, JSON.stringify(counts));
  if (process.env.STATS) console.log('STATS', counts);
});
