import { spawn } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startController, type Controller } from '../../src/runtime/controller.js';
import { freePort } from './tools.js';
import { GiveUp, waitFor } from './wait.js';

export interface TestControllerOptions {
  readonly insecureXds?: boolean;
  readonly pushWindowMs?: number;
  /** Default 0 (an ephemeral port); a restart passes the port it had. */
  readonly xdsPort?: number;
  readonly serviceCertTtlMs?: number;
  readonly recheckStreamsMs?: number;
  readonly programmedIntervalMs?: number;
}

export interface TestController {
  controller: Controller;
  dir: string;
  state: string;
  logs: string[];
}

/** A controller on loopback over `dir/mesh`, with its state in `dir/state` (both survive a restart). */
export async function startTestController(dir: string, options: TestControllerOptions = {}): Promise<TestController> {
  const logs: string[] = [];
  const controller = await startController({
    source: [join(dir, 'mesh')],
    stateDir: join(dir, 'state'),
    xdsHost: '127.0.0.1',
    xdsPort: options.xdsPort ?? 0,
    adminHost: '127.0.0.1',
    adminPort: 0,
    insecureXds: options.insecureXds ?? false,
    pushWindowMs: options.pushWindowMs,
    serviceCertTtlMs: options.serviceCertTtlMs,
    ...(options.recheckStreamsMs ? { recheckStreamsMs: options.recheckStreamsMs } : {}),
    ...(options.programmedIntervalMs !== undefined ? { programmedIntervalMs: options.programmedIntervalMs } : {}),
    log: (l) => logs.push(l),
  });
  return { controller, dir, state: join(dir, 'state'), logs };
}

/** A controller on loopback with ephemeral ports over a private copy of a mesh folder. */
export async function testController(mesh: string, options: TestControllerOptions = {}): Promise<TestController> {
  const dir = mkdtempSync(join(tmpdir(), 'smc-ctl-'));
  cpSync(mesh, join(dir, 'mesh'), { recursive: true });
  return startTestController(dir, options);
}

/**
 * `smc controller` in a process of its own (so a heap cap applies to it alone), on free loopback ports, with
 * `args` added (its sources, --state, ...) and `nodeArgs` given to Node; resolves once /readyz answers 200.
 */
export async function controllerProcess(args: readonly string[], nodeArgs: readonly string[] = []) {
  const [xds, admin] = [await freePort(), await freePort()];
  const child = spawn(process.execPath, [...nodeArgs, 'dist/src/cli/main.js', 'controller', '--log-format', 'text', '--xds-address', `127.0.0.1:${xds}`, '--admin-address', `127.0.0.1:${admin}`, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  child.stderr!.on('data', (d: Buffer) => (log = (log + d.toString()).slice(-4_000_000)));
  let exited: string | undefined;
  child.on('exit', (code, signal) => (exited = `${code ?? signal}`));
  await waitFor('the controller to be ready', async () => {
    if (exited !== undefined) throw new GiveUp(`controller exited (${exited}): ${log.slice(-3000)}`);
    return (await fetch(`http://127.0.0.1:${admin}/readyz`)).status === 200 ? true : undefined;
  }, 120_000);
  /** From /proc: the resident set now, and its peak (VmHWM), in bytes. */
  const memory = (field: 'VmRSS' | 'VmHWM') => Number(new RegExp(`${field}:\\s+(\\d+) kB`).exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'))![1]) * 1024;
  return {
    child,
    xds,
    admin,
    log: () => log,
    exited: () => exited,
    rss: () => memory('VmRSS'),
    peakRss: () => memory('VmHWM'),
    stop: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const gone = new Promise((r) => child.once('exit', r));
      child.kill('SIGKILL');
      await gone;
    },
  };
}
