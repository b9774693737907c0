import { randomInt } from 'node:crypto';
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createRootCertificate, generateKeyPair, issueLeafCertificate, privateKeyFromPem, privateKeyToPem } from './x509.js';

/**
 * The mesh CA built into smc. Its root key and certificate are persisted in
 * the state folder (key mode 0600) and loaded on every start, so a restart
 * never mints a new root by accident.
 */
export interface IssuedCertificate {
  readonly certificateChain: string;
  readonly privateKey: string;
  readonly notAfter: Date;
}

export interface IssueOptions {
  /** Nominal lifetime; service certificates are spread by ±10% so renewals do not come all at once. */
  readonly ttlMs: number;
  readonly jitter?: boolean;
  readonly dnsNames?: readonly string[];
  readonly ipAddresses?: readonly string[];
}

export interface CertificateIssuer {
  readonly trustDomain: string;
  /** PEM roots that proxies and the control plane trust. */
  trustBundle(): string;
  issue(spiffeId: string, options: IssueOptions): Promise<IssuedCertificate>;
}

const ROOT_TTL_MS = 10 * 365 * 24 * 3600_000;

export async function openInternalCA(stateDir: string, trustDomain: string, log: (line: string) => void = () => {}): Promise<CertificateIssuer> {
  const dir = join(stateDir, 'ca');
  const certPath = join(dir, 'root.crt');
  const keyPath = join(dir, 'root.key');
  let rootPem: string;
  let rootKey: CryptoKey;
  try {
    rootPem = await readFile(certPath, 'utf8');
    rootKey = (await privateKeyFromPem(await readFile(keyPath, 'utf8'))).privateKey;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw new Error(`cannot load the mesh CA from ${dir}: ${(e as Error).message}`);
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const keys = await generateKeyPair();
    const now = Date.now();
    rootPem = await createRootCertificate(trustDomain, keys, { notBefore: new Date(now - 60_000), notAfter: new Date(now + ROOT_TTL_MS) });
    await writeFile(keyPath, await privateKeyToPem(keys.privateKey), { mode: 0o600, flag: 'wx' });
    await chmod(keyPath, 0o600);
    await writeFile(certPath, rootPem, { flag: 'wx' });
    rootKey = keys.privateKey;
    log(`ca: created a new mesh root for trust domain ${trustDomain} in ${dir}`);
  }
  const issuer = { certificatePem: rootPem, privateKey: rootKey };
  return {
    trustDomain,
    trustBundle: () => rootPem,
    async issue(spiffeId, options) {
      const keys = await generateKeyPair();
      const spread = options.jitter ? Math.round(options.ttlMs * (randomInt(-100, 101) / 1000)) : 0;
      const now = Date.now();
      const notAfter = new Date(now + options.ttlMs + spread);
      const certificateChain = await issueLeafCertificate(issuer, spiffeId, keys.publicKey, { notBefore: new Date(now - 60_000), notAfter }, options);
      return { certificateChain, privateKey: await privateKeyToPem(keys.privateKey), notAfter };
    },
  };
}
