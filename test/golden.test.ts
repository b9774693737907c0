import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { listGoldenCases, runGoldenCase } from '../src/output/golden.js';

const ROOT = 'golden';

/**
 * Every decision of shared/design/smi-semantics.md, the golden case that shows
 * it, and a piece of that case's expected output that is the evidence: a case
 * that stops showing its decision fails here, not only when its output moves.
 */
const DECISIONS: readonly { decision: string; case: string; file: string; evidence: RegExp }[] = [
  { decision: 'deny by default: no TrafficTarget, no access', case: 'bookstore', file: 'status.yaml', evidence: /TrafficTarget bookstore\/bookbuyer-access-bookstore/ },
  { decision: 'permissive mode allows all in-mesh traffic', case: 'bookstore-permissive', file: 'ir.yaml', evidence: /permissive: true/ },
  { decision: 'a TrafficTarget must live in its destination\'s namespace', case: 'cross-namespace-rejection', file: 'status.yaml', evidence: /must live in its destination's namespace/ },
  { decision: 'v1alpha1: no spec, rules are specs, destination.port (a string) restricts access', case: 'traffic-target-v1alpha1', file: 'ir.yaml', evidence: /ports:\s*\n\s*- 8080/ },
  { decision: 'v1alpha2: integer destination.port; an omitted namespace is the TrafficTarget\'s', case: 'traffic-target-v1alpha2', file: 'ir.yaml', evidence: /ports:\s*\n\s*- 8080/ },
  { decision: 'v1alpha3: no destination port', case: 'traffic-target-v1alpha3', file: 'ir.yaml', evidence: /ports: all/ },
  { decision: 'TCPRoute v1alpha4 ports restrict TCP access; an empty intersection grants nothing', case: 'tcp-route-ports', file: 'status.yaml', evidence: /ports do not include the destination port/ },
  { decision: 'UDPRoute accepted and validated, not routed', case: 'udp-route', file: 'status.yaml', evidence: /UDP is not routed by smc/ },
  { decision: 'headers as a map and as a list of single-key maps mean the same', case: 'http-header-forms', file: 'ir.yaml', evidence: /headers:/ },
  { decision: 'methods "*" means any; pathRegex anchored at the start; a missing match grants nothing', case: 'http-methods-and-paths', file: 'status.yaml', evidence: /has no match named "no-such-match"/ },
  { decision: 'a pattern RE2 cannot compile is a status error for that route group', case: 're2-invalid-pattern', file: 'status.yaml', evidence: /expected an RE2 pattern/ },
  { decision: 'HTTP rules never open a TCP port', case: 'http-rules-on-tcp-port', file: 'status.yaml', evidence: /HTTP rules do not open a TCP port/ },
  { decision: 'split weights are relative, v1alpha1 quantities in milli-units', case: 'split-relative-weights', file: 'ir.yaml', evidence: /weight: 3/ },
  { decision: 'a zero-weight backend receives nothing', case: 'split-zero-weight', file: 'ir.yaml', evidence: /weight: 0/ },
  { decision: 'all weights zero (or a missing backend): invalid, traffic to the root', case: 'split-all-zero', file: 'status.yaml', evidence: /every weight is 0/ },
  { decision: 'with matches only matching requests are split', case: 'split-matches', file: 'ir.yaml', evidence: /matches:\s*\n\s*- from:/ },
  { decision: 'of two splits for one root the older wins', case: 'split-conflict', file: 'status.yaml', evidence: /\(older\) already splits/ },
];

test('every SMI decision has its golden case, and the case still shows it', async () => {
  const cases = new Set(await listGoldenCases(ROOT));
  for (const d of DECISIONS) {
    assert.ok(cases.has(d.case), `no golden case ${d.case} for: ${d.decision}`);
    const text = readFileSync(join(ROOT, d.case, 'expected', d.file), 'utf8');
    assert.match(text, d.evidence, `golden case ${d.case} no longer shows: ${d.decision}`);
  }
});

for (const name of await listGoldenCases(ROOT)) {
  test(`golden case ${name} compiles to exactly its expected output`, async () => {
    const result = await runGoldenCase(ROOT, name, false);
    const report = result.differences.map((d) => `${d.kind}: ${d.path}\n${d.diff}`).join('\n');
    assert.equal(result.differences.length, 0, `output of ${name} changed (npm run golden:update rewrites it):\n${report}`);
  });
}
