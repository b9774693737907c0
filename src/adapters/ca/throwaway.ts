import type { CertificateInputs } from '../../compiler/inputs.js';
import { createRootCertificate, generateKeyPair, generateLeafKeys, issueLeaf } from './x509.js';

/**
 * A one-off root and a leaf per identity, valid for a day: enough for
 * `smc compile --bootstrap` to produce configurations Envoy can load and
 * tests can run. Nothing is persisted; never use these in a real mesh.
 */
export async function throwawayCertificates(trustDomain: string, identities: readonly string[], now = new Date()): Promise<CertificateInputs> {
  const validity = { notBefore: new Date(now.getTime() - 60_000), notAfter: new Date(now.getTime() + 24 * 3600_000) };
  const rootKeys = await generateKeyPair();
  const trustBundle = await createRootCertificate(trustDomain, rootKeys, validity);
  const issuer = { certificatePem: trustBundle, privateKey: rootKeys.privateKey };
  const leaves = [];
  for (const identity of identities) {
    const keys = generateLeafKeys();
    leaves.push({ identity, certificateChain: (await issueLeaf(issuer, identity, keys.spki, validity)).pem, privateKey: keys.privateKeyPem });
  }
  return { trustBundle, identities: leaves };
}
