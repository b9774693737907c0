import { parseText } from '../../src/adapters/yaml-files.js';
import type { InputDocument, MeshInputs } from '../../src/compiler/inputs.js';

/** Builds MeshInputs from YAML text, one source per argument. */
export function yamlInputs(...files: string[]): MeshInputs {
  const documents: InputDocument[] = [];
  const problems: MeshInputs['problems'][number][] = [];
  files.forEach((text, i) => {
    const parsed = parseText(text, `test-${i}.yaml`);
    documents.push(...parsed.documents);
    problems.push(...parsed.problems);
  });
  return { documents, problems };
}

export function objectInputs(...values: unknown[]): MeshInputs {
  return { documents: values.map((value, i) => ({ origin: { source: 'test.yaml', document: i, line: 0 }, value })), problems: [] };
}
