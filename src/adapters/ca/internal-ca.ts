import { randomInt } from 'node:crypto';
import { access, readdir } from 'node:fs/promises';
import { StartupError } from '../startup-error.js';
import { join } from 'node:path';
import { folderStorage, type CaStorage } from './ca-storage.js';
import { lifetimeMs, type IssueOptions, type Signer } from './signer.js';
import { certificateFacts, createRootCertificate, generateKeyPair, generateLeafKeys, issueLeaf, keyMatchesCertificate, privateKeyFromPem, privateKeyToPem } from './x509.js';

/**
 * The mesh CA built into smc (a Signer, see signer.ts). Its root key and
 * certificate are persisted in the state folder (key mode 0600) and loaded
 * on every start, so a restart never mints a new root by accident.
 */
const exists = (path: string) => access(path).then(() => true, () => false);
const nonEmpty = (path: string) => readdir(path).then((names) => names.length > 0, () => false);

const ROOT_TTL_MS = 10 * 365 * 24 * 3600_000;

const ending = (pem: string) => (pem.endsWith('\n') ? pem : `${pem}\n`);

interface Root {
  readonly pem: string;
  readonly key: CryptoKey;
}

/** Loads `<name>.crt` and `<name>.key`: undefined when neither exists, an error when only one does or they disagree. */
async function loadRoot(store: CaStorage, name: string): Promise<Root | undefined> {
  const [cert, key] = await Promise.all([store.read(`${name}.crt`), store.read(`${name}.key`)]);
  if (cert === undefined && key === undefined) return undefined;
  if ((cert === undefined) !== (key === undefined)) {
    throw new StartupError(`the mesh CA in ${store.where} is incomplete: ${cert === undefined ? `${name}.crt` : `${name}.key`} is missing. Restore it from your backup; smc will not mint a new root over an existing one`);
  }
  try {
    const pem = ending(cert!);
    const privateKey = (await privateKeyFromPem(key!)).privateKey;
    if (!(await keyMatchesCertificate(privateKey, pem))) throw new Error(`${name}.key does not belong to ${name}.crt`);
    return { pem, key: privateKey };
  } catch (e) {
    throw new StartupError(`cannot load the mesh CA from ${store.where}: ${(e as Error).message}. Restore it from your backup; smc will not mint a new root over an existing one`);
  }
}

async function newRoot(store: CaStorage, name: string, trustDomain: string): Promise<Root> {
  const keys = await generateKeyPair();
  const now = Date.now();
  const pem = ending(await createRootCertificate(trustDomain, keys, { notBefore: new Date(now - 60_000), notAfter: new Date(now + ROOT_TTL_MS) }));
  await store.create({ [`${name}.key`]: await privateKeyToPem(keys.privateKey), [`${name}.crt`]: pem });
  return { pem, key: keys.privateKey };
}

const pairMoves = (from: string, to: string) => [[`${from}.key`, `${to}.key`], [`${from}.crt`, `${to}.crt`]] as const;

/**
 * Layout (a folder, `<state>/ca/` by default, or a Kubernetes Secret):
 * `root.*` signs; during a rotation `next-root.*` (trusted, not yet signing)
 * or `previous-root.*` (trusted, no longer signing); `retired-*` keeps roots
 * that left the bundle, for the xDS port.
 */
export async function openInternalCA(stateDir: string, trustDomain: string, log: (line: string) => void = () => {}, storage?: CaStorage, options: { create?: boolean } = {}): Promise<Signer> {
  const store = storage ?? folderStorage(join(stateDir, 'ca'));
  let signing = await loadRoot(store, 'root');
  if (!signing && options.create === false) {
    // Signing for an existing mesh: a new root here would give credentials that mesh does not trust.
    throw new StartupError(`no mesh CA in ${store.where}: this command signs for an existing mesh, and that is not its CA. Give the controller's state folder with --state (its controller --state, default .smc-state relative to where it runs), or --ca-root-secret NS/NAME when the root is in a Kubernetes Secret`);
  }
  if (!signing) {
    // Any sign that a mesh existed means its root is lost, not that this is a new mesh.
    const traces = [
      ...((await exists(join(stateDir, 'issued'))) ? [`${join(stateDir, 'issued')} (service certificates it issued)`] : []),
      ...((await nonEmpty(join(stateDir, 'proxy-certificates'))) ? [`${join(stateDir, 'proxy-certificates')} (proxy certificates it issued)`] : []),
      ...(await store.list()).map((n) => `${n} in ${store.where}`),
    ];
    if (traces.length > 0) {
      throw new StartupError(`the mesh CA root (root.crt, root.key) is missing from ${store.where}, but a mesh existed: ${traces.join('; ')}. Restore the root from your backup (or remove the state folder to start a new mesh CA on purpose)`);
    }
    try {
      signing = await newRoot(store, 'root', trustDomain);
      log(`ca: created a new mesh root for trust domain ${trustDomain} in ${store.where}`);
    } catch (e) {
      // Two replicas starting together on one Secret: the one that lost the race uses the winner's root.
      signing = await loadRoot(store, 'root');
      if (!signing) throw e;
      log(`ca: another controller created the mesh root in ${store.where} first; using it`);
    }
  }
  let next = await loadRoot(store, 'next-root');
  let previous = await loadRoot(store, 'previous-root');
  const retired: Root[] = [];
  for (const n of (await store.list()).filter((x) => x.startsWith('retired-') && x.endsWith('.crt'))) {
    const r = await loadRoot(store, n.slice(0, -4));
    if (r) retired.push(r);
  }
  const issueFrom = async (root: Root, spiffeId: string, options: IssueOptions) => {
    const keys = generateLeafKeys();
    const now = Date.now();
    const notAfter = new Date(now + lifetimeMs(options, () => randomInt(0, 1_000_001) / 1_000_000));
    const leaf = await issueLeaf({ certificatePem: root.pem, privateKey: root.key }, spiffeId, keys.spki, { notBefore: new Date(now - 60_000), notAfter }, options);
    // The certificate's own expiry (X.509 keeps whole seconds) and serial, known without parsing it again.
    return { certificateChain: leaf.pem, privateKey: keys.privateKeyPem, notAfter: leaf.notAfter, serial: leaf.serial, issuedAt: new Date(now) };
  };
  const bundle = () => [signing!, next, previous].filter((r): r is Root => r !== undefined).map((r) => r.pem).join('');
  return {
    name: 'internal',
    trustBundle: bundle,
    issue: (spiffeId, options) => issueFrom(signing!, spiffeId, options),
    xdsTrust: () => bundle() + retired.map((r) => r.pem).join(''),
    // The oldest root still kept: proxies bootstrapped before any rotation trust it.
    issueForXds: (spiffeId, options) => issueFrom(retired[0] ?? previous ?? signing!, spiffeId, options),
    rotation: {
      phase: () => (next ? 'overlap' : previous ? 'switched' : 'idle'),
      async begin() {
        if (next || previous) throw new Error('a root rotation is already in progress');
        next = await newRoot(store, 'next-root', trustDomain);
        log(`ca: root rotation 1/3: a new root (serial ${certificateFacts(next.pem).serial}) joins the trust bundle`);
      },
      async switchSigner() {
        if (!next) throw new Error('no root rotation has begun');
        await store.move([...pairMoves('root', 'previous-root'), ...pairMoves('next-root', 'root')]);
        [previous, signing, next] = [signing, next, undefined];
        log(`ca: root rotation 2/3: the new root signs; the old one (serial ${certificateFacts(previous!.pem).serial}) stays trusted`);
      },
      async finish() {
        if (!previous) throw new Error('the new root does not sign yet');
        await store.move(pairMoves('previous-root', `retired-${Date.now()}-${certificateFacts(previous.pem).serial}`));
        retired.push(previous);
        previous = undefined;
        log('ca: root rotation 3/3: the old root left the trust bundle (kept as retired-* for proxy bootstrap certificates)');
      },
    },
  };
}
