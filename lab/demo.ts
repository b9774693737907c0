import { createServer } from 'node:net';
import { parseArgs } from 'node:util';
import { syncState } from '../src/runtime/proxy-status.js';
import { PUSH_ORDER } from '../src/compiler/envoy/codec.js';
import { startBookstoreLab, type Command, type Results } from './bookstore.js';

/**
 * `npm run demo`: the bookstore mesh for a person to watch. Six pods in
 * network namespaces, real Envoy sidecars, the controller watching
 * examples/bookstore; every caller calls all the time and the screen shows,
 * over the last 5 seconds, what was allowed and denied per caller and per
 * backend, and each proxy's sync state. Edit the policy files while it runs.
 */
const { values } = parseArgs({
  options: {
    source: { type: 'string', default: 'examples/bookstore' },
    duration: { type: 'string' },
    plain: { type: 'boolean', default: !process.stdout.isTTY },
    help: { type: 'boolean', short: 'h', default: false },
  },
});
if (values.help) {
  process.stdout.write(`npm run demo [-- --source DIR] [--duration SECONDS] [--plain]

Brings up the bookstore mesh of DIR (default examples/bookstore) in network
namespaces (needs root) and shows live counters; edit DIR's files to change
the mesh. Ctrl-C stops and removes everything. --plain prints a table per
second instead of redrawing the screen; --duration stops after that long.
`);
  process.exit(0);
}
if (process.getuid?.() !== 0) {
  process.stderr.write('demo: network namespaces and iptables need root: run it as root (sudo -E npm run demo)\n');
  process.exit(1);
}

/** Who calls what, every tick. */
const CALLS: { from: string; label: string; command: Command }[] = [
  { from: 'bookbuyer-1', label: 'bookbuyer -> bookstore', command: { kind: 'http', url: 'http://bookstore.bookstore:14001/buy-a-book', headers: { 'user-agent': 'bookbuyer/1.0' }, count: 5 } },
  { from: 'bookthief-1', label: 'bookthief -> bookstore', command: { kind: 'http', url: 'http://bookstore.bookstore:14001/buy-a-book', headers: { 'user-agent': 'bookthief/1.0' }, count: 5 } },
  { from: 'bookstore-v1-1', label: 'bookstore-v1 -> bookwarehouse', command: { kind: 'http', url: 'http://bookwarehouse.bookwarehouse:14001/restock-books', method: 'POST', count: 1 } },
  { from: 'bookstore-v2-1', label: 'bookstore-v2 -> bookwarehouse', command: { kind: 'http', url: 'http://bookwarehouse.bookwarehouse:14001/restock-books', method: 'POST', count: 1 } },
  { from: 'bookwarehouse-1', label: 'bookwarehouse -> mysql (tcp)', command: { kind: 'tcp', host: 'mysql.bookwarehouse', port: 3306, payload: 'restock', count: 1 } },
];
const WINDOW_S = 5;

process.stdout.write(`demo: starting the bookstore mesh from ${values.source} (about 10 s)...\n`);
const events: string[] = [];
const launched = Date.now();
// The admin port where the CLI looks by default (127.0.0.1:15129), unless something else holds it.
const free = await new Promise<boolean>((resolve) => {
  const probe = createServer().once('error', () => resolve(false)).listen(15129, '127.0.0.1', () => probe.close(() => resolve(true)));
});
const lab = await startBookstoreLab({ source: values.source, inPlace: true, adminPort: free ? 15129 : 0, log: (l) => events.push(l) });
const admin = `127.0.0.1:${lab.controller.adminPort}`;
const at = free ? '' : ` --admin ${admin}`;
const smc = 'node dist/src/cli/main.js';
process.stdout.write(`demo: the mesh is up (${((Date.now() - launched) / 1000).toFixed(1)} s); the controller's admin port is ${admin}\n`);
// Per call, per second: outcome -> count.
const buckets = CALLS.map(() => [] as { at: number; results: Results }[]);
let stopping = false;

const stop = async (code: number) => {
  if (stopping) return;
  stopping = true;
  process.stdout.write('\ndemo: stopping; removing the network namespaces...\n');
  await lab.close();
  process.exit(code);
};
process.on('SIGINT', () => void stop(0));
process.on('SIGTERM', () => void stop(0));

// Every caller calls in its own loop.
CALLS.forEach((c, i) => {
  void (async () => {
    while (!stopping) {
      const results = await lab.call(c.from, c.command);
      buckets[i]!.push({ at: Date.now(), results });
      await new Promise((r) => setTimeout(r, 200));
    }
  })();
});

/** "200 bookstore-v1" -> "bookstore-v1"; 403 -> "denied (403)"; an error -> "refused (ECONNRESET)". */
function outcome(key: string): string {
  if (key.startsWith('200 ')) return key.slice(4) || 'ok';
  if (key.startsWith('echo:')) return 'mysql';
  if (key.startsWith('ERROR ')) return `refused (${key.slice(6)})`;
  return `denied (${key.split(' ')[0]})`;
}

function render(): string {
  const now = Date.now();
  const lines = [`smc demo: the bookstore mesh (${values.source}), calls in the last ${WINDOW_S} s; edit the files there and watch.${values.plain ? ` [${new Date(now).toISOString()}]` : ''}`, ''];
  CALLS.forEach((c, i) => {
    const recent = buckets[i]!.filter((b) => now - b.at < WINDOW_S * 1000);
    buckets[i] = recent;
    const totals = new Map<string, number>();
    for (const b of recent) for (const [k, v] of Object.entries(b.results)) totals.set(outcome(k), (totals.get(outcome(k)) ?? 0) + v);
    const allowed = [...totals].filter(([k]) => !k.startsWith('denied') && !k.startsWith('refused'));
    const denied = [...totals].filter(([k]) => k.startsWith('denied') || k.startsWith('refused'));
    const show = (xs: [string, number][]) => xs.sort().map(([k, v]) => `${k} ${v}`).join(', ') || '-';
    lines.push(`  ${c.label.padEnd(32)} allowed: ${show(allowed).padEnd(40)} denied: ${show(denied)}`);
  });
  lines.push('', '  PROXY                                        CDS      EDS      LDS      RDS      SDS');
  for (const p of lab.controller.proxies.list()) {
    lines.push(`  ${p.nodeId.padEnd(44)} ${PUSH_ORDER.map((k) => syncState(p.types[k]).padEnd(8)).join(' ')}`);
    for (const k of PUSH_ORDER) if (p.types[k]?.nack) lines.push(`    ${k} NACK: ${p.types[k]!.nack!.message}`);
  }
  // Whole messages: a problem's did-you-mean is at its end.
  const recentEvents = events.filter((e) => /^(input|controller: published|ca: renewed)/.test(e)).slice(-4);
  lines.push('', '  recent controller events:', ...recentEvents.map((e) => `    ${e}`));
  lines.push(
    '',
    `  Try: set a TrafficSplit weight to 0 in ${values.source}/40-policy.yaml, or "permissive: true" in 00-mesh.yaml. Ctrl-C stops.`,
    `  And, from another terminal (the controller's admin port is ${admin}):`,
    `    ${smc} proxy-status${at}`,
    `    ${smc} proxy-config bookbuyer/bookbuyer/bookbuyer-1 routes${at}`,
    `    ${smc} explain --from bookthief/bookthief --to bookstore.bookstore:14001${at}`,
    `    curl -s http://${admin}/status/inputs   # every input object's status`,
  );
  return lines.join('\n');
}

const started = Date.now();
const timer = setInterval(() => {
  const screen = render();
  process.stdout.write(values.plain ? `${screen}\n\n` : `\u001b[2J\u001b[H${screen}\n`);
  if (values.duration && Date.now() - started >= Number(values.duration) * 1000) {
    clearInterval(timer);
    void stop(0);
  }
}, 1000);
