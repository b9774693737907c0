import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { loadEnvoyProtos } from '../adapters/envoy-protos.js';
import { loadPaths } from '../adapters/yaml-files.js';
import { compile } from '../compiler/compile.js';
import { renderCompileFiles } from './compile-files.js';
import { compareWithFolder, writeFolder, type Difference } from './expected.js';

/**
 * Golden cases: `<root>/<case>/input/` holds YAML, `<root>/<case>/expected/`
 * what smc makes of it (status, mesh model, and every proxy's Envoy
 * configuration, as YAML). The same check users run with `smc compile --check`.
 */
export interface GoldenResult {
  readonly name: string;
  readonly differences: readonly Difference[];
}

export async function listGoldenCases(root: string): Promise<string[]> {
  const entries = await readdir(root, { withFileTypes: true });
  return entries.filter((e) => e.isDirectory()).map((e) => e.name).sort();
}

export async function runGoldenCase(root: string, name: string, update: boolean): Promise<GoldenResult> {
  const input = join(root, name, 'input');
  const expected = join(root, name, 'expected');
  const inputs = await loadPaths([input], { relativeTo: input });
  const codec = loadEnvoyProtos();
  const files = renderCompileFiles(compile(inputs, codec), codec, 'yaml');
  if (update) {
    await writeFolder(expected, files, { prune: true });
    return { name, differences: [] };
  }
  return { name, differences: await compareWithFolder(expected, files) };
}
