import { TYPES, TYPE_PREFIX, type ResourceKind } from '../compiler/envoy/codec.js';

/** v3 type URLs <-> resource kinds. */
export const TYPE_URL: Readonly<Record<ResourceKind, string>> = Object.fromEntries(
  Object.entries(TYPES).map(([k, t]) => [k, `${TYPE_PREFIX}${t}`]),
) as Record<ResourceKind, string>;

const BY_URL = new Map(Object.entries(TYPE_URL).map(([k, url]) => [url, k as ResourceKind]));

export const kindOfTypeUrl = (url: string): ResourceKind | undefined => BY_URL.get(url);

/** LDS and CDS may be wildcard subscriptions; the others are always named. */
export const WILDCARD_KINDS: ReadonlySet<ResourceKind> = new Set(['cluster', 'listener']);

/** After a push of the key type, the dependent type must be re-sent so warming completes. */
export const DEPENDENT: Partial<Record<ResourceKind, ResourceKind>> = { cluster: 'endpoint', listener: 'route' };

export interface AnyMessage {
  readonly type_url: string;
  readonly value: Uint8Array;
}

export interface DiscoveryRequest {
  versionInfo: string;
  node?: { id?: string; cluster?: string };
  resourceNames: string[];
  typeUrl: string;
  responseNonce: string;
  errorDetail?: { code?: number; message?: string } | null;
}

export interface DiscoveryResponse {
  versionInfo: string;
  resources: AnyMessage[];
  typeUrl: string;
  nonce: string;
}

export interface DeltaDiscoveryRequest {
  node?: { id?: string; cluster?: string };
  typeUrl: string;
  resourceNamesSubscribe: string[];
  resourceNamesUnsubscribe: string[];
  initialResourceVersions: Record<string, string>;
  responseNonce: string;
  errorDetail?: { code?: number; message?: string } | null;
}

export interface DeltaDiscoveryResponse {
  systemVersionInfo: string;
  resources: { name: string; version: string; resource: AnyMessage }[];
  typeUrl: string;
  removedResources: string[];
  nonce: string;
}
