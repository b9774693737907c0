import { spawn } from 'node:child_process';
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import { request } from 'node:https';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { PROBE_PORT } from '../compiler/capture.js';
import { READY_PATH } from '../compiler/probes.js';
import { adsBootstrap } from '../output/ads-bootstrap.js';
import type { ProxyCertificateAnswer } from '../runtime/pod-identity.js';
import { UsageError } from './usage.js';

export const HELP_SIDECAR = `smc sidecar [options]

What an injected pod's smc-proxy container runs: it trades the pod's
service-account token (audience smc, projected by the kubelet) for the pod's
proxy certificate at the controller, writes Envoy's bootstrap next to it and
runs Envoy, passing signals on. The controller is trusted by its SPIFFE ID
(spiffe://<trust domain>/ns/smc-system/sa/smc-controller) under the roots in
$SMC_TRUST_BUNDLE (set by the injector) or --trust-bundle-file.

Options:
      --xds-address HOST:PORT     The controller's xDS port
      --certificate-url URL       The controller's webhook port (https://HOST:PORT)
      --token-file FILE           The pod's token (default /var/run/secrets/smc.dev/token)
      --dir DIR                   Where bootstrap and certificate are written (default /etc/smc-proxy)
      --trust-bundle-file FILE    Roots to trust the controller with (default: $SMC_TRUST_BUNDLE)
      --envoy PATH                The Envoy binary (default envoy, on PATH)
      --no-envoy                  Write the files and exit (for inspection)
      --wait-ready                Only wait until the sidecar answers ${READY_PATH} on
                                  ${PROBE_PORT} (the fallback mode's postStart hook)
  -h, --help                      Show this help

Exit status: Envoy's; 1 when the certificate cannot be had; 2 on a usage error.

Example (what the injector writes into the pod; by hand, to inspect the files):
  smc sidecar --xds-address smc-controller.smc-system.svc:15128 \\
    --certificate-url https://smc-controller.smc-system.svc:15443 --no-envoy --dir /tmp/proxy
`;

const CONTROLLER_ID = /^URI:spiffe:\/\/[^/]+\/ns\/smc-system\/sa\/smc-controller$/;

/** The options of `sidecarCommand` (its help lists each; completion and suggestions read them). */
export const OPTIONS_SIDECAR = {
  'xds-address': { type: 'string' },
  'certificate-url': { type: 'string' },
  'token-file': { type: 'string', default: '/var/run/secrets/smc.dev/token' },
  dir: { type: 'string', default: '/etc/smc-proxy' },
  'trust-bundle-file': { type: 'string' },
  envoy: { type: 'string', default: 'envoy' },
  'no-envoy': { type: 'boolean', default: false },
  'wait-ready': { type: 'boolean', default: false },
  help: { type: 'boolean', short: 'h', default: false },
} as const;

export async function sidecarCommand(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: OPTIONS_SIDECAR,
  });
  if (values.help) {
    process.stdout.write(HELP_SIDECAR);
    return 0;
  }
  if (values['wait-ready']) return waitReady(300_000);
  const xds = /^(.+):(\d{1,5})$/.exec(values['xds-address'] ?? '');
  if (!xds) throw new UsageError(`--xds-address expects HOST:PORT, got ${JSON.stringify(values['xds-address'] ?? '')}`);
  const url = values['certificate-url'];
  if (!url || !/^https:\/\/[^/\s]+/.test(url)) throw new UsageError(`--certificate-url expects https://HOST:PORT, got ${JSON.stringify(url ?? '')}`);
  const trust = values['trust-bundle-file'] ? await readFile(values['trust-bundle-file'], 'utf8') : process.env['SMC_TRUST_BUNDLE'];
  if (!trust) throw new UsageError('no roots to trust the controller with: set SMC_TRUST_BUNDLE or --trust-bundle-file');
  const token = (await readFile(values['token-file'], 'utf8')).trim();

  let answer: ProxyCertificateAnswer | undefined;
  let lastError = '';
  // The controller may be starting: a few tries, then give up (the kubelet restarts the container).
  for (let attempt = 0; attempt < 6 && !answer; attempt++) {
    if (attempt > 0) await new Promise((r) => setTimeout(r, 500 * 2 ** Math.min(attempt, 4)));
    const r = await postJson(`${url.replace(/\/$/, '')}/v1/proxy-certificate`, { token }, trust).catch((e: Error) => ({ status: 0, body: { error: e.message } }));
    if (r.status === 200) answer = r.body as ProxyCertificateAnswer;
    else {
      lastError = `${r.status || 'no answer'}: ${(r.body as { error?: string }).error ?? JSON.stringify(r.body)}`;
      if (r.status === 403 || r.status === 400) break; // not a matter of time
    }
  }
  if (!answer) {
    process.stderr.write(`smc sidecar: no proxy certificate from ${url}: ${lastError}\n`);
    return 1;
  }
  const dir = values.dir;
  await mkdir(dir, { recursive: true });
  const tls = { certificateChain: join(dir, 'proxy.crt'), privateKey: join(dir, 'proxy.key'), trustBundle: join(dir, 'ca.crt'), controlPlaneIdentity: answer.controlPlaneIdentity };
  await writeFile(tls.privateKey, answer.privateKey, { mode: 0o600 });
  await chmod(tls.privateKey, 0o600);
  await writeFile(tls.certificateChain, answer.certificateChain);
  await writeFile(tls.trustBundle, answer.trustBundle);
  const bootstrap = join(dir, 'bootstrap.json');
  await writeFile(bootstrap, `${JSON.stringify(adsBootstrap({ nodeId: answer.nodeId, xdsHost: xds[1]!, xdsPort: Number(xds[2]), tls }), null, 2)}\n`);
  process.stderr.write(`smc sidecar: node ${answer.nodeId} (${answer.identity}); wrote ${bootstrap}\n`);
  if (values['no-envoy']) return 0;
  // No hot restart: its shared memory (/dev/shm/envoy_shared_memory_*) outlives an Envoy killed outright, and the
  // next Envoy in the same IPC namespace (a restarted sidecar of the same pod) would then refuse to start.
  const envoy = spawn(values.envoy, ['-c', bootstrap, '--log-level', 'warn', '--disable-hot-restart'], { stdio: 'inherit' });
  for (const signal of ['SIGTERM', 'SIGINT'] as const) process.on(signal, () => envoy.kill(signal));
  return new Promise((resolve) => {
    envoy.on('error', (e) => {
      process.stderr.write(`smc sidecar: cannot run ${values.envoy}: ${e.message}\n`);
      resolve(1);
    });
    envoy.on('exit', (code, signal) => resolve(code ?? (signal ? 128 + (signal === 'SIGINT' ? 2 : signal === 'SIGKILL' ? 9 : 15) : 1)));
  });
}

function postJson(url: string, body: unknown, ca: string): Promise<{ status: number; body: unknown }> {
  const text = JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      {
        method: 'POST',
        ca,
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) },
        timeout: 10_000,
        // The controller proves its SPIFFE ID, whatever name or address it is reached by.
        checkServerIdentity: (_host, cert) => (cert.subjectaltname?.split(', ').some((n) => CONTROLLER_ID.test(n)) ? undefined : new Error(`the server is not the smc controller (its names: ${cert.subjectaltname ?? 'none'})`)),
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (d: Buffer) => chunks.push(d));
        res.on('end', () => {
          try {
            resolve({ status: res.statusCode ?? 0, body: JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown });
          } catch {
            resolve({ status: res.statusCode ?? 0, body: { error: 'an answer that is not JSON' } });
          }
        });
      },
    );
    req.on('timeout', () => req.destroy(new Error('timed out')));
    req.on('error', reject);
    req.end(text);
  });
}

async function waitReady(timeoutMs: number): Promise<number> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    const ok = await fetch(`http://127.0.0.1:${PROBE_PORT}${READY_PATH}`).then((r) => r.status === 200, () => false);
    if (ok) return 0;
    await new Promise((r) => setTimeout(r, 500));
  }
  process.stderr.write(`smc sidecar: the sidecar did not become ready within ${timeoutMs / 1000}s\n`);
  return 1;
}
