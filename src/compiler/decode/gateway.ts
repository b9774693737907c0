import * as t from 'io-ts';
import { integer, literalUnion, nonEmptyString, objectMeta, port, struct, withSchema } from './common.js';

/**
 * Gateway API kinds (gateway.networking.k8s.io), as the upstream CRDs of the
 * standard channel define their fields: HTTPRoute v1 and ReferenceGrant
 * v1beta1. The CRDs themselves are upstream's (applied as they are; smc does
 * not generate them), so these codecs carry no field descriptions. Every
 * field of the standard channel is known here, so a typo is an error;
 * fields smc does not act on are rejected where they are read (see
 * ir/gateway.ts), never dropped.
 */

const boundedInteger = (min: number, max: number) =>
  withSchema(new t.Type<number, number, unknown>(
    `integer (${min}-${max})`,
    (u): u is number => integer.is(u) && u >= min && u <= max,
    (u, c) => (integer.is(u) && u >= min && u <= max ? t.success(u) : t.failure(u, c)),
    t.identity,
  ), { type: 'integer', minimum: min, maximum: max });

const headerValue = struct('HTTPHeader', { name: nonEmptyString, value: t.string }, {});
const headerModifier = struct('HTTPHeaderFilter', {}, { set: t.array(headerValue), add: t.array(headerValue), remove: t.array(t.string) });
const pathModifier = struct('HTTPPathModifier', { type: literalUnion(['ReplaceFullPath', 'ReplacePrefixMatch']) }, { replaceFullPath: t.string, replacePrefixMatch: t.string });
const objectRef = struct('BackendObjectReference', { name: nonEmptyString }, { group: t.string, kind: t.string, namespace: t.string, port });

const filter = struct(
  'HTTPRouteFilter',
  { type: literalUnion(['RequestHeaderModifier', 'ResponseHeaderModifier', 'RequestMirror', 'RequestRedirect', 'URLRewrite', 'ExtensionRef', 'CORS']) },
  {
    requestHeaderModifier: headerModifier,
    responseHeaderModifier: headerModifier,
    requestMirror: struct('HTTPRequestMirrorFilter', { backendRef: objectRef }, { percent: boundedInteger(0, 100), fraction: struct('Fraction', { numerator: boundedInteger(0, 2 ** 31 - 1) }, { denominator: boundedInteger(1, 2 ** 31 - 1) }) }),
    requestRedirect: struct('HTTPRequestRedirectFilter', {}, {
      scheme: literalUnion(['http', 'https']),
      hostname: t.string,
      path: pathModifier,
      port,
      statusCode: t.union([t.literal(301), t.literal(302), t.literal(303), t.literal(307), t.literal(308)], 'one of 301, 302, 303, 307, 308'),
    }),
    urlRewrite: struct('HTTPURLRewriteFilter', {}, { hostname: t.string, path: pathModifier }),
    extensionRef: struct('LocalObjectReference', { group: t.string, kind: nonEmptyString, name: nonEmptyString }, {}),
    cors: struct('HTTPCORSFilter', {}, {
      allowOrigins: t.array(t.string),
      allowCredentials: t.boolean,
      allowMethods: t.array(t.string),
      allowHeaders: t.array(t.string),
      exposeHeaders: t.array(t.string),
      maxAge: integer,
    }),
  },
);

const valueMatch = (name: string, value: t.Mixed) => struct(name, { name: nonEmptyString, value }, { type: literalUnion(['Exact', 'RegularExpression']) });

const match = struct('HTTPRouteMatch', {}, {
  path: struct('HTTPPathMatch', {}, { type: literalUnion(['Exact', 'PathPrefix', 'RegularExpression']), value: t.string }),
  headers: t.array(valueMatch('HTTPHeaderMatch', t.string)),
  queryParams: t.array(valueMatch('HTTPQueryParamMatch', t.string)),
  method: literalUnion(['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'CONNECT', 'OPTIONS', 'TRACE', 'PATCH']),
});

const backendRef = struct('HTTPBackendRef', { name: nonEmptyString }, {
  group: t.string,
  kind: t.string,
  namespace: t.string,
  port,
  weight: boundedInteger(0, 1_000_000),
  filters: t.array(filter),
});

const parentRef = struct('ParentReference', { name: nonEmptyString }, { group: t.string, kind: t.string, namespace: t.string, sectionName: t.string, port });

const rule = struct('HTTPRouteRule', {}, {
  name: t.string,
  matches: t.array(match),
  filters: t.array(filter),
  backendRefs: t.array(backendRef),
  timeouts: struct('HTTPRouteTimeouts', {}, { request: t.string, backendRequest: t.string }),
  // GEP-1731, the experimental channel's retry.
  retry: struct('HTTPRouteRetry', {}, { codes: t.array(boundedInteger(400, 599)), attempts: boundedInteger(0, 2 ** 31 - 1), backoff: t.string }),
});

export const httpRouteV1 = struct('HTTPRoute', { metadata: objectMeta }, {
  spec: struct('HTTPRouteSpec', {}, { parentRefs: t.array(parentRef), hostnames: t.array(t.string), rules: t.array(rule) }),
});

export const referenceGrantV1beta1 = struct('ReferenceGrant', { metadata: objectMeta }, {
  spec: struct('ReferenceGrantSpec', {
    from: t.array(struct('ReferenceGrantFrom', { group: t.string, kind: nonEmptyString, namespace: nonEmptyString }, {})),
    to: t.array(struct('ReferenceGrantTo', { group: t.string, kind: nonEmptyString }, { name: t.string })),
  }, {}),
});

export type HttpRouteV1 = t.TypeOf<typeof httpRouteV1>;
export type RawFilter = t.TypeOf<typeof filter>;

const grpcFilter = struct(
  'GRPCRouteFilter',
  { type: literalUnion(['ResponseHeaderModifier', 'RequestHeaderModifier', 'RequestMirror', 'ExtensionRef']) },
  {
    requestHeaderModifier: headerModifier,
    responseHeaderModifier: headerModifier,
    requestMirror: struct('HTTPRequestMirrorFilter', { backendRef: objectRef }, { percent: boundedInteger(0, 100), fraction: struct('Fraction', { numerator: boundedInteger(0, 2 ** 31 - 1) }, { denominator: boundedInteger(1, 2 ** 31 - 1) }) }),
    extensionRef: struct('LocalObjectReference', { group: t.string, kind: nonEmptyString, name: nonEmptyString }, {}),
  },
);

const grpcMatch = struct('GRPCRouteMatch', {}, {
  method: struct('GRPCMethodMatch', {}, { type: literalUnion(['Exact', 'RegularExpression']), service: t.string, method: t.string }),
  headers: t.array(valueMatch('GRPCHeaderMatch', t.string)),
});

const grpcRule = struct('GRPCRouteRule', {}, {
  name: t.string,
  matches: t.array(grpcMatch),
  filters: t.array(grpcFilter),
  backendRefs: t.array(struct('GRPCBackendRef', { name: nonEmptyString }, { group: t.string, kind: t.string, namespace: t.string, port, weight: boundedInteger(0, 1_000_000), filters: t.array(grpcFilter) })),
});

export const grpcRouteV1 = struct('GRPCRoute', { metadata: objectMeta }, {
  spec: struct('GRPCRouteSpec', {}, { parentRefs: t.array(parentRef), hostnames: t.array(t.string), rules: t.array(grpcRule) }),
});
