import { stringify } from 'yaml';
import { policyKinds, type PolicyKind } from '../compiler/decode/index.js';
import { mergeVersions, schemaOf, type Schema } from '../compiler/decode/openapi.js';

/**
 * The CustomResourceDefinitions of the policy kinds smc reads (SMI's and its
 * own), generated from the codecs that decode them: the API server refuses
 * a field smc does not know (`kubectl apply` validates strictly), and
 * `kubectl explain` shows what each field means. `smc crds` prints them;
 * deploy/crds holds them as files (`npm run crds:update` writes them).
 */

/** What each kind is for: the description `kubectl explain KIND` starts with. */
const KIND_DOCS: Record<string, string> = {
  TrafficTarget: 'SMI access control: which service accounts (sources) may send which traffic (rules: HTTPRouteGroup matches, TCP or UDP routes) to the pods of a destination service account. Without one, smc denies (unless the mesh is permissive).',
  HTTPRouteGroup: 'SMI traffic spec: named HTTP matches (path regex, methods, headers) that TrafficTargets grant and TrafficSplits route by.',
  TCPRoute: 'SMI traffic spec: TCP traffic, on every port or on the listed ones, that a TrafficTarget grants.',
  UDPRoute: 'SMI traffic spec: UDP traffic on the listed ports that a TrafficTarget grants (smc reads it and reports it; Envoy sidecars carry no UDP).',
  TrafficSplit: 'SMI traffic split: requests to a root service go to backend services in proportion to their weights, optionally only for requests matching HTTPRouteGroups.',
  MeshConfig: 'smc mesh settings: permissive mode, the trust domain, the default interception mode, the virtual IP range of services without a cluster IP, access logs. One per mesh.',
  VirtualMachine: 'smc workload outside Kubernetes: a virtual machine running a sidecar, with its service account, addresses, ports and labels (Services select it by label).',
};

/** Columns `kubectl get` prints besides the name, per kind. */
const COLUMNS: Record<string, { name: string; type: string; jsonPath: string; priority?: number }[]> = {
  TrafficTarget: [
    { name: 'Destination', type: 'string', jsonPath: '.spec.destination.name' },
  ],
  TrafficSplit: [
    { name: 'Service', type: 'string', jsonPath: '.spec.service' },
  ],
  VirtualMachine: [
    { name: 'Service-Account', type: 'string', jsonPath: '.spec.serviceAccount' },
    { name: 'Addresses', type: 'string', jsonPath: '.spec.addresses' },
  ],
  MeshConfig: [
    { name: 'Permissive', type: 'boolean', jsonPath: '.spec.permissive' },
  ],
};

const STATUS: Schema = {
  type: 'object',
  description: 'Written by smc (the leader replica): whether smc accepted the object, and why not.',
  properties: {
    conditions: {
      type: 'array',
      description: 'The Accepted condition: status True (Accepted, or PartiallyAccepted with warnings), False (Rejected: the message names each field and problem) or Unknown.',
      items: {
        type: 'object',
        required: ['type', 'status'],
        properties: {
          type: { type: 'string', description: 'Accepted.' },
          status: { type: 'string', enum: ['True', 'False', 'Unknown'], description: 'True, False or Unknown.' },
          reason: { type: 'string', description: 'Accepted, PartiallyAccepted, Rejected or Ignored.' },
          message: { type: 'string', description: 'Every problem smc found, with the field it is in.' },
          observedGeneration: { type: 'integer', description: 'The metadata.generation smc judged.' },
          lastTransitionTime: { type: 'string', description: 'When the status last changed (RFC 3339).' },
        },
      },
    },
  },
};

const plural = (kind: string) => `${kind.toLowerCase()}s`;

export interface CrdFile {
  /** The file name under deploy/crds. */
  readonly file: string;
  readonly crd: Record<string, unknown>;
}

export function customResourceDefinitions(): CrdFile[] {
  return policyKinds().map((k) => ({ file: `${k.group.split('.')[0]}-${k.kind.toLowerCase()}.yaml`, crd: definition(k) }));
}

function definition(k: PolicyKind): Record<string, unknown> {
  const doc = KIND_DOCS[k.kind];
  if (!doc) throw new Error(`crds: the kind ${k.kind} has no description in KIND_DOCS`);
  // Newest first: a field's description comes from the newest version that has it.
  const newestFirst = [...k.versions].reverse();
  const merged = mergeVersions(newestFirst.map((v) => ({ name: v.name, schema: schemaOf(v.codec, '') })));
  const { metadata: _metadata, ...fields } = merged.properties ?? {};
  const root: Schema = {
    type: 'object',
    description: doc,
    properties: {
      apiVersion: { type: 'string', description: `${k.group}/ and one of the versions: ${k.versions.map((v) => v.name).join(', ')}.` },
      kind: { type: 'string', description: k.kind },
      metadata: { type: 'object' },
      ...fields,
      status: STATUS,
    },
    ...((merged.required ?? []).filter((r) => r !== 'metadata').length > 0 ? { required: merged.required!.filter((r) => r !== 'metadata') } : {}),
  };
  const storage = k.versions[k.versions.length - 1]!.name;
  return {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: { name: `${plural(k.kind)}.${k.group}`, labels: { 'app.kubernetes.io/part-of': 'smc' } },
    spec: {
      group: k.group,
      scope: 'Namespaced',
      names: { kind: k.kind, listKind: `${k.kind}List`, plural: plural(k.kind), singular: k.kind.toLowerCase(), categories: ['smc'] },
      versions: k.versions.map((v) => ({
        name: v.name,
        served: true,
        storage: v.name === storage,
        subresources: { status: {} },
        additionalPrinterColumns: [
          ...(COLUMNS[k.kind] ?? []),
          { name: 'Accepted', type: 'string', jsonPath: '.status.conditions[?(@.type=="Accepted")].status' },
          { name: 'Reason', type: 'string', jsonPath: '.status.conditions[?(@.type=="Accepted")].reason' },
          { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' },
        ],
        schema: { openAPIV3Schema: root },
      })),
    },
  };
}

/** One CRD as its file holds it: a comment saying where it comes from, then the YAML. */
export function renderCrd(f: CrdFile): string {
  const spec = f.crd.spec as { names: { kind: string }; group: string; versions: { name: string; storage: boolean }[] };
  const header = [
    `# ${spec.names.kind} (${spec.group}), every version smc reads. Generated from smc's codecs by`,
    '# `smc crds` (`npm run crds:update`): do not edit. Every version has the fields of all of',
    '# them: without a conversion webhook an object keeps the shape it was written in, and',
    '# smc decodes it by that version, strictly. The API server refuses a field no version has.',
  ];
  return `${header.join('\n')}\n${stringify(f.crd, { lineWidth: 0, aliasDuplicateObjects: false })}`;
}
