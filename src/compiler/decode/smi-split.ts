import * as t from 'io-ts';
import { integer, nonEmptyString, objectMeta, struct, withSchema } from './common.js';

/** TrafficSplit, split.smi-spec.io v1alpha1..v1alpha4. */

/** A Kubernetes quantity as YAML gives it: a string like "500m" or a plain number. */
export const quantity = t.union([t.string, t.number], 'quantity (e.g. 1, "500m")');

const nonNegativeInteger = withSchema(new t.Type<number, number, unknown>(
  'non-negative integer',
  (u): u is number => integer.is(u) && u >= 0,
  (u, c) => (integer.is(u) && u >= 0 ? t.success(u) : t.failure(u, c)),
  t.identity,
), { type: 'integer', minimum: 0 });

const ROOT = 'The root service callers address (name, or name.namespace).';
const BACKEND_SERVICE = 'A backend service, in the TrafficSplit\'s namespace.';
const BACKENDS = 'The services the requests are split among.';
const SPEC = 'Which service\'s requests are split, and how.';

export const trafficSplitV1alpha1 = struct(
  'TrafficSplit',
  {
    metadata: objectMeta,
    spec: struct(
      'TrafficSplitSpec',
      { service: nonEmptyString, backends: t.array(struct('TrafficSplitBackend', { service: nonEmptyString, weight: quantity }, {}, { service: BACKEND_SERVICE, weight: 'The backend\'s share, a Kubernetes quantity (1, "500m").' })) },
      {},
      { service: ROOT, backends: BACKENDS },
    ),
  },
  {},
  { spec: SPEC },
);

const backend = struct('TrafficSplitBackend', { service: nonEmptyString, weight: nonNegativeInteger }, {}, { service: BACKEND_SERVICE, weight: 'The backend\'s share of the requests, relative to the other weights (0: none).' });

export const trafficSplitV1alpha2 = struct(
  'TrafficSplit',
  { metadata: objectMeta, spec: struct('TrafficSplitSpec', { service: nonEmptyString, backends: t.array(backend) }, {}, { service: ROOT, backends: BACKENDS }) },
  {},
  { spec: SPEC },
);

/** v1alpha3, v1alpha4: `matches` reference HTTPRouteGroups. */
export const trafficSplitV1alpha3 = struct(
  'TrafficSplit',
  {
    metadata: objectMeta,
    spec: struct(
      'TrafficSplitSpec',
      { service: nonEmptyString, backends: t.array(backend) },
      {
        matches: t.array(
          struct('TypedLocalObjectReference', { kind: nonEmptyString, name: nonEmptyString }, { apiGroup: t.string }, {
            kind: 'HTTPRouteGroup.',
            name: 'The HTTPRouteGroup\'s name, in the TrafficSplit\'s namespace.',
            apiGroup: 'specs.smi-spec.io (optional).',
          }),
        ),
      },
      { service: ROOT, backends: BACKENDS, matches: 'Split only the requests matching one of these HTTPRouteGroups; the others go to the root service as before.' },
    ),
  },
  {},
  { spec: SPEC },
);

/**
 * Converts a Kubernetes quantity to milli-units exactly, or explains why it
 * cannot. `1` = 1000, `500m` = 500, `1.5` = 1500, `2k` = 2000000.
 */
export function quantityToMilli(q: string | number): { ok: true; milli: number } | { ok: false; message: string } {
  const text = typeof q === 'number' ? numberText(q) : q.trim();
  const m = /^([+-]?)(\d+(?:\.\d*)?|\.\d+)(?:(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E)|[eE]([+-]?\d+))?$/.exec(text);
  if (!m) return { ok: false, message: `expected a quantity such as 1 or "500m", got ${JSON.stringify(q)}` };
  const [, sign, num = '', suffix, exp] = m;
  if (sign === '-') return { ok: false, message: `weight must not be negative, got ${JSON.stringify(q)}` };
  const [intPart = '', fracPart = ''] = num.split('.');
  // value = digits * 10^scale * factor, all in BigInt to stay exact.
  let digits = BigInt((intPart || '0') + fracPart);
  let scale = -fracPart.length + 3; // milli
  let factor = 1n;
  const decimal: Record<string, number> = { n: -9, u: -6, m: -3, k: 3, M: 6, G: 9, T: 12, P: 15, E: 18 };
  const binary: Record<string, bigint> = { Ki: 1n << 10n, Mi: 1n << 20n, Gi: 1n << 30n, Ti: 1n << 40n, Pi: 1n << 50n, Ei: 1n << 60n };
  if (suffix !== undefined && suffix in decimal) scale += decimal[suffix]!;
  else if (suffix !== undefined) factor = binary[suffix]!;
  else if (exp !== undefined) scale += Number(exp);
  digits *= factor;
  if (scale >= 0) digits *= 10n ** BigInt(scale);
  else {
    const div = 10n ** BigInt(-scale);
    if (digits % div !== 0n) return { ok: false, message: `weight ${JSON.stringify(q)} is finer than milli-units (1m)` };
    digits /= div;
  }
  if (digits > BigInt(Number.MAX_SAFE_INTEGER)) return { ok: false, message: `weight ${JSON.stringify(q)} is too large` };
  return { ok: true, milli: Number(digits) };
}

function numberText(n: number): string {
  if (!Number.isFinite(n)) return String(n);
  // Up to 3 decimals are exact in milli-units; toString keeps e-notation for extremes, which the parser accepts.
  return n.toString();
}
