import type * as m from '../model.js';
import { compareOrigins } from '../inputs.js';
import { error, warning, type StatusCollector } from '../status.js';
import { buildAccess } from './access.js';
import { warnHttpOnTcp } from './access-checks.js';
import { checkRouteGroups } from './routes.js';
import { assignVirtualIPs, buildServices } from './services.js';
import { meshNamespaces, meshSettings } from './settings.js';
import { buildSplits } from './splits.js';
import { compareStrings, identityOf, type MeshIR } from './types.js';
import { buildWorkloads } from './workloads.js';

/** Kinds that are namespaced but may live outside mesh namespaces. */
const ANYWHERE = new Set<m.MeshObject['kind']>(['MeshConfig']);

/**
 * Decoded objects -> mesh IR. Pure and total: every problem becomes a status
 * message, and the objects are put in a canonical order first so the input
 * order never matters.
 */
export function buildIR(decoded: readonly m.MeshObject[], status: StatusCollector, connectedVirtualMachines?: readonly string[]): MeshIR {
  const objects = uniqueObjects(decoded, status);
  // Objects by kind, in canonical order (sorted by kind first, so kinds taken in sorted order keep it).
  const byKind = new Map<string, m.MeshObject[]>();
  for (const o of objects) {
    const list = byKind.get(o.kind);
    if (list) list.push(o);
    else byKind.set(o.kind, [o]);
  }
  const of = <K extends m.MeshObject['kind']>(...kinds: K[]) =>
    [...kinds].sort(compareStrings).flatMap((k) => byKind.get(k) ?? []) as Extract<m.MeshObject, { kind: K }>[];

  const settings = meshSettings(of('MeshConfig'), status);
  const namespaces = meshNamespaces(of('Namespace'), status);
  const inMesh = objects.filter((o) => {
    if (o.kind === 'Namespace' || ANYWHERE.has(o.kind) || namespaces.has(o.meta.namespace)) return true;
    status.ignore(o.key, warning('metadata.namespace', `namespace ${JSON.stringify(o.meta.namespace)} is not in the mesh (it needs a Namespace with label smc.dev/mesh: enabled); ignored`));
    return false;
  });
  const keep = new Set(inMesh.map((o) => o.key));
  const inMeshOf = <K extends m.MeshObject['kind']>(...kinds: K[]) => of(...kinds).filter((o) => keep.has(o.key));

  const workloads = buildWorkloads(inMeshOf('Pod'), inMeshOf('VirtualMachine'), settings, status, connectedVirtualMachines && new Set(connectedVirtualMachines));
  const services = assignVirtualIPs(buildServices(inMeshOf('Service'), inMeshOf('EndpointSlice', 'Endpoints'), workloads, status), inMeshOf('Service'), settings, status);
  const routeGroups = checkRouteGroups(inMeshOf('HTTPRouteGroup'), status);
  const portRoutes = new Map(inMeshOf('TCPRoute', 'UDPRoute').map((r) => [`${r.kind}/${r.meta.namespace}/${r.meta.name}`, r]));
  const identities = [...new Set(workloads.map((w) => w.identity))];
  const accounts = inMeshOf('ServiceAccount').map((sa) => identityOf(settings.trustDomain, sa.meta.namespace, sa.meta.name));
  const access = buildAccess(inMeshOf('TrafficTarget'), routeGroups, portRoutes, identities, settings, status, accounts);
  warnHttpOnTcp(inMeshOf('TrafficTarget'), access, services, settings, status);
  const splits = buildSplits(inMeshOf('TrafficSplit'), services, routeGroups, status);

  return {
    settings,
    namespaces: [...namespaces].sort(compareStrings),
    workloads,
    services,
    access,
    splits,
  };
}

/**
 * The same kind/namespace/name twice: one is used, the others are rejected.
 * Which one does not depend on where they were read (file names, order):
 * the one whose content sorts first. EndpointSlice and Endpoints share a name
 * space only with their own kind.
 */
function uniqueObjects(objects: readonly m.MeshObject[], status: StatusCollector): m.MeshObject[] {
  // Content is compared only between objects of the same kind and name (rare): made when first needed.
  const content = new Map<m.MeshObject, string>();
  const contentOf = (o: m.MeshObject) => {
    let text = content.get(o);
    if (text === undefined) content.set(o, (text = JSON.stringify({ ...o, key: undefined, origin: undefined })));
    return text;
  };
  const sorted = [...objects].sort(
    (a, b) =>
      compareStrings(a.kind, b.kind) ||
      compareStrings(a.meta.namespace, b.meta.namespace) ||
      compareStrings(a.meta.name, b.meta.name) ||
      compareStrings(contentOf(a), contentOf(b)) ||
      compareOrigins(a.origin, b.origin),
  );
  const out: m.MeshObject[] = [];
  const first = new Map<string, m.MeshObject>();
  for (const o of sorted) {
    const id = `${o.kind}/${o.meta.namespace}/${o.meta.name}`;
    if (first.has(id)) {
      status.reject(o.key, error('metadata.name', `duplicate ${o.kind} ${o.meta.namespace ? `${o.meta.namespace}/` : ''}${o.meta.name}: another object of that kind and name is used (each name may be defined once)`));
      continue;
    }
    first.set(id, o);
    out.push(o);
  }
  return out;
}
