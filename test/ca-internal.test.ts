import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openCertificateStore } from '../src/adapters/ca/certificate-store.js';
import { openInternalCA } from '../src/adapters/ca/internal-ca.js';
import { certificateFacts, generateLeafKeys, p256KeyEncodings, signedBy } from '../src/adapters/ca/x509.js';
import { createECDH, createPrivateKey, createPublicKey, sign, verify, X509Certificate } from 'node:crypto';
import * as x509 from '@peculiar/x509';

const state = () => mkdtempSync(join(tmpdir(), 'smc-state-'));
const ID = 'spiffe://cluster.local/ns/app/sa/web';

test('the root is created once, key mode 0600, and loaded again on restart', async () => {
  const dir = state();
  const logs: string[] = [];
  const a = await openInternalCA(dir, 'cluster.local', (l) => logs.push(l));
  assert.equal(statSync(join(dir, 'ca', 'root.key')).mode & 0o777, 0o600);
  assert.equal(logs.filter((l) => l.includes('created a new mesh root')).length, 1);
  const b = await openInternalCA(dir, 'cluster.local', (l) => logs.push(l));
  assert.equal(b.trustBundle(), a.trustBundle(), 'the same root after a restart');
  assert.equal(logs.filter((l) => l.includes('created a new mesh root')).length, 1, 'no second root');
});

test('any trace of an earlier mesh (proxy certificates, retired roots) refuses a new root: the state folder says restore', async () => {
  const withProxyRecord = state();
  mkdirSync(join(withProxyRecord, 'proxy-certificates'));
  writeFileSync(join(withProxyRecord, 'proxy-certificates', 'ab12.json'), '{}');
  await assert.rejects(openInternalCA(withProxyRecord, 'cluster.local'), /is missing .* a mesh existed: .*proxy-certificates \(proxy certificates it issued\).*Restore the root from your backup/);
  const withRetired = state();
  mkdirSync(join(withRetired, 'ca'));
  writeFileSync(join(withRetired, 'ca', 'retired-1-ab.crt'), 'x');
  await assert.rejects(openInternalCA(withRetired, 'cluster.local'), /a mesh existed: retired-1-ab\.crt in /);
  for (const d of [withProxyRecord, withRetired]) assert.equal(existsSync(join(d, 'ca', 'root.key')), false, 'no root was minted');
});

test('a root write that fails half way (a full disk) leaves no half root behind, and the next start makes a whole one', async () => {
  // A real full disk: a 64 KiB tmpfs, filled up but for a few hundred bytes.
  const dir = state();
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', dir]);
  try {
    let filler = 0;
    try {
      for (;;) writeFileSync(join(dir, `fill-${filler++}`), Buffer.alloc(4096));
    } catch {
      // full
    }
    rmSync(join(dir, `fill-0`));
    writeFileSync(join(dir, 'fill-0'), Buffer.alloc(3600)); // room for the key file, not for both
    await assert.rejects(openInternalCA(dir, 'cluster.local'), /ENOSPC/);
    const ca = existsSync(join(dir, 'ca')) ? readdirSync(join(dir, 'ca')) : [];
    assert.deepEqual(ca, [], 'neither root.key nor root.crt is left behind');
    for (let i = 0; i < filler; i++) rmSync(join(dir, `fill-${i}`), { force: true });
    const logs: string[] = [];
    await openInternalCA(dir, 'cluster.local', (l) => logs.push(l));
    assert.ok(logs.some((l) => l.includes('created a new mesh root')));
    assert.ok(readFileSync(join(dir, 'ca', 'root.crt'), 'utf8').includes('BEGIN CERTIFICATE'));
  } finally {
    execFileSync('umount', [dir]);
  }
});

test('a missing, half-missing or corrupt root is a clear startup error, never a new root', async () => {
  const dir = state();
  await openInternalCA(dir, 'cluster.local');
  const store = openCertificateStore(dir);
  const ca = await openInternalCA(dir, 'cluster.local');
  await store.save(ID, await ca.issue(ID, { ttlMs: 3600_000 }));
  const cert = readFileSync(join(dir, 'ca', 'root.crt'), 'utf8');
  const key = readFileSync(join(dir, 'ca', 'root.key'), 'utf8');

  rmSync(join(dir, 'ca', 'root.key'));
  await assert.rejects(openInternalCA(dir, 'cluster.local'), /incomplete: root\.key is missing.*will not mint a new root/);

  writeFileSync(join(dir, 'ca', 'root.key'), 'not a key');
  await assert.rejects(openInternalCA(dir, 'cluster.local'), /cannot load the mesh CA from .*ca/);

  const other = state();
  await openInternalCA(other, 'cluster.local');
  writeFileSync(join(dir, 'ca', 'root.key'), readFileSync(join(other, 'ca', 'root.key')));
  await assert.rejects(openInternalCA(dir, 'cluster.local'), /root\.key does not belong to root\.crt/);

  rmSync(join(dir, 'ca'), { recursive: true });
  await assert.rejects(openInternalCA(dir, 'cluster.local'), /root \(root\.crt, root\.key\) is missing .* a mesh existed: .*issued \(service certificates it issued\)/);

  // Restored from backup: it works again, with the same root.
  mkdirSync(join(dir, 'ca'));
  writeFileSync(join(dir, 'ca', 'root.crt'), cert);
  writeFileSync(join(dir, 'ca', 'root.key'), key, { mode: 0o600 });
  assert.equal((await openInternalCA(dir, 'cluster.local')).trustBundle(), cert);
});

test('each service certificate carries the public key of the private key issued with it, a P-256 key of its own as PKCS#8 PEM', async () => {
  const ca = await openInternalCA(state(), 'cluster.local');
  const spki = (key: { export(o: { type: 'spki'; format: 'der' }): Buffer }) => key.export({ type: 'spki', format: 'der' }).toString('hex');
  const seen = new Set<string>();
  for (let i = 0; i < 5; i++) {
    const issued = await ca.issue(ID, { ttlMs: 3600_000 });
    assert.match(issued.privateKey, /^-----BEGIN PRIVATE KEY-----\n[A-Za-z0-9+/=\n]+-----END PRIVATE KEY-----$/);
    const key = createPublicKey(issued.privateKey);
    assert.equal(key.asymmetricKeyDetails?.namedCurve, 'prime256v1');
    const cert = new X509Certificate(issued.certificateChain);
    assert.equal(spki(cert.publicKey), spki(key), 'the certificate names the key issued with it');
    assert.ok(cert.checkPrivateKey(createPrivateKey(issued.privateKey)));
    seen.add(spki(key));
  }
  assert.equal(seen.size, 5, 'a new key each time');
});

test('a leaf key is written as OpenSSL writes it: its PKCS#8 and SPKI are the bytes OpenSSL exports for the same key, short scalars included', () => {
  const exported = (pkcs8: Buffer) => {
    const key = createPrivateKey({ key: pkcs8, format: 'der', type: 'pkcs8' });
    assert.equal(key.asymmetricKeyDetails?.namedCurve, 'prime256v1');
    return { pkcs8: key.export({ type: 'pkcs8', format: 'der' }), spki: createPublicKey(key).export({ type: 'spki', format: 'der' }) };
  };
  // Scalars with leading zero bytes (one key in 256 has one): the scalar is written in its full 32 bytes.
  const scalars = [Buffer.alloc(32, 0x11), Buffer.concat([Buffer.alloc(1), Buffer.alloc(31, 0x42)]), Buffer.concat([Buffer.alloc(5), Buffer.alloc(27, 0xfe)]), Buffer.concat([Buffer.alloc(31), Buffer.from([7])])];
  for (const d of scalars) {
    const ecdh = createECDH('prime256v1');
    ecdh.setPrivateKey(d);
    const point = ecdh.getPublicKey();
    for (const given of [d, ecdh.getPrivateKey()]) {
      const ours = p256KeyEncodings(given, point);
      const theirs = exported(ours.pkcs8);
      assert.deepEqual(ours.pkcs8, theirs.pkcs8, `scalar ${d.toString('hex')} given in ${given.length} bytes`);
      assert.deepEqual(ours.spki, theirs.spki);
    }
  }
  assert.throws(() => p256KeyEncodings(Buffer.alloc(33, 1), createECDH('prime256v1').generateKeys()), /P-256/);
  const compressed = createECDH('prime256v1');
  compressed.generateKeys();
  assert.throws(() => p256KeyEncodings(compressed.getPrivateKey(), compressed.getPublicKey(undefined, 'compressed')), /P-256/);
  // Keys as issued: each signs what its public key verifies, and OpenSSL writes them as they were written.
  const seen = new Set<string>();
  for (let i = 0; i < 300; i++) {
    const keys = generateLeafKeys();
    const privateKey = createPrivateKey(keys.privateKeyPem);
    assert.deepEqual(privateKey.export({ type: 'pkcs8', format: 'pem' }).toString().trim(), keys.privateKeyPem.replace(/\r\n/g, '\n').trim());
    assert.deepEqual(createPublicKey(privateKey).export({ type: 'spki', format: 'der' }), keys.spki);
    const publicKey = createPublicKey({ key: keys.spki, format: 'der', type: 'spki' });
    assert.ok(verify('sha256', Buffer.from('x'), publicKey, sign('sha256', Buffer.from('x'), privateKey)));
    seen.add(keys.spki.toString('hex'));
  }
  assert.equal(seen.size, 300, 'a new key each time');
});

test('service certificate lifetimes are spread by up to ±10% around the requested one', async () => {
  const ca = await openInternalCA(state(), 'cluster.local');
  const ttl = 24 * 3600_000;
  const start = Date.now();
  const lifetimes: number[] = [];
  for (let i = 0; i < 40; i++) lifetimes.push(((await ca.issue(ID, { ttlMs: ttl, jitter: true })).notAfter.getTime() - start) / ttl);
  assert.ok(lifetimes.every((l) => l >= 0.9 - 0.001 && l <= 1.1 + 0.001), JSON.stringify(lifetimes));
  assert.ok(Math.max(...lifetimes) - Math.min(...lifetimes) > 0.05, 'they really differ');
  const fixed = await ca.issue(ID, { ttlMs: ttl });
  assert.ok(Math.abs((fixed.notAfter.getTime() - start) / ttl - 1) < 0.001);
});

test('the store of issued certificates: one journal at 0600, the last line of an identity decides, a damaged line is skipped, older files are taken in', async () => {
  const dir = state();
  const ca = await openInternalCA(dir, 'cluster.local');
  const store = openCertificateStore(dir);
  const OTHER = 'spiffe://cluster.local/ns/app/sa/other';
  const first = await ca.issue(ID, { ttlMs: 3600_000 });
  const renewed = await ca.issue(ID, { ttlMs: 3600_000 });
  const other = await ca.issue(OTHER, { ttlMs: 3600_000 });
  // Saved together (as a first start does): one journal, no file per identity.
  await Promise.all([store.save(ID, first), store.save(OTHER, other)]);
  await store.save(ID, renewed);
  assert.deepEqual(readdirSync(join(dir, 'issued')), ['certificates.jsonl']);
  assert.equal(statSync(join(dir, 'issued')).mode & 0o777, 0o700);
  assert.equal(statSync(join(dir, 'issued', 'certificates.jsonl')).mode & 0o777, 0o600);
  const serial = (c: { certificateChain: string } | undefined) => certificateFacts(c!.certificateChain).serial;
  let loaded = await openCertificateStore(dir).load();
  assert.equal(serial(loaded.get(ID)), serial(renewed), 'the renewal is the one kept');
  assert.equal(serial(loaded.get(OTHER)), serial(other));

  // A crash cut the last line short: that entry is skipped (and logged, without its key); the rest loads, and later saves still read back.
  const journal = join(dir, 'issued', 'certificates.jsonl');
  const text = readFileSync(journal, 'utf8');
  writeFileSync(journal, text.slice(0, text.length - 40));
  const logs: string[] = [];
  const reopened = openCertificateStore(dir, (l) => logs.push(l));
  loaded = await reopened.load();
  assert.equal(serial(loaded.get(ID)), serial(first), 'the cut line (the renewal) is skipped: the line before it stands');
  assert.equal(serial(loaded.get(OTHER)), serial(other));
  assert.equal(logs.length, 1);
  assert.match(logs[0]!, /ignoring line 3 of .*certificates\.jsonl/);
  assert.ok(!logs[0]!.includes('PRIVATE KEY'));
  await reopened.save(ID, renewed);
  assert.equal(serial((await openCertificateStore(dir).load()).get(ID)), serial(renewed));

  // Forgotten identities stay forgotten after a restart.
  await reopened.remove(ID);
  await reopened.remove(OTHER);
  assert.equal((await openCertificateStore(dir).load()).size, 0);

  // Renewed over and over, the journal is written anew: it stays the size of what it holds.
  for (let i = 0; i < 200; i++) await reopened.save(OTHER, i % 2 === 0 ? other : first);
  const count = readFileSync(journal, 'utf8').split('\n').filter((l) => l !== '').length;
  assert.ok(count <= 2 * 1 + 64 + 1, `${count} lines for one certificate`);
  assert.equal(serial((await openCertificateStore(dir).load()).get(OTHER)), serial(first));

  // A state folder of the one-file-per-identity layout: its certificates are served on, and the files move into the journal.
  const older = state();
  mkdirSync(join(older, 'issued'), { mode: 0o700 });
  // (One written out over several lines, as a hand-edited one may be.)
  writeFileSync(join(older, 'issued', '0123abcd.json'), JSON.stringify({ identity: ID, certificateChain: renewed.certificateChain, privateKey: renewed.privateKey, notAfter: renewed.notAfter.toISOString(), issuedAt: renewed.issuedAt.toISOString() }, null, 2), { mode: 0o600 });
  writeFileSync(join(older, 'issued', '4567cdef.json'), JSON.stringify({ identity: OTHER, certificateChain: other.certificateChain, privateKey: other.privateKey, notAfter: other.notAfter.toISOString() }), { mode: 0o600 });
  loaded = await openCertificateStore(older).load();
  assert.equal(serial(loaded.get(ID)), serial(renewed));
  assert.equal(serial(loaded.get(OTHER)), serial(other));
  assert.deepEqual(readdirSync(join(older, 'issued')), ['certificates.jsonl']);
  loaded = await openCertificateStore(older).load();
  assert.deepEqual([...loaded.keys()].sort(), [ID, OTHER].sort());
  assert.equal(serial(loaded.get(ID)), serial(renewed));
});

test('root rotation: overlap, switch, finish; each step survives a restart; retired roots stay for the xDS port', async () => {
  const dir = state();
  const count = (pem: string) => (pem.match(/BEGIN CERTIFICATE/g) ?? []).length;
  const ca = await openInternalCA(dir, 'cluster.local');
  const oldRoot = ca.trustBundle();
  assert.equal(ca.rotation?.phase(), 'idle');
  await ca.rotation!.begin();
  assert.equal(count(ca.trustBundle()), 2, 'both roots trusted');
  assert.ok(await signedBy((await ca.issue(ID, { ttlMs: 3600_000 })).certificateChain, oldRoot, new Date()), 'the old root still signs');
  const reopened = await openInternalCA(dir, 'cluster.local');
  assert.equal(reopened.rotation?.phase(), 'overlap');
  await assert.rejects(reopened.rotation!.begin(), /already in progress/);

  await reopened.rotation!.switchSigner();
  const newRoot = readFileSync(join(dir, 'ca', 'root.crt'), 'utf8');
  assert.notEqual(newRoot, oldRoot);
  const leaf = await reopened.issue(ID, { ttlMs: 3600_000 });
  assert.ok(await signedBy(leaf.certificateChain, newRoot, new Date()) && !(await signedBy(leaf.certificateChain, oldRoot, new Date())), 'the new root signs');
  assert.equal((await openInternalCA(dir, 'cluster.local')).rotation?.phase(), 'switched');
  assert.equal(count(reopened.trustBundle()), 2);

  await reopened.rotation!.finish();
  assert.equal(reopened.trustBundle(), newRoot, 'the old root left the bundle');
  const after = await openInternalCA(dir, 'cluster.local');
  assert.equal(after.rotation?.phase(), 'idle');
  assert.equal(after.trustBundle(), newRoot);
  assert.equal(count(after.xdsTrust!()), 2, 'the xDS port still accepts proxy certificates of the retired root');
  const server = await after.issueForXds!('spiffe://cluster.local/ns/smc-system/sa/smc-controller', { ttlMs: 3600_000 });
  assert.ok(await signedBy(server.certificateChain, oldRoot, new Date()), 'the xDS server certificate comes from the oldest root, which old bootstraps trust');
});



test('a service certificate is a well-formed SPIFFE leaf: critical SAN, CA:false, key usages, both EKUs, the root\'s key id, signed by the root', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'smc-leaf-'));
  const ca = await openInternalCA(dir, 'cluster.local');
  const issued = await ca.issueForXds!('spiffe://cluster.local/ns/smc-system/sa/smc-controller', { ttlMs: 3600_000, dnsNames: ['localhost', 'smc-controller.smc-system.svc'], ipAddresses: ['127.0.0.1', 'fd00::1'] });
  const leaf = new X509Certificate(issued.certificateChain);
  const root = new X509Certificate(ca.trustBundle());
  assert.ok(leaf.verify(root.publicKey) && leaf.checkIssued(root), 'signed by the mesh root');
  assert.equal(leaf.subjectAltName, 'URI:spiffe://cluster.local/ns/smc-system/sa/smc-controller, DNS:localhost, DNS:smc-controller.smc-system.svc, IP Address:127.0.0.1, IP Address:FD00:0:0:0:0:0:0:1');
  assert.deepEqual(leaf.keyUsage, ['1.3.6.1.5.5.7.3.1', '1.3.6.1.5.5.7.3.2']);
  assert.equal(leaf.ca, false);
  assert.match(leaf.serialNumber, /^[0-9A-F]{32}$/);
  assert.ok(Math.abs(new Date(leaf.validTo).getTime() - issued.notAfter.getTime()) < 1000);
  const parsed = new x509.X509Certificate(issued.certificateChain);
  const ext = <T extends x509.Extension>(type: new (raw: ArrayBuffer) => T) => parsed.getExtension(type as never) as T | null;
  assert.equal(ext(x509.BasicConstraintsExtension)?.critical, true);
  assert.equal(ext(x509.BasicConstraintsExtension)?.ca, false);
  assert.equal(ext(x509.KeyUsagesExtension)?.critical, true);
  assert.equal(ext(x509.KeyUsagesExtension)?.usages, x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment);
  assert.equal(ext(x509.SubjectAlternativeNameExtension)?.critical, true);
  const rootKeyId = new x509.X509Certificate(ca.trustBundle()).getExtension(x509.SubjectKeyIdentifierExtension)?.keyId;
  assert.ok(rootKeyId);
  assert.equal(ext(x509.AuthorityKeyIdentifierExtension)?.keyId, rootKeyId);
  assert.equal(parsed.subject, 'O=smc');
  // Serials are random: two leaves never share one.
  assert.notEqual((await ca.issue('spiffe://cluster.local/ns/a/sa/b', { ttlMs: 3600_000 })).certificateChain, issued.certificateChain);
});
