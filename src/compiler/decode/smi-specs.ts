import * as t from 'io-ts';
import { objectMeta, port, stringMap, struct } from './common.js';

/** HTTPRouteGroup, TCPRoute and UDPRoute, specs.smi-spec.io v1alpha1..v1alpha4. */

/** Headers come as a map `{name: regex}` or as a list of single-key maps; both mean the same. */
export const headersCodec = t.union(
  [stringMap, t.array(stringMap)],
  'map of header name to pattern, or list of single-key maps',
);

const MATCH_DOCS = {
  name: 'The match\'s name, which TrafficTarget rules and TrafficSplits refer to.',
  methods: 'HTTP methods that match (any when absent; "*" is any).',
  pathRegex: 'A regular expression the whole request path must match (any path when absent).',
};
const HEADERS = 'Request headers that must match: header name to a regular expression its value must match in full.';
const MATCHES = 'The named HTTP matches of this group.';

const httpMatchV1 = struct('HTTPMatch', {}, { name: t.string, methods: t.array(t.string, 'a list of HTTP methods'), pathRegex: t.string }, MATCH_DOCS);
const httpMatch = struct(
  'HTTPMatch',
  {},
  { name: t.string, methods: t.array(t.string, 'a list of HTTP methods'), pathRegex: t.string, headers: headersCodec },
  { ...MATCH_DOCS, headers: HEADERS },
);

/** v1alpha1: top-level `matches`, no headers. */
export const httpRouteGroupV1alpha1 = struct('HTTPRouteGroup', { metadata: objectMeta }, { matches: t.array(httpMatchV1) }, { matches: MATCHES });
/** v1alpha2: top-level `matches` with headers. */
export const httpRouteGroupV1alpha2 = struct('HTTPRouteGroup', { metadata: objectMeta }, { matches: t.array(httpMatch) }, { matches: MATCHES });
/** v1alpha3, v1alpha4: `spec.matches`. */
export const httpRouteGroupV1alpha3 = struct(
  'HTTPRouteGroup',
  { metadata: objectMeta },
  { spec: struct('HTTPRouteGroupSpec', {}, { matches: t.array(httpMatch) }, { matches: MATCHES }) },
  { spec: 'The group\'s matches.' },
);

/** v1alpha1..v1alpha3: a TCPRoute names no ports; it grants every port. */
export const tcpRouteV1alpha1 = struct('TCPRoute', { metadata: objectMeta }, { spec: struct('TCPRouteSpec', {}, {}, {}) }, { spec: 'Empty: the route is all TCP traffic, on every port.' });

/** v1alpha4: `spec.matches` is one object `{name?, ports?}`, not a list. */
export const portRouteV1alpha4 = (kind: string) =>
  struct(
    kind,
    { metadata: objectMeta },
    {
      spec: struct(
        `${kind}Spec`,
        {},
        {
          matches: struct(
            `${kind === 'TCPRoute' ? 'TCP' : 'UDP'}Match`,
            {},
            { name: t.string, ports: t.array(port) },
            { name: 'The match\'s name.', ports: 'The destination ports this route is (every port when absent).' },
          ),
        },
        { matches: 'Which traffic the route is.' },
      ),
    },
    { spec: `The ${kind === 'TCPRoute' ? 'TCP' : 'UDP'} traffic this route is.` },
  );
