import * as t from 'io-ts';
import { integer, ipAddress, literalUnion, nonEmptyString, objectMeta, port, stringMap, struct } from './common.js';

/** The subset of Kubernetes core and discovery kinds that define mesh membership. */

export const MESH_NAMESPACE_LABEL = 'smc.dev/mesh';
/** Pod annotation that chooses the interception mode of one workload. */
export const INTERCEPTION_ANNOTATION = 'smc.dev/interception';
/** Written by smc's injector on every pod it injected (injecting again changes nothing). */
export const INJECTED_ANNOTATION = 'smc.dev/injected';

export const namespaceCodec = struct('Namespace', { metadata: objectMeta }, {});

const intOrName = t.union([port, nonEmptyString], 'port number or port name');

export const serviceCodec = struct(
  'Service',
  { metadata: objectMeta },
  {
    spec: struct(
      'ServiceSpec',
      {},
      {
        selector: stringMap,
        clusterIP: t.string,
        clusterIPs: t.array(t.string),
        ports: t.array(
          struct(
            'ServicePort',
            { port },
            { name: t.string, targetPort: intOrName, protocol: t.string, appProtocol: t.string },
          ),
        ),
      },
    ),
  },
);

export const serviceAccountCodec = struct('ServiceAccount', { metadata: objectMeta }, {});

const containerPort = struct('ContainerPort', { containerPort: port }, { name: t.string, protocol: t.string });

export const podCodec = struct(
  'Pod',
  { metadata: objectMeta },
  {
    spec: struct(
      'PodSpec',
      {},
      {
        serviceAccountName: t.string,
        serviceAccount: t.string,
        containers: t.array(struct('Container', {}, { name: t.string, ports: t.array(containerPort) })),
      },
    ),
    status: struct('PodStatus', {}, { podIP: ipAddress, podIPs: t.array(struct('PodIP', { ip: ipAddress }, {})) }),
  },
);

const objectReference = struct('ObjectReference', {}, { kind: t.string, namespace: t.string, name: t.string });

export const endpointSliceCodec = struct(
  'EndpointSlice',
  { metadata: objectMeta, addressType: literalUnion(['IPv4', 'IPv6', 'FQDN']) },
  {
    ports: t.array(struct('EndpointPort', {}, { name: t.string, port: integer, protocol: t.string })),
    endpoints: t.array(
      struct(
        'Endpoint',
        { addresses: t.array(t.string) },
        { conditions: struct('EndpointConditions', {}, { ready: t.boolean }), targetRef: objectReference },
      ),
    ),
  },
);

const endpointAddress = struct('EndpointAddress', { ip: ipAddress }, { targetRef: objectReference });

export const endpointsCodec = struct(
  'Endpoints',
  { metadata: objectMeta },
  {
    subsets: t.array(
      struct(
        'EndpointSubset',
        {},
        {
          addresses: t.array(endpointAddress),
          notReadyAddresses: t.array(endpointAddress),
          ports: t.array(struct('EndpointPort', { port }, { name: t.string, protocol: t.string })),
        },
      ),
    ),
  },
);
