import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, installedTool } from './tools.js';
import { waitFor } from './wait.js';

/**
 * A real external CA for tests: `cfssl serve` with a CA of its own, made by
 * `cfssl gencert -initca`, on a free loopback port. cfssl is installed by the
 * project's script when missing; the test fails, never skips, without it.
 */
export const cfsslPath = (): string => installedTool('cfssl', 'scripts/install-cfssl.sh');

export async function startCfssl(options: { expiry?: string } = {}): Promise<{ url: string; rootPem: string; stop: () => void }> {
  const bin = cfsslPath();
  const dir = mkdtempSync(join(tmpdir(), 'smc-cfssl-'));
  writeFileSync(join(dir, 'ca-csr.json'), JSON.stringify({ CN: 'cfssl test CA', key: { algo: 'ecdsa', size: 256 }, names: [{ O: 'cfssl test' }] }));
  const ca = JSON.parse(execFileSync(bin, ['gencert', '-initca', join(dir, 'ca-csr.json')], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] })) as { cert: string; key: string };
  writeFileSync(join(dir, 'ca.pem'), ca.cert);
  writeFileSync(join(dir, 'ca-key.pem'), ca.key, { mode: 0o600 });
  const usages = ['digital signature', 'key encipherment', 'server auth', 'client auth'];
  writeFileSync(join(dir, 'config.json'), JSON.stringify({ signing: { default: { expiry: options.expiry ?? '2h', usages }, profiles: { short: { expiry: '1h', usages } } } }));
  const port = await freePort();
  const child = spawn(bin, ['serve', '-address', '127.0.0.1', '-port', String(port), '-ca', join(dir, 'ca.pem'), '-ca-key', join(dir, 'ca-key.pem'), '-config', join(dir, 'config.json')], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
  const url = `http://127.0.0.1:${port}`;
  await waitFor('cfssl serve to answer', async () => ((await fetch(`${url}/api/v1/cfssl/info`, { method: 'POST', body: '{}' })).ok ? true : undefined), 15_000).catch((e: Error) => {
    child.kill();
    throw new Error(`${e.message}\n${stderr}`);
  });
  return { url, rootPem: ca.cert, stop: () => child.kill() };
}
