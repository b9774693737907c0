import { EXIT_OK, UsageError, adminUrl, hostPort } from './usage.js';

/**
 * Shell completion. The scripts for bash, zsh and fish are thin: each asks
 * `smc __complete WORD...` for the candidates of the last word, so the three
 * shells complete alike, from the same option tables the commands parse
 * with. Node ids and identities come from a running controller (its admin
 * port: --admin on the line, else 127.0.0.1:15129), asked with a short
 * timeout; when none answers, nothing is offered for them.
 */
export const HELP_COMPLETION = `smc completion bash|zsh|fish

Prints a completion script for the shell: commands, subcommands, options,
option values (-o json|yaml, --direction, proxy-config types), and node ids
and identities of a running controller (asked at --admin, default
127.0.0.1:15129).

Options:
  -h, --help   Show this help

Examples:
  source <(smc completion bash)                 # in ~/.bashrc
  smc completion zsh > "\${fpath[1]}/_smc"      # zsh (then: compinit)
  smc completion fish > ~/.config/fish/completions/smc.fish
`;

export const OPTIONS_COMPLETION = { help: { type: 'boolean', short: 'h', default: false } } as const;

const BASH = `# smc completion for bash: source <(smc completion bash)
_smc() {
  local IFS=$'\\n'
  COMPREPLY=($(smc __complete "\${COMP_WORDS[@]:1:COMP_CWORD}" 2>/dev/null))
}
complete -o default -F _smc smc
`;

const ZSH = `#compdef smc
# smc completion for zsh: smc completion zsh > "\${fpath[1]}/_smc"
_smc() {
  local -a candidates
  candidates=("\${(@f)$(smc __complete "\${(@)words[2,CURRENT]}" 2>/dev/null)}")
  compadd -a candidates
}
compdef _smc smc
`;

const FISH = `# smc completion for fish: smc completion fish > ~/.config/fish/completions/smc.fish
complete -c smc -f -a '(smc __complete (commandline -opc)[2..-1] (commandline -ct) 2>/dev/null)'
`;

export function completionCommand(args: string[]): number {
  const [shell, ...rest] = args;
  if (shell === '-h' || shell === '--help') {
    process.stdout.write(HELP_COMPLETION);
    return EXIT_OK;
  }
  if (rest.length > 0) throw new UsageError(`unexpected ${JSON.stringify(rest[0])}`);
  const script = shell === 'bash' ? BASH : shell === 'zsh' ? ZSH : shell === 'fish' ? FISH : undefined;
  if (script === undefined) throw new UsageError(`expected bash, zsh or fish, got ${shell === undefined ? 'nothing' : JSON.stringify(shell)}`);
  process.stdout.write(script);
  return EXIT_OK;
}

interface Completable {
  options: Readonly<Record<string, { readonly type: string; readonly short?: string }>>;
  subcommands?: readonly string[];
}

/** Values an option takes from a fixed set. */
const VALUES: Record<string, readonly string[]> = {
  output: ['json', 'yaml'],
  direction: ['inbound', 'outbound'],
  format: ['json', 'yaml'],
  status: ['json', 'yaml', 'text'],
  'log-level': ['debug', 'info', 'warn', 'error'],
  'log-format': ['auto', 'json', 'text'],
  'sidecar-mode': ['native', 'container'],
  ca: ['internal', 'cfssl'],
  source: ['kubernetes'],
};
const PROXY_TYPES = ['clusters', 'endpoints', 'listeners', 'routes', 'secrets'];

/** What a running controller says is connected: node ids and their identities as NS/SA. */
async function connected(words: readonly string[]): Promise<{ nodes: string[]; identities: string[] }> {
  const i = words.findIndex((w) => w === '--admin' || w.startsWith('--admin='));
  const admin = i < 0 ? '127.0.0.1:15129' : words[i]!.includes('=') ? words[i]!.split('=')[1]! : (words[i + 1] ?? '127.0.0.1:15129');
  try {
    const { host, port } = hostPort(admin, '--admin');
    const res = await fetch(`${adminUrl(host, port)}/status/proxies`, { signal: AbortSignal.timeout(500) });
    const doc = (await res.json()) as { proxies: { nodeId: string; identity: string }[] };
    const nodes = [...new Set(doc.proxies.map((p) => p.nodeId))].sort();
    const identities = [...new Set(doc.proxies.map((p) => /\/ns\/([^/]+)\/sa\/([^/]+)$/.exec(p.identity)).filter((m) => m !== null).map((m) => `${m[1]}/${m[2]}`))].sort();
    return { nodes, identities };
  } catch {
    return { nodes: [], identities: [] };
  }
}

/**
 * `smc __complete WORD... CURRENT`: the candidates for CURRENT, one per line
 * (the shell filters them by what was typed, as bash's compgen does here).
 */
export async function completeCommand(words: string[], commands: Record<string, () => Promise<Completable>>): Promise<number> {
  const current = words[words.length - 1] ?? '';
  const before = words.slice(0, -1);
  const out = (list: readonly string[]) => {
    const matching = list.filter((c) => c.startsWith(current));
    if (matching.length > 0) process.stdout.write(`${matching.join('\n')}\n`);
    return EXIT_OK;
  };
  if (before.length === 0) return out([...Object.keys(commands), 'help']);
  const [name, ...rest] = before;
  if (name === 'help') return out(rest.length === 0 ? Object.keys(commands) : []);
  const load = commands[name!];
  if (!load) return out([]);
  const command = await load();
  const optionNames = Object.keys(command.options);
  const previous = rest[rest.length - 1];
  // The value of an option.
  if (previous?.startsWith('--') && !previous.includes('=')) {
    const option = previous.slice(2);
    if (command.options[option]?.type === 'string') {
      if (VALUES[option]) return out(VALUES[option]!);
      if (option === 'identity' || option === 'from') return out((await connected(words)).identities);
      return out([]);
    }
  }
  if (previous !== undefined && /^-[a-z]$/.test(previous)) {
    const option = optionNames.find((o) => command.options[o]!.short === previous.slice(1));
    if (option && command.options[option]!.type === 'string') return out(VALUES[option] ?? []);
  }
  if (current.startsWith('-')) return out(optionNames.map((o) => `--${o}`));
  // Positional words: a subcommand first, node ids for proxy-status and proxy-config, then proxy-config's types.
  const positionals = rest.filter((w, i) => !w.startsWith('-') && !(rest[i - 1]?.startsWith('--') && !rest[i - 1]!.includes('=') && command.options[rest[i - 1]!.slice(2)]?.type === 'string'));
  if (command.subcommands) return out(positionals.length === 0 ? command.subcommands : []);
  if (name === 'proxy-status' && positionals.length === 0) return out((await connected(words)).nodes);
  if (name === 'proxy-config') {
    if (positionals.length === 0) return out((await connected(words)).nodes);
    if (positionals.length === 1) return out(PROXY_TYPES);
  }
  return out([]);
}
