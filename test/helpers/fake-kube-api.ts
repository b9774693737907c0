import { createServer, type IncomingMessage } from 'node:http';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * A local stand-in for the Kubernetes API server's Secret endpoints (no API
 * server can run here): get, create (409 when it exists) and replace (409
 * when the resourceVersion is stale), as the real one behaves. It counts
 * requests and can be told to answer the next replace with a conflict, to
 * exercise a client's retry.
 */
interface Secret {
  metadata: { name: string; namespace: string; resourceVersion: string; labels?: Record<string, string> };
  type?: string;
  data?: Record<string, string>;
}

export async function fakeKubeApi() {
  const secrets = new Map<string, Secret>();
  let version = 100;
  let conflicts = 0;
  const requests: string[] = [];
  const body = (req: IncomingMessage) => new Promise<string>((resolve) => {
    let b = '';
    req.on('data', (d: Buffer) => (b += d.toString()));
    req.on('end', () => resolve(b));
  });
  const status = (code: number, reason: string, message: string) => JSON.stringify({ kind: 'Status', apiVersion: 'v1', status: 'Failure', code, reason, message });
  const server = createServer((req, res) => {
    void (async () => {
      const send = (code: number, text: string) => {
        res.writeHead(code, { 'content-type': 'application/json' });
        res.end(text);
      };
      requests.push(`${req.method} ${req.url}`);
      if (req.headers.authorization !== 'Bearer test-token') return send(401, status(401, 'Unauthorized', 'no token'));
      const m = /^\/api\/v1\/namespaces\/([^/]+)\/secrets(?:\/([^/?]+))?/.exec(req.url ?? '');
      if (!m) return send(404, status(404, 'NotFound', 'no such path'));
      const [ns, name] = [m[1]!, m[2]];
      if (req.method === 'GET' && name) {
        const s = secrets.get(`${ns}/${name}`);
        return s ? send(200, JSON.stringify({ apiVersion: 'v1', kind: 'Secret', ...s })) : send(404, status(404, 'NotFound', `secrets "${name}" not found`));
      }
      if (req.method === 'POST' && !name) {
        const s = JSON.parse(await body(req)) as Secret;
        const key = `${ns}/${s.metadata.name}`;
        if (secrets.has(key)) return send(409, status(409, 'AlreadyExists', `secrets "${s.metadata.name}" already exists`));
        s.metadata = { ...s.metadata, namespace: ns, resourceVersion: String(++version) };
        secrets.set(key, s);
        return send(201, JSON.stringify({ apiVersion: 'v1', kind: 'Secret', ...s }));
      }
      if (req.method === 'PUT' && name) {
        const s = JSON.parse(await body(req)) as Secret;
        const current = secrets.get(`${ns}/${name}`);
        if (!current) return send(404, status(404, 'NotFound', `secrets "${name}" not found`));
        if (conflicts > 0 || s.metadata.resourceVersion !== current.metadata.resourceVersion) {
          if (conflicts > 0) conflicts--;
          return send(409, status(409, 'Conflict', 'the object has been modified; please apply your changes to the latest version and try again'));
        }
        s.metadata = { ...s.metadata, namespace: ns, resourceVersion: String(++version) };
        secrets.set(`${ns}/${name}`, s);
        return send(200, JSON.stringify({ apiVersion: 'v1', kind: 'Secret', ...s }));
      }
      send(405, status(405, 'MethodNotAllowed', `${req.method} not allowed`));
    })();
  });
  const port = await new Promise<number>((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as { port: number }).port)));
  const kubeconfig = join(mkdtempSync(join(tmpdir(), 'smc-kube-')), 'kubeconfig');
  writeFileSync(
    kubeconfig,
    JSON.stringify({
      apiVersion: 'v1',
      kind: 'Config',
      // Plain HTTP on loopback: the client allows it only with TLS verification off.
      clusters: [{ name: 'test', cluster: { server: `http://127.0.0.1:${port}`, 'insecure-skip-tls-verify': true } }],
      users: [{ name: 'test', user: { token: 'test-token' } }],
      contexts: [{ name: 'test', context: { cluster: 'test', user: 'test' } }],
      'current-context': 'test',
    }),
  );
  return {
    kubeconfig,
    secrets,
    requests,
    conflictNextReplaces: (n: number) => (conflicts = n),
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
