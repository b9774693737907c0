import 'reflect-metadata';
import { createECDH, KeyObject, randomBytes, sign, webcrypto, X509Certificate } from 'node:crypto';
import * as der from './der.js';
import * as x509 from '@peculiar/x509';

/**
 * The X.509 operations smc's certificate authority needs, over WebCrypto:
 * ECDSA P-256 keys, a self-signed root, and SPIFFE leaf certificates (URI
 * SAN, client and server auth) signed by it.
 */
x509.cryptoProvider.set(webcrypto as unknown as Crypto);

const EC = { name: 'ECDSA', namedCurve: 'P-256' } as const;
const SIGN = { name: 'ECDSA', hash: 'SHA-256' } as const;

export interface KeyPair {
  readonly publicKey: CryptoKey;
  readonly privateKey: CryptoKey;
}

export async function generateKeyPair(): Promise<KeyPair> {
  return (await webcrypto.subtle.generateKey(EC, true, ['sign', 'verify'])) as unknown as KeyPair;
}

/**
 * A leaf's P-256 key pair: its public key as SPKI DER (what `issueLeaf`
 * writes into the certificate) and its private key as PKCS#8 PEM. The key is
 * made by OpenSSL's EC key generation (through `createECDH`, the same
 * generator as `generateKeyPair`) and its two encodings written here
 * (`p256KeyEncodings`): OpenSSL 3's encoders took about 0.35 ms of the
 * 0.43 ms that `generateKeyPairSync` took to give them, and a start issues
 * thousands.
 */
export function generateLeafKeys(): { readonly spki: Buffer; readonly privateKeyPem: string } {
  const ecdh = createECDH('prime256v1');
  const point = ecdh.generateKeys();
  const { spki, pkcs8 } = p256KeyEncodings(ecdh.getPrivateKey(), point);
  return { spki, privateKeyPem: x509.PemConverter.encode(new Uint8Array(pkcs8), 'PRIVATE KEY') };
}

/** id-ecPublicKey with the named curve P-256 (RFC 5480), as both encodings name it. */
const P256_ALGORITHM = der.sequence(der.oid('1.2.840.10045.2.1'), der.oid('1.2.840.10045.3.1.7'));
const P256_ORDER_BYTES = 32;

/**
 * A P-256 key's SubjectPublicKeyInfo (RFC 5480) and PKCS#8 PrivateKeyInfo
 * (RFC 5208, its ECPrivateKey of RFC 5915 with the public key and without the
 * curve, which the algorithm names), from its private scalar (big-endian,
 * leading zeros possibly left out) and its uncompressed public point: the
 * bytes OpenSSL exports for that key.
 */
export function p256KeyEncodings(scalar: Buffer, point: Buffer): { readonly spki: Buffer; readonly pkcs8: Buffer } {
  if (scalar.length > P256_ORDER_BYTES || point.length !== 1 + 2 * P256_ORDER_BYTES || point[0] !== 0x04) throw new Error('not a P-256 private scalar and uncompressed public point');
  const d = Buffer.alloc(P256_ORDER_BYTES);
  scalar.copy(d, P256_ORDER_BYTES - scalar.length);
  const publicKey = der.bitString(point);
  const ecPrivateKey = der.sequence(der.unsignedInteger(Buffer.from([1])), der.octetString(d), der.explicit(1, publicKey));
  return {
    spki: der.sequence(P256_ALGORITHM, publicKey),
    pkcs8: der.sequence(der.unsignedInteger(Buffer.from([0])), P256_ALGORITHM, der.octetString(ecPrivateKey)),
  };
}

export async function privateKeyToPem(key: CryptoKey): Promise<string> {
  const der = await webcrypto.subtle.exportKey('pkcs8', key as unknown as webcrypto.CryptoKey);
  return x509.PemConverter.encode(der, 'PRIVATE KEY');
}

export async function privateKeyFromPem(pem: string): Promise<KeyPair> {
  const der = x509.PemConverter.decodeFirst(pem);
  const privateKey = (await webcrypto.subtle.importKey('pkcs8', der, EC, true, ['sign'])) as unknown as CryptoKey;
  // A PKCS#8 EC key carries its public point; JWK is the portable way to recover it.
  const jwk = await webcrypto.subtle.exportKey('jwk', privateKey as unknown as webcrypto.CryptoKey);
  const publicKey = (await webcrypto.subtle.importKey('jwk', { kty: jwk.kty, crv: jwk.crv, x: jwk.x, y: jwk.y }, EC, true, ['verify'])) as unknown as CryptoKey;
  return { publicKey, privateKey };
}

export interface Validity {
  readonly notBefore: Date;
  readonly notAfter: Date;
}

/** A self-signed root for the trust domain. */
export async function createRootCertificate(trustDomain: string, keys: KeyPair, validity: Validity): Promise<string> {
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    name: `CN=smc mesh root (${trustDomain}), O=smc`,
    keys: keys as unknown as CryptoKeyPair,
    signingAlgorithm: SIGN,
    ...validity,
    extensions: [
      new x509.BasicConstraintsExtension(true, 1, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
      new x509.SubjectAlternativeNameExtension([{ type: 'url', value: `spiffe://${trustDomain}` }]),
    ],
  });
  return cert.toString('pem');
}

const subjectAltNames = (spiffeId: string, extra: { dnsNames?: readonly string[]; ipAddresses?: readonly string[] }) =>
  new x509.SubjectAlternativeNameExtension(
    [
      { type: 'url', value: spiffeId },
      ...(extra.dnsNames ?? []).map((value) => ({ type: 'dns' as const, value })),
      ...(extra.ipAddresses ?? []).map((value) => ({ type: 'ip' as const, value })),
    ],
    true,
  );

/** A PEM PKCS#10 request for one SPIFFE ID (for an external CA to sign). */
export async function certificateRequest(spiffeId: string, keys: KeyPair, extra: { dnsNames?: readonly string[]; ipAddresses?: readonly string[] } = {}): Promise<string> {
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({
    name: 'O=smc',
    keys: keys as unknown as CryptoKeyPair,
    signingAlgorithm: SIGN,
    extensions: [subjectAltNames(spiffeId, extra)],
  });
  return csr.toString('pem');
}

/** What a certificate says, for checks and status (never the key). */
export interface CertificateFacts {
  readonly serial: string;
  readonly subject: string;
  readonly issuer: string;
  readonly notBefore: Date;
  readonly notAfter: Date;
  readonly uris: readonly string[];
  readonly dnsNames: readonly string[];
  readonly ipAddresses: readonly string[];
  readonly extendedKeyUsages: readonly string[];
}

export function certificateFacts(pem: string): CertificateFacts {
  const cert = new x509.X509Certificate(pem);
  const san = cert.getExtension(x509.SubjectAlternativeNameExtension);
  const names = san?.names.toJSON() ?? [];
  const eku = cert.getExtension(x509.ExtendedKeyUsageExtension);
  return {
    serial: cert.serialNumber,
    subject: cert.subject,
    issuer: cert.issuer,
    notBefore: cert.notBefore,
    notAfter: cert.notAfter,
    uris: names.filter((n) => n.type === 'url').map((n) => n.value),
    dnsNames: names.filter((n) => n.type === 'dns').map((n) => n.value),
    ipAddresses: names.filter((n) => n.type === 'ip').map((n) => n.value),
    extendedKeyUsages: (eku?.usages ?? []).map(String),
  };
}

/**
 * What a leaf copies from its issuer (its subject Name, as DER, and the
 * authority key identifier extension naming its key), read once per issuer:
 * a mesh issues thousands of leaves from the same root. Few roots ever exist
 * (signing, next, previous); the cache is cleared past a handful anyway.
 */
interface IssuerFacts {
  readonly subjectName: Buffer;
  readonly authorityKeyIdentifier: Buffer;
  readonly signingKey: KeyObject;
}
const issuers = new Map<string, Promise<IssuerFacts>>();
function issuerFacts(pem: string, privateKey: CryptoKey): Promise<IssuerFacts> {
  let known = issuers.get(pem);
  if (!known) {
    if (issuers.size >= 8) issuers.clear();
    known = (async () => {
      const ca = new x509.X509Certificate(pem);
      const tbs = der.children(der.read(Buffer.from(ca.rawData)))[0]!;
      const fields = der.children(tbs);
      // version [0] is present in a v3 certificate: serial, signature, issuer, validity, subject follow.
      const subject = fields[fields[0]!.tag === 0xa0 ? 5 : 4]!;
      const aki = await x509.AuthorityKeyIdentifierExtension.create(ca.publicKey);
      return { subjectName: Buffer.from(subject.whole), authorityKeyIdentifier: Buffer.from(aki.rawData), signingKey: KeyObject.from(privateKey as unknown as webcrypto.CryptoKey) };
    })();
    issuers.set(pem, known);
  }
  return known;
}

const OID = {
  ecdsaWithSha256: '1.2.840.10045.4.3.2',
  organization: '2.5.4.10',
  basicConstraints: '2.5.29.19',
  keyUsage: '2.5.29.15',
  extendedKeyUsage: '2.5.29.37',
  subjectAltName: '2.5.29.17',
  serverAuth: '1.3.6.1.5.5.7.3.1',
  clientAuth: '1.3.6.1.5.5.7.3.2',
};

/**
 * A leaf for one SPIFFE ID, usable as TLS client and server certificate:
 * subject O=smc, the SPIFFE ID (and any extra names) in a critical
 * SubjectAltName, basicConstraints CA:false and keyUsage digitalSignature,
 * keyEncipherment (both critical), extendedKeyUsage serverAuth and
 * clientAuth, the issuer's key identifier; ECDSA P-256 with SHA-256, a random
 * 128-bit serial. Written as DER directly (see der.ts). Returned with what
 * the issuer knows of it without parsing it again: its serial (lower-case hex)
 * and expiry (whole seconds).
 */
export async function issueLeaf(
  issuer: { certificatePem: string; privateKey: CryptoKey },
  spiffeId: string,
  /** The leaf's public key as SPKI DER (`generateLeafKeys`). */
  spki: Buffer,
  validity: Validity,
  /** Extra names for servers that clients reach by host name or address (the xDS port). */
  extra: { dnsNames?: readonly string[]; ipAddresses?: readonly string[] } = {},
): Promise<{ pem: string; serial: string; notAfter: Date }> {
  const ca = await issuerFacts(issuer.certificatePem, issuer.privateKey);
  const serial = randomBytes(16);
  serial[0] = (serial[0]! & 0x7f) | 0x01;
  const algorithm = der.sequence(der.oid(OID.ecdsaWithSha256));
  const extension = (id: string, critical: boolean, value: Buffer) => der.sequence(der.oid(id), ...(critical ? [der.boolean(true)] : []), der.octetString(value));
  const tbs = der.sequence(
    der.explicit(0, der.unsignedInteger(Buffer.from([2]))),
    der.unsignedInteger(serial),
    algorithm,
    ca.subjectName,
    der.sequence(der.time(validity.notBefore), der.time(validity.notAfter)),
    der.sequence(der.set(der.sequence(der.oid(OID.organization), der.utf8String('smc')))),
    spki,
    der.explicit(
      3,
      der.sequence(
        extension(OID.basicConstraints, true, der.sequence()),
        // digitalSignature (bit 0) and keyEncipherment (bit 2): 1010 0000, five unused bits.
        extension(OID.keyUsage, true, der.bitString(Buffer.from([0xa0]), 5)),
        extension(OID.extendedKeyUsage, false, der.sequence(der.oid(OID.serverAuth), der.oid(OID.clientAuth))),
        ca.authorityKeyIdentifier,
        extension(OID.subjectAltName, true, der.generalNames({ uris: [spiffeId], dnsNames: extra.dnsNames, ipAddresses: extra.ipAddresses })),
      ),
    ),
  );
  const signature = sign('sha256', tbs, { key: ca.signingKey, dsaEncoding: 'der' });
  const cert = der.sequence(tbs, algorithm, der.bitString(signature));
  return {
    pem: x509.PemConverter.encode(new Uint8Array(cert), 'CERTIFICATE'),
    serial: serial.toString('hex'),
    notAfter: new Date(Math.floor(validity.notAfter.getTime() / 1000) * 1000),
  };
}

/** The public keys of a trust bundle, parsed once per bundle (a restart checks thousands of leaves against one). */
let bundleKeys: { bundle: string; keys: KeyObject[] } | undefined;
function rootKeys(bundlePem: string): KeyObject[] {
  if (bundleKeys?.bundle !== bundlePem) {
    const roots = bundlePem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
    bundleKeys = { bundle: bundlePem, keys: roots.map((pem) => new X509Certificate(pem).publicKey) };
  }
  return bundleKeys.keys;
}

/**
 * Whether the first certificate of `chainPem` is signed by one of the
 * certificates in `bundlePem` (and is valid now). Node's native X.509 parser:
 * a restart checks every certificate it kept, thousands in a big mesh.
 */
export async function signedBy(chainPem: string, bundlePem: string, now: Date): Promise<boolean> {
  try {
    const leaf = new X509Certificate(chainPem);
    if (now.getTime() < Date.parse(leaf.validFrom) || now.getTime() > Date.parse(leaf.validTo)) return false;
    return rootKeys(bundlePem).some((key) => leaf.verify(key));
  } catch {
    return false;
  }
}

/** Whether `privateKey` is the key of the certificate `pem` (by signing and verifying a probe). */
export async function keyMatchesCertificate(privateKey: CryptoKey, pem: string): Promise<boolean> {
  const probe = new TextEncoder().encode('smc key check');
  const signature = await webcrypto.subtle.sign(SIGN, privateKey as unknown as webcrypto.CryptoKey, probe);
  const publicKey = await new x509.X509Certificate(pem).publicKey.export(EC, ['verify'], webcrypto as unknown as Crypto);
  return webcrypto.subtle.verify(SIGN, publicKey as unknown as webcrypto.CryptoKey, signature, probe);
}
