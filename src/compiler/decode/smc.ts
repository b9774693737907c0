import * as t from 'io-ts';
import { INTERCEPTION_MODES } from '../model.js';
import { ipAddress, literalUnion, nonEmptyString, objectMeta, port, stringMap, struct } from './common.js';

/** The project's own kinds, API group smc.dev, version v1alpha1. */

export const SMC_API_VERSION = 'smc.dev/v1alpha1';

export const interceptionMode = literalUnion(INTERCEPTION_MODES);

export const meshConfigCodec = struct(
  'MeshConfig',
  { metadata: objectMeta },
  {
    spec: struct(
      'MeshConfigSpec',
      {},
      {
        permissive: t.boolean,
        trustDomain: nonEmptyString,
        defaultInterceptionMode: interceptionMode,
        virtualIPRange: t.string,
        accessLog: t.boolean,
      },
      {
        permissive: 'true: every identity may call every service (policy is not enforced); false (default): only what TrafficTargets allow.',
        trustDomain: 'The SPIFFE trust domain of the mesh\'s identities (default cluster.local); a change takes effect at the controller\'s restart.',
        defaultInterceptionMode: 'How sidecars receive traffic unless a workload says otherwise: transparent (iptables capture) or explicit.',
        virtualIPRange: 'A CIDR from which services without a cluster IP (VM-only services in a folder) get a stable virtual IP.',
        accessLog: 'true: every sidecar writes an access log line per request to its standard output.',
      },
    ),
  },
  { spec: 'The mesh\'s settings.' },
);

export const virtualMachineCodec = struct(
  'VirtualMachine',
  {
    metadata: objectMeta,
    spec: struct(
      'VirtualMachineSpec',
      { serviceAccount: nonEmptyString, addresses: t.array(ipAddress) },
      {
        ports: t.array(struct('VirtualMachinePort', { port }, { name: t.string, protocol: t.string }, {
          port: 'A port the VM\'s application listens on.',
          name: 'The port\'s name (Services may target it by name).',
          protocol: 'TCP (default) or UDP.',
        })),
        labels: stringMap,
        interceptionMode,
      },
      {
        serviceAccount: 'The service account the VM runs as, in the object\'s namespace: its identity in the mesh.',
        addresses: 'The VM\'s IP addresses, as callers reach it.',
        ports: 'The ports its application serves.',
        labels: 'The workload labels Services select the VM by (as a pod\'s labels).',
        interceptionMode: 'transparent (iptables capture on the VM) or explicit (the application calls its sidecar); default from MeshConfig.',
      },
    ),
  },
  {},
  { spec: 'The virtual machine\'s identity, addresses and ports.' },
);
