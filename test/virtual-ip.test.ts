import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compileIR } from '../src/compiler/compile.js';
import { formatMessage } from '../src/compiler/status.js';
import { yamlInputs } from './helpers/inputs.js';

/** Services without a cluster IP get a stable virtual IP from the mesh's range (live controller: folder source). */
const ns = 'apiVersion: v1\nkind: Namespace\nmetadata: {name: shop, labels: {smc.dev/mesh: enabled}}\n';
const service = (name: string, extra = '') => `apiVersion: v1\nkind: Service\nmetadata: {name: ${name}, namespace: shop}\nspec: {selector: {app: ${name}}, ports: [{port: 80}]${extra}}\n`;
const ipOf = (r: ReturnType<typeof compileIR>, name: string) => r.ir.services.find((s) => s.name === name)?.clusterIPs;

test('a service without clusterIP gets a virtual IP from 240.240.0.0/16, the same whatever else the mesh holds; clusterIP None stays headless', () => {
  const alone = compileIR(yamlInputs(ns, service('web')));
  const [ip] = ipOf(alone, 'web')!;
  assert.match(ip!, /^240\.240\.\d+\.\d+$/);
  const crowded = compileIR(yamlInputs(service('zeta'), service('alpha', ', clusterIP: 10.0.0.7'), ns, service('web'), service('db', ', clusterIP: None')));
  assert.deepEqual(ipOf(crowded, 'web'), [ip], 'derived from the name: input order and other services do not move it');
  assert.deepEqual(ipOf(crowded, 'alpha'), ['10.0.0.7'], 'a real cluster IP is kept');
  assert.deepEqual(ipOf(crowded, 'db'), [], 'headless stays headless');
  assert.notDeepEqual(ipOf(crowded, 'zeta'), [ip]);
});

test('MeshConfig spec.virtualIPRange moves the range; a full range leaves the rest unaddressed with a warning; a bad range is rejected', () => {
  const mesh = (range: string) => `apiVersion: smc.dev/v1alpha1\nkind: MeshConfig\nmetadata: {name: smc, namespace: smc-system}\nspec: {virtualIPRange: "${range}"}\n`;
  const names = Array.from({ length: 16 }, (_, i) => `svc-${i}`);
  const r = compileIR(yamlInputs(ns, mesh('198.19.255.0/28'), ...names.map((n) => service(n))));
  const ips = names.map((n) => ipOf(r, n)![0]).filter((x) => x !== undefined);
  assert.equal(ips.length, 14, 'a /28 holds 14 usable addresses');
  assert.equal(new Set(ips).size, 14, 'no address twice');
  for (const ip of ips) assert.match(ip!, /^198\.19\.255\.([1-9]|1[0-4])$/);
  const full = r.status.filter((s) => s.messages.some((m) => /virtual IP range 198\.19\.255\.0\/28 is full/.test(formatMessage(m))));
  assert.equal(full.length, 2);
  const bad = compileIR(yamlInputs(ns, mesh('240.240.0.0/33'), service('web')));
  const config = bad.status.find((s) => s.object.kind === 'MeshConfig')!;
  assert.equal(config.state, 'Rejected');
  assert.match(formatMessage(config.messages[0]!), /spec\.virtualIPRange: expected an IPv4 range from \/8 to \/28/);
  assert.match(ipOf(bad, 'web')![0]!, /^240\.240\./, 'the default range applies');
});
