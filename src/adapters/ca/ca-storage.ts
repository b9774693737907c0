import { access, link, mkdir, open, readdir, readFile, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type * as k8s from '@kubernetes/client-node';

/**
 * Where the internal CA keeps its roots: a folder (default, `<state>/ca`,
 * keys 0600) or, on Kubernetes, one Secret. Entries are flat names
 * (`root.crt`, `root.key`, `next-root.*`, `previous-root.*`,
 * `retired-<time>-<serial>.*`). Roots are never overwritten: `create` fails
 * when an entry exists.
 */
export interface CaStorage {
  /** For messages: a path or `Secret NS/NAME`. */
  readonly where: string;
  read(name: string): Promise<string | undefined>;
  /** Adds entries; fails if any exists. */
  create(entries: Readonly<Record<string, string>>): Promise<void>;
  /** Renames entries, all or nothing as far as the store allows. */
  move(pairs: readonly (readonly [string, string])[]): Promise<void>;
  list(): Promise<string[]>;
}

export function folderStorage(dir: string): CaStorage {
  return {
    where: dir,
    async read(name) {
      try {
        return await readFile(join(dir, name), 'utf8');
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
        throw e;
      }
    },
    async create(entries) {
      // All or nothing: every entry is written to a temporary file and flushed
      // first (a full disk fails here, leaving nothing behind), then linked into
      // place, which fails rather than overwrite an existing root.
      await mkdir(dir, { recursive: true, mode: 0o700 });
      const staged: [string, string][] = [];
      try {
        for (const [name, text] of Object.entries(entries)) {
          const tmp = join(dir, `.${name}.${process.pid}.tmp`);
          staged.push([tmp, join(dir, name)]);
          const file = await open(tmp, 'w', name.endsWith('.key') ? 0o600 : 0o644);
          try {
            await file.writeFile(text);
            await file.sync();
          } finally {
            await file.close();
          }
        }
        const placed: string[] = [];
        try {
          for (const [tmp, final] of staged) {
            await link(tmp, final);
            placed.push(final);
          }
        } catch (e) {
          for (const f of placed) await rm(f, { force: true });
          throw (e as NodeJS.ErrnoException).code === 'EEXIST' ? new Error(`${dir} already holds ${Object.keys(entries).join(', ')}; refusing to overwrite a root`) : e;
        }
        const d = await open(dir, 'r');
        await d.sync().finally(() => d.close());
      } finally {
        for (const [tmp] of staged) await rm(tmp, { force: true });
      }
    },
    async move(pairs) {
      for (const [from, to] of pairs) {
        const exists = await access(join(dir, to)).then(() => true, () => false);
        if (exists) throw new Error(`${join(dir, to)} exists; refusing to overwrite a root`);
        await rename(join(dir, from), join(dir, to));
      }
    },
    async list() {
      try {
        return (await readdir(dir)).filter((n) => !n.startsWith('.')).sort();
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
        throw e;
      }
    },
  };
}

export interface SecretStorageOptions {
  readonly namespace: string;
  readonly name: string;
  /** A kubeconfig file; default: $KUBECONFIG, ~/.kube/config, or the in-cluster service account. */
  readonly kubeconfig?: string;
}

const b64 = (s: string) => Buffer.from(s, 'utf8').toString('base64');
const unb64 = (s: string) => Buffer.from(s, 'base64').toString('utf8');
const status = (e: unknown) => (e as { code?: number }).code;

/**
 * One Kubernetes Secret (type Opaque) holds the roots. Every change is a
 * read-modify-replace guarded by the Secret's resourceVersion, so two
 * controllers never overwrite each other's root.
 */
export function secretStorage(o: SecretStorageOptions): CaStorage {
  // The Kubernetes client is large: loaded on first use, so commands that never need it start fast.
  let client: Promise<k8s.CoreV1Api> | undefined;
  const coreApi = () =>
    (client ??= import('@kubernetes/client-node').then((lib) => {
      const kc = new lib.KubeConfig();
      if (o.kubeconfig) kc.loadFromFile(o.kubeconfig);
      else kc.loadFromDefault();
      return kc.makeApiClient(lib.CoreV1Api);
    }));
  const where = `Secret ${o.namespace}/${o.name}`;
  const get = async (): Promise<k8s.V1Secret | undefined> => {
    try {
      return await (await coreApi()).readNamespacedSecret({ name: o.name, namespace: o.namespace });
    } catch (e) {
      if (status(e) === 404) return undefined;
      throw new Error(`cannot read ${where}: ${(e as Error).message}`);
    }
  };
  /** Applies `change` to the Secret's data and writes it back; retries when someone else wrote in between. */
  const update = async (change: (data: Record<string, string>) => Record<string, string>) => {
    for (let attempt = 0; attempt < 5; attempt++) {
      const current = await get();
      const data = change({ ...(current?.data ?? {}) });
      try {
        if (!current) {
          await (await coreApi()).createNamespacedSecret({ namespace: o.namespace, body: { metadata: { name: o.name, namespace: o.namespace, labels: { 'app.kubernetes.io/managed-by': 'smc' } }, type: 'Opaque', data } });
        } else {
          await (await coreApi()).replaceNamespacedSecret({ name: o.name, namespace: o.namespace, body: { ...current, data } });
        }
        return;
      } catch (e) {
        if (status(e) === 409) continue; // changed meanwhile: read again
        throw new Error(`cannot write ${where}: ${(e as Error).message}`);
      }
    }
    throw new Error(`cannot write ${where}: it kept changing underneath (conflicts)`);
  };
  return {
    where,
    async read(name) {
      const v = (await get())?.data?.[name];
      return v === undefined ? undefined : unb64(v);
    },
    create: (entries) =>
      update((data) => {
        for (const [name, text] of Object.entries(entries)) {
          if (data[name] !== undefined) throw new Error(`${where} already holds ${name}; refusing to overwrite a root`);
          data[name] = b64(text);
        }
        return data;
      }),
    move: (pairs) =>
      update((data) => {
        for (const [from, to] of pairs) {
          if (data[from] === undefined) throw new Error(`${where} has no ${from}`);
          if (data[to] !== undefined) throw new Error(`${where} already holds ${to}; refusing to overwrite a root`);
          data[to] = data[from]!;
          delete data[from];
        }
        return data;
      }),
    async list() {
      return Object.keys((await get())?.data ?? {}).sort();
    },
  };
}
