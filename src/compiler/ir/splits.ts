import type { TrafficSplitObj } from '../model.js';
import { error, type StatusCollector } from '../status.js';
import type { CheckedRouteGroup } from './routes.js';
import { compareStrings, type HttpMatchIR, type SplitIR } from './types.js';

/**
 * The effective split of each root service. An invalid split (missing root
 * or backend, all weights zero, broken match reference) is rejected and the
 * root service keeps its own endpoints. Of two valid splits for one root,
 * the older (creation time, then name) wins.
 */
export function buildSplits(
  splits: readonly TrafficSplitObj[],
  /** The `namespace/name` of the mesh's services (of the split's namespace at least). */
  services: ReadonlySet<string>,
  routeGroups: ReadonlyMap<string, CheckedRouteGroup>,
  status: StatusCollector,
  /**
   * What each TrafficSplit object was found to be by an earlier build given the very same services and route groups:
   * an object found there is what it was (the same SplitIR object, or the same problems).
   */
  previous?: ReadonlyMap<TrafficSplitObj, SplitCheck>,
): { splits: SplitIR[]; checks: Map<TrafficSplitObj, SplitCheck> } {
  const candidates: { obj: TrafficSplitObj; ir: SplitIR }[] = [];
  const checks = new Map<TrafficSplitObj, SplitCheck>();
  for (const ts of splits) {
    const check = previous?.get(ts) ?? checkSplit(ts, services, routeGroups);
    checks.set(ts, check);
    if ('problems' in check) {
      for (const p of check.problems) status.add(ts.key, error(p.path, p.message));
      status.reject(ts.key, error('', `TrafficSplit not applied: traffic goes to the root service as if there were no split`));
      continue;
    }
    candidates.push({ obj: ts, ir: check.ir });
  }
  const winners = new Map<string, { obj: TrafficSplitObj; ir: SplitIR }>();
  const ordered = candidates.sort(
    (a, b) => compareStrings(a.obj.meta.creationTimestamp, b.obj.meta.creationTimestamp) || compareStrings(a.obj.meta.name, b.obj.meta.name),
  );
  for (const c of ordered) {
    const k = `${c.ir.namespace}/${c.ir.service}`;
    const winner = winners.get(k);
    if (winner) {
      status.reject(c.obj.key, error('spec.service', `TrafficSplit ${winner.ir.from} (older) already splits ${k}; this one is not applied`));
    } else winners.set(k, c);
  }
  return { splits: [...winners.values()].map((c) => c.ir).sort((a, b) => compareStrings(a.namespace, b.namespace) || compareStrings(a.service, b.service)), checks };
}

/** What one TrafficSplit is: its split, or what is wrong with it. */
export type SplitCheck = { readonly ir: SplitIR } | { readonly problems: readonly { readonly path: string; readonly message: string }[] };

function checkSplit(ts: TrafficSplitObj, services: ReadonlySet<string>, routeGroups: ReadonlyMap<string, CheckedRouteGroup>): SplitCheck {
  const ns = ts.meta.namespace;
  const problems: { path: string; message: string }[] = [];
  const root = rootServiceName(ts.service, ns);
  if (root === undefined) {
    problems.push({ path: 'spec.service', message: `expected a Service name in namespace ${ns} (name, or name.${ns}[.svc[.cluster.local]]), got ${JSON.stringify(ts.service)}` });
  } else if (!services.has(`${ns}/${root}`)) {
    problems.push({ path: 'spec.service', message: `root Service ${ns}/${root} not found in the mesh` });
  }
  ts.backends.forEach((b, i) => {
    if (!services.has(`${ns}/${b.service}`)) problems.push({ path: `spec.backends[${i}].service`, message: `backend Service ${ns}/${b.service} not found in the mesh` });
  });
  const seen = new Set<string>();
  ts.backends.forEach((b, i) => {
    if (seen.has(b.service)) problems.push({ path: `spec.backends[${i}].service`, message: `backend ${b.service} is listed twice` });
    seen.add(b.service);
  });
  if (ts.backends.length === 0) problems.push({ path: 'spec.backends', message: 'expected at least one backend' });
  else if (ts.backends.every((b) => b.weightMilli === 0)) problems.push({ path: 'spec.backends', message: 'every weight is 0: no backend could receive traffic' });
  const matches: HttpMatchIR[] = [];
  ts.matches.forEach((ref, i) => {
    if (ref.kind !== 'HTTPRouteGroup') {
      problems.push({ path: `spec.matches[${i}].kind`, message: `expected HTTPRouteGroup, got ${JSON.stringify(ref.kind)}` });
      return;
    }
    const group = routeGroups.get(`${ns}/${ref.name}`);
    if (!group) problems.push({ path: `spec.matches[${i}].name`, message: `HTTPRouteGroup ${ns}/${ref.name} not found (or not valid)` });
    else if (group.matches.some((m) => !m.ir)) problems.push({ path: `spec.matches[${i}].name`, message: `HTTPRouteGroup ${ns}/${ref.name} has invalid matches (see its status)` });
    else for (const m of group.matches) matches.push(m.ir!);
  });
  if (problems.length > 0) return { problems };
  const divisor = ts.backends.map((b) => b.weightMilli).reduce(gcd, 0);
  return {
    ir: {
      namespace: ns,
      service: root!,
      from: `${ns}/${ts.meta.name}`,
      backends: ts.backends
        .map((b) => ({ service: b.service, weight: b.weightMilli / divisor }))
        .sort((a, b) => compareStrings(a.service, b.service)),
      matches: matches.sort((a, b) => compareStrings(a.from, b.from)),
    },
  };
}

function rootServiceName(service: string, ns: string): string | undefined {
  const [name, ...rest] = service.split('.');
  if (!name) return undefined;
  const suffix = rest.join('.');
  return ['', ns, `${ns}.svc`, `${ns}.svc.cluster.local`].includes(suffix) ? name : undefined;
}

function gcd(a: number, b: number): number {
  return b === 0 ? a : gcd(b, a % b);
}
