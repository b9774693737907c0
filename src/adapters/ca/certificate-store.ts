import { randomBytes } from 'node:crypto';
import { appendFile, mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { IssuedCertificate } from './signer.js';
import { certificateFacts } from './x509.js';

/**
 * The service certificates issued so far, kept in the state folder
 * (`<state>/issued/`, folder 0700) so that a restarted controller serves
 * the same certificates, hence the same SDS versions: a restart causes no
 * configuration churn and no needless re-issue.
 *
 * They are one journal, `issued/certificates.jsonl` (0600): a line per
 * certificate issued and per identity forgotten, the last line of an
 * identity deciding. Saves made together are appended together (a first
 * start saves thousands: one write, not a file each). When forgotten and
 * replaced lines outnumber the live ones, the journal is written anew (to a
 * new file, renamed over it). A line cut short by a crash is skipped, and
 * costs a re-issue. Files of the one-per-identity layout of earlier versions
 * are read once, taken into the journal and removed.
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

const JOURNAL = 'certificates.jsonl';

export function openCertificateStore(stateDir: string, log: (line: string) => void = () => {}): CertificateStore {
  const dir = join(stateDir, 'issued');
  const journal = join(dir, JOURNAL);
  // Made once (a first start saves thousands of certificates).
  let made: Promise<unknown> | undefined;
  /** The live line of each identity, and how many lines the journal holds. */
  const live = new Map<string, string>();
  let lines = 0;
  /** Lines waiting to be appended, each with its saver's settlement. */
  let pending: { line: string; done: (e?: Error) => void }[] = [];
  let writing: Promise<void> | undefined;

  const ensureDir = () =>
    (made ??= mkdir(dir, { recursive: true, mode: 0o700 }).catch((e: Error) => {
      made = undefined;
      throw e;
    }));

  /** The journal written anew with the live lines only. */
  const rewrite = async () => {
    await ensureDir();
    const fresh = `${journal}.${randomBytes(6).toString('hex')}.tmp`;
    const text = [...live.values()].map((l) => `${l}\n`).join('');
    await writeFile(fresh, text, { mode: 0o600, flag: 'wx' });
    await rename(fresh, journal).catch(async (e: Error) => {
      await rm(fresh, { force: true });
      throw e;
    });
    lines = live.size;
  };

  /** Appends what is pending, in one write per turn, until nothing is. */
  const flush = async () => {
    while (pending.length > 0) {
      const batch = pending;
      pending = [];
      try {
        await ensureDir();
        if (lines > 2 * live.size + 64) await rewrite();
        else {
          await appendFile(journal, batch.map((b) => `${b.line}\n`).join(''), { mode: 0o600 });
          lines += batch.length;
        }
        for (const b of batch) b.done();
      } catch (e) {
        for (const b of batch) b.done(e as Error);
      }
    }
    writing = undefined;
  };
  const append = (identity: string, line: string | undefined) =>
    new Promise<void>((resolve, reject) => {
      // What the store holds is what a rewrite writes: the journal line follows.
      if (line === undefined) live.delete(identity);
      else live.set(identity, line);
      pending.push({ line: line ?? JSON.stringify({ identity, removed: true }), done: (e) => (e ? reject(e) : resolve()) });
      // Started a turn later: saves made in one go are appended in one write.
      writing ??= Promise.resolve().then(flush);
    });

  return {
    async load() {
      await writing;
      const out = new Map<string, IssuedCertificate>();
      live.clear();
      lines = 0;
      let names: string[];
      try {
        names = await readdir(dir);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ENOENT') return out;
        throw e;
      }
      const take = (text: string, where: string) => {
        try {
          const s = JSON.parse(text) as StoredCertificate & { removed?: boolean };
          if (typeof s.identity !== 'string') throw new Error('no identity');
          if (s.removed === true) {
            out.delete(s.identity);
            live.delete(s.identity);
            return;
          }
          if (typeof s.certificateChain !== 'string' || typeof s.privateKey !== 'string') throw new Error('missing fields');
          const notAfter = new Date(s.notAfter);
          if (Number.isNaN(notAfter.getTime())) throw new Error('notAfter is not a date');
          const issuedAt = new Date(s.issuedAt ?? certificateFacts(s.certificateChain).notBefore);
          out.set(s.identity, { certificateChain: s.certificateChain, privateKey: s.privateKey, notAfter, issuedAt });
          // As one line (a file of the older layout may have been written out over several).
          live.set(s.identity, text.includes('\n') ? JSON.stringify(s) : text);
        } catch (e) {
          // A damaged entry only costs a re-issue.
          log(`ca: ignoring ${where}: ${(e as Error).message}`);
        }
      };
      // The one-file-per-identity layout of earlier versions, then the journal (whose lines are newer).
      const older = names.filter((n) => n.endsWith('.json')).sort();
      for (const name of older) take(await readFile(join(dir, name), 'utf8'), join(dir, name));
      let text = '';
      try {
        text = await readFile(journal, 'utf8');
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
      }
      const all = text.split('\n');
      if (all[all.length - 1] === '') all.pop();
      all.forEach((line, i) => take(line, `line ${i + 1} of ${journal}`));
      lines = all.length;
      // Older files taken in, or a last line cut short (the next append would join it): the journal is written anew.
      if (older.length > 0 || (text !== '' && !text.endsWith('\n'))) {
        await rewrite();
        for (const name of older) await rm(join(dir, name), { force: true });
      }
      return out;
    },
    save(identity, cert) {
      const stored: StoredCertificate = { identity, certificateChain: cert.certificateChain, privateKey: cert.privateKey, notAfter: cert.notAfter.toISOString(), issuedAt: cert.issuedAt.toISOString() };
      return append(identity, JSON.stringify(stored));
    },
    remove: (identity) => append(identity, undefined),
  };
}
