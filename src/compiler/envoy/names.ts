import type { ServiceIR } from '../ir/types.js';

/** Resource names, in one place so every reference closes by construction. */

export const outboundClusterName = (s: Pick<ServiceIR, 'namespace' | 'name'>, port: number): string =>
  `outbound|${port}|${s.name}.${s.namespace}`;

export const inboundClusterName = (port: number): string => `inbound|${port}|local`;

/** SDS name of the proxy's own certificate: its SPIFFE ID. */
export const identitySecretName = (identity: string): string => identity;

/** SDS name of the trust bundle (the mesh roots). */
export const TRUST_BUNDLE_SECRET = 'trust-bundle';

export const serviceHost = (s: Pick<ServiceIR, 'namespace' | 'name'>): string => `${s.name}.${s.namespace}.svc.cluster.local`;
