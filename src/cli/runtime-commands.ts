import { stringify } from 'yaml';
import { StartupError } from '../adapters/startup-error.js';
import { createLogger, LOG_LEVELS, type LogLevel } from '../runtime/log.js';
import { adminUrl, durationMs, hostPort, UsageError } from './usage.js';

export { durationMs };
import { columns } from '../output/render.js';
import { chmod, mkdir, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { openProxyCertificateRecords, openSigner } from '../adapters/ca/open.js';
import { CA_OPTIONS, caChoice, type CaValues } from './ca-options.js';
import { issueForXdsPort, PROXY_CERTIFICATE_TTL_MS } from '../adapters/ca/signer.js';
import { certificateFacts } from '../adapters/ca/x509.js';
import { identityOf } from '../compiler/ir/types.js';
import { adsBootstrap } from '../output/ads-bootstrap.js';
import { grpcXdsBootstrap } from '../output/grpc-bootstrap.js';
import { PUSH_ORDER } from '../compiler/envoy/codec.js';
import { controlPlaneIdentity, startController, type WebhookSettings } from '../runtime/controller.js';
import { clientText } from '../compiler/client-text.js';

export const HELP_CONTROLLER = `smc controller [options]

Runs the control plane: reads a folder of YAML (the same inputs as 'smc
compile'), issues every identity's certificates from the mesh CA (root kept in
the state folder), and serves each proxy its configuration over ADS (gRPC,
state of the world and delta) with mutual TLS.

Options:
      --source PATH    File or folder of YAML, watched (repeatable; default
                       examples/bookstore); or 'kubernetes': informers on the
                       cluster of --kubeconfig (or the pod's service account)
      --state DIR      Where the mesh CA's root is kept (default .smc-state)
      --xds-address HOST:PORT
                       xDS listen address (default 127.0.0.1:15128)
      --admin-address HOST:PORT
                       Admin HTTP: /healthz /readyz /status/proxies /status/inputs
                       /metrics (default 127.0.0.1:15129)
      --xds-port PORT  Shorthand: the port of --xds-address
      --admin-port PORT
                       Shorthand: the port of --admin-address
      --push-window DURATION
                       Gather input changes this long before pushing to proxies,
                       so a burst costs one push (default 100ms; 0 = at once)
      --service-cert-ttl DURATION
                       Lifetime of service certificates (default 24h, spread by
                       ±10%); each is renewed when a third of it is left
      --ca internal|cfssl
                       Who signs certificates: smc's own CA (default; root kept in
                       --state) or an external cfssl server
      --ca-root-secret NAMESPACE/NAME
                       With --ca internal: keep the root in this Kubernetes Secret
                       instead of --state (kubeconfig, or in-cluster credentials)
      --kubeconfig FILE
                       For --source kubernetes and --ca-root-secret (default
                       $KUBECONFIG, ~/.kube/config, or the pod's service account)
      --cfssl-url URL  With --ca cfssl: the 'cfssl serve' API (e.g. http://ca:8888)
      --cfssl-profile NAME
                       With --ca cfssl: the signing profile (its expiry sets the lifetime)
      --admin-allowed-host NAME
                       A host name the admin port answers to (repeatable); IP
                       addresses and localhost always work, other names are
                       refused (a defence against DNS rebinding)
      --leader-elect   With --source kubernetes, for several replicas: they
                       elect a leader with the Lease smc-controller-leader;
                       all serve xDS, only the leader writes status and rotates
                       the root
      --leader-lease DURATION
                       How long a leader holds the Lease without renewing it
                       (default 15s; renewed every third of it)
      --leader-election-namespace NS
                       Where the Lease lives (default smc-system)
      --webhook-address HOST:PORT
                       With --source kubernetes: serve the sidecar injector
                       (POST /inject) and pods' proxy certificates (POST
                       /v1/proxy-certificate) over HTTPS here, e.g. 0.0.0.0:15130
                       (off by default); the leader keeps the caBundle of the
                       MutatingWebhookConfiguration smc-sidecar-injector current
      --sidecar-image IMAGE
                       The image injected sidecars run (default: the
                       controller's own, read from its pod: POD_NAMESPACE and
                       POD_NAME, container "controller")
      --sidecar-xds-address HOST:PORT
                       Where injected sidecars reach xDS (default
                       smc-controller.smc-system.svc:15128)
      --sidecar-certificate-url URL
                       Where injected sidecars fetch their proxy certificate
                       (default https://smc-controller.smc-system.svc:15130)
      --sidecar-mode native|container
                       Envoy as a native sidecar (default; Kubernetes 1.29+) or,
                       on older clusters, as the pod's first container
      --vm-grace DURATION
                       A VirtualMachine's endpoints are sent only while its proxy
                       (node NS/SA/vm:NAME) is connected, and this long after it
                       disconnects (default 30s)
      --insecure-xds   Plaintext xDS that trusts node ids: local experiments only
      --log-level debug|info|warn|error
                       The least severe events logged (default info)
      --log-format auto|json|text
                       JSON lines (one event per line, with fields such as
                       component, identity, nodeId, type, version) or lines
                       for people; auto (default): JSON unless stderr is a
                       terminal
  -h, --help           Show this help

Security: the admin port changes the mesh only for requests that present the
token in <state>/admin-token (0600, made at first start; 'smc ca rotate-root
--state DIR' reads it). One controller per state folder: a second one started
on the same --state exits, naming the first (<state>/controller.lock).
Exit status: 0 after SIGINT/SIGTERM; 1 when it cannot start (a port in use, the
state folder locked, the mesh CA root missing); 2 usage error.

The source folder is watched: a change is compiled and pushed within a second
(file events settle for 50 ms, 1 s at most; a change is compiled as soon as
the compiler is free, and changes that arrive meanwhile go into the next one). A file that stops parsing keeps
its last good objects in force (status and log say so); a deleted file takes
its objects with it. SIGHUP reads everything again. /readyz answers 200 once
every source is read, the first snapshots exist and xDS is being served.

Stops cleanly on SIGINT or SIGTERM.

Examples:
  smc controller --source examples/bookstore              # the bundled mesh, on loopback
  smc controller --source kubernetes --leader-elect --xds-address 0.0.0.0:15128
`;

export const HELP_BOOTSTRAP = `smc bootstrap --identity NS/SA --xds-address HOST:PORT [options]

Writes what a sidecar of identity NS/SA (a pod or a VM) needs to join the mesh:
bootstrap.json (ADS over gRPC with mutual TLS to the control plane, node id
NS/SA[/INSTANCE], admin on 127.0.0.1:15000), proxy.crt and proxy.key (its
bootstrap certificate, signed by the mesh CA in --state) and ca.crt. Start the
sidecar with 'envoy -c DIR/bootstrap.json'.

With --proxyless, writes grpc-bootstrap.json instead: the xDS bootstrap of a
gRPC application with no sidecar (a workload annotated or declared with
interception mode "proxyless"); point GRPC_XDS_BOOTSTRAP at it and dial
xds:///SERVICE.NAMESPACE:PORT. gRPC's xDS clients cannot present a client
certificate to the control plane, so this needs --insecure-xds on both sides.

Options:
      --identity NS/SA        Namespace and service account of the workload
      --xds-address HOST:PORT Where the controller serves xDS
      --instance NAME         Appended to the node id to tell proxies apart (e.g. the pod name)
      --state DIR             The controller's state folder (default .smc-state)
      --trust-domain TD       Trust domain (default cluster.local)
  -o, --output DIR            Output folder (default smc-bootstrap-NS-SA)
      --admin-port PORT       Envoy admin port, on loopback (default 15000)
      --stats-port PORT       Where Prometheus scrapes the sidecar: /stats/prometheus
                              only, on every address (default 15010; 0: none)
      --delta                 Use incremental xDS
      --insecure-xds          For a controller started with --insecure-xds (no certificates)
      --proxyless             A gRPC xDS bootstrap for a proxyless application
      --ca, --ca-root-secret, --kubeconfig, --cfssl-url, --cfssl-profile
                              The CA that signs the proxy certificate, as for the controller
  -h, --help                  Show this help

Examples:
  smc bootstrap --identity bookstore/bookbuyer --xds-address 10.0.0.5:15128 --instance vm-1
  smc bootstrap --identity shop/checkout --xds-address 127.0.0.1:15128 --proxyless --insecure-xds
`;

export const HELP_PROXY_STATUS = `smc proxy-status [NODE] [--admin HOST:PORT] [-o json|yaml] [--watch]

Lists the proxies connected to a running controller and, per xDS type, whether
each has acknowledged what it was sent: SYNCED, STALE (sent, not yet
acknowledged), NACK (rejected; the proxy keeps its last good config) or NOT SENT.
NODE narrows the list to one proxy, or to every instance of an identity
(NS/SA matches NS/SA/INSTANCE).

Options:
      --admin HOST:PORT   The controller's admin port (default 127.0.0.1:15129)
  -o, --output json|yaml  Machine-readable (with each proxy's versions and NACK text)
  -w, --watch             Print again every --interval until interrupted (a
                          terminal is cleared first; -o json prints one
                          document per line)
      --interval DURATION How often with --watch (default 2s)
  -h, --help              Show this help

Exit status 0 when every proxy shown is SYNCED on every type it was sent, 1
otherwise, 2 usage error, 3 the controller could not be asked or no proxy is
NODE. With --watch: 0 when interrupted.

Examples:
  smc proxy-status
  smc proxy-status bookbuyer/bookbuyer
  smc proxy-status -o json | jq '.proxies[] | select(.types.route.state != "SYNCED")'
  smc proxy-status --watch
  smc proxy-config bookbuyer/bookbuyer/bookbuyer-1 routes   # then: what one proxy holds
`;

/**
 * The image injected sidecars run when --sidecar-image is not given: the
 * controller's own (the Deployment passes POD_NAMESPACE and POD_NAME), so a
 * pod is injected with exactly what was deployed and no second tag can
 * drift. The API server may still be starting: asked for up to 30 s.
 */
async function ownImage(kubernetes: { podImage(ns: string, name: string, container: string): Promise<string> }, log: (line: string) => void): Promise<string> {
  const namespace = process.env['POD_NAMESPACE'];
  const name = process.env['POD_NAME'];
  if (!namespace || !name) throw new UsageError('--webhook-address needs --sidecar-image, or POD_NAMESPACE and POD_NAME (the Deployment sets them) to use the controller\'s own image');
  const until = Date.now() + 30_000;
  for (;;) {
    try {
      const image = await kubernetes.podImage(namespace, name, 'controller');
      log(`injector: sidecars run the controller's own image ${image}`);
      return image;
    } catch (e) {
      if (Date.now() > until) throw new StartupError(`${(e as Error).message}; pass --sidecar-image to name the image`);
      await new Promise((r) => setTimeout(r, 1000));
    }
  }
}

function portNumber(value: string, flag: string): number {
  if (!/^\d+$/.test(value) || Number(value) > 65535) throw new UsageError(`${flag} expects a port number (0-65535), got ${JSON.stringify(value)}`);
  return Number(value);
}

/** The options of `controllerCommand` (its help lists each; completion and suggestions read them). */
export const OPTIONS_CONTROLLER = {
  source: { type: 'string', multiple: true },
  state: { type: 'string', default: '.smc-state' },
  'xds-address': { type: 'string', default: '127.0.0.1:15128' },
  'admin-address': { type: 'string', default: '127.0.0.1:15129' },
  'xds-port': { type: 'string' },
  'admin-port': { type: 'string' },
  'push-window': { type: 'string', default: '100ms' },
  'service-cert-ttl': { type: 'string', default: '24h' },
  ...CA_OPTIONS,
  'insecure-xds': { type: 'boolean', default: false },
  'admin-allowed-host': { type: 'string', multiple: true },
  'leader-elect': { type: 'boolean', default: false },
  'leader-lease': { type: 'string', default: '15s' },
  'leader-election-namespace': { type: 'string', default: 'smc-system' },
  'webhook-address': { type: 'string' },
  'vm-grace': { type: 'string', default: '30s' },
  'log-level': { type: 'string', default: 'info' },
  'log-format': { type: 'string', default: 'auto' },
  'sidecar-image': { type: 'string' },
  'sidecar-xds-address': { type: 'string', default: 'smc-controller.smc-system.svc:15128' },
  'sidecar-certificate-url': { type: 'string', default: 'https://smc-controller.smc-system.svc:15130' },
  'sidecar-mode': { type: 'string', default: 'native' },
  help: { type: 'boolean', short: 'h', default: false },
} as const;

export async function controllerCommand(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: OPTIONS_CONTROLLER,
  });
  if (values.help) {
    process.stdout.write(HELP_CONTROLLER);
    return 0;
  }
  const xds = hostPort(values['xds-address'], '--xds-address');
  const admin = hostPort(values['admin-address'], '--admin-address');
  if (values['xds-port'] !== undefined) xds.port = portNumber(values['xds-port'], '--xds-port');
  if (values['admin-port'] !== undefined) admin.port = portNumber(values['admin-port'], '--admin-port');
  const pushWindowMs = durationMs(values['push-window'], '--push-window');
  const serviceCertTtlMs = durationMs(values['service-cert-ttl'], '--service-cert-ttl');
  if (serviceCertTtlMs < 60_000) throw new UsageError('--service-cert-ttl must be at least 1m');
  const ca = caChoice(values);
  const level = values['log-level'] as LogLevel;
  if (!LOG_LEVELS.includes(level)) throw new UsageError(`--log-level expects ${LOG_LEVELS.join(', ')}, got ${JSON.stringify(values['log-level'])}`);
  const format = values['log-format'];
  if (format !== 'auto' && format !== 'json' && format !== 'text') throw new UsageError(`--log-format expects auto, json or text, got ${JSON.stringify(format)}`);
  const log = createLogger({ level, json: format === 'json' || (format === 'auto' && !process.stderr.isTTY) });
  const paths = values.source ?? ['examples/bookstore'];
  let sources;
  if (paths.includes('kubernetes')) {
    if (paths.length > 1) throw new UsageError('--source kubernetes reads the cluster; it does not combine with folders');
    // Loaded only here: the Kubernetes client is large, and other commands never need it.
    const { createKubernetesSource } = await import('../adapters/kubernetes-source.js');
    sources = [createKubernetesSource({ kubeconfig: values.kubeconfig, log })];
  }
  let leader;
  if (values['leader-elect']) {
    if (sources === undefined) throw new UsageError('--leader-elect needs --source kubernetes (the Lease lives in the cluster)');
    const leaseMs = durationMs(values['leader-lease'], '--leader-lease');
    if (leaseMs < 2000) throw new UsageError('--leader-lease must be at least 2s');
    const { startLeaderElection } = await import('../adapters/leader.js');
    const identity = process.env['POD_NAME'] ?? `${hostname()}-${process.pid}`;
    leader = await startLeaderElection({ kubeconfig: values.kubeconfig, namespace: values['leader-election-namespace'], name: 'smc-controller-leader', identity, leaseMs, renewMs: Math.max(500, Math.floor(leaseMs / 3)), log });
  }
  let webhook: WebhookSettings | undefined;
  if (values['webhook-address'] !== undefined) {
    if (sources === undefined) throw new UsageError('--webhook-address needs --source kubernetes (it injects pods and asks the API server whose tokens sidecars present)');
    const at = hostPort(values['webhook-address'], '--webhook-address');
    if (values['sidecar-mode'] !== 'native' && values['sidecar-mode'] !== 'container') throw new UsageError(`--sidecar-mode expects native or container, got ${JSON.stringify(values['sidecar-mode'])}`);
    hostPort(values['sidecar-xds-address'], '--sidecar-xds-address');
    if (!/^https:\/\/[^/\s]+$/.test(values['sidecar-certificate-url'])) throw new UsageError(`--sidecar-certificate-url expects https://HOST:PORT, got ${JSON.stringify(values['sidecar-certificate-url'])}`);
    const { kubernetesIdentity } = await import('../adapters/kubernetes-identity.js');
    const kubernetes = kubernetesIdentity({ kubeconfig: values.kubeconfig });
    webhook = {
      host: at.host,
      port: at.port,
      image: values['sidecar-image'] ?? (await ownImage(kubernetes, log)),
      sidecarXdsAddress: values['sidecar-xds-address'],
      certificateUrl: values['sidecar-certificate-url'],
      nativeSidecar: values['sidecar-mode'] === 'native',
      kubernetes,
    };
  }
  const vmGraceMs = durationMs(values['vm-grace'], '--vm-grace');
  // A stop while starting (a source still waiting for its lists) ends the start; after it, the controller closes.
  let stopped: string | undefined;
  let resolveStop: () => void = () => undefined;
  const starting = new AbortController();
  const stop = (signal: string) => {
    log(`controller: ${signal}: shutting down`);
    stopped = signal;
    starting.abort();
    resolveStop();
  };
  process.once('SIGINT', () => stop('SIGINT'));
  process.once('SIGTERM', () => stop('SIGTERM'));
  const controller = await startController({
    signal: starting.signal,
    webhook,
    vmGraceMs,
    source: paths,
    sources,
    stateDir: values.state,
    xdsHost: xds.host,
    xdsPort: xds.port,
    adminHost: admin.host,
    adminPort: admin.port,
    insecureXds: values['insecure-xds'],
    pushWindowMs,
    serviceCertTtlMs,
    ca,
    adminAllowedHosts: values['admin-allowed-host'] ?? [],
    leader,
    log,
  }).catch((e: Error) => {
    if (stopped) return undefined;
    throw e;
  });
  if (!controller) return 0;
  await new Promise<void>((resolve) => {
    resolveStop = resolve;
    if (stopped) resolve();
    // SIGHUP re-reads every source (the folder is watched anyway; this is for file systems that do not tell).
    process.on('SIGHUP', () => {
      log('controller: SIGHUP: reading every source again');
      controller.reload().then(
        (changes) => log(`controller: SIGHUP: ${changes.length} identity(ies) changed`),
        (e: Error) => log(`controller: SIGHUP: reading again failed: ${e.message}`, { level: 'error' }),
      );
    });
  });
  await controller.close();
  return 0;
}

/** The options of `bootstrapCommand` (its help lists each; completion and suggestions read them). */
export const OPTIONS_BOOTSTRAP = {
  identity: { type: 'string' },
  'xds-address': { type: 'string' },
  instance: { type: 'string' },
  state: { type: 'string', default: '.smc-state' },
  'trust-domain': { type: 'string', default: 'cluster.local' },
  output: { type: 'string', short: 'o' },
  'admin-port': { type: 'string', default: '15000' },
  'stats-port': { type: 'string', default: '15010' },
  delta: { type: 'boolean', default: false },
  'insecure-xds': { type: 'boolean', default: false },
  proxyless: { type: 'boolean', default: false },
  ...CA_OPTIONS,
  help: { type: 'boolean', short: 'h', default: false },
} as const;

export async function bootstrapCommand(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: OPTIONS_BOOTSTRAP,
  });
  if (values.help) {
    process.stdout.write(HELP_BOOTSTRAP);
    return 0;
  }
  if (values.proxyless && !values['insecure-xds']) {
    throw new UsageError('--proxyless needs --insecure-xds: gRPC xDS clients cannot present a client certificate to the control plane, so they can only reach a controller started with --insecure-xds');
  }
  const m = /^([a-z0-9][-a-z0-9.]*)\/([a-z0-9][-a-z0-9.]*)$/.exec(values.identity ?? '');
  if (!m) throw new UsageError(`--identity expects NAMESPACE/SERVICEACCOUNT, got ${JSON.stringify(values.identity ?? '')}`);
  if (values['xds-address'] === undefined) throw new UsageError('--xds-address HOST:PORT is required');
  const xds = hostPort(values['xds-address'], '--xds-address');
  const [ns, sa] = [m[1]!, m[2]!];
  const dir = resolve(values.output ?? `smc-bootstrap-${ns}-${sa}`);
  await mkdir(dir, { recursive: true });
  const nodeId = values.instance ? `${ns}/${sa}/${values.instance}` : `${ns}/${sa}`;
  if (values.proxyless) {
    const file = join(dir, 'grpc-bootstrap.json');
    await writeFile(file, `${JSON.stringify(grpcXdsBootstrap({ nodeId, xdsHost: xds.host, xdsPort: xds.port }), null, 2)}\n`);
    process.stderr.write(`smc bootstrap: wrote ${file}; run the application with GRPC_XDS_BOOTSTRAP=${file}\n`);
    return 0;
  }
  const tls = values['insecure-xds'] ? undefined : await writeProxyCredentials(values, ns, sa, dir);
  const bootstrap = adsBootstrap({ nodeId, xdsHost: xds.host, xdsPort: xds.port, adminPort: portNumber(values['admin-port'], '--admin-port'), statsPort: portNumber(values['stats-port'], '--stats-port'), delta: values.delta, tls });
  await writeFile(join(dir, 'bootstrap.json'), `${JSON.stringify(bootstrap, null, 2)}\n`);
  process.stderr.write(`smc bootstrap: wrote ${join(dir, 'bootstrap.json')}${tls ? ' with proxy.crt, proxy.key (0600) and ca.crt' : ''}; run: envoy -c ${join(dir, 'bootstrap.json')}\n`);
  return 0;
}

/** Files of a proxy's credentials, as its bootstrap names them. */
export const proxyCredentialFiles = (dir: string, trustDomain: string) => ({ certificateChain: join(dir, 'proxy.crt'), privateKey: join(dir, 'proxy.key'), trustBundle: join(dir, 'ca.crt'), controlPlaneIdentity: controlPlaneIdentity(trustDomain) });

/**
 * Issues a proxy (bootstrap) certificate for NS/SA and writes proxy.crt,
 * proxy.key (0600) and ca.crt into `dir`; recorded as unclaimed in the state
 * folder until a proxy first connects with it (`smc certs revoke` shuts it out).
 */
export async function writeProxyCredentials(values: CaValues & { state: string; 'trust-domain': string }, ns: string, sa: string, dir: string) {
  const ca = await openSigner(caChoice(values), values.state, values['trust-domain'], () => {}, { create: false });
  const identity = identityOf(values['trust-domain'], ns, sa);
  // Signed for the xDS port's own trust anchor, which a mesh root rotation leaves in place.
  const cert = await issueForXdsPort(ca, identity, { ttlMs: PROXY_CERTIFICATE_TTL_MS });
  // Recorded where the controller reads it, beside the root (in Kubernetes with --ca-root-secret), before
  // anything is written: credentials the controller would refuse are never left behind.
  const serial = certificateFacts(cert.certificateChain).serial;
  await (await openProxyCertificateRecords(caChoice(values), values.state)).recordIssued({ serial, identity, issuedAt: cert.issuedAt, notAfter: cert.notAfter });
  const files = proxyCredentialFiles(dir, values['trust-domain']);
  await writeFile(files.certificateChain, cert.certificateChain);
  await writeFile(files.privateKey, cert.privateKey, { mode: 0o600 });
  await chmod(files.privateKey, 0o600);
  // Every root the xDS port may present or accept (after a root rotation, more than one).
  await writeFile(files.trustBundle, ca.xdsTrust?.() ?? ca.trustBundle());
  return files;
}

type ProxiesDocument = { proxies: { nodeId: string; identity: string; types: Record<string, { state: string; nack?: { message: string } }> }[] };

/** The options of `proxyStatusCommand` (its help lists each; completion and suggestions read them). */
export const OPTIONS_PROXY_STATUS = {
  admin: { type: 'string', default: '127.0.0.1:15129' },
  output: { type: 'string', short: 'o' },
  watch: { type: 'boolean', short: 'w', default: false },
  interval: { type: 'string', default: '2s' },
  help: { type: 'boolean', short: 'h', default: false },
} as const;

export async function proxyStatusCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: OPTIONS_PROXY_STATUS,
  });
  if (values.help) {
    process.stdout.write(HELP_PROXY_STATUS);
    return 0;
  }
  if (positionals.length > 1) throw new UsageError(`proxy-status takes one NODE at most, got ${positionals.length}: ${positionals.map((p) => JSON.stringify(p)).join(' ')}`);
  const node = positionals[0];
  if (values.output !== undefined && values.output !== 'json' && values.output !== 'yaml') throw new UsageError(`-o expects json or yaml (or nothing, for a table), got ${JSON.stringify(values.output)}`);
  const intervalMs = durationMs(values.interval, '--interval');
  if (intervalMs < 100) throw new UsageError('--interval must be at least 100ms');
  const { host, port } = hostPort(values.admin, '--admin');
  const once = async (): Promise<number> => {
    let doc: ProxiesDocument;
    try {
      const res = await fetch(`${adminUrl(host, port)}/status/proxies`);
      doc = (await res.json()) as ProxiesDocument;
    } catch (e) {
      process.stderr.write(`smc proxy-status: cannot reach the controller's admin port at ${values.admin}: ${(e as Error).message}\n`);
      return 3;
    }
    if (node !== undefined) {
      doc = { ...doc, proxies: doc.proxies.filter((p) => p.nodeId === node || p.nodeId.startsWith(`${node}/`)) };
      if (doc.proxies.length === 0 && !values.watch) {
        process.stderr.write(`smc proxy-status: no connected proxy is ${clientText(node, 128)} (smc proxy-status lists them)\n`);
        return 3;
      }
    }
    if (values.output === 'json') process.stdout.write(values.watch ? `${JSON.stringify(doc)}\n` : `${JSON.stringify(doc, null, 2)}\n`);
    else if (values.output === 'yaml') process.stdout.write(`${values.watch ? '---\n' : ''}${stringify(doc, { lineWidth: 0 })}`);
    else {
      if (values.watch) process.stdout.write(process.stdout.isTTY ? `\x1b[H\x1b[2J${new Date().toISOString()}\n` : `\n${new Date().toISOString()}\n`);
      const header = ['NAME', 'IDENTITY', 'CDS', 'EDS', 'LDS', 'RDS', 'SDS'];
      const rows = doc.proxies.map((p) => [clientText(p.nodeId, 128), p.identity, ...PUSH_ORDER.map((k) => p.types[k]?.state ?? 'NOT SENT')]);
      process.stdout.write(columns([header, ...rows]));
      // What a proxy sent is printed escaped, even from a controller that did not escape it.
      for (const p of doc.proxies) for (const [k, t] of Object.entries(p.types)) if (t.nack) process.stdout.write(`${clientText(p.nodeId)} ${k} NACK: ${clientText(t.nack.message)}\n`);
    }
    return doc.proxies.every((p) => Object.values(p.types).every((t) => t.state === 'SYNCED' || t.state === 'NOT SENT')) ? 0 : 1;
  };
  if (!values.watch) return once();
  let stop = false;
  let wake: () => void = () => undefined;
  process.once('SIGINT', () => {
    stop = true;
    wake();
  });
  while (!stop) {
    await once();
    await new Promise<void>((r) => {
      wake = r;
      setTimeout(r, intervalMs);
    });
  }
  return 0;
}
