import { isIPv4, isIPv6 } from 'node:net';

/**
 * Just enough DER (X.690) to write a leaf certificate and to read the
 * fields a leaf copies from its issuer. Issuing is the mesh CA's hot path (a
 * mesh of thousands of identities issues thousands at start): a general
 * ASN.1 library spends about 6 ms a certificate encoding and parsing schemas;
 * writing the few structures directly costs a few tenths of that.
 */

const SEQUENCE = 0x30;
const SET = 0x31;

function length(n: number): Buffer {
  if (n < 0x80) return Buffer.from([n]);
  const bytes: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v % 256);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

/** A TLV with the given tag (one byte: class, constructed bit and number < 31). */
export function tlv(tag: number, ...content: Buffer[]): Buffer {
  const body = Buffer.concat(content);
  return Buffer.concat([Buffer.from([tag]), length(body.length), body]);
}

export const sequence = (...items: Buffer[]): Buffer => tlv(SEQUENCE, ...items);
export const set = (...items: Buffer[]): Buffer => tlv(SET, ...items);
export const octetString = (b: Buffer): Buffer => tlv(0x04, b);
export const bitString = (b: Buffer, unusedBits = 0): Buffer => tlv(0x03, Buffer.from([unusedBits]), b);
export const boolean = (v: boolean): Buffer => tlv(0x01, Buffer.from([v ? 0xff : 0x00]));
export const utf8String = (s: string): Buffer => tlv(0x0c, Buffer.from(s, 'utf8'));
/** [n] EXPLICIT: a constructed context-specific wrapper. */
export const explicit = (n: number, inner: Buffer): Buffer => tlv(0xa0 | n, inner);

/** A non-negative INTEGER from its big-endian magnitude (a leading zero keeps it positive). */
export function unsignedInteger(magnitude: Buffer): Buffer {
  let i = 0;
  while (i < magnitude.length - 1 && magnitude[i] === 0) i++;
  const m = magnitude.subarray(i);
  return tlv(0x02, (m[0]! & 0x80) !== 0 ? Buffer.concat([Buffer.from([0]), m]) : m);
}

export function oid(dotted: string): Buffer {
  const parts = dotted.split('.').map(Number);
  const bytes = [40 * parts[0]! + parts[1]!];
  for (const p of parts.slice(2)) {
    const chunk: number[] = [p & 0x7f];
    for (let v = Math.floor(p / 128); v > 0; v = Math.floor(v / 128)) chunk.unshift(0x80 | (v & 0x7f));
    bytes.push(...chunk);
  }
  return tlv(0x06, Buffer.from(bytes));
}

/** UTCTime up to 2049, GeneralizedTime from 2050 (RFC 5280 4.1.2.5), to the second. */
export function time(d: Date): Buffer {
  const p = (n: number, w = 2) => String(n).padStart(w, '0');
  const rest = `${p(d.getUTCMonth() + 1)}${p(d.getUTCDate())}${p(d.getUTCHours())}${p(d.getUTCMinutes())}${p(d.getUTCSeconds())}Z`;
  const y = d.getUTCFullYear();
  return y < 2050 ? tlv(0x17, Buffer.from(`${p(y % 100)}${rest}`, 'latin1')) : tlv(0x18, Buffer.from(`${p(y, 4)}${rest}`, 'latin1'));
}

/** SubjectAltName GeneralNames: URIs [6], DNS names [2], IP addresses [7]. */
export function generalNames(names: { uris?: readonly string[]; dnsNames?: readonly string[]; ipAddresses?: readonly string[] }): Buffer {
  const ip = (a: string): Buffer => {
    if (isIPv4(a)) return Buffer.from(a.split('.').map(Number));
    if (!isIPv6(a)) throw new Error(`not an IP address: ${a}`);
    const [head, tail = ''] = a.split('::');
    const groups = (s: string) => (s === '' ? [] : s.split(':'));
    const h = groups(head!);
    const t = a.includes('::') ? groups(tail) : [];
    const all = [...h, ...Array(8 - h.length - t.length).fill('0'), ...t];
    return Buffer.from(all.flatMap((g) => [parseInt(g, 16) >> 8, parseInt(g, 16) & 0xff]));
  };
  return sequence(
    ...(names.uris ?? []).map((u) => tlv(0x86, Buffer.from(u, 'latin1'))),
    ...(names.dnsNames ?? []).map((n) => tlv(0x82, Buffer.from(n, 'latin1'))),
    ...(names.ipAddresses ?? []).map((a) => tlv(0x87, ip(a))),
  );
}

/** One TLV read from `buf` at `at`: its tag, the whole element and its content. */
export interface Element {
  readonly tag: number;
  readonly whole: Buffer;
  readonly content: Buffer;
  readonly end: number;
}

export function read(buf: Buffer, at = 0): Element {
  const tag = buf[at]!;
  let len = buf[at + 1]!;
  let head = 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n === 0 || n > 4) throw new Error('unsupported DER length');
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + buf[at + 2 + i]!;
    head += n;
  }
  const end = at + head + len;
  if (end > buf.length) throw new Error('truncated DER');
  return { tag, whole: buf.subarray(at, end), content: buf.subarray(at + head, end), end };
}

/** The elements of a constructed element's content, in order. */
export function children(e: Element): Element[] {
  const out: Element[] = [];
  for (let at = 0; at < e.content.length; ) {
    const c = read(e.content, at);
    out.push(c);
    at = c.end;
  }
  return out;
}
