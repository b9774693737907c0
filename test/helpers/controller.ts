import { cpSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startController, type Controller } from '../../src/runtime/controller.js';

/** A controller on loopback with ephemeral ports over a private copy of a mesh folder. */
export async function testController(mesh: string, options: { insecureXds?: boolean } = {}): Promise<{ controller: Controller; dir: string; state: string; logs: string[] }> {
  const dir = mkdtempSync(join(tmpdir(), 'smc-ctl-'));
  cpSync(mesh, join(dir, 'mesh'), { recursive: true });
  const logs: string[] = [];
  const controller = await startController({
    source: [join(dir, 'mesh')],
    stateDir: join(dir, 'state'),
    xdsHost: '127.0.0.1',
    xdsPort: 0,
    adminHost: '127.0.0.1',
    adminPort: 0,
    insecureXds: options.insecureXds ?? false,
    log: (l) => logs.push(l),
  });
  return { controller, dir, state: join(dir, 'state'), logs };
}
