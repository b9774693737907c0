import { mkdirSync, statSync, watch, type FSWatcher } from 'node:fs';
import { mkdir, open, readdir, readFile, rename } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

/**
 * Proxy (bootstrap) certificates: long-lived, used only to authenticate to
 * the xDS port. Each one issued is recorded in the state folder, one file per
 * serial under `<state>/proxy-certificates/` (so `smc bootstrap`, `smc certs`
 * and the controller, separate processes, never overwrite each other's
 * records). A certificate is `unclaimed` until a proxy first opens a stream
 * with it, then `claimed`; a `revoked` one can no longer open a stream.
 * Records hold no key material.
 */
export type ProxyCertificateState = 'unclaimed' | 'claimed' | 'revoked';

export interface ProxyCertificateRecord {
  readonly serial: string;
  readonly identity: string;
  readonly issuedAt: string;
  readonly notAfter: string;
  readonly state: ProxyCertificateState;
  readonly claimedAt?: string;
  /** The node id that claimed it. */
  readonly claimedBy?: string;
  readonly revokedAt?: string;
  /** Issued to a pod (NS/NAME/UID) in exchange for its token: revoked when the pod goes away. */
  readonly pod?: string;
}

/** Serials compare as lowercase hex without leading zeros (Node and @peculiar/x509 print them differently). */
export const normalizeSerial = (serial: string): string => serial.replace(/:/g, '').toLowerCase().replace(/^0+(?=.)/, '');

export interface ProxyCertificates {
  recordIssued(r: { serial: string; identity: string; issuedAt: Date; notAfter: Date }): Promise<void>;
  /** Records a certificate issued to a pod, claimed at once by the pod's node id (no other node may use it). */
  recordIssuedToPod(r: { serial: string; identity: string; issuedAt: Date; notAfter: Date; nodeId: string; pod: string }): Promise<void>;
  get(serial: string): Promise<ProxyCertificateRecord | undefined>;
  /** Every readable record; a record that cannot be read is a problem of its own and never hides the others. */
  list(): Promise<{ records: ProxyCertificateRecord[]; problems: string[] }>;
  /** For messages: a folder, or where in Kubernetes. */
  readonly where: string;
  /**
   * Calls `onRecord` with each record written while watching (issued,
   * claimed or revoked, by another process or replica too). Returns a
   * function that stops.
   */
  watch(onRecord: (r: ProxyCertificateRecord) => void, onProblem: (message: string) => void): () => void;
  /** Marks an unclaimed certificate claimed by `nodeId`; returns the record as it now is. */
  claim(serial: string, nodeId: string, at: Date): Promise<ProxyCertificateRecord | undefined>;
  /**
   * Revokes by serial, or every certificate of an identity; returns what was
   * revoked, and the records that could not be read (one of them might be
   * of that identity).
   */
  revoke(which: { serial: string } | { identity: string }, at: Date): Promise<{ revoked: ProxyCertificateRecord[]; problems: string[] }>;
  /** Takes over a record kept elsewhere as it is (claims and revocations included), unless one of that serial exists; true when taken. */
  adopt?(r: ProxyCertificateRecord): Promise<boolean>;
}

/** A record as read back, checked: what a store reads is data, not trusted to be well-formed. */
export function checkedRecord(r: unknown, where: string): ProxyCertificateRecord {
  const x = r as Partial<ProxyCertificateRecord> | null | undefined;
  const states: readonly string[] = ['unclaimed', 'claimed', 'revoked'];
  if (typeof x?.serial !== 'string' || typeof x.identity !== 'string' || typeof x.state !== 'string' || !states.includes(x.state)) {
    throw new Error(`${where} is damaged (expected serial, identity and state); restore it from your backup, or remove it to forget that certificate`);
  }
  return x as ProxyCertificateRecord;
}

export function openProxyCertificates(stateDir: string): ProxyCertificates {
  const dir = join(stateDir, 'proxy-certificates');
  const path = (serial: string) => join(dir, `${normalizeSerial(serial)}.json`);
  // Written whole or not at all: a temporary file, flushed, then renamed over the record.
  const write = async (r: ProxyCertificateRecord) => {
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const tmp = `${path(r.serial)}.${process.pid}.tmp`;
    const file = await open(tmp, 'w', 0o644);
    try {
      await file.writeFile(`${JSON.stringify(r, null, 2)}\n`);
      await file.sync();
    } finally {
      await file.close();
    }
    await rename(tmp, path(r.serial));
  };
  const get = async (serial: string) => {
    let text: string;
    try {
      text = await readFile(path(serial), 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw new Error(`cannot read the record of proxy certificate ${serial} in ${dir}: ${(e as Error).message}`);
    }
    let r: Partial<ProxyCertificateRecord> | undefined;
    try {
      r = JSON.parse(text) as Partial<ProxyCertificateRecord>;
    } catch (e) {
      throw new Error(`the record ${path(serial)} is damaged (${(e as Error).message}); restore it from your backup, or remove it to forget that certificate`);
    }
    return checkedRecord(r, `the record ${path(serial)}`);
  };
  const list = async () => {
    let names: string[];
    try {
      names = await readdir(dir);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { records: [], problems: [] };
      throw e;
    }
    const records: ProxyCertificateRecord[] = [];
    const problems: string[] = [];
    for (const n of names.filter((x) => x.endsWith('.json')).sort()) {
      try {
        const r = await get(n.slice(0, -'.json'.length));
        if (r) records.push(r);
      } catch (e) {
        problems.push((e as Error).message);
      }
    }
    records.sort((a, b) => (a.identity < b.identity ? -1 : a.identity > b.identity ? 1 : a.issuedAt < b.issuedAt ? -1 : 1));
    return { records, problems };
  };
  return {
    where: dir,
    async recordIssued(r) {
      await write({ serial: normalizeSerial(r.serial), identity: r.identity, issuedAt: r.issuedAt.toISOString(), notAfter: r.notAfter.toISOString(), state: 'unclaimed' });
    },
    async recordIssuedToPod(r) {
      const issuedAt = r.issuedAt.toISOString();
      await write({ serial: normalizeSerial(r.serial), identity: r.identity, issuedAt, notAfter: r.notAfter.toISOString(), state: 'claimed', claimedAt: issuedAt, claimedBy: r.nodeId, pod: r.pod });
    },
    get,
    list,
    async claim(serial, nodeId, at) {
      const r = await get(serial);
      if (!r || r.state !== 'unclaimed') return r;
      const claimed: ProxyCertificateRecord = { ...r, state: 'claimed', claimedAt: at.toISOString(), claimedBy: nodeId };
      await write(claimed);
      return claimed;
    },
    watch(onRecord, onProblem) {
      mkdirSync(dir, { recursive: true, mode: 0o700 });
      // The folder is watched, and so is its parent: a folder replaced whole (a backup restored) is watched
      // anew and every record in it read again (its revocations among them).
      let inner: FSWatcher | undefined;
      let inode: number | undefined;
      let stopped = false;
      const attach = () => {
        inner?.close();
        inner = undefined;
        try {
          inode = statSync(dir).ino;
          inner = watch(dir, (_event, name) => {
            if (typeof name !== 'string' || !name.endsWith('.json')) return;
            get(name.slice(0, -'.json'.length)).then(
              (r) => r && onRecord(r),
              (e: Error) => onProblem(e.message),
            );
          });
          inner.on('error', (e) => onProblem(`watching ${dir} failed: ${e.message}`));
        } catch {
          inode = undefined; // gone for now: the parent's watch says when it is back
        }
      };
      const follow = () => {
        if (stopped) return;
        let now: number | undefined;
        try {
          now = statSync(dir).ino;
        } catch {
          now = undefined;
        }
        if (now === inode) return;
        attach();
        if (inode === undefined) return;
        void list().then(
          ({ records, problems }) => {
            for (const r of records) onRecord(r);
            for (const p of problems) onProblem(p);
          },
          (e: Error) => onProblem(e.message),
        );
      };
      attach();
      const parent = watch(dirname(dir), (_event, name) => {
        if (name === basename(dir)) follow();
      });
      parent.on('error', (e) => onProblem(`watching ${dirname(dir)} failed: ${e.message}`));
      return () => {
        stopped = true;
        inner?.close();
        parent.close();
      };
    },
    async revoke(which, at) {
      let targets: ProxyCertificateRecord[];
      let problems: string[] = [];
      if ('serial' in which) targets = [await get(which.serial)].filter((r): r is ProxyCertificateRecord => r !== undefined);
      else {
        const all = await list();
        targets = all.records.filter((r) => r.identity === which.identity);
        problems = all.problems;
      }
      const out: ProxyCertificateRecord[] = [];
      for (const r of targets) {
        if (r.state === 'revoked') continue;
        const revoked: ProxyCertificateRecord = { ...r, state: 'revoked', revokedAt: at.toISOString() };
        await write(revoked);
        out.push(revoked);
      }
      return { revoked: out, problems };
    },
  };
}
