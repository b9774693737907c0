import { PROXY_UID } from '../compiler/capture.js';

/**
 * The text files of a VM bundle (`smc vm bundle`) besides the bootstrap and
 * the credentials: the systemd unit that runs Envoy, the list of local ports
 * an explicit-mode application calls, and a README for the operator.
 */
export interface VmBundleFacts {
  readonly namespace: string;
  readonly name: string;
  readonly serviceAccount: string;
  readonly nodeId: string;
  readonly mode: 'transparent' | 'explicit' | 'proxyless';
  /** Where the operator puts the bundle on the VM (the bootstrap names its files there). */
  readonly installDir: string;
  readonly envoyPath: string;
  readonly xdsAddress: string;
  /** Explicit mode: the local listeners (127.0.0.1:port) and the services behind each. */
  readonly localPorts: readonly { readonly port: number; readonly services: readonly string[] }[];
}


export function systemdUnit(f: VmBundleFacts): string {
  return [
    '[Unit]',
    `Description=smc sidecar (Envoy) of VirtualMachine ${f.namespace}/${f.name}`,
    'Wants=network-online.target',
    'After=network-online.target',
    '',
    '[Service]',
    // The capture rules exempt this uid: Envoy's own connections must not be captured.
    `User=${PROXY_UID}`,
    `Group=${PROXY_UID}`,
    ...(f.mode === 'transparent' ? [`# Installs the capture rules as root ("+"), then drops to uid ${PROXY_UID} for Envoy.`, `ExecStartPre=+/bin/sh ${f.installDir}/capture.sh`] : []),
    // systemd restarts Envoy; it never hot-restarts, so it needs no shared memory.
    `ExecStart=${f.envoyPath} -c ${f.installDir}/bootstrap.json --log-level warn --disable-hot-restart`,
    'Restart=always',
    'RestartSec=2',
    'NoNewPrivileges=true',
    'ProtectSystem=strict',
    'ProtectHome=true',
    'PrivateTmp=true',
    '',
    '[Install]',
    'WantedBy=multi-user.target',
    '',
  ].join('\n');
}

export function localPortsText(f: VmBundleFacts): string {
  const lines = f.localPorts.map((p) => `${p.port} ${p.services.join(' ')}`);
  return `# Explicit mode: the application calls 127.0.0.1:PORT for the services listed (one line per port).\n${lines.join('\n')}${lines.length ? '\n' : ''}`;
}

export function bundleReadme(f: VmBundleFacts): string {
  const d = f.installDir;
  return `# smc sidecar for VirtualMachine ${f.namespace}/${f.name}

Service account ${f.namespace}/${f.serviceAccount}; node id \`${f.nodeId}\`; interception mode
\`${f.mode}\`; the controller's xDS port ${f.xdsAddress}.

1. Copy this folder to \`${d}\` on the VM and make it Envoy's:
   \`chown -R ${PROXY_UID}:${PROXY_UID} ${d} && chmod 600 ${d}/proxy.key\`.
2. Install Envoy at \`${f.envoyPath}\` (or edit \`smc-envoy.service\`).
3. \`cp ${d}/smc-envoy.service /etc/systemd/system/ && systemctl daemon-reload && systemctl enable --now smc-envoy\`.
${f.mode === 'transparent'
    ? `   The unit installs \`capture.sh\` first (iptables, as root): the VM's TCP traffic then goes
   through Envoy (outbound 15001, inbound 15003); Envoy runs as uid ${PROXY_UID}, which is not captured.`
    : `   Explicit mode: nothing is captured. The application calls the local ports in \`ports.txt\`
   (127.0.0.1:PORT) to reach mesh services; callers reach it through Envoy's inbound port 15003.`}

The VM's endpoints are sent to callers only while this proxy is connected (and for a short grace
period after it disconnects); \`/status/inputs\` on the controller says when they are withheld.

\`proxy.key\` authenticates this VM to the control plane: keep it secret. The certificate is
claimed by this VM's node id on first connect; \`smc certs revoke\` shuts it out. After a
revocation or a root rotation, run \`smc vm bundle\` again and copy the new files.
`;
}
