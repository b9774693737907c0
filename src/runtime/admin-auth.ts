import { randomBytes, timingSafeEqual } from 'node:crypto';
import { isIP } from 'node:net';
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

/**
 * Who may use the admin port.
 * - Every request's Host must be an IP literal, `localhost`, or a name the
 *   operator allowed: a web page cannot reach the port through a DNS name it
 *   controls (DNS rebinding).
 * - Mutating requests (POST) need `Authorization: Bearer <token>`, the token
 *   being the content of `<state>/admin-token` (0600, made at first start).
 *   A browser cannot forge that header across sites, and only users who can
 *   read the state folder can (the CLI reads it from --state).
 */
export const ADMIN_TOKEN_FILE = 'admin-token';

export async function adminToken(stateDir: string): Promise<string> {
  const path = join(stateDir, ADMIN_TOKEN_FILE);
  const existing = await readAdminToken(stateDir);
  if (existing) return existing;
  await mkdir(stateDir, { recursive: true, mode: 0o700 });
  const token = randomBytes(32).toString('hex');
  await writeFile(path, `${token}\n`, { mode: 0o600 });
  await chmod(path, 0o600);
  return token;
}

/** The token a CLI command presents; undefined when the state folder has none. */
export async function readAdminToken(stateDir: string): Promise<string | undefined> {
  try {
    const t = (await readFile(join(stateDir, ADMIN_TOKEN_FILE), 'utf8')).trim();
    return t === '' ? undefined : t;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
}

/** Whether a Host header names this server acceptably (see above). */
export function hostAllowed(host: string | undefined, allowedNames: readonly string[]): boolean {
  if (!host) return false;
  const m = /^(\[[0-9a-fA-F:.]+\]|[^:]+)(?::\d+)?$/.exec(host);
  if (!m) return false;
  const name = m[1]!.replace(/^\[|\]$/g, '').toLowerCase();
  return isIP(name) !== 0 || name === 'localhost' || allowedNames.some((n) => n.toLowerCase() === name);
}

/** Constant-time comparison of a presented bearer token. */
export function tokenMatches(header: string | undefined, token: string): boolean {
  const m = /^Bearer (\S+)$/.exec(header ?? '');
  if (!m) return false;
  const a = Buffer.from(m[1]!);
  const b = Buffer.from(token);
  return a.length === b.length && timingSafeEqual(a, b);
}
