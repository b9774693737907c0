import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';

/**
 * src/compiler is a pure function of its inputs: it may not import anything
 * that does IO, nor read the clock or randomness.
 */
const FORBIDDEN_MODULES = [
  /^(node:)?(fs|fs\/promises|net|http|https|http2|tls|dgram|dns|child_process|cluster|worker_threads|os|process|readline|timers|perf_hooks|v8|vm)$/,
  /^@grpc\//,
  /^@kubernetes\//,
  /^prom-client$/,
  /^undici$/,
  /adapters\//,
  /runtime\//,
];
const FORBIDDEN_CALLS = [
  /\bDate\.now\s*\(/,
  /\bnew Date\s*\(/,
  /\bMath\.random\s*\(/,
  /\bperformance\.now\s*\(/,
  /\bprocess\./,
  /\brandom(Bytes|UUID|Int|Fill)\b/,
  /\bgetRandomValues\b/,
  /\bset(Timeout|Interval|Immediate)\s*\(/,
  /\bfetch\s*\(/,
  /\brequire\s*\(/,
  /\bimport\s*\(/,
];

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((n) => {
    const p = join(dir, n);
    return statSync(p).isDirectory() ? files(p) : p.endsWith('.ts') ? [p] : [];
  });
}

export function impurities(path: string, text: string): string[] {
  const found: string[] = [];
  for (const m of text.matchAll(/(?:import|export)\s[^'"]*?from\s+['"]([^'"]+)['"]|import\s+['"]([^'"]+)['"]/g)) {
    const spec = m[1] ?? m[2] ?? '';
    if (FORBIDDEN_MODULES.some((r) => r.test(spec))) found.push(`${path}: imports ${spec}`);
  }
  const code = text.replace(/\/\*[\s\S]*?\*\//g, '').replace(/\/\/.*$/gm, '');
  for (const r of FORBIDDEN_CALLS) if (r.test(code)) found.push(`${path}: uses ${r.source}`);
  return found;
}

test('src/compiler imports no IO and reads neither the clock nor randomness', () => {
  const list = files('src/compiler');
  assert.ok(list.length > 10, 'compiler sources not found');
  const found = list.flatMap((p) => impurities(p, readFileSync(p, 'utf8')));
  assert.deepEqual(found, []);
});

test('the purity check catches each kind of impurity', () => {
  assert.equal(impurities('x.ts', "import { readFile } from 'node:fs/promises';").length, 1);
  assert.equal(impurities('x.ts', "import * as grpc from '@grpc/grpc-js';").length, 1);
  assert.equal(impurities('x.ts', "import { x } from '../adapters/yaml-files.js';").length, 1);
  assert.equal(impurities('x.ts', 'const t = Date.now();').length, 1);
  assert.equal(impurities('x.ts', 'const r = Math.random();').length, 1);
  assert.equal(impurities('x.ts', "const k = crypto.randomBytes(4);").length, 1);
  assert.equal(impurities('x.ts', '// Date.now() in a comment is fine').length, 0);
});

/** Top-level declarations of a module that hold state: a `let`, or a collection made at load time. */
export function moduleState(path: string, text: string): string[] {
  const code = text.replace(/\/\*[\s\S]*?\*\//g, '').replace(/\/\/.*$/gm, '');
  return [...code.matchAll(/^(?:export\s+)?(let\s+\w+|(?:const|var)\s+\w+(?:\s*:[^=]+)?\s*=\s*new\s+(?:Map|Set|WeakMap|WeakSet)\b)/gm)].map((m) => `${path}: ${m[1]!.replace(/\s+/g, ' ')}`);
}

test('the compile engine and its worker keep no state in module variables: an engine is a value of its own', () => {
  const found = ['src/runtime/compile-engine.ts', 'src/runtime/compile-worker.ts'].flatMap((p) => moduleState(p, readFileSync(p, 'utf8')));
  assert.deepEqual(found, []);
  // The check itself: each form of module state is named, and state inside a function is not.
  assert.equal(moduleState('x.ts', 'let n = 0;').length, 1);
  assert.equal(moduleState('x.ts', 'const seen = new WeakMap<object, string>();').length, 1);
  assert.equal(moduleState('x.ts', 'export const plans: Map<string, number> = new Map();').length, 1);
  assert.equal(moduleState('x.ts', 'function f() {\n  let n = 0;\n  const m = new Map();\n}').length, 0);
});
