import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, chownSync, cpSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startTestController } from './helpers/controller.js';

/** The state folder holds the mesh CA: a folder others can write is refused, keys others can read are made private, and the admin token must be one. */

/** A mesh folder with a state folder that has been used once (root key, admin token, issued keys). */
async function usedState() {
  const dir = mkdtempSync(join(tmpdir(), 'smc-state-safety-'));
  cpSync('examples/bookstore', join(dir, 'mesh'), { recursive: true });
  const first = await startTestController(dir);
  await first.controller.close();
  return { dir, state: join(dir, 'state') };
}

const startFails = async (dir: string) => {
  try {
    const c = await startTestController(dir);
    await c.controller.close();
    return undefined;
  } catch (e) {
    return (e as Error).message;
  }
};

test('a state folder others can write is refused at start, saying who can and what to do', async () => {
  const { dir, state } = await usedState();
  chmodSync(state, 0o777);
  assert.match((await startFails(dir)) ?? 'it started', /the state folder is not safe: .*state: every user can write it \(mode 777\)\. Whoever can write there can take the mesh CA; chown it to this user and chmod go-w it/);
  chmodSync(state, 0o700);
  chownSync(join(state, 'ca'), 12345, 12345);
  assert.match((await startFails(dir)) ?? 'it started', /state\/ca: it is owned by uid 12345, not by this process/);
  chownSync(join(state, 'ca'), process.getuid!(), process.getgid!());
  chmodSync(join(state, 'ca', 'root.key'), 0o666);
  assert.match((await startFails(dir)) ?? 'it started', /ca\/root\.key: every user can write it/);
  chmodSync(join(state, 'ca', 'root.key'), 0o600);
  assert.equal(await startFails(dir), undefined, 'safe again, it starts');
});

test('keys and the token that others can read are made 0600 again, with a warning', async () => {
  const { dir, state } = await usedState();
  chmodSync(join(state, 'ca', 'root.key'), 0o644);
  chmodSync(join(state, 'admin-token'), 0o644);
  const c = await startTestController(dir);
  try {
    assert.equal(statSync(join(state, 'ca', 'root.key')).mode & 0o777, 0o600);
    assert.equal(statSync(join(state, 'admin-token')).mode & 0o777, 0o600);
    assert.ok(c.logs.some((l) => /ca\/root\.key could be read by others \(mode 644\); made 0600/.test(l)), c.logs.join('\n'));
  } finally {
    await c.controller.close();
  }
});

test('an admin token that is too short, not text, or a folder is refused at start and by the CLI, naming the file', async () => {
  const { dir, state } = await usedState();
  const token = join(state, 'admin-token');
  writeFileSync(token, 'x\n', { mode: 0o600 });
  assert.match((await startFails(dir)) ?? 'it started', /admin-token: not an admin token smc would accept \(expected at least 32 characters/);
  const cli = spawnSync(process.execPath, ['dist/src/cli/main.js', 'ca', 'rotate-root', '--state', state], { encoding: 'utf8' });
  assert.equal(cli.status, 1, cli.stderr);
  assert.match(cli.stderr, /^smc: .*admin-token: not an admin token smc would accept/);
  writeFileSync(token, Buffer.from([0xde, 0xad, 0xbe, 0xef, 0x0a, 0x00, 0xff]), { mode: 0o600 });
  assert.match((await startFails(dir)) ?? 'it started', /admin-token: not an admin token smc would accept/);
  rmSync(token);
  mkdirSync(token);
  assert.match((await startFails(dir)) ?? 'it started', /admin-token: it is a folder, not a file/);
  rmSync(token, { recursive: true });
  assert.equal(await startFails(dir), undefined, 'without it, a new one is written');
});
