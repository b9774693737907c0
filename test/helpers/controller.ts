import { cpSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startController, type Controller } from '../../src/runtime/controller.js';

export interface TestControllerOptions {
  readonly insecureXds?: boolean;
  readonly pushWindowMs?: number;
  /** Default 0 (an ephemeral port); a restart passes the port it had. */
  readonly xdsPort?: number;
  readonly serviceCertTtlMs?: number;
  readonly recheckStreamsMs?: number;
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
