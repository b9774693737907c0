import { existsSync } from 'node:fs';
import { rename } from 'node:fs/promises';
import { join } from 'node:path';
import { openProxyCertificateRecords, type CaChoice } from '../adapters/ca/open.js';
import { normalizeSerial, openProxyCertificates, type ProxyCertificateRecord } from '../adapters/ca/proxy-certificates.js';
import type { Log } from './log.js';

/**
 * Which proxies the xDS port admits: only proxy certificates smc issued
 * (`smc bootstrap`, or the pod-identity service) and did not revoke. One
 * certificate, one node: the first stream claims it for its node id, and
 * another node presenting it is refused. A revoked certificate loses its open
 * streams at once (the records are watched), and every open stream is checked
 * against the records now and then, should a watch miss a change.
 */
export interface ProxyAdmission {
  /** The records (kept beside the mesh CA). */
  readonly records: Awaited<ReturnType<typeof openProxyCertificateRecords>>;
  /** Undefined when the certificate may open streams for that node; else why not. */
  authorize(c: { serial: string; identity: string; nodeId: string }): Promise<string | undefined>;
  /**
   * Follows the records for the streams of `ads`: a revocation closes its
   * streams, and every record seen goes to `onRecord`. Returns the stop.
   */
  follow(ads: OpenStreams, onRecord: (r: ProxyCertificateRecord) => void, recheckMs: number): () => void;
}

/** What admission needs of the ADS server. */
export interface OpenStreams {
  /** Closes the streams opened with this certificate serial, saying why; how many. */
  closeCertificate(serial: string, why: string): number;
  /** Serials of the certificates that opened the streams open now. */
  openSerials(): string[];
}

export async function openProxyAdmission(ca: CaChoice | undefined, stateDir: string, log: Log): Promise<ProxyAdmission> {
  const records = await openProxyCertificateRecords(ca, stateDir);
  // Records kept in the state folder by an earlier version (before they moved beside the root's Secret) move with it.
  if (records.adopt && existsSync(join(stateDir, 'proxy-certificates'))) {
    const folder = openProxyCertificates(stateDir);
    const { records: found, problems } = await folder.list();
    for (const r of found) {
      if (await records.adopt(r)) log(`ca: proxy certificate ${r.serial} of ${r.identity} (${r.state}) moved from ${folder.where} to ${records.where}`, { level: 'warn', serial: r.serial });
    }
    for (const p of problems) log(`ca: ${p} (not moved to ${records.where})`, { level: 'warn' });
    // Kept, renamed, for the record: the cluster's objects are the ones in force from now on.
    if (problems.length === 0) await rename(folder.where, `${folder.where}.moved`).catch((e: Error) => log(`ca: cannot rename ${folder.where}: ${e.message}`, { level: 'warn' }));
  }
  // Claims of one certificate take turns, so two nodes racing for an unclaimed one cannot both win.
  const claiming = new Map<string, Promise<unknown>>();
  const authorize = async (c: { serial: string; identity: string; nodeId: string }): Promise<string | undefined> => {
    const key = normalizeSerial(c.serial);
    const turn = (claiming.get(key) ?? Promise.resolve()).then(async () => {
      const r = await records.get(c.serial);
      if (!r) return `certificate serial ${key} was not issued as a proxy certificate (smc bootstrap issues them)`;
      if (r.identity !== c.identity) return `certificate serial ${r.serial} was issued to ${r.identity}, not ${c.identity}`;
      if (r.state === 'revoked') return `proxy certificate ${r.serial} of ${r.identity} was revoked at ${r.revokedAt}`;
      if (r.state === 'claimed' && r.claimedBy !== c.nodeId) {
        return `proxy certificate ${r.serial} of ${r.identity} belongs to node ${r.claimedBy}; node ${c.nodeId} may not use it (one certificate, one node: give each proxy its own with smc bootstrap --instance)`;
      }
      if (r.state === 'unclaimed') {
        // Another replica may claim it at the same moment: the record as written decides.
        const now = await records.claim(c.serial, c.nodeId, new Date());
        if (now?.state !== 'claimed' || now.claimedBy !== c.nodeId) {
          return `proxy certificate ${r.serial} of ${r.identity} ${now?.state === 'claimed' ? `was just claimed by node ${now.claimedBy}` : `is ${now?.state ?? 'no longer recorded'}`}; node ${c.nodeId} may not use it`;
        }
        log(`ca: proxy certificate ${r.serial} of ${r.identity} claimed by ${c.nodeId}`);
      }
      return undefined;
    });
    claiming.set(key, turn.catch(() => undefined));
    return turn;
  };

  const follow = (ads: OpenStreams, onRecord: (r: ProxyCertificateRecord) => void, recheckMs: number) => {
    // One watch of the records per controller: revocations close streams here, and `onRecord` follows every record.
    const stopWatching = records.watch((r) => {
      onRecord(r);
      if (r.state !== 'revoked') return;
      const n = ads.closeCertificate(r.serial, `proxy certificate ${r.serial} of ${r.identity} was revoked at ${r.revokedAt}`);
      if (n > 0) log(`ca: closed ${n} stream(s) of revoked proxy certificate ${r.serial} (${r.identity})`);
    }, (message) => log(`ca: ${message}`));
    const recheckStreams = async () => {
      const open = ads.openSerials();
      if (open.length === 0) return;
      const { records: all, problems } = await records.list();
      const bySerial = new Map(all.map((r) => [normalizeSerial(r.serial), r]));
      for (const serial of open) {
        const r = bySerial.get(serial);
        // A record missing from a list that read every record is gone (deleted): its certificate opens nothing any more.
        const why = r?.state === 'revoked' ? `proxy certificate ${r.serial} of ${r.identity} was revoked at ${r.revokedAt}` : !r && problems.length === 0 ? `proxy certificate ${serial} is no longer recorded in ${records.where}` : undefined;
        if (!why) continue;
        const n = ads.closeCertificate(serial, why);
        if (n > 0) log(`ca: closed ${n} stream(s) found open by the periodic check: ${why}`, { level: 'warn', serial });
      }
    };
    const recheck = setInterval(() => void recheckStreams().catch((e: Error) => log(`ca: checking open streams against the proxy-certificate records failed: ${e.message}`, { level: 'warn' })), recheckMs);
    recheck.unref();
    return () => {
      stopWatching();
      clearInterval(recheck);
    };
  };
  return { records, authorize, follow };
}
