import * as t from 'io-ts';
import { literalUnion, nonEmptyString, objectMeta, port, portLike, struct } from './common.js';

/** TrafficTarget, access.smi-spec.io v1alpha1..v1alpha3. */

const subjectKind = t.literal('ServiceAccount', '"ServiceAccount"');

const SUBJECT_DOCS = {
  kind: 'ServiceAccount (the only kind SMI defines).',
  name: 'The service account\'s name.',
  namespace: 'The service account\'s namespace (default: the TrafficTarget\'s).',
};

const subject = struct('IdentityBindingSubject', { kind: subjectKind, name: nonEmptyString }, { namespace: t.string }, SUBJECT_DOCS);

const rule = struct(
  'TrafficTargetRule',
  { kind: literalUnion(['HTTPRouteGroup', 'TCPRoute', 'UDPRoute']), name: nonEmptyString },
  { matches: t.array(t.string, 'a list of match names') },
  {
    kind: 'The kind of the traffic spec: HTTPRouteGroup, TCPRoute or UDPRoute.',
    name: 'The traffic spec\'s name, in the TrafficTarget\'s namespace.',
    matches: 'HTTPRouteGroup only: the names of its matches this rule grants (all of them when absent).',
  },
);

const SOURCES = 'The service accounts allowed to send the traffic the rules name.';
const RULES = 'The traffic allowed: each rule names an HTTPRouteGroup (and some of its matches), a TCPRoute or a UDPRoute.';
const PORT = 'Only traffic to this port of the destination\'s pods.';

/** v1alpha1: no `spec`; `destination.port` is a string; rules are `specs`. */
export const trafficTargetV1alpha1 = struct(
  'TrafficTarget',
  {
    metadata: objectMeta,
    destination: struct(
      'IdentityBindingSubject',
      { kind: subjectKind, name: nonEmptyString },
      { namespace: t.string, port: portLike },
      { ...SUBJECT_DOCS, port: PORT },
    ),
  },
  { sources: t.array(subject), specs: t.array(rule) },
  { destination: 'The service account whose pods receive the traffic.', sources: SOURCES, specs: RULES },
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
          { ...SUBJECT_DOCS, port: PORT },
        ),
      },
      { sources: t.array(subject), rules: t.array(rule) },
      { destination: 'The service account whose pods receive the traffic.', sources: SOURCES, rules: RULES },
    ),
  },
  {},
  { spec: 'Who may send what to whom.' },
);

/** v1alpha3: no destination port. */
export const trafficTargetV1alpha3 = struct(
  'TrafficTarget',
  {
    metadata: objectMeta,
    spec: struct(
      'TrafficTargetSpec',
      { destination: subject },
      { sources: t.array(subject), rules: t.array(rule) },
      { destination: 'The service account whose pods receive the traffic.', sources: SOURCES, rules: RULES },
    ),
  },
  {},
  { spec: 'Who may send what to whom.' },
);
