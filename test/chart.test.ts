import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { kubeconfigWithToken, startKubeApi } from './helpers/kube.js';
import { freePort } from './helpers/tools.js';
import { GiveUp, waitFor } from './helpers/wait.js';

/**
 * The Helm chart (deploy/chart) with the real helm, built by
 * scripts/install-helm.sh from the Go module proxy: it lints, renders the
 * golden output with its default values, agrees with deploy/*.yaml, follows
 * its values, and installs on a real API server, where a controller started
 * as its Deployment says, with its service account's token, runs and injects.
 */
let helmPath: string | undefined;
function helm(args: string[], env: NodeJS.ProcessEnv = {}): string {
  helmPath ??= execFileSync('bash', ['scripts/install-helm.sh'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 30 * 60_000 }).trim();
  const r = spawnSync(helmPath, args, { encoding: 'utf8', env: { ...process.env, HELM_CACHE_HOME: join(tmpdir(), 'smc-helm-cache'), HELM_CONFIG_HOME: join(tmpdir(), 'smc-helm-config'), HELM_DATA_HOME: join(tmpdir(), 'smc-helm-data'), ...env } });
  if (r.status !== 0) throw new Error(`helm ${args.join(' ')} failed (${r.status}): ${r.stderr}`);
  return r.stdout;
}
type K8sObject = { apiVersion: string; kind: string; metadata: { name: string; namespace?: string }; [k: string]: unknown };
const objects = (text: string): K8sObject[] => parseAllDocuments(text).map((d) => d.toJS() as K8sObject | null).filter((o): o is K8sObject => o !== null);
const key = (o: K8sObject) => `${o.kind}/${o.metadata.namespace ?? ''}/${o.metadata.name}`;

test('helm lints the chart; its default rendering is the golden file and the same objects as deploy/controller.yaml and deploy/injector.yaml; values reach every place they belong', () => {
  helm(['lint', 'deploy/chart', '--strict']);
  const rendered = helm(['template', 'smc', 'deploy/chart', '--namespace', 'smc-system']);
  assert.equal(rendered, readFileSync('deploy/chart/golden/default.yaml', 'utf8'), 'the rendering changed: run npm run golden:update and read the diff');
  // deploy/*.yaml is the chart with its defaults (plus the Namespace; the chart's MeshConfig is the mesh's settings, which kubectl users write themselves).
  const chart = objects(rendered).filter((o) => o.kind !== 'MeshConfig');
  const raw = [...objects(readFileSync('deploy/controller.yaml', 'utf8')), ...objects(readFileSync('deploy/injector.yaml', 'utf8'))].filter((o) => o.kind !== 'Namespace');
  assert.deepEqual(chart.map(key).sort(), raw.map(key).sort());
  for (const o of chart) assert.deepEqual(o, raw.find((r) => key(r) === key(o)), `${key(o)} differs between the chart and deploy/`);
  // The chart's CRDs are smc's (deploy/crds).
  for (const f of readdirSync('deploy/crds')) assert.equal(readFileSync(join('deploy/chart/crds', f), 'utf8'), readFileSync(join('deploy/crds', f), 'utf8'), `deploy/chart/crds/${f} (npm run crds:update)`);

  // Other values: every namespaced name and address follows the release namespace; image, replicas, log level, resources, trust domain.
  const custom = helm(['template', 'mesh', 'deploy/chart', '--namespace', 'mesh-ops', '--set', 'image.repository=registry.example/smc,image.tag=1.2.3,replicas=3,logLevel=debug,mesh.trustDomain=example.org,resources.limits.memory=2Gi,injector.failurePolicy=Ignore']);
  const stray = custom.split('\n').filter((l) => !l.trimStart().startsWith('#') && l.includes('smc-system'));
  assert.deepEqual(stray, [], 'every namespaced name follows the release namespace');
  const c = objects(custom);
  const deployment = c.find((o) => o.kind === 'Deployment') as unknown as { spec: { replicas: number; template: { spec: { containers: { image: string; args: string[]; resources: { limits: { memory: string } } }[] } } } };
  const container = deployment.spec.template.spec.containers[0]!;
  assert.equal(deployment.spec.replicas, 3);
  assert.equal(container.image, 'registry.example/smc:1.2.3');
  assert.equal(container.resources.limits.memory, '2Gi');
  for (const arg of ['--log-level=debug', '--ca-root-secret=mesh-ops/smc-ca', '--leader-election-namespace=mesh-ops', '--sidecar-xds-address=smc-controller.mesh-ops.svc:15128', '--sidecar-certificate-url=https://smc-controller.mesh-ops.svc:15130']) {
    assert.ok(container.args.includes(arg), `${arg} in ${container.args.join(' ')}`);
  }
  assert.equal((c.find((o) => o.kind === 'MeshConfig') as unknown as { spec: { trustDomain: string } }).spec.trustDomain, 'example.org');
  const webhook = c.find((o) => o.kind === 'MutatingWebhookConfiguration') as unknown as { webhooks: { failurePolicy: string; clientConfig: { service: { namespace: string } } }[] };
  assert.deepEqual([webhook.webhooks[0]!.failurePolicy, webhook.webhooks[0]!.clientConfig.service.namespace], ['Ignore', 'mesh-ops']);
});

test('helm installs the chart on a real API server; a controller run as its Deployment says, with its service account, serves the mesh, takes the trust domain, and fills the injector\'s caBundle', { timeout: 120_000 }, async () => {
  const api = await startKubeApi();
  const child: { kill?: () => void } = {};
  try {
    helm(['install', 'smc', 'deploy/chart', '--namespace', 'mesh-ops', '--create-namespace', '--set', 'mesh.trustDomain=example.org,image.repository=registry.example/smc,image.tag=1.2.3'], { KUBECONFIG: api.kubeconfig });
    assert.match(helm(['list', '--namespace', 'mesh-ops', '-o', 'json'], { KUBECONFIG: api.kubeconfig }), /"status":"deployed"/);
    for (const crd of ['traffictargets.access.smi-spec.io', 'meshconfigs.smc.dev', 'proxycertificates.smc.dev']) api.kubectl(['get', 'crd', crd]);
    assert.equal(JSON.parse(api.kubectl(['get', 'meshconfig.smc.dev', 'smc', '-n', 'mesh-ops', '-o', 'json'])).spec.trustDomain, 'example.org');

    // The replica's own pod (the scheduler and kubelet do not run here).
    const deployment = JSON.parse(api.kubectl(['get', 'deployment', 'smc-controller', '-n', 'mesh-ops', '-o', 'json'])) as { spec: { template: { spec: { containers: { name: string; image: string; args: string[] }[] } } } };
    const container = deployment.spec.template.spec.containers.find((c) => c.name === 'controller')!;
    api.kubectl(['apply', '-f', '-'], `apiVersion: v1\nkind: Pod\nmetadata: {name: smc-controller-0, namespace: mesh-ops}\nspec: {serviceAccountName: smc-controller, containers: [{name: controller, image: ${container.image}}]}\n`);

    // The Deployment's own arguments, with its service account's token; only the listening addresses and the state folder are this machine's.
    const [xds, admin, webhook] = [await freePort(), await freePort(), await freePort()];
    const token = api.kubectl(['create', 'token', 'smc-controller', '-n', 'mesh-ops']).trim();
    const kubeconfig = kubeconfigWithToken(api, token, 'smc-controller');
    const args = [...container.args, `--kubeconfig=${kubeconfig}`, `--state=${mkdtempSync(join(tmpdir(), 'smc-chart-'))}`, `--xds-address=127.0.0.1:${xds}`, `--admin-address=127.0.0.1:${admin}`, `--webhook-address=127.0.0.1:${webhook}`, '--log-format=text'];
    const proc = spawn(process.execPath, ['dist/src/cli/main.js', ...args], { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, POD_NAME: 'smc-controller-0', POD_NAMESPACE: 'mesh-ops' } });
    child.kill = () => proc.kill('SIGKILL');
    let log = '';
    proc.stderr.on('data', (d: Buffer) => (log += d.toString()));
    await waitFor('the controller to be ready', async () => {
      if (proc.exitCode !== null) throw new GiveUp(`the controller exited: ${log}`);
      return (await fetch(`http://127.0.0.1:${admin}/readyz`).catch(() => undefined))?.status === 200 ? true : undefined;
    }, 60_000).catch((e: Error) => assert.fail(`${e.message}\n${log}`));
    assert.doesNotMatch(log, /forbidden/i, 'the chart\'s roles are enough');
    assert.match(log, /sidecars run the controller's own image registry\.example\/smc:1\.2\.3/);
    // The chart's MeshConfig settles the trust domain: the mesh root is made for example.org, in the chart's namespace.
    assert.match(log, /created a new mesh root for trust domain example\.org in Secret mesh-ops\/smc-ca/);
    api.kubectl(['get', 'secret', 'smc-ca', '-n', 'mesh-ops']);
    await waitFor('the leader to fill the chart\'s injector caBundle', () => {
      const config = JSON.parse(api.kubectl(['get', 'mutatingwebhookconfiguration', 'smc-sidecar-injector', '-o', 'json'])) as { webhooks: { clientConfig: { caBundle?: string } }[] };
      return config.webhooks.every((w) => w.clientConfig.caBundle) ? true : undefined;
    }, 20_000);
    helm(['uninstall', 'smc', '--namespace', 'mesh-ops'], { KUBECONFIG: api.kubeconfig });
  } finally {
    child.kill?.();
    await api.stop();
  }
});
