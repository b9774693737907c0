import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { resolve } from 'node:path';
import { captureFromAnnotations, captureRules, captureScript, DEFAULT_CAPTURE, PROXY_UID } from '../src/compiler/capture.js';
import { createTestNetwork, type TestHost } from '../lab/netns.js';
import { waitFor } from './helpers/wait.js';

const APP = resolve('dist/lab/app.js');
const SMC = resolve('dist/src/cli/main.js');
const APP_UID = 1000;

test('capture settings from annotations: ports and ranges are read, and a malformed value names its annotation', () => {
  const ok = captureFromAnnotations({
    'traffic.smc.dev/exclude-inbound-ports': '9090, 9091',
    'traffic.smc.dev/exclude-outbound-ports': '5432',
    'traffic.smc.dev/exclude-outbound-ip-ranges': '10.0.0.0/8,169.254.169.254/32',
  });
  assert.deepEqual(ok.problems, []);
  assert.deepEqual(ok.settings.excludeInboundPorts, [9090, 9091]);
  assert.deepEqual(ok.settings.excludeOutboundRanges, ['10.0.0.0/8', '169.254.169.254/32']);
  const rules = captureRules(ok.settings);
  assert.match(rules, /-A SMC_INBOUND -p tcp --dport 9091 -j RETURN/);
  assert.match(rules, /-A SMC_OUTBOUND -d 169\.254\.169\.254\/32 -j RETURN/);
  assert.match(rules, new RegExp(`--uid-owner ${PROXY_UID} -j RETURN`));

  const bad = captureFromAnnotations({ 'traffic.smc.dev/exclude-outbound-ports': '5432,http', 'traffic.smc.dev/exclude-outbound-ip-ranges': '10.0.0.0/33' });
  assert.deepEqual(
    bad.problems.map((p) => `${p.field}: ${p.message}`),
    [
      'metadata.annotations["traffic.smc.dev/exclude-outbound-ports"]: expected a comma-separated list of ports (1-65535), got "http"',
      'metadata.annotations["traffic.smc.dev/exclude-outbound-ip-ranges"]: expected a comma-separated list of IPv4 ranges such as 10.0.0.0/8, got "10.0.0.0/33"',
    ],
  );
  const cli = spawnSync(process.execPath, [SMC, 'capture', '--exclude-inbound-ports', '70000'], { encoding: 'utf8' });
  assert.equal(cli.status, 2);
  assert.equal(cli.stderr.trim(), 'smc capture: --exclude-inbound-ports: expected a comma-separated list of ports (1-65535), got "70000"');
});

test('capture rules applied in network namespaces: outbound reaches 15001, inbound 15003, and every exclusion bypasses', { timeout: 60_000 }, async () => {
  const net = await createTestNetwork();
  try {
    const [app, peer, other] = [await net.addHost('app'), await net.addHost('peer'), await net.addHost('other')];
    const banner = async (host: TestHost, name: string, ports: number[]) => {
      const child = host.start(process.execPath, [APP, 'banner', name, ...ports.map(String)]);
      let out = '';
      child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
      await waitFor(`${name} listening`, () => (out.includes('ready') ? true : undefined), 10_000);
    };
    // "sidecar" stands in for Envoy's listeners: what matters here is which port a connection lands on.
    await banner(app, 'sidecar', [15001, 15003]);
    await banner(app, 'app', [8080, 9090, 15010]);
    await banner(peer, 'peer', [80, 7070]);
    await banner(other, 'other', [80, 15001, 15003]);
    const call = (from: TestHost, to: string, port: number, uid?: number) => from.run(process.execPath, [APP, 'call', to, String(port)], { uid });

    // The injected init container's way: smc capture --apply.
    await app.run(process.execPath, [SMC, 'capture', '--apply', '--exclude-inbound-ports', '9090', '--exclude-outbound-ports', '7070', '--exclude-outbound-ip-ranges', `${other.address}/32`]);

    // Outbound, as the application (any uid but the proxy's).
    assert.equal(await call(app, peer.address, 80, APP_UID), 'sidecar:15001', 'outbound TCP goes to the outbound listener');
    assert.equal(await call(app, peer.address, 7070, APP_UID), 'peer:7070', 'an excluded outbound port bypasses');
    assert.equal(await call(app, other.address, 80, APP_UID), 'other:80', 'an excluded outbound range bypasses');
    assert.equal(await call(app, '127.0.0.1', 8080, APP_UID), 'app:8080', 'loopback is not captured');
    assert.equal(await call(app, app.address, 8080, APP_UID), 'app:8080', 'the host calling its own address is not captured');
    assert.equal(await call(app, peer.address, 80, PROXY_UID), 'peer:80', "the proxy's own connections leave as they are");
    assert.equal(await call(app, peer.address, 80), 'sidecar:15001', 'root is captured too: only the proxy uid passes');
    // Inbound.
    assert.equal(await call(peer, app.address, 8080), 'sidecar:15003', 'inbound TCP goes to the inbound listener');
    assert.equal(await call(peer, app.address, 9090), 'app:9090', 'an excluded inbound port reaches the application');
    assert.equal(await call(peer, app.address, 15010), 'app:15010', 'the stats port is not captured');

    // The VM bundle's way: capture.sh, the same rules as a shell script.
    await other.run('sh', ['-c', captureScript(DEFAULT_CAPTURE)]);
    assert.equal(await call(other, peer.address, 80, APP_UID), 'other:15001');
    assert.equal(await call(peer, other.address, 80), 'other:15003');
    // Applied again, both ways: the rules and the jumps into them are replaced, not doubled, and capture still works.
    await other.run('sh', ['-c', captureScript(DEFAULT_CAPTURE)]);
    await app.run(process.execPath, [SMC, 'capture', '--apply', '--exclude-inbound-ports', '9090', '--exclude-outbound-ports', '7070', '--exclude-outbound-ip-ranges', `${other.address}/32`]);
    for (const host of [other, app]) {
      const nat = await host.run('iptables', ['-t', 'nat', '-S']);
      const count = (rule: string) => nat.split('\n').filter((l) => l === rule).length;
      assert.equal(count('-A PREROUTING -p tcp -j SMC_INBOUND'), 1, nat);
      assert.equal(count('-A OUTPUT -p tcp -j SMC_OUTBOUND'), 1, nat);
      assert.equal(count(`-A SMC_OUTBOUND -m owner --uid-owner ${PROXY_UID} -j RETURN`), 1, nat);
    }
    assert.equal(await call(other, peer.address, 80, APP_UID), 'other:15001');
    assert.equal(await call(app, peer.address, 80, APP_UID), 'sidecar:15001');
    assert.equal(await call(app, peer.address, 7070, APP_UID), 'peer:7070');
  } finally {
    await net.close();
  }
});
