import * as t from 'io-ts';
import { objectProps } from './common.js';
import { endpointSliceCodec, endpointsCodec, namespaceCodec, podCodec, serviceAccountCodec, serviceCodec } from './kubernetes.js';

/**
 * What smc reads of a Kubernetes membership object (a Pod, a Service, ...):
 * the object with every field its codec does not name left out. The codec
 * is the one decoding uses, so what is kept is exactly what decoding reads.
 * A Kubernetes source delivers these projections: a write that changes only
 * fields smc does not read (a Pod's status conditions, its container
 * statuses) delivers the same value, which is no change.
 *
 * Policy objects are never projected: smc's policy input is strict, and a
 * field it does not know is an error, not something to drop.
 */
export const MEMBERSHIP_CODECS: Readonly<Record<string, t.Mixed>> = {
  Namespace: namespaceCodec,
  Service: serviceCodec,
  Pod: podCodec,
  ServiceAccount: serviceAccountCodec,
  EndpointSlice: endpointSliceCodec,
  Endpoints: endpointsCodec,
};

/** `value` with only the fields `codec` names (recursively); values the codec does not describe as objects or arrays are kept as they are. */
export function project(codec: t.Mixed, value: unknown): unknown {
  if (value === null || typeof value !== 'object') return value;
  const props = objectProps(codec);
  if (props) {
    if (Array.isArray(value)) return value;
    const out: Record<string, unknown> = {};
    for (const [k, c] of Object.entries(props)) if (k in value) out[k] = project(c, (value as Record<string, unknown>)[k]);
    return out;
  }
  if (codec instanceof t.ArrayType) return Array.isArray(value) ? value.map((v) => project(codec.type as t.Mixed, v)) : value;
  // A nullable member (`struct`'s optional fields: the codec or null).
  if (codec instanceof t.UnionType) {
    const members = (codec.types as t.Mixed[]).filter((c) => !(c instanceof t.NullType));
    if (members.length === 1) return project(members[0]!, value);
  }
  return value;
}
