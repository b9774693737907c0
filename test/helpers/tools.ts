import { execFileSync } from 'node:child_process';
import { createServer } from 'node:net';

/**
 * External programs the tests run for real (Envoy, cfssl), each installed by
 * the project's own script when missing. Throws, so the test fails and never
 * skips, when it cannot be had.
 */
const installed = new Map<string, string>();

export function installedTool(what: string, script: string): string {
  const known = installed.get(script);
  if (known) return known;
  try {
    const path = execFileSync('bash', [script], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();
    installed.set(script, path);
    return path;
  } catch (e) {
    const err = e as { stderr?: string; message: string };
    throw new Error(`${what} is required for this test and could not be installed (${script}): ${err.stderr ?? err.message}`);
  }
}

export async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}
