import { randomBytes, timingSafeEqual } from 'node:crypto';
import { isIP } from 'node:net';
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { StartupError } from '../adapters/startup-error.js';

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

/** A token as smc writes it (64 hex digits); one of at least 32 such characters is accepted from an operator. */
const WELL_FORMED = /^[A-Za-z0-9_-]{32,512}$/;

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

/**
 * The state folder's token; undefined when it has none. A token that is not well formed (too short to
 * be guessed at, or not text) is refused, naming the file: a weak token would guard the admin port's
 * changes with nothing.
 */
export async function readAdminToken(stateDir: string): Promise<string | undefined> {
  const path = join(stateDir, ADMIN_TOKEN_FILE);
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return undefined;
    throw new StartupError(`${path}: ${code === 'EISDIR' ? 'a folder, not the admin token file' : `cannot be read (${code ?? (e as Error).message})`}; remove it and start the controller to write a new one`);
  }
  const t = text.trim();
  if (!WELL_FORMED.test(t)) {
    throw new StartupError(`${path}: not an admin token smc would accept (expected at least 32 characters of A-Z, a-z, 0-9, - and _; smc writes 64 random hex digits); remove it and start the controller to write a new one`);
  }
  return t;
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
