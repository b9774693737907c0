import type { MeshCompileResult } from '../compiler/compile.js';
import type { ProtoCodec } from '../compiler/envoy/codec.js';
import type { Snapshot } from '../compiler/envoy/snapshot.js';
import { parseIdentity, type MeshIR } from '../compiler/ir/types.js';
import { configDump } from './config-dump.js';
import { renderStatus, toYaml, type OutputFiles } from './render.js';

/**
 * What `smc compile -o DIR` writes, as path -> text (pure): per proxy
 * identity `<namespace>/<serviceaccount>.<ext>` in config_dump shape,
 * `status.<ext>` (every input object, and every proxy with what had to be
 * left out of its configuration) and `ir.<ext>` (the mesh model: who may
 * call whom, split how).
 */
export type Format = 'json' | 'yaml';

export function serialize(value: unknown, format: Format): string {
  return format === 'json' ? `${JSON.stringify(value, null, 2)}\n` : toYaml(value);
}

export function proxyPath(identity: string, format: Format): string {
  const id = parseIdentity(identity);
  return id ? `${id.namespace}/${id.serviceAccount}.${format}` : `${encodeURIComponent(identity)}.${format}`;
}

export function statusDocument(result: MeshCompileResult, format: Format): unknown {
  return {
    objects: renderStatus(result.status),
    proxies: result.snapshots.map((s) => ({
      identity: s.identity,
      dataPlane: s.dataPlane,
      config: proxyPath(s.identity, format),
      ...(s.warnings.length > 0 ? { warnings: s.warnings } : {}),
    })),
  };
}

export function renderProxy(snapshot: Snapshot, codec: ProtoCodec, format: Format): string {
  return serialize(configDump(snapshot, codec), format);
}

export function renderCompileFiles(result: MeshCompileResult, codec: ProtoCodec, format: Format): OutputFiles {
  const files = new Map<string, string>([
    [`status.${format}`, serialize(statusDocument(result, format), format)],
    [`ir.${format}`, serialize(meshModelOutput(result.ir), format)],
  ]);
  for (const s of result.snapshots) files.set(proxyPath(s.identity, format), renderProxy(s, codec, format));
  return files;
}

/** The mesh model as written out: a mesh without Gateway API routes shows no `routes` list (its SMI model reads as it always did). */
export function meshModelOutput(ir: MeshIR): Omit<MeshIR, 'routes'> & { routes?: MeshIR['routes'] } {
  if (ir.routes.length > 0) return ir;
  const { routes: _none, ...rest } = ir;
  return rest;
}
