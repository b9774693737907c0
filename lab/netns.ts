import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { installedTool } from '../test/helpers/tools.js';

/**
 * Test hosts as network namespaces joined by a bridge in the root namespace,
 * addressed from 198.18.0.0/15 (reserved for benchmark testing): no traffic
 * leaves this machine. Everything a network creates is named after the test
 * process (`smc<pid>…`), removed by `close()`, on process exit and on
 * SIGINT/SIGTERM; leftovers of a test process that died are swept by the next
 * network created.
 */
export interface TestHost {
  readonly name: string;
  /** The network namespace. */
  readonly ns: string;
  readonly address: string;
  /** Runs a command in the host to completion (as root, or as `uid`); rejects on a non-zero exit. */
  run(cmd: string, args: readonly string[], options?: { uid?: number; input?: string }): Promise<string>;
  /** Kills every process in the host (the namespace stays until the network closes). */
  stop(): Promise<void>;
  /** Starts a long-running process in the host; it is killed when the network closes. */
  start(cmd: string, args: readonly string[], options?: { uid?: number; env?: NodeJS.ProcessEnv; stdin?: boolean }): ChildProcess;
}

export interface TestNetwork {
  /** The root namespace's address on the bridge (a controller listens there for the hosts). */
  readonly gateway: string;
  /**
   * A host with the next free address, or `address` (inside the network).
   * `hosts` becomes the host's /etc/hosts (ip netns exec mounts
   * /etc/netns/NS/hosts there): how test applications call services by name.
   */
  addHost(name: string, options?: { address?: string; hosts?: string }): Promise<TestHost>;
  close(): Promise<void>;
}

const ip = (...args: string[]) => execFileSync('ip', args, { stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8' });
const tryIp = (...args: string[]) => {
  try {
    ip(...args);
  } catch {
    /* already gone */
  }
};
const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

function removeNamespace(ns: string): void {
  // Processes inside keep a namespace alive: they go first.
  let pids: string[] = [];
  try {
    pids = ip('netns', 'pids', ns).split('\n').filter(Boolean);
  } catch {
    /* gone */
  }
  for (const p of pids) {
    try {
      process.kill(Number(p), 'SIGKILL');
    } catch {
      /* exited */
    }
  }
  tryIp('netns', 'del', ns);
}

/** Removes namespaces and bridges of test processes that are no longer running. */
function sweep(): void {
  for (const line of ip('netns', 'list').split('\n')) {
    const m = /^(smc(\d+)-\S+)/.exec(line);
    if (m && !alive(Number(m[2]))) {
      removeNamespace(m[1]!);
      rmSync(`/etc/netns/${m[1]}`, { recursive: true, force: true });
    }
  }
  for (const line of ip('-o', 'link', 'show', 'type', 'bridge').split('\n')) {
    const m = /^\d+: (smc(\d+)br)[:@]/.exec(line);
    if (m && !alive(Number(m[2]))) tryIp('link', 'del', m[1]!);
  }
}

let networks = 0;

export async function createTestNetwork(options: { subnet?: number; gateway?: { address: string; prefix: number } } = {}): Promise<TestNetwork> {
  installedTool('iproute2 and iptables', 'scripts/install-netns-tools.sh');
  sweep();
  const id = `smc${process.pid}`;
  const index = networks++;
  if (index > 0) throw new Error('one test network per test process (the bridge is named after the process)');
  // A /24 of 198.19.0.0/16 per process; hosts from .2, the root namespace is .1.
  const third = options.subnet ?? (process.pid % 250) + 1;
  const prefix = `198.19.${third}`;
  const gateway = options.gateway ?? { address: `${prefix}.1`, prefix: 24 };
  const bridge = `${id}br`;
  const namespaces: string[] = [];
  const children = new Set<ChildProcess>();
  let closed = false;
  const close = () => {
    if (closed) return;
    closed = true;
    for (const c of children) c.kill('SIGKILL');
    for (const ns of namespaces) {
      removeNamespace(ns);
      rmSync(`/etc/netns/${ns}`, { recursive: true, force: true });
    }
    tryIp('link', 'del', bridge);
    process.off('exit', close);
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  };
  const onSignal = (signal: NodeJS.Signals) => {
    close();
    process.kill(process.pid, signal);
  };
  process.on('exit', close);
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    ip('link', 'add', bridge, 'type', 'bridge');
    ip('addr', 'add', `${gateway.address}/${gateway.prefix}`, 'dev', bridge);
    ip('link', 'set', bridge, 'up');
  } catch (e) {
    close();
    throw e;
  }
  // Another uid keeps the right to read files (a checkout under a private temporary folder, as in CI); nothing else.
  const asUser = (uid: number | undefined, cmd: string, args: readonly string[]) =>
    uid === undefined ? [cmd, ...args] : ['setpriv', `--reuid=${uid}`, `--regid=${uid}`, '--clear-groups', '--inh-caps=+dac_read_search', '--ambient-caps=+dac_read_search', '--', cmd, ...args];
  return {
    gateway: gateway.address,
    async addHost(name, o = {}) {
      const n = namespaces.length;
      const ns = `${id}-${name}`;
      const address = o.address ?? `${prefix}.${n + 2}`;
      if (o.hosts !== undefined) {
        mkdirSync(`/etc/netns/${ns}`, { recursive: true });
        writeFileSync(`/etc/netns/${ns}/hosts`, o.hosts);
      }
      const outside = `${id}v${n}`;
      namespaces.push(ns);
      ip('netns', 'add', ns);
      ip('link', 'add', outside, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns);
      ip('link', 'set', outside, 'master', bridge);
      ip('link', 'set', outside, 'up');
      ip('-n', ns, 'addr', 'add', `${address}/${gateway.prefix}`, 'dev', 'eth0');
      ip('-n', ns, 'link', 'set', 'eth0', 'up');
      ip('-n', ns, 'link', 'set', 'lo', 'up');
      ip('-n', ns, 'route', 'add', 'default', 'via', gateway.address);
      return {
        name,
        ns,
        address,
        run(cmd, args, o = {}) {
          return new Promise((resolve, reject) => {
            const child = spawn('ip', ['netns', 'exec', ns, ...asUser(o.uid, cmd, args)], { stdio: ['pipe', 'pipe', 'pipe'] });
            let out = '';
            let err = '';
            child.stdout.on('data', (d: Buffer) => (out += d.toString()));
            child.stderr.on('data', (d: Buffer) => (err += d.toString()));
            child.on('error', reject);
            child.on('close', (code) => (code === 0 ? resolve(out) : reject(new Error(`${cmd} ${args.join(' ')} in ${name} exited ${code}: ${err.trim()}`))));
            // A command that exits without reading its input closes the pipe first (EPIPE): its exit code says how it went.
            child.stdin.on('error', () => undefined);
            child.stdin.end(o.input ?? '');
          });
        },
        async stop() {
          let pids: string[] = [];
          try {
            pids = ip('netns', 'pids', ns).split('\n').filter(Boolean);
          } catch {
            /* gone */
          }
          for (const pid of pids) {
            try {
              process.kill(Number(pid), 'SIGTERM');
            } catch {
              /* exited */
            }
          }
        },
        start(cmd, args, o = {}) {
          const child = spawn('ip', ['netns', 'exec', ns, ...asUser(o.uid, cmd, args)], { stdio: [o.stdin ? 'pipe' : 'ignore', 'pipe', 'pipe'], env: o.env ?? process.env });
          children.add(child);
          child.on('exit', () => children.delete(child));
          return child;
        },
      };
    },
    async close() {
      close();
    },
  };
}
