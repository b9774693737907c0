import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import fc from 'fast-check';
import protobuf from 'protobufjs';
import protojson from 'protobufjs/ext/protojson.js';
import { loadEnvoyProtos } from '../src/adapters/envoy-protos.js';
import { ByteWriter, NotHandled, ProtoJsonWriter } from '../src/adapters/proto-json-writer.js';
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

test('the byte writer writes what protobufjs\'s writer writes: every scalar at its edges, strings of any text and length, messages nested deep and long (lengths of one to four bytes), an empty one dropped', () => {
  type Op = { kind: 'scalar'; type: string; value: number | boolean | string } | { kind: 'nested'; ops: Op[]; padding: number };
  const int = (lo: number, hi: number) => fc.oneof(fc.integer({ min: lo, max: hi }), fc.constantFrom(lo, hi, 0, -1, 1, 127, 128, 16383, 16384).filter((n) => n >= lo && n <= hi));
  const safe = fc.oneof(fc.maxSafeInteger(), fc.constantFrom(Number.MAX_SAFE_INTEGER, Number.MIN_SAFE_INTEGER, 2 ** 32, -(2 ** 32), 2 ** 31, -(2 ** 31) - 1, 0, -1));
  const scalar: fc.Arbitrary<Op> = fc.oneof(
    int(-(2 ** 31), 2 ** 31 - 1).chain((v) => fc.constantFrom('int32', 'sint32', 'sfixed32').map((type) => ({ kind: 'scalar' as const, type, value: v }))),
    int(0, 2 ** 32 - 1).chain((v) => fc.constantFrom('uint32', 'fixed32').map((type) => ({ kind: 'scalar' as const, type, value: v }))),
    safe.chain((v) => fc.constantFrom('int64', 'sint64', 'sfixed64').map((type) => ({ kind: 'scalar' as const, type, value: v }))),
    safe.filter((v) => v >= 0).chain((v) => fc.constantFrom('uint64', 'fixed64').map((type) => ({ kind: 'scalar' as const, type, value: v }))),
    fc.double({ noNaN: true }).map((v) => ({ kind: 'scalar' as const, type: 'double', value: v })),
    fc.float({ noNaN: true }).map((v) => ({ kind: 'scalar' as const, type: 'float', value: v })),
    fc.boolean().map((v) => ({ kind: 'scalar' as const, type: 'bool', value: v })),
    fc.oneof(fc.string(), fc.string({ unit: 'grapheme', maxLength: 100 }), fc.string({ minLength: 60, maxLength: 300 })).map((v) => ({ kind: 'scalar' as const, type: 'string', value: v })),
  );
  const { tree } = fc.letrec<{ tree: Op[]; op: Op }>((tie) => ({
    tree: fc.array(tie('op'), { maxLength: 6 }),
    op: fc.oneof({ depthSize: 'small', withCrossShrink: true }, scalar, fc.record({ kind: fc.constant('nested' as const), ops: tie('tree') as fc.Arbitrary<Op[]>, padding: fc.constantFrom(0, 0, 0, 100, 20_000) })),
  }));
  const padding = (n: number) => 'x'.repeat(n);
  type AnyWriter = { uint32(n: number): AnyWriter; fork(): AnyWriter; ldelim(): AnyWriter; string(s: string): AnyWriter };
  const play = (w: AnyWriter, ops: Op[]) => {
    for (const op of ops) {
      if (op.kind === 'scalar') (w.uint32(8) as unknown as Record<string, (v: unknown) => void>)[op.type]!.call(w, op.value);
      else {
        w.uint32(18).fork();
        if (op.padding > 0) w.uint32(26).string(padding(op.padding));
        play(w, op.ops);
        w.ldelim();
      }
    }
  };
  fc.assert(
    fc.property(tree, (ops) => {
      const theirs = protobuf.Writer.create();
      play(theirs as unknown as AnyWriter, ops);
      const expected = hex(theirs.finish());
      const ours = new ByteWriter();
      play(ours as unknown as AnyWriter, ops);
      assert.equal(hex(ours.finish()), expected);
      // Reset, the same writer writes the same again (its buffer is kept, not its contents).
      play(ours.reset() as unknown as AnyWriter, ops);
      assert.equal(hex(ours.finish()), expected);
    }),
    { numRuns: 300 },
  );
  // A length of four bytes (2 MiB and more), nested in one of three.
  const deep: Op[] = [{ kind: 'nested', padding: 0, ops: [{ kind: 'nested', padding: 2_100_000, ops: [{ kind: 'scalar', type: 'string', value: 'é' }] }] }];
  const theirs = protobuf.Writer.create();
  play(theirs as unknown as AnyWriter, deep);
  const ours = new ByteWriter();
  play(ours as unknown as AnyWriter, deep);
  assert.equal(hex(ours.finish()), hex(theirs.finish()));
  // A nested message with nothing in it, dropped with its tag: as if never begun.
  const w = new ByteWriter();
  w.uint32(10).string('a').uint32(18).fork();
  w.drop(1);
  assert.equal(hex(w.finish()), hex(protobuf.Writer.create().uint32(10).string('a').finish()));
});

test('a field named twice (by its JSON and its proto name) and two members of one oneof: what protobufjs gives, in field order or not', () => {
  const cluster = codec.lookupType(TYPES.cluster);
  const cases: unknown[] = [
    { name: 'a', connectTimeout: '1s', connect_timeout: '2s' },
    { name: 'a', connect_timeout: '2s', connectTimeout: '1s' },
    { connectTimeout: '1s', name: 'a', connect_timeout: '2s' },
    { name: 'a', type: 'EDS', clusterType: { name: 'x' } },
    { clusterType: { name: 'x' }, name: 'a', type: 'EDS' },
  ];
  for (const json of cases) assert.equal(outcome(() => codec.encode(TYPES.cluster, json)), outcome(() => general(cluster, json)), JSON.stringify(json));
});
