import { mkdir, readdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

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
}

/** Serials compare as lowercase hex without leading zeros (Node and @peculiar/x509 print them differently). */
export const normalizeSerial = (serial: string): string => serial.replace(/:/g, '').toLowerCase().replace(/^0+(?=.)/, '');

export interface ProxyCertificates {
  recordIssued(r: { serial: string; identity: string; issuedAt: Date; notAfter: Date }): Promise<void>;
  get(serial: string): Promise<ProxyCertificateRecord | undefined>;
  list(): Promise<ProxyCertificateRecord[]>;
  /** Marks an unclaimed certificate claimed by `nodeId`; returns the record as it now is. */
  claim(serial: string, nodeId: string, at: Date): Promise<ProxyCertificateRecord | undefined>;
  /** Revokes by serial, or every certificate of an identity; returns what was revoked. */
  revoke(which: { serial: string } | { identity: string }, at: Date): Promise<ProxyCertificateRecord[]>;
}

export function openProxyCertificates(stateDir: string): ProxyCertificates {
  const dir = join(stateDir, 'proxy-certificates');
  const path = (serial: string) => join(dir, `${normalizeSerial(serial)}.json`);
  const write = async (r: ProxyCertificateRecord) => {
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const tmp = `${path(r.serial)}.${process.pid}.tmp`;
    await writeFile(tmp, `${JSON.stringify(r, null, 2)}\n`);
    await rename(tmp, path(r.serial));
  };
  const get = async (serial: string) => {
    try {
      return JSON.parse(await readFile(path(serial), 'utf8')) as ProxyCertificateRecord;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw new Error(`cannot read the record of proxy certificate ${serial} in ${dir}: ${(e as Error).message}`);
    }
  };
  const list = async () => {
    let names: string[];
    try {
      names = await readdir(dir);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw e;
    }
    const out: ProxyCertificateRecord[] = [];
    for (const n of names.filter((x) => x.endsWith('.json'))) {
      const r = await get(n.slice(0, -'.json'.length));
      if (r) out.push(r);
    }
    return out.sort((a, b) => (a.identity < b.identity ? -1 : a.identity > b.identity ? 1 : a.issuedAt < b.issuedAt ? -1 : 1));
  };
  return {
    async recordIssued(r) {
      await write({ serial: normalizeSerial(r.serial), identity: r.identity, issuedAt: r.issuedAt.toISOString(), notAfter: r.notAfter.toISOString(), state: 'unclaimed' });
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
    async revoke(which, at) {
      const targets = 'serial' in which ? [await get(which.serial)].filter((r): r is ProxyCertificateRecord => r !== undefined) : (await list()).filter((r) => r.identity === which.identity);
      const out: ProxyCertificateRecord[] = [];
      for (const r of targets) {
        if (r.state === 'revoked') continue;
        const revoked: ProxyCertificateRecord = { ...r, state: 'revoked', revokedAt: at.toISOString() };
        await write(revoked);
        out.push(revoked);
      }
      return out;
    },
  };
}
