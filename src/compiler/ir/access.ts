import type { PortRouteObj, TrafficTargetObj } from '../model.js';
import { error, recordInto, warning, type StatusCall, type StatusCollector } from '../status.js';
import type { CheckedRouteGroup } from './routes.js';
import { compareStrings, identityOf, type DestinationAccess, type Grant, type HttpMatchIR, type MeshSettings } from './types.js';
import { warnHttpOnTcp, type IdentityPorts } from './access-checks.js';
import { KeyedMemo, PatchedTable, type Read } from '../keyed.js';
import { editedAt, sameItems, sortedIndex } from '../group.js';

/**
 * TrafficTargets become grants, grouped by destination identity. Deny by
 * default: nothing reaches a destination unless a grant here says so (or the
 * mesh is permissive, which `query.ts` applies).
 *
 * Each TrafficTarget is derived on its own from what it reads (itself, the
 * routes it names, whether the accounts it names exist, its destination's
 * ports), and each destination's access from its targets' grants: given the
 * previous build's memo, what none of those reads changed is the very value
 * it was, with its messages (see keyed.ts).
 */
export interface AccessMemo {
  readonly targets: KeyedMemo<TargetGrants | undefined>;
  readonly destinations: KeyedMemo<DestinationAccess>;
  /** What the build was given (its TrafficTargets, and the identities and accounts that exist) and made, for patching the next. */
  readonly given: readonly TrafficTargetObj[];
  readonly identities: readonly string[];
  readonly accounts: readonly string[];
  readonly byDestination: ReadonlyMap<string, readonly string[]>;
  readonly results: ReadonlyMap<string, TargetGrants | undefined>;
  readonly access: readonly DestinationAccess[];
}

/** A TrafficTarget's grants, all to one destination (undefined: rejected, it grants nothing). */
export interface TargetGrants {
  readonly destination: string;
  readonly grants: readonly Grant[];
}

const NONE: readonly never[] = [];

type TargetLookups = {
  readonly target: ReadonlyMap<string, TrafficTargetObj>;
  readonly group: ReadonlyMap<string, CheckedRouteGroup>;
  readonly portRoute: ReadonlyMap<string, PortRouteObj>;
  /** The identities of this build: its workloads' and its ServiceAccounts'. */
  readonly known: ReadonlyMap<string, true>;
  /** Whether an identity of another namespace exists there. */
  readonly elsewhere: (arg: string) => boolean;
  readonly ports: ReadonlyMap<string, IdentityPorts> | ((identity: string) => IdentityPorts | undefined);
};

type DestinationLookups = { readonly targetsOf: ReadonlyMap<string, readonly string[]>; readonly grantsOf: ReadonlyMap<string, TargetGrants | undefined> };

export function buildAccess(
  targets: readonly TrafficTargetObj[],
  routeGroups: ReadonlyMap<string, CheckedRouteGroup>,
  portRoutes: ReadonlyMap<string, PortRouteObj>,
  identities: readonly string[],
  settings: MeshSettings,
  status: StatusCollector,
  /** Identities of ServiceAccount objects: with the workloads', the identities that exist. */
  accounts: readonly string[] = [],
  /** Whether an identity that is neither of those exists in its namespace (when the mesh is built a namespace at a time). */
  knownElsewhere: (namespace: string, id: string) => boolean = () => false,
  /** The ports of each identity's endpoints, for `warnHttpOnTcp` (none: not checked): a table, or a lookup (recorded by the caller's own derivation). */
  ports: ReadonlyMap<string, IdentityPorts> | ((identity: string) => IdentityPorts | undefined) = new Map(),
  previous?: AccessMemo,
): { access: DestinationAccess[]; memo: AccessMemo } {
  const known = new Map<string, true>();
  for (const id of identities) known.set(id, true);
  for (const id of accounts) known.set(id, true);
  const lookups: TargetLookups = { target: new Map(targets.map((tt) => [tt.key, tt])), group: routeGroups, portRoute: portRoutes, known, elsewhere: elsewhereOf(knownElsewhere), ports };
  const targetMemo = new KeyedMemo<TargetGrants | undefined, TargetLookups>(lookups, previous?.targets);
  const byDestination = new Map<string, string[]>();
  for (const id of identities) byDestination.set(id, []);
  const results = new Map<string, TargetGrants | undefined>();
  for (const tt of targets) {
    const result = targetMemo.get(tt.key, status, deriveTarget(tt.key, settings));
    results.set(tt.key, result);
    if (!result) continue;
    const list = byDestination.get(result.destination);
    if (list) list.push(tt.key);
    else byDestination.set(result.destination, [tt.key]);
  }
  const destinationMemo = new KeyedMemo<DestinationAccess, DestinationLookups>({ targetsOf: byDestination, grantsOf: results }, previous?.destinations);
  const access = [...byDestination.keys()].sort(compareStrings).map((destination) => destinationMemo.get(destination, status, deriveDestination(destination)));
  return { access, memo: { targets: targetMemo.seal(), destinations: destinationMemo.seal(), given: targets, identities, accounts, byDestination, results, access } };
}

/**
 * `buildAccess` when its TrafficTargets are the previous build's with some replaced at their places (the same keys),
 * its routes and the identities and accounts that exist are the very ones it was given, and its ports table may have
 * been patched: the TrafficTargets that read a changed key (or that ask another namespace) are derived again, then
 * the destinations whose grants changed. Undefined when that does not hold, when a TrafficTarget derived again
 * changes destination, or when a message may differ (what was said is then said again by `buildAccess`).
 */
export function patchAccess(
  previous: AccessMemo,
  targets: readonly TrafficTargetObj[],
  routeGroups: ReadonlyMap<string, CheckedRouteGroup>,
  portRoutes: ReadonlyMap<string, PortRouteObj>,
  identities: readonly string[],
  accounts: readonly string[],
  settings: MeshSettings,
  knownElsewhere: (namespace: string, id: string) => boolean,
  ports: ReadonlyMap<string, IdentityPorts>,
): { access: DestinationAccess[]; memo: AccessMemo } | undefined {
  const was = previous.targets.lookups as TargetLookups;
  if (was.group !== routeGroups || was.portRoute !== portRoutes || !sameItems(previous.identities, identities) || !sameItems(previous.accounts, accounts) || typeof was.ports === 'function') return undefined;
  const edited = editedAt(previous.given, targets, (a, b) => a.key === b.key);
  if (!edited) return undefined;
  const target = new PatchedTable(was.target);
  for (const i of edited) target.put(targets[i]!.key, targets[i]!);
  const targetMemo = KeyedMemo.carried<TargetGrants | undefined, TargetLookups>({ ...was, target, elsewhere: elsewhereOf(knownElsewhere), ports }, previous.targets);
  const results = new PatchedTable(previous.results);
  for (const key of targetMemo.dirty()) {
    const before = previous.results.get(key);
    if (targetMemo.callsOf(key).length > 0) return undefined;
    const said: StatusCall[] = [];
    const after = targetMemo.get(key, recordInto(said), deriveTarget(key, settings));
    if (said.length > 0 || before?.destination !== after?.destination) return undefined;
    if (after !== before) results.put(key, after);
  }
  const destinationMemo = KeyedMemo.carried<DestinationAccess, DestinationLookups>({ targetsOf: previous.byDestination, grantsOf: results }, previous.destinations);
  const access = previous.access.slice();
  for (const destination of destinationMemo.dirty()) {
    const i = indexOfDestination(access, destination);
    if (i < 0) return undefined;
    access[i] = destinationMemo.get(destination, recordInto([]), deriveDestination(destination));
  }
  return { access, memo: { targets: targetMemo.seal(), destinations: destinationMemo.seal(), given: targets, identities, accounts, byDestination: previous.byDestination, results, access } };
}

const elsewhereOf = (knownElsewhere: (namespace: string, id: string) => boolean) => (arg: string) => {
  const cut = arg.indexOf('\n');
  return knownElsewhere(arg.slice(0, cut), arg.slice(cut + 1));
};

/** How a TrafficTarget's grants are derived, through the lookups (so that what it reads is recorded). */
const deriveTarget =
  (key: string, settings: MeshSettings) =>
  (read: Read<TargetLookups>, status: StatusCollector): TargetGrants | undefined => {
    const target = read('target', key)!;
    const made = targetGrants(target, (name) => read('group', name), (name) => read('portRoute', name), (namespace, id) => read('known', id) === true || read('elsewhere', `${namespace}\n${id}`), settings, status);
    if (made) warnHttpOnTcp(target, made.grants, read('ports', made.destination), status);
    return made;
  };

/** How a destination's access is derived: its TrafficTargets' grants, sorted. */
const deriveDestination =
  (destination: string) =>
  (read: Read<DestinationLookups>): DestinationAccess => ({
    destination,
    grants: (read('targetsOf', destination) ?? NONE).flatMap((key) => read('grantsOf', key)!.grants).sort(compareGrants),
  });

/** Where a destination's access is in access sorted by destination (a binary search); -1 when it is not. */
const indexOfDestination = (access: readonly DestinationAccess[], destination: string): number => sortedIndex(access, (a) => compareStrings(a.destination, destination));

/** One TrafficTarget's grants, with its messages. */
function targetGrants(
  tt: TrafficTargetObj,
  routeGroup: (name: string) => CheckedRouteGroup | undefined,
  portRoute: (name: string) => PortRouteObj | undefined,
  /** Whether an identity exists (of a workload or a ServiceAccount) in the namespace it names. */
  known: (namespace: string, id: string) => boolean,
  settings: MeshSettings,
  status: StatusCollector,
): TargetGrants | undefined {
  const ns = tt.meta.namespace;
  const from = `${ns}/${tt.meta.name}`;
  const destPath = tt.rulesPath === 'specs' ? 'destination' : 'spec.destination';
  if (tt.destination.namespace !== ns) {
    status.reject(tt.key, error(`${destPath}.namespace`, `a TrafficTarget must live in its destination's namespace: expected ${JSON.stringify(ns)}, got ${JSON.stringify(tt.destination.namespace)} (a namespace cannot grant access to another namespace's workloads)`));
    return undefined;
  }
  const destination = identityOf(settings.trustDomain, ns, tt.destination.name);
  const sources = [...new Set(tt.sources.map((s) => identityOf(settings.trustDomain, s.namespace, s.name)))];
  // References to nothing are warnings, not errors: the account may come later (as with istioctl analyze).
  const absent = (namespace: string, id: string) => !known(namespace, id);
  if (absent(ns, destination)) status.add(tt.key, warning(`${destPath}.name`, `no Pod, VirtualMachine or ServiceAccount of the mesh is service account ${ns}/${tt.destination.name}; this TrafficTarget applies once one exists`));
  tt.sources.forEach((s, i) => {
    if (absent(s.namespace, identityOf(settings.trustDomain, s.namespace, s.name))) {
      status.add(tt.key, warning(`${tt.rulesPath === 'specs' ? 'sources' : 'spec.sources'}[${i}].name`, `no Pod, VirtualMachine or ServiceAccount of the mesh is service account ${s.namespace}/${s.name}; this source is granted access once one exists`));
    }
  });
  if (sources.length === 0) status.add(tt.key, warning(tt.rulesPath === 'specs' ? 'sources' : 'spec.sources', 'no sources: this TrafficTarget grants nothing'));
  if (tt.rules.length === 0) status.add(tt.key, warning(tt.rulesPath, 'no rules: this TrafficTarget grants nothing'));

  let errors = 0;
  const ruleGrants: Omit<Grant, 'source'>[] = [];
  tt.rules.forEach((rule, i) => {
    const path = `${tt.rulesPath}[${i}]`;
    const fail = (p: string, message: string) => {
      errors++;
      status.add(tt.key, error(p, message));
    };
    // A route that does not exist (yet): the rule grants nothing until it does.
    const missing = (p: string, message: string) => void status.add(tt.key, warning(p, message));
    const restrict = (ports: readonly number[] | 'all'): readonly number[] | 'all' | undefined => {
      if (tt.destinationPort === undefined) return ports;
      if (ports === 'all' || ports.includes(tt.destinationPort)) return [tt.destinationPort];
      return undefined;
    };
    const refName = `${ns}/${rule.name}`;
    if (rule.kind === 'HTTPRouteGroup') {
      const group = routeGroup(refName);
      if (!group) return missing(`${path}.name`, `HTTPRouteGroup ${refName} not found (or rejected: see its status); this rule grants nothing until it exists`);
      const http: HttpMatchIR[] = [];
      if (rule.matches === undefined || rule.matches.length === 0) {
        for (const m of group.matches) if (m.ir) http.push(m.ir);
        if (group.matches.length === 0) status.add(tt.key, warning(`${path}.name`, `HTTPRouteGroup ${refName} has no matches; this rule grants nothing`));
      } else {
        rule.matches.forEach((name, j) => {
          const m = group.matches.find((x) => x.name === name);
          if (!m) missing(`${path}.matches[${j}]`, `HTTPRouteGroup ${refName} has no match named ${JSON.stringify(name)}; it grants nothing`);
          else if (!m.ir) fail(`${path}.matches[${j}]`, `match ${JSON.stringify(name)} of HTTPRouteGroup ${refName} is invalid (see its status); it grants nothing`);
          else http.push(m.ir);
        });
      }
      const ports = restrict('all')!;
      if (http.length > 0) ruleGrants.push({ protocol: 'http', ports, http: dedupeMatches(http), grantedBy: from, rule: path });
    } else if (rule.kind === 'TCPRoute') {
      const route = portRoute(`TCPRoute/${refName}`);
      if (!route) return missing(`${path}.name`, `TCPRoute ${refName} not found (or rejected: see its status); this rule grants nothing until it exists`);
      if (rule.matches !== undefined && rule.matches.length > 0 && !rule.matches.includes(route.matchName ?? '')) {
        return missing(`${path}.matches`, `TCPRoute ${refName} has no match named ${rule.matches.map((x) => JSON.stringify(x)).join(', ')}; this rule grants nothing`);
      }
      const routePorts = route.ports === undefined || route.ports.length === 0 ? 'all' : [...new Set(route.ports)].sort((a, b) => a - b);
      const ports = restrict(routePorts);
      if (ports === undefined) {
        status.add(tt.key, warning(`${path}.name`, `TCPRoute ${refName} ports do not include the destination port ${tt.destinationPort}; this rule grants nothing`));
        return;
      }
      ruleGrants.push({ protocol: 'tcp', ports, http: [], grantedBy: from, rule: path });
    } else {
      status.add(tt.key, warning(`${path}.kind`, `${rule.kind} is accepted but UDP is not routed by smc; this rule grants nothing`));
    }
  });
  if (errors > 0 && ruleGrants.length === 0) {
    status.reject(tt.key, error(tt.rulesPath, 'no rule of this TrafficTarget is usable; it grants nothing'));
    return undefined;
  }
  const grants: Grant[] = [];
  for (const source of sources) for (const g of ruleGrants) grants.push({ source, ...g });
  return { destination, grants };
}

function dedupeMatches(list: HttpMatchIR[]): HttpMatchIR[] {
  const seen = new Map<string, HttpMatchIR>();
  for (const m of list) seen.set(m.from, m);
  return [...seen.values()].sort((a, b) => compareStrings(a.from, b.from));
}

function compareGrants(a: Grant, b: Grant): number {
  return (
    compareStrings(a.source, b.source) ||
    compareStrings(a.grantedBy, b.grantedBy) ||
    compareStrings(a.rule, b.rule) ||
    compareStrings(a.protocol, b.protocol) ||
    compareStrings(JSON.stringify(a.ports), JSON.stringify(b.ports)) ||
    compareStrings(JSON.stringify(a.http), JSON.stringify(b.http))
  );
}
