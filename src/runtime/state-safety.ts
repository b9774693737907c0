import { chmodSync, lstatSync, readdirSync, type Stats } from 'node:fs';
import { join } from 'node:path';
import { StartupError } from '../adapters/startup-error.js';

/**
 * The state folder holds the mesh CA's root key, the admin token and every
 * issued key: whoever can write in it can take the mesh. Before it is used:
 * - the folder, and its `ca/`, `issued/` and `proxy-certificates/`, must not be writable by
 *   others: not by every user, not by a group this process is not in, and not owned by
 *   another user (root aside); otherwise the controller refuses to start, saying why;
 * - a key or the token that others can write, or that another user owns, is refused too;
 * - one that others can read but this process owns is made 0600 again, with a warning.
 * A Kubernetes volume with fsGroup (group-writable, setgid, the pod's group) passes.
 */
const SECRET_FOLDERS = ['ca', 'issued'];
const FOLDERS = ['', 'ca', 'issued', 'proxy-certificates'];

export function checkStateFolder(stateDir: string, log: (line: string, fields?: { level?: 'warn' }) => void): void {
  if (typeof process.getuid !== 'function') return;
  const uid = process.getuid();
  const groups = new Set([process.getgid!(), ...(process.getgroups?.() ?? [])]);
  const othersCanWrite = (s: Stats): string | undefined => {
    if (s.uid !== uid && s.uid !== 0) return `it is owned by uid ${s.uid}, not by this process (uid ${uid}) or root`;
    if (s.mode & 0o002) return `every user can write it (mode ${(s.mode & 0o7777).toString(8)})`;
    if (s.mode & 0o020 && !groups.has(s.gid)) return `group ${s.gid}, which this process is not in, can write it (mode ${(s.mode & 0o7777).toString(8)})`;
    return undefined;
  };
  const refuse = (path: string, why: string, fix: string) => {
    throw new StartupError(`the state folder is not safe: ${path}: ${why}. Whoever can write there can take the mesh CA; ${fix}`);
  };
  for (const f of FOLDERS) {
    const path = join(stateDir, f);
    let s: Stats;
    try {
      s = lstatSync(path);
    } catch {
      continue; // made later, by this process, with safe modes
    }
    if (s.isSymbolicLink()) refuse(path, 'it is a symbolic link', 'give the real folder');
    const why = othersCanWrite(s);
    if (why) refuse(path, why, `chown it to this user and chmod go-w it (or give another --state)`);
  }
  const secrets = [join(stateDir, 'admin-token'), ...SECRET_FOLDERS.flatMap((f) => files(join(stateDir, f)).filter((p) => f !== 'ca' || p.endsWith('.key')))];
  for (const path of secrets) {
    let s: Stats;
    try {
      s = lstatSync(path);
    } catch {
      continue;
    }
    if (!s.isFile()) refuse(path, s.isDirectory() ? 'it is a folder, not a file' : 'it is not a regular file', 'remove it (smc writes it anew) or restore it from your backup');
    const why = othersCanWrite(s);
    if (why) refuse(path, why, 'chown it to this user and chmod 600 it');
    if ((s.mode & 0o077) !== 0 && s.uid === uid) {
      chmodSync(path, 0o600);
      log(`controller: ${path} could be read by others (mode ${(s.mode & 0o777).toString(8)}); made 0600`, { level: 'warn' });
    }
  }
}

function files(dir: string): string[] {
  try {
    return readdirSync(dir).map((n) => join(dir, n));
  } catch {
    return [];
  }
}
