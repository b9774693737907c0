import { hostname } from 'node:os';
import { mkdir, open, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { StartupError } from '../adapters/startup-error.js';

/**
 * One controller per state folder: two would issue certificates and rotate
 * roots over each other. The lock is a file created exclusively, naming its
 * holder; a lock whose process is gone (same host) is taken over.
 */
export interface StateLock {
  readonly path: string;
  release(): Promise<void>;
}

interface Holder {
  pid: number;
  host: string;
  startedAt: string;
  xds?: string;
  admin?: string;
}

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
};

export async function lockStateFolder(stateDir: string, about: { xds: string; admin: string }, log: (line: string) => void): Promise<StateLock> {
  await mkdir(stateDir, { recursive: true, mode: 0o700 });
  const path = join(stateDir, 'controller.lock');
  const me: Holder = { pid: process.pid, host: hostname(), startedAt: new Date().toISOString(), ...about };
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const file = await open(path, 'wx', 0o600);
      await file.writeFile(`${JSON.stringify(me)}\n`);
      await file.sync();
      await file.close();
      return {
        path,
        async release() {
          // Only our own lock: a takeover may have replaced it.
          const now = await readHolder(path);
          if (now?.pid === me.pid && now.host === me.host) await rm(path, { force: true });
        },
      };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
    const holder = await readHolder(path);
    if (holder && (holder.host !== me.host || alive(holder.pid))) {
      throw new StartupError(
        `the state folder ${stateDir} is in use by another controller: pid ${holder.pid} on ${holder.host}, started ${holder.startedAt}` +
          `${holder.xds ? `, xDS ${holder.xds}` : ''}${holder.admin ? `, admin ${holder.admin}` : ''}. Stop it first, or give this one its own --state` +
          (holder.host !== me.host ? ` (if that host is gone, remove ${path})` : ''),
      );
    }
    log(`controller: taking over the lock ${path} of a controller that is gone (${holder ? `pid ${holder.pid}` : 'unreadable lock'})`);
    await rm(path, { force: true });
  }
  throw new StartupError(`cannot lock the state folder ${stateDir}: ${path} keeps reappearing`);
}

async function readHolder(path: string): Promise<Holder | undefined> {
  try {
    const h = JSON.parse(await readFile(path, 'utf8')) as Holder;
    return typeof h.pid === 'number' && typeof h.host === 'string' ? h : undefined;
  } catch {
    return undefined;
  }
}
