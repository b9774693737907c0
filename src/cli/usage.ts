/** Exit codes scripts can trust, and the error that means "the command line is wrong". */
export const EXIT_OK = 0;
/** Some input was rejected, --check found a difference, or (explain) the request is denied. */
export const EXIT_REJECTED = 1;
export const EXIT_USAGE = 2;

export class UsageError extends Error {}

/** HOST:PORT (IPv6 literals bracketed; an empty host is every address). */
export function hostPort(value: string, flag: string): { host: string; port: number } {
  const m = /^(.*):(\d+)$/.exec(value);
  if (!m || Number(m[2]) > 65535) throw new UsageError(`${flag} expects HOST:PORT, got ${JSON.stringify(value)}`);
  return { host: m[1]!.replace(/^\[|\]$/g, '') || '0.0.0.0', port: Number(m[2]) };
}

/** The base URL of an admin port (IPv6 literals bracketed). */
export const adminUrl = (host: string, port: number): string => `http://${host.includes(':') ? `[${host}]` : host}:${port}`;

const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** `250ms`, `2s`, `5m`, `24h` or a bare number of milliseconds. */
export function durationMs(value: string, flag: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(value.trim());
  if (!m) throw new UsageError(`${flag} expects a duration such as 100ms, 2s, 5m or 24h, got ${JSON.stringify(value)}`);
  return Math.round(Number(m[1]) * UNIT_MS[m[2] ?? 'ms']!);
}
