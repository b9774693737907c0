import type { Grant } from '../ir/types.js';
import { compareStrings, policyName } from '../ir/types.js';
import { TYPE_PREFIX } from './codec.js';
import { permission } from './match.js';
import { groupBy } from '../group.js';

/**
 * RBAC for one inbound port, from the grants that apply to it. Callers are
 * recognised by the SPIFFE ID in their client certificate (mTLS is required
 * on every inbound chain). With no applicable grant the policy set is empty,
 * which denies everything: deny by default.
 */

interface Policy {
  readonly permissions: readonly object[];
  readonly principals: readonly object[];
}

const principal = (id: string) => ({ authenticated: { principalName: { exact: id } } });

/**
 * One policy per TrafficTarget rule, named after it (`policyName`), so
 * Envoy's RBAC stats, access logs and `rbac_access_denied_matched_policy[…]`
 * response details name the object that allowed a request. Its principals are
 * the rule's sources; its permissions the rule's matches (any, for TCP).
 */
function policies(grants: readonly Grant[], http: boolean, permissive: boolean, trustDomain: string): Record<string, Policy> {
  const out: Record<string, Policy> = {};
  if (permissive) {
    out['permissive'] = { permissions: [{ any: true }], principals: [{ authenticated: { principalName: { prefix: `spiffe://${trustDomain}/` } } }] };
    return out;
  }
  const byRule = groupBy(grants, policyName);
  for (const name of [...byRule.keys()].sort(compareStrings)) {
    const mine = byRule.get(name)!;
    let permissions: object[];
    if (mine.some((g) => g.protocol === 'tcp')) permissions = [{ any: true }];
    else if (!http) continue; // HTTP rules do not open a TCP port.
    else {
      const seen = new Map<string, object>();
      for (const g of mine) for (const m of g.http) seen.set(m.from, permission(m));
      permissions = [...seen.entries()].sort((a, b) => compareStrings(a[0], b[0])).map(([, p]) => p);
    }
    const sources = [...new Set(mine.map((g) => g.source))].sort(compareStrings);
    out[name] = { permissions, principals: sources.map(principal) };
  }
  return out;
}

export function httpRbacFilter(grants: readonly Grant[], permissive: boolean, trustDomain: string) {
  return {
    name: 'envoy.filters.http.rbac',
    typedConfig: {
      '@type': `${TYPE_PREFIX}envoy.extensions.filters.http.rbac.v3.RBAC`,
      rules: { action: 'ALLOW', policies: policies(grants, true, permissive, trustDomain) },
    },
  };
}

export function networkRbacFilter(statPrefix: string, grants: readonly Grant[], permissive: boolean, trustDomain: string) {
  return {
    name: 'envoy.filters.network.rbac',
    typedConfig: {
      '@type': `${TYPE_PREFIX}envoy.extensions.filters.network.rbac.v3.RBAC`,
      statPrefix,
      rules: { action: 'ALLOW', policies: policies(grants, false, permissive, trustDomain) },
    },
  };
}
