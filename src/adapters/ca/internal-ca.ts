import { randomInt } from 'node:crypto';
import { access, chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { lifetimeMs, type Signer } from './signer.js';
import { certificateFacts, createRootCertificate, generateKeyPair, issueLeafCertificate, keyMatchesCertificate, privateKeyFromPem, privateKeyToPem } from './x509.js';

/**
 * The mesh CA built into smc (a Signer, see signer.ts). Its root key and
 * certificate are persisted in the state folder (key mode 0600) and loaded
 * on every start, so a restart never mints a new root by accident.
 */
const exists = (path: string) => access(path).then(() => true, () => false);

const ROOT_TTL_MS = 10 * 365 * 24 * 3600_000;

export async function openInternalCA(stateDir: string, trustDomain: string, log: (line: string) => void = () => {}): Promise<Signer> {
  const dir = join(stateDir, 'ca');
  const certPath = join(dir, 'root.crt');
  const keyPath = join(dir, 'root.key');
  let rootPem: string;
  let rootKey: CryptoKey;
  const [haveCert, haveKey, haveIssued] = await Promise.all([exists(certPath), exists(keyPath), exists(join(stateDir, 'issued'))]);
  if (haveCert !== haveKey) {
    throw new Error(`the mesh CA in ${dir} is incomplete: ${haveCert ? 'root.key' : 'root.crt'} is missing. Restore it from your backup; smc will not mint a new root over an existing one`);
  }
  if (haveCert) {
    try {
      rootPem = await readFile(certPath, 'utf8');
      rootKey = (await privateKeyFromPem(await readFile(keyPath, 'utf8'))).privateKey;
      if (!(await keyMatchesCertificate(rootKey, rootPem))) throw new Error('root.key does not belong to root.crt');
    } catch (e) {
      throw new Error(`cannot load the mesh CA from ${dir}: ${(e as Error).message}. Restore it from your backup; smc will not mint a new root over an existing one`);
    }
  } else {
    if (haveIssued) {
      throw new Error(`the mesh CA root is missing from ${dir}, but ${join(stateDir, 'issued')} holds certificates it issued. Restore root.crt and root.key from your backup (or remove the state folder to start a new mesh CA on purpose)`);
    }
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
    name: 'internal',
    trustBundle: () => rootPem,
    async issue(spiffeId, options) {
      const keys = await generateKeyPair();
      const now = Date.now();
      const notAfter = new Date(now + lifetimeMs(options, () => randomInt(0, 1_000_001) / 1_000_000));
      const certificateChain = await issueLeafCertificate(issuer, spiffeId, keys.publicKey, { notBefore: new Date(now - 60_000), notAfter }, options);
      // The certificate's own expiry (X.509 keeps whole seconds).
      return { certificateChain, privateKey: await privateKeyToPem(keys.privateKey), notAfter: certificateFacts(certificateChain).notAfter, issuedAt: new Date(now) };
    },
  };
}
