import { test } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate, createPrivateKey, createPublicKey } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openCfsslSigner } from '../src/adapters/ca/cfssl.js';
import { openInternalCA } from '../src/adapters/ca/internal-ca.js';
import type { Signer } from '../src/adapters/ca/signer.js';
import { certificateFacts } from '../src/adapters/ca/x509.js';
import { startCfssl } from './helpers/cfssl.js';

/**
 * The Signer contract (src/adapters/ca/signer.ts), run against every
 * implementation: smc's internal CA and a real cfssl server.
 */
const ID = 'spiffe://cluster.local/ns/shop/sa/checkout';
const HOUR = 3600_000;

function contract(name: string, open: () => Promise<{ signer: Signer; close: () => void }>) {
  test(`${name}: a certificate for the SPIFFE ID, with its own key, chaining to the trust bundle, for client and server auth`, async () => {
    const { signer, close } = await open();
    try {
      const before = Date.now();
      const cert = await signer.issue(ID, { ttlMs: HOUR });
      const facts = certificateFacts(cert.certificateChain);
      assert.deepEqual(facts.uris, [ID], 'exactly the SPIFFE ID as URI SAN');
      assert.deepEqual(facts.dnsNames, []);
      const leaf = new X509Certificate(cert.certificateChain);
      const root = new X509Certificate(signer.trustBundle());
      assert.ok(leaf.checkIssued(root) && leaf.verify(root.publicKey), 'signed by the trust bundle');
      assert.ok(root.ca, 'the trust bundle is a CA certificate');
      assert.ok(leaf.checkPrivateKey(createPrivateKey(cert.privateKey)), 'the key belongs to the certificate');
      assert.equal(createPublicKey(cert.privateKey).asymmetricKeyType, 'ec');
      assert.ok(!leaf.ca);
      const eku = leaf.keyUsage ?? [];
      assert.ok(eku.includes('1.3.6.1.5.5.7.3.1') && eku.includes('1.3.6.1.5.5.7.3.2'), `server and client auth, got ${JSON.stringify(eku)}`);
      assert.equal(cert.notAfter.getTime(), facts.notAfter.getTime(), 'notAfter is the certificate\'s own');
      assert.ok(cert.notAfter.getTime() > before + HOUR / 2 && cert.notAfter.getTime() <= before + HOUR + 5 * 60_000, `about an hour: ${cert.notAfter.toISOString()}`);
      assert.ok(!cert.certificateChain.includes('PRIVATE KEY'));
    } finally {
      close();
    }
  });

  test(`${name}: every issue makes a new key and serial; DNS and IP names are added when asked`, async () => {
    const { signer, close } = await open();
    try {
      const a = await signer.issue(ID, { ttlMs: HOUR });
      const b = await signer.issue(ID, { ttlMs: HOUR, dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'] });
      assert.notEqual(a.privateKey, b.privateKey);
      assert.notEqual(certificateFacts(a.certificateChain).serial, certificateFacts(b.certificateChain).serial);
      const fb = certificateFacts(b.certificateChain);
      assert.deepEqual([fb.uris, fb.dnsNames, fb.ipAddresses], [[ID], ['localhost'], ['127.0.0.1']]);
    } finally {
      close();
    }
  });
}

contract('internal CA', async () => ({ signer: await openInternalCA(mkdtempSync(join(tmpdir(), 'smc-ca-')), 'cluster.local'), close: () => {} }));

contract('cfssl (external CA)', async () => {
  const cfssl = await startCfssl({ expiry: '1h' });
  return { signer: await openCfsslSigner({ url: cfssl.url }), close: cfssl.stop };
});

test('cfssl: the signing profile decides the lifetime; an unreachable server is a clear error', async () => {
  await assert.rejects(openCfsslSigner({ url: 'http://127.0.0.1:9' }), /cfssl at http:\/\/127\.0\.0\.1:9 is not reachable/);
  const cfssl = await startCfssl({ expiry: '2h' });
  try {
    const start = Date.now();
    const byDefault = await (await openCfsslSigner({ url: cfssl.url })).issue(ID, { ttlMs: HOUR });
    const short = await (await openCfsslSigner({ url: cfssl.url, profile: 'short' })).issue(ID, { ttlMs: HOUR });
    assert.ok(byDefault.notAfter.getTime() > start + 1.5 * HOUR, 'the default profile (2h) applies, whatever was asked');
    assert.ok(short.notAfter.getTime() < start + 1.1 * HOUR, 'the "short" profile (1h) applies');
  } finally {
    cfssl.stop();
  }
});
