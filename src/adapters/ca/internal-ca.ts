import { randomInt } from 'node:crypto';
import { access, chmod, mkdir, readdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { lifetimeMs, type IssueOptions, type Signer } from './signer.js';
import { certificateFacts, createRootCertificate, generateKeyPair, issueLeafCertificate, keyMatchesCertificate, privateKeyFromPem, privateKeyToPem } from './x509.js';

/**
 * The mesh CA built into smc (a Signer, see signer.ts). Its root key and
 * certificate are persisted in the state folder (key mode 0600) and loaded
 * on every start, so a restart never mints a new root by accident.
 */
const exists = (path: string) => access(path).then(() => true, () => false);

const ROOT_TTL_MS = 10 * 365 * 24 * 3600_000;

const ending = (pem: string) => (pem.endsWith('\n') ? pem : `${pem}\n`);

interface Root {
  readonly pem: string;
  readonly key: CryptoKey;
}

/** Loads `<name>.crt` and `<name>.key` from `dir`: undefined when neither exists, an error when only one does or they disagree. */
async function loadRoot(dir: string, name: string): Promise<Root | undefined> {
  const certPath = join(dir, `${name}.crt`);
  const keyPath = join(dir, `${name}.key`);
  const [haveCert, haveKey] = await Promise.all([exists(certPath), exists(keyPath)]);
  if (!haveCert && !haveKey) return undefined;
  if (haveCert !== haveKey) {
    throw new Error(`the mesh CA in ${dir} is incomplete: ${haveCert ? `${name}.key` : `${name}.crt`} is missing. Restore it from your backup; smc will not mint a new root over an existing one`);
  }
  try {
    const pem = ending(await readFile(certPath, 'utf8'));
    const key = (await privateKeyFromPem(await readFile(keyPath, 'utf8'))).privateKey;
    if (!(await keyMatchesCertificate(key, pem))) throw new Error(`${name}.key does not belong to ${name}.crt`);
    return { pem, key };
  } catch (e) {
    throw new Error(`cannot load the mesh CA from ${dir}: ${(e as Error).message}. Restore it from your backup; smc will not mint a new root over an existing one`);
  }
}

async function newRoot(dir: string, name: string, trustDomain: string): Promise<Root> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const keys = await generateKeyPair();
  const now = Date.now();
  const pem = ending(await createRootCertificate(trustDomain, keys, { notBefore: new Date(now - 60_000), notAfter: new Date(now + ROOT_TTL_MS) }));
  const keyPath = join(dir, `${name}.key`);
  await writeFile(keyPath, await privateKeyToPem(keys.privateKey), { mode: 0o600, flag: 'wx' });
  await chmod(keyPath, 0o600);
  await writeFile(join(dir, `${name}.crt`), pem, { flag: 'wx' });
  return { pem, key: keys.privateKey };
}

const moveRoot = async (dir: string, from: string, to: string) => {
  await rename(join(dir, `${from}.key`), join(dir, `${to}.key`));
  await rename(join(dir, `${from}.crt`), join(dir, `${to}.crt`));
};


/**
 * State folder layout (`<state>/ca/`): `root.*` signs; during a rotation
 * `next-root.*` (trusted, not yet signing) or `previous-root.*` (trusted, no
 * longer signing); `retired/` keeps roots that left the bundle, for the xDS port.
 */
export async function openInternalCA(stateDir: string, trustDomain: string, log: (line: string) => void = () => {}): Promise<Signer> {
  const dir = join(stateDir, 'ca');
  let signing = await loadRoot(dir, 'root');
  if (!signing) {
    if (await exists(join(stateDir, 'issued'))) {
      throw new Error(`the mesh CA root is missing from ${dir}, but ${join(stateDir, 'issued')} holds certificates it issued. Restore root.crt and root.key from your backup (or remove the state folder to start a new mesh CA on purpose)`);
    }
    signing = await newRoot(dir, 'root', trustDomain);
    log(`ca: created a new mesh root for trust domain ${trustDomain} in ${dir}`);
  }
  let next = await loadRoot(dir, 'next-root');
  let previous = await loadRoot(dir, 'previous-root');
  const retiredDir = join(dir, 'retired');
  const retired: Root[] = [];
  if (await exists(retiredDir)) {
    for (const n of (await readdir(retiredDir)).filter((x) => x.endsWith('.crt')).sort()) {
      const r = await loadRoot(retiredDir, n.slice(0, -4));
      if (r) retired.push(r);
    }
  }
  const issueFrom = async (root: Root, spiffeId: string, options: IssueOptions) => {
    const keys = await generateKeyPair();
    const now = Date.now();
    const notAfter = new Date(now + lifetimeMs(options, () => randomInt(0, 1_000_001) / 1_000_000));
    const certificateChain = await issueLeafCertificate({ certificatePem: root.pem, privateKey: root.key }, spiffeId, keys.publicKey, { notBefore: new Date(now - 60_000), notAfter }, options);
    // The certificate's own expiry (X.509 keeps whole seconds).
    return { certificateChain, privateKey: await privateKeyToPem(keys.privateKey), notAfter: certificateFacts(certificateChain).notAfter, issuedAt: new Date(now) };
  };
  const bundle = () => [signing!, next, previous].filter((r): r is Root => r !== undefined).map((r) => r.pem).join('');
  return {
    name: 'internal',
    trustBundle: bundle,
    issue: (spiffeId, options) => issueFrom(signing!, spiffeId, options),
    xdsTrust: () => bundle() + retired.map((r) => r.pem).join(''),
    // The oldest root still kept: proxies bootstrapped before any rotation trust it.
    issueXdsServer: (spiffeId, options) => issueFrom(retired[0] ?? previous ?? signing!, spiffeId, options),
    rotation: {
      phase: () => (next ? 'overlap' : previous ? 'switched' : 'idle'),
      async begin() {
        if (next || previous) throw new Error('a root rotation is already in progress');
        next = await newRoot(dir, 'next-root', trustDomain);
        log(`ca: root rotation 1/3: a new root (serial ${certificateFacts(next.pem).serial}) joins the trust bundle`);
      },
      async switchSigner() {
        if (!next) throw new Error('no root rotation has begun');
        await moveRoot(dir, 'root', 'previous-root');
        await moveRoot(dir, 'next-root', 'root');
        [previous, signing, next] = [signing, next, undefined];
        log(`ca: root rotation 2/3: the new root signs; the old one (serial ${certificateFacts(previous!.pem).serial}) stays trusted`);
      },
      async finish() {
        if (!previous) throw new Error('the new root does not sign yet');
        await mkdir(retiredDir, { recursive: true, mode: 0o700 });
        const name = `${Date.now()}-${certificateFacts(previous.pem).serial}`;
        await rename(join(dir, 'previous-root.key'), join(retiredDir, `${name}.key`));
        await rename(join(dir, 'previous-root.crt'), join(retiredDir, `${name}.crt`));
        retired.push(previous);
        previous = undefined;
        log('ca: root rotation 3/3: the old root left the trust bundle (kept in ca/retired/ for proxy bootstrap certificates)');
      },
    },
  };
}
