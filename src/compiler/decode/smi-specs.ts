import * as t from 'io-ts';
import { objectMeta, port, stringMap, struct } from './common.js';

/** HTTPRouteGroup, TCPRoute and UDPRoute, specs.smi-spec.io v1alpha1..v1alpha4. */

/** Headers come as a map `{name: regex}` or as a list of single-key maps; both mean the same. */
export const headersCodec = t.union(
  [stringMap, t.array(stringMap)],
  'map of header name to pattern, or list of single-key maps',
);

const httpMatchV1 = struct('HTTPMatch', {}, { name: t.string, methods: t.array(t.string, 'a list of HTTP methods'), pathRegex: t.string });
const httpMatch = struct(
  'HTTPMatch',
  {},
  { name: t.string, methods: t.array(t.string, 'a list of HTTP methods'), pathRegex: t.string, headers: headersCodec },
);

/** v1alpha1: top-level `matches`, no headers. */
export const httpRouteGroupV1alpha1 = struct('HTTPRouteGroup', { metadata: objectMeta }, { matches: t.array(httpMatchV1) });
/** v1alpha2: top-level `matches` with headers. */
export const httpRouteGroupV1alpha2 = struct('HTTPRouteGroup', { metadata: objectMeta }, { matches: t.array(httpMatch) });
/** v1alpha3, v1alpha4: `spec.matches`. */
export const httpRouteGroupV1alpha3 = struct(
  'HTTPRouteGroup',
  { metadata: objectMeta },
  { spec: struct('HTTPRouteGroupSpec', {}, { matches: t.array(httpMatch) }) },
);

/** v1alpha1..v1alpha3: a TCPRoute names no ports; it grants every port. */
export const tcpRouteV1alpha1 = struct('TCPRoute', { metadata: objectMeta }, { spec: struct('TCPRouteSpec', {}, {}) });

/** v1alpha4: `spec.matches` is one object `{name?, ports?}`, not a list. */
export const portRouteV1alpha4 = (kind: string) =>
  struct(
    kind,
    { metadata: objectMeta },
    {
      spec: struct(
        `${kind}Spec`,
        {},
        { matches: struct(`${kind === 'TCPRoute' ? 'TCP' : 'UDP'}Match`, {}, { name: t.string, ports: t.array(port) }) },
      ),
    },
  );
