import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { loadPaths } from '../adapters/yaml-files.js';
import { compileIR } from '../compiler/compile.js';
import { compareWithFolder, writeFolder, type Difference } from './expected.js';
import { renderIRFiles } from './render.js';

/**
 * Golden cases: `<root>/<case>/input/` holds YAML, `<root>/<case>/expected/`
 * what smc makes of it. The same check users run with `smc compile --check`.
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
  const files = renderIRFiles(compileIR(inputs));
  if (update) {
    await writeFolder(expected, files);
    return { name, differences: [] };
  }
  return { name, differences: await compareWithFolder(expected, files) };
}
