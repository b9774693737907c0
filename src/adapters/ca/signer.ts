/**
 * The mesh CA's one seam: a Signer issues a certificate for a SPIFFE
 * identity. smc's internal CA (internal-ca.ts) and an external CA reached
 * over its API (cfssl.ts) both implement it and pass the same contract
 * tests (test/ca-contract.test.ts). To plug in another CA, implement this
 * interface:
 * - the private key is generated here, on the control plane, and never sent;
 * - the certificate carries exactly the SPIFFE ID as URI SAN (plus any DNS
 *   or IP names asked for), is usable for TLS client and server auth, and
 *   chains to `trustBundle()`;
 * - `notAfter` is the certificate's real expiry, whatever lifetime was asked
 *   (an external CA may apply its own policy); renewal follows it.
 */
export interface IssuedCertificate {
  /** PEM, leaf first. */
  readonly certificateChain: string;
  /** PEM PKCS#8. Never logged, never printed. */
  readonly privateKey: string;
  readonly notAfter: Date;
  /** Lower-case hex, when the signer says it without a parse (the internal CA does). */
  readonly serial?: string;
  /** When smc received it (certificates are backdated, so notBefore is earlier); renewal counts from here. */
  readonly issuedAt: Date;
}

/** When a certificate is due for renewal: two thirds of the way from issue to expiry. */
export function renewalDue(c: IssuedCertificate): number {
  return c.issuedAt.getTime() + ((c.notAfter.getTime() - c.issuedAt.getTime()) * 2) / 3;
}

export interface IssueOptions {
  /** Requested lifetime. */
  readonly ttlMs: number;
  /** Spread the lifetime by up to ±10% so renewals of many identities do not come at once. */
  readonly jitter?: boolean;
  readonly dnsNames?: readonly string[];
  readonly ipAddresses?: readonly string[];
}

export interface Signer {
  /** For logs and status: `internal` or `cfssl <url>`. */
  readonly name: string;
  /** PEM roots that proxies and the control plane trust. */
  trustBundle(): string;
  issue(spiffeId: string, options: IssueOptions): Promise<IssuedCertificate>;
  /**
   * The xDS port has a trust anchor of its own that a mesh root rotation does
   * not move: `xdsTrust` is every root it accepts proxy certificates from (the
   * bundle plus roots a rotation retired), and `issueForXds` signs the
   * certificates used on that port (the controller's server certificate and
   * proxy bootstrap certificates) with the oldest root still kept, which
   * every proxy's bootstrap trusts and the running port accepts. Signers
   * without rotation use the trust bundle and `issue`.
   */
  xdsTrust?(): string;
  issueForXds?(spiffeId: string, options: IssueOptions): Promise<IssuedCertificate>;
  /** Root rotation with overlap, when the CA supports it. */
  readonly rotation?: RootRotation;
}

/**
 * Rotating the root without breaking traffic, in three steps the controller
 * takes once every proxy has acknowledged the previous one:
 * 1. `begin`: a new root joins the trust bundle; the current one still signs.
 * 2. `switchSigner`: the new root signs from now on (every leaf is re-issued);
 *    the old one stays in the bundle, so leaves of both kinds are trusted.
 * 3. `finish`: the old root leaves the bundle (it is kept, retired, for the
 *    xDS port's proxy certificates).
 */
export interface RootRotation {
  phase(): 'idle' | 'overlap' | 'switched';
  begin(): Promise<void>;
  switchSigner(): Promise<void>;
  finish(): Promise<void>;
}

/** Signs a certificate for the xDS port: with its own trust anchor when the signer keeps one (see `issueForXds`). */
export function issueForXdsPort(ca: Signer, spiffeId: string, options: IssueOptions): Promise<IssuedCertificate> {
  return ca.issueForXds ? ca.issueForXds(spiffeId, options) : ca.issue(spiffeId, options);
}

/** Proxy (bootstrap) certificates are long-lived: they only authenticate a proxy to the xDS port; service certificates come over SDS. */
export const PROXY_CERTIFICATE_TTL_MS = 365 * 24 * 3600_000;

/** The requested lifetime, spread by up to ±10% when asked. */
export function lifetimeMs(options: IssueOptions, random: () => number): number {
  if (!options.jitter) return options.ttlMs;
  return Math.round(options.ttlMs * (1 + (random() * 2 - 1) / 10));
}
