import type { IdentityCertificate } from '../inputs.js';
import { TRUST_BUNDLE_SECRET, IDENTITY_SECRET } from './names.js';

/**
 * Secret resources. Only the proxy's own certificate and the trust bundle
 * ever enter its snapshot: a proxy never receives another identity's key.
 */
export function identitySecret(c: IdentityCertificate) {
  return {
    name: IDENTITY_SECRET,
    tlsCertificate: { certificateChain: { inlineString: c.certificateChain }, privateKey: { inlineString: c.privateKey } },
  };
}

export function trustBundleSecret(pem: string) {
  return { name: TRUST_BUNDLE_SECRET, validationContext: { trustedCa: { inlineString: pem } } };
}
