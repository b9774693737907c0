import { TRUST_BUNDLE_SECRET, IDENTITY_SECRET } from './names.js';

/** TLS contexts that take their certificate and trust bundle from SDS over ADS. */

const ADS = { ads: {}, resourceApiVersion: 'V3' };

export function commonTlsContext(peers: readonly string[]) {
  return {
    tlsCertificateSdsSecretConfigs: [{ name: IDENTITY_SECRET, sdsConfig: ADS }],
    combinedValidationContext: {
      defaultValidationContext: {
        matchTypedSubjectAltNames: peers.map((p) => ({ sanType: 'URI', matcher: { exact: p } })),
      },
      validationContextSdsSecretConfig: { name: TRUST_BUNDLE_SECRET, sdsConfig: ADS },
    },
  };
}

export const ADS_CONFIG = ADS;
