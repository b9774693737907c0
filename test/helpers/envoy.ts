import { execFileSync } from 'node:child_process';

/**
 * The real Envoy binary, installed by the project's own script when missing.
 * Throws (so the test fails, never skips) when it cannot be had.
 */
let cached: string | undefined;

export function envoyPath(): string {
  if (cached) return cached;
  try {
    cached = execFileSync('bash', ['scripts/install-envoy.sh'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();
  } catch (e) {
    const err = e as { stderr?: string; message: string };
    throw new Error(`Envoy is required for this test and could not be installed (scripts/install-envoy.sh): ${err.stderr ?? err.message}`);
  }
  return cached;
}

/** `envoy --mode validate`: ok, and Envoy's own words when it is not. */
export function validateWithEnvoy(configPath: string): { ok: boolean; output: string } {
  try {
    const out = execFileSync(envoyPath(), ['--mode', 'validate', '-c', configPath, '-l', 'error', '--log-format', '%v'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    return { ok: true, output: out };
  } catch (e) {
    const err = e as { stdout?: string; stderr?: string };
    return { ok: false, output: `${err.stdout ?? ''}${err.stderr ?? ''}` };
  }
}
