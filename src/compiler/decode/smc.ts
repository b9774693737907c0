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
    ),
  },
);

export const virtualMachineCodec = struct(
  'VirtualMachine',
  {
    metadata: objectMeta,
    spec: struct(
      'VirtualMachineSpec',
      { serviceAccount: nonEmptyString, addresses: t.array(ipAddress) },
      {
        ports: t.array(struct('VirtualMachinePort', { port }, { name: t.string, protocol: t.string })),
        labels: stringMap,
        interceptionMode,
      },
    ),
  },
  {},
);
