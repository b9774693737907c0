import { createHash, randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { IssuedCertificate } from './signer.js';
import { certificateFacts } from './x509.js';

/**
 * The service certificates issued so far, kept in the state folder
 * (`<state>/issued/`, folder 0700, files 0600) so that a restarted
 * controller serves the same certificates, hence the same SDS versions: a
 * restart causes no configuration churn and no needless re-issue. One file
 * per identity, named by a hash of it.
 */
export interface CertificateStore {
  load(): Promise<Map<string, IssuedCertificate>>;
  save(identity: string, cert: IssuedCertificate): Promise<void>;
  remove(identity: string): Promise<void>;
}

interface StoredCertificate {
  identity: string;
  certificateChain: string;
  privateKey: string;
  notAfter: string;
  issuedAt?: string;
}

const fileName = (identity: string) => `${createHash('sha256').update(identity).digest('hex').slice(0, 32)}.json`;

export function openCertificateStore(stateDir: string, log: (line: string) => void = () => {}): CertificateStore {
  const dir = join(stateDir, 'issued');
  // Made once (a first start saves thousands of certificates).
  let made: Promise<unknown> | undefined;
  return {
    async load() {
      const out = new Map<string, IssuedCertificate>();
      let names: string[];
      try {
        names = await readdir(dir);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ENOENT') return out;
        throw e;
      }
      for (const name of names.filter((n) => n.endsWith('.json')).sort()) {
        try {
          const s = JSON.parse(await readFile(join(dir, name), 'utf8')) as StoredCertificate;
          if (typeof s.identity !== 'string' || typeof s.certificateChain !== 'string' || typeof s.privateKey !== 'string') throw new Error('missing fields');
          const notAfter = new Date(s.notAfter);
          if (Number.isNaN(notAfter.getTime())) throw new Error('notAfter is not a date');
          const issuedAt = new Date(s.issuedAt ?? certificateFacts(s.certificateChain).notBefore);
          out.set(s.identity, { certificateChain: s.certificateChain, privateKey: s.privateKey, notAfter, issuedAt });
        } catch (e) {
          // A damaged file only costs a re-issue.
          log(`ca: ignoring ${join(dir, name)}: ${(e as Error).message}`);
        }
      }
      return out;
    },
    async save(identity, cert) {
      await (made ??= mkdir(dir, { recursive: true, mode: 0o700 }).catch((e: Error) => {
        made = undefined;
        throw e;
      }));
      const path = join(dir, fileName(identity));
      const stored: StoredCertificate = { identity, certificateChain: cert.certificateChain, privateKey: cert.privateKey, notAfter: cert.notAfter.toISOString(), issuedAt: cert.issuedAt.toISOString() };
      // A new file (created 0600: the key is never readable by others, not even for a moment), then renamed over the old one:
      // a crash mid-write leaves the previous certificate, not half of one.
      const fresh = `${path}.${randomBytes(6).toString('hex')}.tmp`;
      await writeFile(fresh, JSON.stringify(stored), { mode: 0o600, flag: 'wx' });
      await rename(fresh, path).catch(async (e: Error) => {
        await rm(fresh, { force: true });
        throw e;
      });
    },
    async remove(identity) {
      await rm(join(dir, fileName(identity)), { force: true });
    },
  };
}
