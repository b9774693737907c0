#!/usr/bin/env node
import { EXIT_OK, EXIT_REJECTED, EXIT_USAGE, UsageError } from './usage.js';
import { SMC_VERSION as VERSION } from './version.js';

const HELP = `smc - a service-mesh control plane for SMI policy and Envoy

Usage:
  smc controller [options]        Run the control plane (xDS with mutual TLS, admin, mesh CA)
  smc bootstrap --identity NS/SA --xds-address HOST:PORT
                                  Write a sidecar's Envoy bootstrap and certificates
  smc proxy-status                Show which proxies are in sync with the controller
  smc status                      Show which policy objects are not yet in force (Pending, Rejected)
  smc proxy-config NODE [TYPE]    Show what the controller serves one proxy (config_dump shape)
  smc explain --from NS/SA --to SERVICE[.NS]:PORT [SOURCE...]
                                  Say whether a request would be allowed, and why
  smc certs list|revoke           List or revoke proxy (bootstrap) certificates
  smc ca rotate-root              Rotate the mesh root of a running controller, with overlap
  smc vm bundle --name N --namespace NS --source PATH --xds-address HOST:PORT
                                  Write what a virtual machine needs to join the mesh
  smc sidecar                     Run an injected pod's sidecar (fetch its certificate, run Envoy)
  smc capture [--apply]           Print or apply a transparent sidecar's iptables rules
  smc compile PATH... [options]   Compile YAML (files or folders) into each proxy's Envoy configuration
  smc analyze [--kubeconfig FILE] Read a live cluster (read only) and print every object's status
  smc convert PATH...             Convert SMI TrafficSplits into Gateway API HTTPRoutes (GAMMA)
  smc golden [--update] [DIR]     Check (or rewrite) the golden cases under DIR (default: golden)
  smc kinds                       List the kinds and apiVersions smc reads
  smc crds                        Print the CRDs of the policy kinds (schemas from smc's own codecs)
  smc completion bash|zsh|fish    Print a shell completion script
  smc version                     Print smc's version (also --version)
  smc help [COMMAND]              Show help

Run 'smc help compile' for the options of a command.
`;
/**
 * Each command's module, loaded only when that command runs (or its help is
 * asked for): \`smc --help\` or \`smc proxy-status\` never load the compiler,
 * the Kubernetes client or Envoy's protos.
 */
interface Command {
  run(args: string[]): Promise<number> | number;
  help: string;
  /** Its options (the parser's table): suggestions and completion read them, a test holds the help to them. */
  options: Readonly<Record<string, { readonly type: string; readonly short?: string }>>;
  /** Its subcommands, if it has any (certs list|revoke). */
  subcommands?: readonly string[];
}
const COMMANDS: Record<string, () => Promise<Command>> = {
  controller: async () => import('./runtime-commands.js').then((m) => ({ run: m.controllerCommand, help: m.HELP_CONTROLLER, options: m.OPTIONS_CONTROLLER })),
  bootstrap: async () => import('./runtime-commands.js').then((m) => ({ run: m.bootstrapCommand, help: m.HELP_BOOTSTRAP, options: m.OPTIONS_BOOTSTRAP })),
  'proxy-status': async () => import('./runtime-commands.js').then((m) => ({ run: m.proxyStatusCommand, help: m.HELP_PROXY_STATUS, options: m.OPTIONS_PROXY_STATUS })),
  status: async () => import('./status-command.js').then((m) => ({ run: m.statusCommand, help: m.HELP_STATUS, options: m.OPTIONS_STATUS })),
  'proxy-config': async () => import('./proxy-config-command.js').then((m) => ({ run: m.proxyConfigCommand, help: m.HELP_PROXY_CONFIG, options: m.OPTIONS_PROXY_CONFIG })),
  explain: async () => import('./explain-command.js').then((m) => ({ run: m.explainCommand, help: m.HELP_EXPLAIN, options: m.OPTIONS_EXPLAIN })),
  certs: async () => import('./certs-command.js').then((m) => ({ run: m.certsCommand, help: m.HELP_CERTS, options: m.OPTIONS_CERTS, subcommands: ['list', 'revoke'] })),
  ca: async () => import('./certs-command.js').then((m) => ({ run: m.caCommand, help: m.HELP_CA, options: m.OPTIONS_CA, subcommands: ['rotate-root'] })),
  vm: async () => import('./vm-command.js').then((m) => ({ run: m.vmCommand, help: m.HELP_VM, options: m.OPTIONS_VM, subcommands: ['bundle'] })),
  sidecar: async () => import('./sidecar-command.js').then((m) => ({ run: m.sidecarCommand, help: m.HELP_SIDECAR, options: m.OPTIONS_SIDECAR })),
  capture: async () => import('./capture-command.js').then((m) => ({ run: m.captureCommand, help: m.HELP_CAPTURE, options: m.OPTIONS_CAPTURE })),
  analyze: async () => import('./analyze-command.js').then((m) => ({ run: m.analyzeCommand, help: m.HELP_ANALYZE, options: m.OPTIONS_ANALYZE })),
  compile: async () => import('./compile-command.js').then((m) => ({ run: m.compileCommand, help: m.HELP_COMPILE, options: m.OPTIONS_COMPILE })),
  convert: async () => import('./convert-command.js').then((m) => ({ run: m.convertCommand, help: m.HELP_CONVERT, options: m.OPTIONS_CONVERT })),
  golden: async () => import('./compile-command.js').then((m) => ({ run: m.goldenCommand, help: m.HELP_GOLDEN, options: m.OPTIONS_GOLDEN })),
  kinds: async () => import('./compile-command.js').then((m) => ({ run: m.kindsCommand, help: m.HELP_KINDS, options: m.OPTIONS_KINDS })),
  crds: async () => import('./crds-command.js').then((m) => ({ run: m.crdsCommand, help: m.HELP_CRDS, options: m.OPTIONS_CRDS })),
  completion: async () => import('./completion.js').then((m) => ({ run: (args: string[]) => m.completionCommand(args), help: m.HELP_COMPLETION, options: m.OPTIONS_COMPLETION, subcommands: ['bash', 'zsh', 'fish'] })),
  version: async () => ({ run: versionCommand, help: HELP_VERSION, options: OPTIONS_VERSION }),
};

const HELP_VERSION = `smc version [-o json|yaml]

Prints smc's version and the Node.js it runs on (also: smc --version).

Options:
  -o, --output json|yaml  Machine-readable
  -h, --help          Show this help

Example:
  smc version -o json
`;

/** The options of `versionCommand` (its help lists each; completion and suggestions read them). */
export const OPTIONS_VERSION = { output: { type: 'string', short: 'o' }, help: { type: 'boolean', short: 'h', default: false } } as const;

async function versionCommand(args: string[]): Promise<number> {
  const { parseArgs } = await import('node:util');
  const { values } = parseArgs({ args, options: OPTIONS_VERSION });
  if (values.help) {
    process.stdout.write(HELP_VERSION);
    return EXIT_OK;
  }
  if (values.output !== undefined && values.output !== 'json' && values.output !== 'yaml') throw new UsageError(`-o expects json or yaml (or nothing), got ${JSON.stringify(values.output)}`);
  const doc = { version: VERSION, node: process.version };
  process.stdout.write(values.output === 'json' ? `${JSON.stringify(doc)}\n` : values.output === 'yaml' ? `version: ${doc.version}\nnode: ${doc.node}\n` : `smc ${VERSION} (node ${process.version})\n`);
  return EXIT_OK;
}

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command === undefined || command === 'help' || command === '--help' || command === '-h') {
    const topic = rest[0];
    if (topic === undefined) {
      process.stdout.write(HELP);
      return EXIT_OK;
    }
    const load = COMMANDS[topic];
    if (!load) {
      process.stderr.write(`smc: no help for ${JSON.stringify(topic)}: there is no such command (${Object.keys(COMMANDS).join(', ')})\n`);
      return EXIT_USAGE;
    }
    process.stdout.write((await load()).help);
    return EXIT_OK;
  }
  if (command === '--version' || command === '-v') return versionCommand(rest);
  if (command === '__complete') return (await import('./completion.js')).completeCommand(rest, COMMANDS);
  const load = COMMANDS[command];
  if (!load) {
    const { didYouMean } = await import('../compiler/did-you-mean.js');
    const close = didYouMean(command, Object.keys(COMMANDS));
    process.stderr.write(`smc: unknown command ${JSON.stringify(command)}${close ? `; did you mean "${close}"?` : ''} ('smc help' lists the commands)\n`);
    return EXIT_USAGE;
  }
  return (await load()).run(rest);
}

// Output piped into a reader that stops early (smc kinds | head) ends the command quietly.
process.stdout.on('error', (e: NodeJS.ErrnoException) => {
  if (e.code === 'EPIPE') process.exit(process.exitCode ?? EXIT_OK);
  throw e;
});

/** The option of `command` closest to `given` (--outptu: --output), if one is close. */
async function suggestOption(command: string, given: string): Promise<string | undefined> {
  const load = COMMANDS[command];
  if (!load) return undefined;
  const { didYouMean } = await import('../compiler/did-you-mean.js');
  const names = Object.keys((await load()).options).map((o) => `--${o}`);
  return didYouMean(given.replace(/=.*$/, ''), names);
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (e: unknown) => {
    // Errors the user can act on are named, not imported: their modules load only with their commands.
    const named = e instanceof Error ? e.constructor.name : '';
    const message = e instanceof Error ? e.message : String(e);
    if (named === 'PathNotFoundError' || e instanceof UsageError || (e instanceof TypeError && 'code' in e && String(e.code).startsWith('ERR_PARSE_ARGS'))) {
      // Node's parser explains unknown options at length; one line says it, with the option meant if it is close.
      const unknown = /^Unknown option '([^']+)'/.exec(message);
      const command = process.argv[2] ?? '';
      const prefix = command in COMMANDS ? `smc ${command}` : 'smc';
      if (!unknown) {
        process.stderr.write(`${prefix}: ${message}\n`);
        process.exitCode = EXIT_USAGE;
        return;
      }
      void suggestOption(command, unknown[1]!).then((close) => {
        process.stderr.write(`${prefix}: unknown option ${unknown[1]}${close ? `; did you mean ${close}?` : ''} (see 'smc help ${command}')\n`);
        process.exitCode = EXIT_USAGE;
      });
      return;
    }
    if (named === 'StartupError') {
      process.stderr.write(`smc: ${message}\n`);
      process.exitCode = EXIT_REJECTED;
      return;
    }
    process.stderr.write(`smc: internal error: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    process.exitCode = 3;
  },
);

