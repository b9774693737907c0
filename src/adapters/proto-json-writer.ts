import protobuf from 'protobufjs';

/**
 * Canonical proto3 JSON written straight to protobuf bytes, through the
 * types' reflection: the same bytes as protobufjs's `protojson.fromJson`
 * followed by `Type.encode`, without the message objects made between them
 * (that conversion was most of the cost of encoding a large mesh).
 *
 * It handles what translation writes: messages by field (JSON, proto or
 * protobufjs name), scalars given as JSON gives them, enums by name or
 * number, repeated and packed fields, string-keyed maps, `Any` with `@type`
 * and `Duration` strings. Fields are written in field-number order, and a
 * field without presence holding its default is left out, as `Type.encode`
 * does. Any other well-known type is encoded by the general path and its
 * bytes embedded. Whatever else it meets (a value outside a field's range or
 * of another JSON type, an unknown field, a field named twice, two members of
 * one oneof) throws `NotHandled`, and the caller encodes that value by the
 * general path, which either gives the same bytes or the error to report.
 */
export class NotHandled extends Error {}

interface FieldPlan {
  readonly id: number;
  /** Wire tag of a singular or unpacked element (`id << 3 | wire type`), and of a length-delimited value. */
  readonly tag: number;
  readonly delimitedTag: number;
  readonly scalar: string | undefined;
  readonly message: protobuf.Type | undefined;
  readonly enumType: protobuf.Enum | undefined;
  readonly repeated: boolean;
  readonly packed: boolean;
  readonly map: boolean;
  readonly mapValueTag: number;
  readonly presence: boolean;
  readonly oneof: string | undefined;
}

interface TypePlan {
  readonly byKey: ReadonlyMap<string, FieldPlan>;
  /** How a well-known type is written: by the general path (`embed`), or by a case of this writer. */
  readonly special: 'any' | 'duration' | 'wrapper' | 'embed' | undefined;
}

const WIRE: Readonly<Record<string, number>> = { double: 1, float: 5, int32: 0, uint32: 0, sint32: 0, fixed32: 5, sfixed32: 5, int64: 0, uint64: 0, sint64: 0, fixed64: 1, sfixed64: 1, bool: 0, string: 2, bytes: 2 };
const PACKABLE = new Set(['double', 'float', 'int32', 'uint32', 'sint32', 'fixed32', 'sfixed32', 'int64', 'uint64', 'sint64', 'fixed64', 'sfixed64', 'bool']);
const INT32: Readonly<Record<string, readonly [number, number]>> = { int32: [-2147483648, 2147483647], sint32: [-2147483648, 2147483647], sfixed32: [-2147483648, 2147483647], uint32: [0, 4294967295], fixed32: [0, 4294967295] };
const INT64 = new Set(['int64', 'sint64', 'sfixed64', 'uint64', 'fixed64']);
const UNSIGNED64 = new Set(['uint64', 'fixed64']);
/** The well-known types whose JSON is not their fields (protojson's own cases): wrappers, written here; the others by the general path. */
const WRAPPERS = new Set(['DoubleValue', 'FloatValue', 'Int64Value', 'UInt64Value', 'Int32Value', 'UInt32Value', 'BoolValue', 'StringValue', 'BytesValue']);
const OTHER_WELL_KNOWN = new Set(['Timestamp', 'FieldMask', 'Value', 'Struct', 'ListValue']);
const MAX_FLOAT = 3.4028234663852886e38;
/** protobufjs's own bound on nesting (it throws past it; the general path says so). */
const MAX_DEPTH = 100;

/** No lone surrogate (protojson refuses them). */
const wellFormed = (s: string): boolean => (s as unknown as { isWellFormed(): boolean }).isWellFormed();

const isObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);

/**
 * Wire bytes written into one buffer that grows as needed and is kept from
 * one message to the next, where protobufjs's writer makes an object per
 * field written (most of the garbage of encoding a mesh). A nested message
 * keeps one byte for its length and is moved up when its length takes more.
 */
export class ByteWriter {
  private buf: Buffer = Buffer.allocUnsafeSlow(8192);
  /** Where the next byte goes. */
  pos = 0;
  private readonly starts: number[] = [];

  reset(): this {
    this.pos = 0;
    this.starts.length = 0;
    return this;
  }

  /** The bytes written, in a buffer of their own. */
  finish(): Buffer {
    const out = Buffer.allocUnsafeSlow(this.pos);
    this.buf.copy(out, 0, 0, this.pos);
    return out;
  }

  private room(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    const next = Buffer.allocUnsafeSlow(Math.max(this.buf.length * 2, this.pos + n));
    this.buf.copy(next, 0, 0, this.pos);
    this.buf = next;
  }

  uint32(value: number): this {
    let n = value >>> 0;
    this.room(5);
    while (n > 127) {
      this.buf[this.pos++] = (n & 127) | 128;
      n >>>= 7;
    }
    this.buf[this.pos++] = n;
    return this;
  }

  /** A varint of 64 bits, given as its low and high 32 bits. */
  private varint64(low: number, high: number): this {
    let lo = low >>> 0;
    let hi = high >>> 0;
    this.room(10);
    while (hi > 0) {
      this.buf[this.pos++] = (lo & 127) | 128;
      lo = ((lo >>> 7) | (hi << 25)) >>> 0;
      hi >>>= 7;
    }
    while (lo > 127) {
      this.buf[this.pos++] = (lo & 127) | 128;
      lo >>>= 7;
    }
    this.buf[this.pos++] = lo;
    return this;
  }

  /** The low and high 32 bits of a safe integer in 64-bit two's complement. */
  private static halves(n: number): [number, number] {
    if (n >= 0) return [n % 4294967296, Math.floor(n / 4294967296)];
    const b = BigInt.asUintN(64, BigInt(n));
    return [Number(b & 0xffffffffn), Number(b >> 32n)];
  }

  int32(n: number): this {
    return n >= 0 ? this.uint32(n) : this.varint64(n, -1);
  }
  sint32(n: number): this {
    return this.uint32((n << 1) ^ (n >> 31));
  }
  int64(n: number): this {
    return this.varint64(...ByteWriter.halves(n));
  }
  uint64(n: number): this {
    return this.int64(n);
  }
  sint64(n: number): this {
    const z = BigInt.asUintN(64, (BigInt(n) << 1n) ^ (BigInt(n) >> 63n));
    return this.varint64(Number(z & 0xffffffffn), Number(z >> 32n));
  }
  fixed32(n: number): this {
    this.room(4);
    this.pos = this.buf.writeUInt32LE(n >>> 0, this.pos);
    return this;
  }
  sfixed32(n: number): this {
    this.room(4);
    this.pos = this.buf.writeInt32LE(n | 0, this.pos);
    return this;
  }
  fixed64(n: number): this {
    const [lo, hi] = ByteWriter.halves(n);
    this.room(8);
    this.buf.writeUInt32LE(lo, this.pos);
    this.pos = this.buf.writeUInt32LE(hi, this.pos + 4);
    return this;
  }
  sfixed64(n: number): this {
    return this.fixed64(n);
  }
  float(n: number): this {
    this.room(4);
    this.pos = this.buf.writeFloatLE(n, this.pos);
    return this;
  }
  double(n: number): this {
    this.room(8);
    this.pos = this.buf.writeDoubleLE(n, this.pos);
    return this;
  }
  bool(b: boolean): this {
    this.room(1);
    this.buf[this.pos++] = b ? 1 : 0;
    return this;
  }
  string(s: string): this {
    // Most strings are short and ASCII: written here, without a call into the runtime.
    const n = s.length;
    if (n < 64) {
      let ascii = true;
      for (let i = 0; i < n && ascii; i++) ascii = s.charCodeAt(i) < 128;
      if (ascii) {
        this.uint32(n);
        this.room(n);
        for (let i = 0; i < n; i++) this.buf[this.pos++] = s.charCodeAt(i);
        return this;
      }
    }
    const length = Buffer.byteLength(s, 'utf8');
    this.uint32(length);
    this.room(length);
    this.pos += this.buf.write(s, this.pos, length, 'utf8');
    return this;
  }
  bytes(b: Uint8Array): this {
    this.uint32(b.length);
    return this.raw(b);
  }
  /** Bytes as they are, with no length before them. */
  raw(b: Uint8Array): this {
    this.room(b.length);
    this.buf.set(b, this.pos);
    this.pos += b.length;
    return this;
  }

  /** A nested message begins: a byte is kept for its length. */
  fork(): this {
    this.room(1);
    this.starts.push(this.pos++);
    return this;
  }
  /** The nested message begun last ends: its length is written before it. */
  ldelim(): this {
    const start = this.starts.pop()!;
    const length = this.pos - start - 1;
    if (length < 128) {
      this.buf[start] = length;
      return this;
    }
    let size = 1;
    for (let n = length; n > 127; n >>>= 7) size++;
    this.room(size - 1);
    this.buf.copyWithin(start + size, start + 1, this.pos);
    this.pos += size - 1;
    let n = length;
    let at = start;
    while (n > 127) {
      this.buf[at++] = (n & 127) | 128;
      n >>>= 7;
    }
    this.buf[at] = n;
    return this;
  }
  /** The nested message begun last is dropped, and the `before` bytes written just ahead of it (its tag). */
  drop(before: number): this {
    this.pos = this.starts.pop()! - before;
    return this;
  }
}

export class ProtoJsonWriter {
  private readonly plans = new Map<protobuf.Type, TypePlan>();
  private readonly w = new ByteWriter();

  constructor(
    /** A type by the name an `Any`'s `@type` ends with. */
    private readonly lookupType: (name: string) => protobuf.Type,
    /** The general path, for the well-known types this writer leaves to it. */
    private readonly general: (type: protobuf.Type, json: unknown) => Uint8Array,
  ) {}

  encode(type: protobuf.Type, json: unknown): Uint8Array {
    const w = this.w.reset();
    this.message(type, json, w, 0);
    return w.finish();
  }

  private plan(type: protobuf.Type): TypePlan {
    let plan = this.plans.get(type);
    if (plan) return plan;
    const full = type.fullName;
    const name = full.startsWith('.google.protobuf.') ? full.slice('.google.protobuf.'.length) : '';
    const special = name === 'Any' ? 'any' : name === 'Duration' ? 'duration' : WRAPPERS.has(name) ? 'wrapper' : OTHER_WELL_KNOWN.has(name) ? 'embed' : undefined;
    const byKey = new Map<string, FieldPlan>();
    for (const f of type.fieldsArray) {
      const field = f.resolve();
      // Extensions, groups and maps keyed by other than strings are left to the general path (their keys are unknown here).
      if (field.declaringField || (field as { delimited?: boolean }).delimited || (field.map && (field as unknown as protobuf.MapField).keyType !== 'string')) continue;
      const resolved = field.resolvedType;
      const scalar = resolved ? undefined : field.type;
      const wire = resolved instanceof protobuf.Enum ? 0 : scalar !== undefined ? WIRE[scalar]! : 2;
      const fp: FieldPlan = {
        id: field.id,
        tag: ((field.id << 3) | wire) >>> 0,
        delimitedTag: ((field.id << 3) | 2) >>> 0,
        scalar,
        message: resolved instanceof protobuf.Type ? resolved : undefined,
        enumType: resolved instanceof protobuf.Enum ? resolved : undefined,
        repeated: field.repeated,
        packed: field.repeated && field.packed && (resolved instanceof protobuf.Enum || (scalar !== undefined && PACKABLE.has(scalar))),
        map: field.map,
        mapValueTag: field.map ? (16 | wire) >>> 0 : 0,
        presence: Boolean(field.hasPresence),
        oneof: field.partOf?.name,
      };
      for (const key of [field.name, field.jsonName, (field as { protoName?: string }).protoName]) if (key !== undefined) byKey.set(key, fp);
    }
    this.plans.set(type, (plan = { byKey, special }));
    return plan;
  }

  private message(type: protobuf.Type, json: unknown, w: ByteWriter, depth: number): void {
    if (depth > MAX_DEPTH) throw new NotHandled('nesting');
    const plan = this.plan(type);
    if (plan.special === 'any') return this.any(json, w, depth);
    if (plan.special === 'duration') return duration(json, w);
    // A wrapper's JSON is its value alone.
    if (plan.special === 'wrapper') return this.singular(plan.byKey.get('value')!, json, w, depth, true);
    if (plan.special === 'embed') {
      w.raw(this.general(type, json));
      return;
    }
    if (!isObject(json)) throw new NotHandled('not an object');
    // Fields named in number order (most messages) are written as they come, in a second pass over the keys.
    let sorted = true;
    let lastId = -1;
    for (const key in json) {
      const fp = plan.byKey.get(key);
      if (!fp) throw new NotHandled(`field ${key}`);
      const value = json[key];
      if (value === null) {
        // protojson reads null as absent, but for google.protobuf.Value and NullValue.
        if (fp.message?.fullName === '.google.protobuf.Value' || fp.enumType?.fullName === '.google.protobuf.NullValue') throw new NotHandled('null value');
        continue;
      }
      if (value === undefined) throw new NotHandled('undefined');
      if (fp.id <= lastId) sorted = false;
      lastId = fp.id;
    }
    if (sorted) {
      let oneofs: Set<string> | undefined;
      for (const key in json) {
        const value = json[key];
        if (value === null) continue;
        const fp = plan.byKey.get(key)!;
        oneofs = withOneof(oneofs, fp);
        this.field(fp, value, w, depth);
      }
      return;
    }
    const present: [FieldPlan, unknown][] = [];
    for (const key in json) if (json[key] !== null) present.push([plan.byKey.get(key)!, json[key]]);
    present.sort((a, b) => a[0].id - b[0].id);
    let oneofs: Set<string> | undefined;
    for (let i = 0; i < present.length; i++) {
      const [fp, value] = present[i]!;
      if (i > 0 && present[i - 1]![0] === fp) throw new NotHandled('field named twice');
      oneofs = withOneof(oneofs, fp);
      this.field(fp, value, w, depth);
    }
  }

  private field(fp: FieldPlan, value: unknown, w: ByteWriter, depth: number): void {
    if (fp.map) {
      if (!isObject(value)) throw new NotHandled('map');
      for (const key in value) {
        const v = value[key];
        if (v === null || v === undefined || !wellFormed(key)) throw new NotHandled('map entry');
        w.uint32(fp.delimitedTag).fork().uint32(10).string(key);
        if (fp.message) {
          w.uint32(18).fork();
          this.message(fp.message, v, w, depth + 1);
          w.ldelim();
        } else this.scalar(fp, v, w.uint32(fp.mapValueTag));
        w.ldelim();
      }
      return;
    }
    if (fp.repeated) {
      if (!Array.isArray(value)) throw new NotHandled('not an array');
      if (value.length === 0) return;
      if (fp.packed) {
        w.uint32(fp.delimitedTag).fork();
        for (const v of value) {
          if (v === null) throw new NotHandled('null element');
          this.scalar(fp, v, w);
        }
        w.ldelim();
        return;
      }
      for (const v of value) {
        if (v === null) throw new NotHandled('null element');
        this.singular(fp, v, w, depth);
      }
      return;
    }
    this.singular(fp, value, w, depth, !fp.presence);
  }

  /** One value of a field: a message always; a scalar left out when `implicit` and it is its type's default. */
  private singular(fp: FieldPlan, value: unknown, w: ByteWriter, depth: number, implicit = false): void {
    if (fp.message) {
      w.uint32(fp.tag).fork();
      this.message(fp.message, value, w, depth + 1);
      w.ldelim();
      return;
    }
    const v = scalarOf(fp, value);
    if (implicit && (v === 0 || v === false || v === '' || (v instanceof Uint8Array && v.length === 0))) return;
    write(fp, v, w.uint32(fp.tag));
  }

  /** A scalar or enum value, without its tag. */
  private scalar(fp: FieldPlan, value: unknown, w: ByteWriter): void {
    write(fp, scalarOf(fp, value), w);
  }

  private any(json: unknown, w: ByteWriter, depth: number): void {
    if (!isObject(json) || typeof json['@type'] !== 'string') throw new NotHandled('Any');
    const typeUrl = json['@type'];
    let inner: protobuf.Type;
    try {
      inner = this.lookupType(typeUrl.slice(typeUrl.lastIndexOf('/') + 1));
    } catch {
      throw new NotHandled('Any of an unknown type');
    }
    let body: unknown;
    if (this.plan(inner).special !== undefined) body = json.value;
    else {
      const rest: Record<string, unknown> = {};
      for (const k in json) if (k !== '@type') rest[k] = json[k];
      body = rest;
    }
    let url = typeUrl.startsWith('.') ? typeUrl.slice(1) : typeUrl;
    if (!url.includes('/')) url = `/${url}`;
    if (!wellFormed(url)) throw new NotHandled('Any url');
    w.uint32(10).string(url);
    // The value, left out when its message is empty.
    w.uint32(18).fork();
    const start = w.pos;
    this.message(inner, body, w, depth + 1);
    if (w.pos === start) w.drop(1);
    else w.ldelim();
  }
}

/** The oneofs a message has a member of, with `fp`'s (the set made when first needed): a second member of one is refused. */
function withOneof(oneofs: Set<string> | undefined, fp: FieldPlan): Set<string> | undefined {
  if (fp.oneof === undefined) return oneofs;
  const set = oneofs ?? new Set<string>();
  if (set.has(fp.oneof)) throw new NotHandled('two members of a oneof');
  return set.add(fp.oneof);
}

/** A scalar or enum value as protojson reads it from JSON. */
function scalarOf(fp: FieldPlan, value: unknown): number | string | boolean | Uint8Array {
  if (fp.enumType) return enumNumber(fp.enumType, value);
  const type = fp.scalar!;
  switch (type) {
    case 'string':
      if (typeof value !== 'string' || !wellFormed(value)) throw new NotHandled('string');
      return value;
    case 'bool':
      if (typeof value !== 'boolean') throw new NotHandled('bool');
      return value;
    case 'double':
    case 'float':
      if (typeof value !== 'number' || !Number.isFinite(value) || (type === 'float' && Math.abs(value) > MAX_FLOAT)) throw new NotHandled(type);
      return value;
    case 'bytes':
      return bytesOf(value);
  }
  return integer(type, value);
}

function write(fp: FieldPlan, v: number | string | boolean | Uint8Array, w: ByteWriter): void {
  if (fp.enumType) w.int32(v as number);
  else (w as unknown as Record<string, (v: unknown) => ByteWriter>)[fp.scalar!]!.call(w, v);
}

function enumNumber(type: protobuf.Enum, value: unknown): number {
  if (typeof value === 'string' && Object.prototype.hasOwnProperty.call(type.values, value)) return type.values[value]!;
  if (typeof value === 'number' && (value | 0) === value) return value;
  throw new NotHandled('enum');
}

/** An integer as protojson reads it (a number, or a string of digits), in its type's range. */
function integer(type: string, value: unknown): number {
  let n: number;
  if (typeof value === 'number') n = value;
  else if (typeof value === 'string' && /^-?[0-9]{1,15}$/.test(value)) n = Number(value);
  else throw new NotHandled('integer');
  if (!Number.isSafeInteger(n)) throw new NotHandled('integer');
  const range = INT32[type];
  if (range ? n < range[0] || n > range[1] : !INT64.has(type) || (UNSIGNED64.has(type) && n < 0)) throw new NotHandled('integer range');
  return n;
}

function bytesOf(value: unknown): Uint8Array {
  if (typeof value !== 'string') throw new NotHandled('bytes');
  let s = value.replace(/-/g, '+').replace(/_/g, '/');
  while (s.length % 4) s += '=';
  const buffer = protobuf.util.newBuffer(protobuf.util.base64.length(s)) as Uint8Array;
  protobuf.util.base64.decode(s, buffer, 0);
  return buffer;
}

/** A Duration's JSON (`"1.5s"`) as its message: seconds and nanos, each left out when zero. */
function duration(json: unknown, w: ByteWriter): void {
  const match = typeof json === 'string' ? /^(-)?([0-9]+)(?:\.([0-9]{1,9}))?s$/.exec(json) : null;
  if (!match) throw new NotHandled('Duration');
  const sign = match[1] ? -1 : 1;
  const seconds = parseInt(match[2]!, 10) * sign || 0;
  const nanos = match[3] ? parseInt(match[3].padEnd(9, '0'), 10) * sign || 0 : 0;
  if (seconds > 315576000000 || seconds < -315576000000) throw new NotHandled('Duration range');
  if (seconds !== 0) w.uint32(8).int64(seconds);
  if (nanos !== 0) w.uint32(16).int32(nanos);
}
