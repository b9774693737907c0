import { mkdir, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { loadEnvoyProtos } from '../adapters/envoy-protos.js';
import { loadPaths } from '../adapters/yaml-files.js';
import { captureFromAnnotations, captureScript } from '../compiler/capture.js';
import { compile } from '../compiler/compile.js';
import { explicitListenerName } from '../compiler/envoy/names.js';
import { adsBootstrap } from '../output/ads-bootstrap.js';
import { vmNodeId } from '../compiler/ir/workloads.js';
import { bundleReadme, localPortsText, systemdUnit, type VmBundleFacts } from '../output/vm-bundle.js';
import { CA_OPTIONS } from './ca-options.js';
import { proxyCredentialFiles, writeProxyCredentials } from './runtime-commands.js';
import { hostPort, UsageError } from './usage.js';

export const HELP_VM = `smc vm bundle --name NAME --namespace NS --source PATH... --xds-address HOST:PORT [options]

Writes the folder an operator copies to a virtual machine to join it to the
mesh, for the VirtualMachine object NS/NAME found in the YAML of --source:
  bootstrap.json     Envoy's bootstrap: ADS with mutual TLS to the controller,
                     node id NS/SERVICEACCOUNT/vm:NAME
  proxy.crt, proxy.key (0600), ca.crt
                     a new proxy certificate (claimed by this VM on first
                     connect, revocable with 'smc certs revoke') and the roots
  capture.sh         transparent mode: the iptables rules (see 'smc help capture'),
                     tuned by the object's traffic.smc.dev/* annotations
  ports.txt          explicit mode: the local ports the application calls
  smc-envoy.service  a systemd unit that runs Envoy as uid 1500
  README.md          what to do with all this
Run it again after a revocation or a root rotation: every run issues a new
certificate and writes the current roots.

Options:
      --name NAME             The VirtualMachine's name
      --namespace NS          Its namespace
      --source PATH           YAML holding it and the mesh (repeatable), as for the controller
      --xds-address HOST:PORT Where the VM reaches the controller's xDS port
      --state DIR             The controller's state folder (default .smc-state)
      --install-dir DIR       Where the bundle will be on the VM (default /etc/smc)
      --envoy-path PATH       Envoy on the VM (default /usr/local/bin/envoy)
  -o, --output DIR            Output folder (default smc-vm-NS-NAME)
      --ca, --ca-root-secret, --kubeconfig, --cfssl-url, --cfssl-profile
                              The CA that signs the proxy certificate, as for the controller
  -h, --help                  Show this help

Exit status: 0 when written; 1 when the VirtualMachine is missing or rejected; 2 on a usage error.

Example:
  smc vm bundle --name billing-1 --namespace billing --source mesh/ --xds-address 10.0.0.5:15128 -o billing-1/
`;

/** The options of `vmCommand` (its help lists each; completion and suggestions read them). */
export const OPTIONS_VM = {
  name: { type: 'string' },
  namespace: { type: 'string' },
  source: { type: 'string', multiple: true },
  'xds-address': { type: 'string' },
  state: { type: 'string', default: '.smc-state' },
  'install-dir': { type: 'string', default: '/etc/smc' },
  'envoy-path': { type: 'string', default: '/usr/local/bin/envoy' },
  output: { type: 'string', short: 'o' },
  ...CA_OPTIONS,
  help: { type: 'boolean', short: 'h', default: false },
} as const;

export async function vmCommand(args: string[]): Promise<number> {
  const [sub, ...rest] = args;
  if (sub === undefined || sub === '-h' || sub === '--help') {
    process.stdout.write(HELP_VM);
    return sub === undefined ? 2 : 0;
  }
  if (sub !== 'bundle') throw new UsageError(`unknown vm command ${JSON.stringify(sub)}: expected bundle`);
  const { values } = parseArgs({
    args: rest,
    options: OPTIONS_VM,
  });
  if (values.help) {
    process.stdout.write(HELP_VM);
    return 0;
  }
  for (const flag of ['name', 'namespace', 'xds-address'] as const) if (!values[flag]) throw new UsageError(`--${flag} is required`);
  if (!values.source?.length) throw new UsageError('--source PATH is required (the YAML holding the VirtualMachine and the mesh)');
  if (!values['install-dir'].startsWith('/')) throw new UsageError(`--install-dir must be an absolute path, got ${JSON.stringify(values['install-dir'])}`);
  const xds = hostPort(values['xds-address']!, '--xds-address');
  const [ns, name] = [values.namespace!, values.name!];

  const inputs = await loadPaths(values.source);
  const result = compile(inputs, loadEnvoyProtos());
  const vm = result.ir.workloads.find((w) => w.kind === 'VirtualMachine' && w.namespace === ns && w.name === name);
  if (!vm) {
    const status = result.status.find((s) => s.object.kind === 'VirtualMachine' && s.object.namespace === ns && s.object.name === name);
    const known = result.ir.workloads.filter((w) => w.kind === 'VirtualMachine').map((w) => `${w.namespace}/${w.name}`);
    process.stderr.write(
      status
        ? `smc vm bundle: VirtualMachine ${ns}/${name} is ${status.state}: ${status.messages.map((m) => `${m.path ? `${m.path}: ` : ''}${m.message}`).join('; ')}\n`
        : `smc vm bundle: no VirtualMachine ${ns}/${name} in ${values.source.join(', ')} (in the mesh: ${known.join(', ') || 'none'})\n`,
    );
    return 1;
  }
  const trustDomain = result.ir.settings.trustDomain;
  const nodeId = vmNodeId(ns, vm.serviceAccount, name);
  const installDir = values['install-dir'].replace(/\/+$/, '');
  // Explicit mode: the local listeners of the VM's identity, as the controller will send them.
  const snapshot = result.snapshots.find((s) => s.identity === vm.identity);
  const localPorts = (snapshot?.types.listener.resources ?? []).flatMap((r) => {
    const m = /^outbound\|(\d+)\|explicit$/.exec(r.name);
    return m && r.name === explicitListenerName(Number(m[1])) ? [Number(m[1])] : [];
  });
  const upstreams = result.ir.services.filter((s) => s.ports.some((p) => localPorts.includes(p.port)));
  const facts: VmBundleFacts = {
    namespace: ns,
    name,
    serviceAccount: vm.serviceAccount,
    nodeId,
    mode: vm.interceptionMode,
    installDir,
    envoyPath: values['envoy-path'],
    xdsAddress: `${xds.host}:${xds.port}`,
    localPorts: localPorts.map((port) => ({ port, services: upstreams.filter((s) => s.ports.some((p) => p.port === port)).map((s) => `${s.name}.${s.namespace}`) })),
  };
  if (vm.interceptionMode === 'proxyless') {
    process.stderr.write(`smc vm bundle: VirtualMachine ${ns}/${name} is proxyless: it runs no sidecar; use smc bootstrap --proxyless for its gRPC application\n`);
    return 1;
  }
  const dir = resolve(values.output ?? `smc-vm-${ns}-${name}`);
  await mkdir(dir, { recursive: true });
  await writeProxyCredentials({ ...values, 'trust-domain': trustDomain }, ns, vm.serviceAccount, dir);
  const tls = proxyCredentialFiles(installDir, trustDomain);
  await writeFile(join(dir, 'bootstrap.json'), `${JSON.stringify(adsBootstrap({ nodeId, xdsHost: xds.host, xdsPort: xds.port, tls }), null, 2)}\n`);
  const written = ['bootstrap.json', 'proxy.crt', 'proxy.key', 'ca.crt'];
  if (vm.interceptionMode === 'transparent') {
    const doc = inputs.documents.find((d) => {
      const v = d.value as { kind?: unknown; metadata?: { name?: unknown; namespace?: unknown } } | null;
      return v?.kind === 'VirtualMachine' && v.metadata?.name === name && v.metadata.namespace === ns;
    });
    const annotations = ((doc?.value as { metadata?: { annotations?: Record<string, string> } }).metadata?.annotations ?? {}) as Record<string, string>;
    const capture = captureFromAnnotations(annotations);
    if (capture.problems.length > 0) {
      process.stderr.write(`smc vm bundle: VirtualMachine ${ns}/${name}: ${capture.problems.map((p) => `${p.field}: ${p.message}`).join('; ')}\n`);
      return 1;
    }
    await writeFile(join(dir, 'capture.sh'), captureScript(capture.settings), { mode: 0o755 });
    written.push('capture.sh');
  } else {
    await writeFile(join(dir, 'ports.txt'), localPortsText(facts));
    written.push('ports.txt');
  }
  await writeFile(join(dir, 'smc-envoy.service'), systemdUnit(facts));
  await writeFile(join(dir, 'README.md'), bundleReadme(facts));
  written.push('smc-envoy.service', 'README.md');
  process.stderr.write(`smc vm bundle: wrote ${written.join(', ')} to ${dir} for node ${nodeId} (${vm.interceptionMode}); copy it to ${installDir} on the VM and follow README.md\n`);
  return 0;
}
