import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import puppeteer from 'puppeteer-core';
import { Client, open } from './helpers/ads-client.js';
import { testController } from './helpers/controller.js';
import { installedTool } from './helpers/tools.js';
import { TYPE_URL } from '../src/runtime/xds-types.js';

/**
 * The admin port's picture of the mesh, in real headless Chromium (Debian's
 * package, installed by scripts/install-chromium.sh): it draws the bookstore
 * mesh with its proxies' sync state, and a policy change appears in the page
 * without a reload.
 */

test('the /mesh page draws identities, who may call whom, splits and proxy state, and follows a policy change without a reload', async () => {
  const chromium = installedTool('Chromium', 'scripts/install-chromium.sh');
  const { controller, dir } = await testController('examples/bookstore', { insecureXds: true });
  const client = new Client(`127.0.0.1:${controller.xdsPort}`, grpc.credentials.createInsecure());
  const browser = await puppeteer.launch({ executablePath: chromium, headless: true, args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'] });
  try {
    // Two proxies: one in sync, one that rejects what it was sent (with markup in its message).
    const buyer = open(client, 'sotw');
    buyer.send({ node: { id: 'bookbuyer/bookbuyer' }, typeUrl: TYPE_URL.cluster, resourceNames: [], versionInfo: '', responseNonce: '' });
    const b = await buyer.next(5000);
    buyer.send({ typeUrl: TYPE_URL.cluster, resourceNames: [], versionInfo: b.versionInfo, responseNonce: b.nonce });
    const store = open(client, 'sotw');
    store.send({ node: { id: 'bookstore/bookstore' }, typeUrl: TYPE_URL.cluster, resourceNames: [], versionInfo: '', responseNonce: '' });
    const s = await store.next(5000);
    store.send({ typeUrl: TYPE_URL.cluster, resourceNames: [], versionInfo: s.versionInfo, responseNonce: s.nonce, errorDetail: { code: 3, message: '<img src=x onerror=alert(1)> rejected' } });

    const page = await browser.newPage();
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(String(e)));
    await page.goto(`http://127.0.0.1:${controller.adminPort}/mesh`);
    await page.waitForSelector('.node[data-id="bookwarehouse/mysql"]', { timeout: 10_000 });
    await page.waitForFunction(() => document.querySelector('.proxy[data-node="bookstore/bookstore"]')?.getAttribute('data-state') === 'NACK', { timeout: 10_000 });

    const picture = await page.evaluate(() => ({
      nodes: [...document.querySelectorAll('.node')].map((n) => [n.getAttribute('data-id'), n.getAttribute('data-state')]),
      edges: [...document.querySelectorAll('.edge')].map((e) => `${e.getAttribute('data-from')} -> ${e.getAttribute('data-to')}: ${e.querySelector('text')?.textContent}`),
      splits: [...document.querySelectorAll('.split')].map((e) => e.textContent),
      proxies: [...document.querySelectorAll('.proxy')].map((e) => e.textContent),
      images: document.querySelectorAll('img').length,
      circles: document.querySelectorAll('svg circle').length,
    }));
    assert.deepEqual(new Map(picture.nodes as [string, string][]), new Map([
      ['bookbuyer/bookbuyer', 'SYNCED'],
      ['bookstore/bookstore', 'NACK'],
      ['bookthief/bookthief', 'NONE'],
      ['bookwarehouse/bookwarehouse', 'NONE'],
      ['bookwarehouse/mysql', 'NONE'],
    ]));
    assert.equal(picture.circles, 5, 'every identity is drawn');
    assert.ok(picture.edges.some((e) => e.startsWith('bookbuyer/bookbuyer -> bookstore/bookstore: every port: bookstore/bookstore-service-routes#books-bought')), picture.edges.join('\n'));
    assert.ok(picture.edges.some((e) => e.startsWith('bookwarehouse/bookwarehouse -> bookwarehouse/mysql: port 3306: TCP')), picture.edges.join('\n'));
    assert.ok(!picture.edges.some((e) => e.startsWith('bookthief/')), 'bookthief may call nobody');
    assert.deepEqual(picture.splits, ['bookstore/bookstore (bookstore/bookstore-split): bookstore/bookstore-v1 90%, bookstore/bookstore-v2 10%']);
    assert.deepEqual(await page.evaluate(() => [...document.querySelectorAll('#routes li')].map((e) => e.textContent)), ['none'], 'no Gateway API route yet');
    assert.ok(picture.proxies.includes('bookbuyer/bookbuyer: SYNCED'));
    assert.ok(picture.proxies.includes('bookstore/bookstore: NACK — <img src=x onerror=alert(1)> rejected'), 'a NACK message is shown as text');
    assert.equal(picture.images, 0, 'never as markup');
    // What bookstore refused (its clusters, the NACK names none) is traced to the TrafficTarget that gave it them, the
    // route group that TrafficTarget names, and the MeshConfig (whose settings shape every resource).
    await page.waitForSelector('.policy[data-reason="Rejected"]', { timeout: 10_000 });
    const policies = await page.evaluate(() => [...document.querySelectorAll('.policy')].map((e) => [e.getAttribute('data-object'), e.getAttribute('data-reason'), e.textContent]));
    assert.deepEqual(policies.filter((p) => p[1] === 'Rejected').map((p) => p[0]), ['HTTPRouteGroup bookwarehouse/bookwarehouse-service-routes', 'MeshConfig smc-system/smc', 'TrafficTarget bookwarehouse/bookstore-access-bookwarehouse'], JSON.stringify(policies));
    assert.match(policies.find((p) => p[0] === 'TrafficTarget bookwarehouse/bookstore-access-bookwarehouse')![2]!, /^TrafficTarget bookwarehouse\/bookstore-access-bookwarehouse: Rejected — rejected by 1 of 1 proxies: bookstore\/bookstore rejected cluster outbound\|14001\|bookwarehouse\.bookwarehouse: <img src=x onerror=alert\(1\)> rejected$/);
    assert.equal(await page.evaluate(() => document.querySelectorAll('img').length), 0, 'a NACK message is never markup');

    // A policy change: bookthief is granted, and the split moves to 50/50. The same document redraws.
    await page.evaluate(() => Object.assign(window, { sameDocument: true }));
    const policy = join(dir, 'mesh', '40-policy.yaml');
    writeFileSync(
      policy,
      readFileSync(policy, 'utf8')
        .replace('weight: 90', 'weight: 50')
        .replace('weight: 10', 'weight: 50')
        .replace('- {kind: ServiceAccount, name: bookbuyer, namespace: bookbuyer}', '- {kind: ServiceAccount, name: bookbuyer, namespace: bookbuyer}\n    - {kind: ServiceAccount, name: bookthief, namespace: bookthief}'),
    );
    // And a Gateway API route: bookbuyer's namespace routes bookstore to v2 for its own callers.
    writeFileSync(
      join(dir, 'mesh', '50-route.yaml'),
      'apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: to-v2, namespace: bookbuyer}\nspec:\n  parentRefs: [{group: "", kind: Service, name: bookstore, namespace: bookstore, port: 14001}]\n  rules: [{backendRefs: [{name: bookstore-v2, namespace: bookstore, port: 14001}]}]\n---\napiVersion: gateway.networking.k8s.io/v1beta1\nkind: ReferenceGrant\nmetadata: {name: from-bookbuyer, namespace: bookstore}\nspec:\n  from: [{group: gateway.networking.k8s.io, kind: HTTPRoute, namespace: bookbuyer}]\n  to: [{group: "", kind: Service}]\n',
    );
    await controller.reload();
    await page.waitForSelector('.edge[data-from="bookthief/bookthief"][data-to="bookstore/bookstore"]', { timeout: 10_000 });
    await page.waitForSelector('.route', { timeout: 10_000 });
    assert.deepEqual(await page.evaluate(() => [...document.querySelectorAll('.route')].map((e) => e.textContent)), ['bookstore/bookstore:14001 (HTTPRoute bookbuyer/to-v2, callers in bookbuyer): bookstore/bookstore-v2:14001']);
    await page.waitForFunction(() => document.querySelector('.split')?.textContent?.includes('bookstore/bookstore-v1 50%, bookstore/bookstore-v2 50%'), { timeout: 10_000 });
    assert.equal(await page.evaluate(() => (window as unknown as { sameDocument?: boolean }).sameDocument), true, 'no reload');
    assert.deepEqual(errors, []);
    buyer.call.end();
    store.call.end();
  } finally {
    await browser.close();
    client.close();
    await controller.close();
  }
});
