import * as t from 'io-ts';
import { literalUnion, nonEmptyString, objectMeta, port, portLike, struct } from './common.js';

/** TrafficTarget, access.smi-spec.io v1alpha1..v1alpha3. */

const subjectKind = t.literal('ServiceAccount', '"ServiceAccount"');

const subject = struct('IdentityBindingSubject', { kind: subjectKind, name: nonEmptyString }, { namespace: t.string });

const rule = struct(
  'TrafficTargetRule',
  { kind: literalUnion(['HTTPRouteGroup', 'TCPRoute', 'UDPRoute']), name: nonEmptyString },
  { matches: t.array(t.string, 'a list of match names') },
);

/** v1alpha1: no `spec`; `destination.port` is a string; rules are `specs`. */
export const trafficTargetV1alpha1 = struct(
  'TrafficTarget',
  {
    metadata: objectMeta,
    destination: struct(
      'IdentityBindingSubject',
      { kind: subjectKind, name: nonEmptyString },
      { namespace: t.string, port: portLike },
    ),
  },
  { sources: t.array(subject), specs: t.array(rule) },
);

/** v1alpha2: `spec` with `destination.port` as an integer. */
export const trafficTargetV1alpha2 = struct(
  'TrafficTarget',
  {
    metadata: objectMeta,
    spec: struct(
      'TrafficTargetSpec',
      {
        destination: struct(
          'IdentityBindingSubject',
          { kind: subjectKind, name: nonEmptyString },
          { namespace: t.string, port },
        ),
      },
      { sources: t.array(subject), rules: t.array(rule) },
    ),
  },
  {},
);

/** v1alpha3: no destination port. */
export const trafficTargetV1alpha3 = struct(
  'TrafficTarget',
  {
    metadata: objectMeta,
    spec: struct('TrafficTargetSpec', { destination: subject }, { sources: t.array(subject), rules: t.array(rule) }),
  },
  {},
);
