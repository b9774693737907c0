import { X509Certificate } from 'node:crypto';
import { openCertificateStore } from '../adapters/ca/certificate-store.js';
import { renewalDue, type IssuedCertificate, type Signer } from '../adapters/ca/signer.js';
import { signedBy } from '../adapters/ca/x509.js';
import type { CertificateInputs, IdentityCertificate } from '../compiler/inputs.js';
import type { Log } from './log.js';

/**
 * Every identity's service certificate (served over SDS): issued when an
 * identity joins, renewed once two thirds of its lifetime have passed, kept
 * in the state folder so that a restarted controller serves the same ones
 * (same SDS versions, no churn), and forgotten when the identity leaves.
 */
export interface ServiceCertificates {
  /** The identities among `identities` whose certificate is missing or due for renewal. */
  dueOf(identities: readonly string[]): string[];
  /** Issues (or renews) the certificates of `due`, several at a time, and keeps them. */
  issue(due: readonly string[]): Promise<void>;
  /** The certificates of `identities`, as the compiler takes them: the very same value while none changed. */
  inputs(identities: readonly string[]): CertificateInputs;
  /** Forgets (and removes from the state folder) the certificates of identities not in `identities`. */
  keepOnly(identities: ReadonlySet<string>): Promise<void>;
  /** Forgets every certificate: each is issued again (a new root signs from now on). */
  clear(): void;
  /** How many changes the set has seen: what was made from it at one count is unchanged while the count is. */
  readonly changes: number;
  /** When the next renewal is due (ms since the epoch); undefined when there is no certificate. */
  nextRenewal(): number | undefined;
  /** When each certificate expires (the expiry metric). */
  expiry(): Map<string, Date>;
}

export async function openServiceCertificates(ca: Signer, stateDir: string, ttlMs: number, log: Log): Promise<ServiceCertificates> {
  const store = openCertificateStore(stateDir, log);
  const issued = new Map<string, IssuedCertificate>();
  let changes = 0;
  for (const [id, cert] of await store.load()) {
    // Only certificates of this CA's root that are still valid; anything else is simply issued anew.
    if (await signedBy(cert.certificateChain, ca.trustBundle(), new Date())) issued.set(id, cert);
  }
  // One input per certificate, made once: the compile worker is sent only the certificates that are not the ones it has.
  const inputOf = new WeakMap<IssuedCertificate, IdentityCertificate>();
  // The inputs of an identity list, made again only when the list, a certificate or the trust bundle changed.
  let lastInputs: { identities: readonly string[]; changes: number; value: CertificateInputs } | undefined;
  return {
    get changes() {
      return changes;
    },
    dueOf(identities) {
      const now = Date.now();
      return identities.filter((id) => {
        const have = issued.get(id);
        return !have || renewalDue(have) <= now;
      });
    },
    async issue(due) {
      await inParallel(due, 16, async (id) => {
        const have = issued.get(id);
        const cert = await ca.issue(id, { ttlMs, jitter: true });
        issued.set(id, cert);
        changes++;
        await store.save(id, cert);
        // Node's native parser: a general ASN.1 parse would cost more than issuing the certificate did.
        const serial = cert.serial ?? new X509Certificate(cert.certificateChain).serialNumber.toLowerCase();
        log(`ca: ${have ? 'renewed' : 'issued'} the certificate of ${id} (serial ${serial}, expires ${cert.notAfter.toISOString()})`, { identity: id, serial });
      });
    },
    inputs(identities) {
      const trustBundle = ca.trustBundle();
      if (lastInputs?.identities === identities && lastInputs.changes === changes && lastInputs.value.trustBundle === trustBundle) return lastInputs.value;
      const value = {
        trustBundle,
        identities: identities.flatMap((identity) => {
          const cert = issued.get(identity);
          if (!cert) return [];
          let input = inputOf.get(cert);
          if (!input) inputOf.set(cert, (input = { identity, certificateChain: cert.certificateChain, privateKey: cert.privateKey }));
          return [input];
        }),
      };
      lastInputs = { identities, changes, value };
      return value;
    },
    async keepOnly(identities) {
      const gone = [...issued.keys()].filter((id) => !identities.has(id));
      for (const id of gone) issued.delete(id);
      if (gone.length > 0) changes++;
      // Forgotten together: one write.
      await Promise.all(gone.map((id) => store.remove(id)));
    },
    clear() {
      issued.clear();
      changes++;
    },
    nextRenewal: () => (issued.size === 0 ? undefined : Math.min(...[...issued.values()].map(renewalDue))),
    expiry: () => new Map([...issued].map(([id, c]) => [id, c.notAfter])),
  };
}

/** Runs `work` on every item, at most `width` at a time. */
async function inParallel<T>(items: readonly T[], width: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const lane = async () => {
    while (next < items.length) await work(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(width, items.length) }, lane));
}
