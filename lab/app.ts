import { createServer as createHttpServer, request as httpRequest } from 'node:http';
import { connect, createServer } from 'node:net';
import * as grpc from '@grpc/grpc-js';

/**
 * A tiny application for test hosts, run as its own process inside a network
 * namespace: `banner NAME PORT...` answers every TCP connection with
 * `NAME:PORT` and closes; `call HOST PORT` prints what the other side says
 * (or `ERROR <code>`); `http NAME PORT` and `get URL [HOST]` do the same over HTTP;
 * `grpc-health PORT` is a gRPC health service that says SERVING.
 */
const [mode, ...args] = process.argv.slice(2);

if (mode === 'banner') {
  const [name, ...ports] = args;
  let listening = 0;
  for (const port of ports) {
    createServer((socket) => socket.end(`${name}:${port}\n`)).listen(Number(port), '0.0.0.0', () => {
      if (++listening === ports.length) process.stdout.write('ready\n');
    });
  }
} else if (mode === 'http') {
  // `http NAME PORT`: answers NAME to every request; /healthz is 200 "ok"; /whoami answers the caller's
  // identity as the sidecar vouches for it (x-forwarded-client-cert).
  // Hooks for route tests, each asked for by a request header:
  //   x-echo: h1,h2       answers "NAME METHOD PATH h1=v1 h2=v2" (what arrived, after the caller's routes)
  //   x-count: KEY        counts the request under KEY; x-read-count: KEY answers "NAME count=N"
  //   x-fail-first: KEY:N answers 503 to the first N requests of KEY (for retries)
  //   x-delay-ms: N       answers after N ms (for timeouts)
  const [name, port] = args;
  const counts = new Map<string, number>();
  const header = (req: { headers: Record<string, string | string[] | undefined> }, h: string) => {
    const v = req.headers[h];
    return v === undefined ? undefined : String(v);
  };
  createHttpServer((req, res) => {
    const count = header(req, 'x-count');
    if (count !== undefined) counts.set(count, (counts.get(count) ?? 0) + 1);
    const fail = header(req, 'x-fail-first');
    if (fail !== undefined) {
      const [key, n] = fail.split(':');
      const seen = (counts.get(`fail ${key}`) ?? 0) + 1;
      counts.set(`fail ${key}`, seen);
      if (seen <= Number(n)) {
        res.writeHead(503, { 'content-type': 'text/plain' });
        res.end(`${name} failing ${seen}`);
        return;
      }
    }
    const echo = header(req, 'x-echo');
    const read = header(req, 'x-read-count');
    const body =
      read !== undefined
        ? `${name} count=${counts.get(read) ?? 0}`
        : echo !== undefined
          ? `${name} ${req.method} ${req.url} ${echo.split(',').map((h) => `${h.trim()}=${header(req, h.trim().toLowerCase()) ?? ''}`).join(' ')}`
          : req.url === '/healthz'
            ? 'ok'
            : req.url === '/whoami'
              ? String(req.headers['x-forwarded-client-cert'] ?? 'no client certificate')
              : `${name}`;
    setTimeout(() => {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end(body);
    }, Number(header(req, 'x-delay-ms') ?? 0));
  }).listen(Number(port), '0.0.0.0', () => process.stdout.write('ready\n'));
} else if (mode === 'grpc-health') {
  // `grpc-health PORT`: a gRPC server whose grpc.health.v1.Health/Check answers SERVING (status 1) for every service.
  const server = new grpc.Server();
  const raw = (b: Buffer) => b;
  server.addService(
    { Check: { path: '/grpc.health.v1.Health/Check', requestStream: false, responseStream: false, requestSerialize: raw, requestDeserialize: raw, responseSerialize: raw, responseDeserialize: raw } },
    { Check: (_call: unknown, reply: (e: null, b: Buffer) => void) => reply(null, Buffer.from([0x08, 0x01])) },
  );
  server.bindAsync(`0.0.0.0:${args[0]}`, grpc.ServerCredentials.createInsecure(), (e) => {
    if (e) throw e;
    process.stdout.write('ready\n');
  });
} else if (mode === 'grpc-echo') {
  // `grpc-echo NAME PORT`: a gRPC server whose methods of shop.Prices and shop.Stock (Get, Quote, StreamQuotes) answer
  // NAME, and the value of the metadata x-route when the call carries one.
  const [name, port] = args;
  const server = new grpc.Server();
  const raw = (b: Buffer) => b;
  for (const service of ['shop.Prices', 'shop.Stock']) {
    const methods = ['Get', 'Quote', 'StreamQuotes'];
    const definition = Object.fromEntries(methods.map((m) => [m, { path: `/${service}/${m}`, requestStream: false, responseStream: false, requestSerialize: raw, requestDeserialize: raw, responseSerialize: raw, responseDeserialize: raw }]));
    const handlers = Object.fromEntries(
      methods.map((m) => [
        m,
        (call: { metadata: grpc.Metadata }, reply: (e: null, b: Buffer) => void) => {
          const route = call.metadata.get('x-route')[0];
          reply(null, Buffer.from(route === undefined ? `${name}` : `${name} x-route=${String(route)}`));
        },
      ]),
    );
    server.addService(definition as grpc.ServiceDefinition, handlers as grpc.UntypedServiceImplementation);
  }
  server.bindAsync(`0.0.0.0:${port}`, grpc.ServerCredentials.createInsecure(), (e) => {
    if (e) throw e;
    process.stdout.write('ready\n');
  });
} else if (mode === 'echo') {
  // `echo PORT`: a TCP echo server (the bookstore's database), answering `echo:` and what it was sent.
  createServer((socket) => socket.once('data', (d: Buffer) => socket.end(`echo:${d.toString()}`))).listen(Number(args[0]), '0.0.0.0', () => process.stdout.write('ready\n'));
} else if (mode === 'agent') {
  // `agent`: a caller driven over stdin, one JSON command per line, one JSON answer per line:
  //   {"id":1,"kind":"http","url":"http://bookstore.bookstore:14001/buy-a-book","method":"GET","headers":{},"count":100}
  //     -> {"id":1,"results":{"200 bookstore-v1":90,"200 bookstore-v2":10}}
  //   {"id":2,"kind":"tcp","host":"mysql.bookwarehouse","port":3306,"payload":"ping"} -> {"id":2,"results":{"echo:ping":1}}
  // Each request opens its own connection, so a proxy's configuration change is seen by the next one.
  let buffered = '';
  process.stdin.on('data', (d: Buffer) => {
    buffered += d.toString();
    let nl: number;
    while ((nl = buffered.indexOf('\n')) >= 0) {
      const line = buffered.slice(0, nl);
      buffered = buffered.slice(nl + 1);
      if (line.trim()) void runCommand(JSON.parse(line) as AgentCommand).then((a) => process.stdout.write(`${JSON.stringify(a)}\n`));
    }
  });
  process.stdout.write('ready\n');
} else if (mode === 'get') {
  // `get URL [HOST]`: prints "STATUS BODY", or "ERROR <what>"; HOST is the Host header (a mesh service's name).
  const req = httpRequest(args[0]!, { timeout: 5000, headers: args[1] ? { host: args[1] } : {} }, (res) => {
    let body = '';
    res.on('data', (d: Buffer) => (body += d.toString()));
    res.on('end', () => process.stdout.write(`${res.statusCode} ${body.trim()}`));
  });
  req.on('timeout', () => req.destroy(new Error('timed out')));
  req.on('error', (e: NodeJS.ErrnoException) => process.stdout.write(`ERROR ${e.code ?? e.message}`));
  req.end();
} else if (mode === 'call') {
  const [host, port] = args;
  const socket = connect({ host: host!, port: Number(port), timeout: 3000 });
  let text = '';
  socket.on('data', (d: Buffer) => (text += d.toString()));
  socket.on('end', () => {
    process.stdout.write(text.trim());
    process.exit(0);
  });
  socket.on('timeout', () => {
    process.stdout.write('ERROR ETIMEDOUT');
    process.exit(0);
  });
  socket.on('error', (e: NodeJS.ErrnoException) => {
    process.stdout.write(`ERROR ${e.code ?? e.message}`);
    process.exit(0);
  });
} else {
  process.stderr.write('usage: test-app banner NAME PORT... | call HOST PORT | http NAME PORT | get URL [HOST] | grpc-health PORT | grpc-echo NAME PORT\n');
  process.exit(2);
}

type AgentCommand =
  | { id: number; kind: 'http'; url: string; method?: string; headers?: Record<string, string>; count?: number; showHeaders?: string[] }
  | { id: number; kind: 'grpc'; target: string; method: string; metadata?: Record<string, string>; count?: number }
  | { id: number; kind: 'tcp'; host: string; port: number; payload: string; count?: number };

async function runCommand(c: AgentCommand): Promise<{ id: number; results: Record<string, number> }> {
  const results: Record<string, number> = {};
  for (let i = 0; i < (c.count ?? 1); i++) {
    const r = c.kind === 'http' ? await httpOnce(c.url, c.method ?? 'GET', c.headers ?? {}, c.showHeaders ?? []) : c.kind === 'grpc' ? await grpcOnce(c.target, c.method, c.metadata ?? {}) : await tcpOnce(c.host, c.port, c.payload);
    results[r] = (results[r] ?? 0) + 1;
  }
  return { id: c.id, results };
}

/** "STATUS BODY", then ` [name=value]` for each header of `show` the answer has. */
function httpOnce(url: string, method: string, headers: Record<string, string>, show: readonly string[]): Promise<string> {
  return new Promise((resolve) => {
    const req = httpRequest(url, { method, headers: { connection: 'close', ...headers }, agent: false, timeout: 5000 }, (res) => {
      let body = '';
      const shown = show.flatMap((h) => (res.headers[h] === undefined ? [] : [` [${h}=${String(res.headers[h])}]`])).join('');
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => resolve(`${res.statusCode} ${body.trim().slice(0, 300)}${shown}`));
      res.on('error', (e: NodeJS.ErrnoException) => resolve(`ERROR ${e.code ?? e.message}`));
    });
    req.on('timeout', () => req.destroy(Object.assign(new Error('timed out'), { code: 'ETIMEDOUT' })));
    req.on('error', (e: NodeJS.ErrnoException) => resolve(`ERROR ${e.code ?? e.message}`));
    req.end();
  });
}

/** One unary gRPC call on a new channel (so a proxy's configuration change is seen by the next call): "OK ANSWER" or "ERROR CODE". */
function grpcOnce(target: string, method: string, metadata: Record<string, string>): Promise<string> {
  return new Promise((resolve) => {
    const client = new grpc.Client(target, grpc.credentials.createInsecure());
    const md = new grpc.Metadata();
    for (const [k, v] of Object.entries(metadata)) md.set(k, v);
    const raw = (b: Buffer) => b;
    client.makeUnaryRequest(method, raw, raw, Buffer.alloc(0), md, { deadline: Date.now() + 5000 }, (e, reply) => {
      client.close();
      resolve(e ? `ERROR ${grpc.status[e.code] ?? e.code}` : `OK ${reply!.toString()}`);
    });
  });
}

function tcpOnce(host: string, port: number, payload: string): Promise<string> {
  return new Promise((resolve) => {
    const socket = connect({ host, port, timeout: 5000 });
    let text = '';
    socket.on('connect', () => socket.write(payload));
    socket.on('data', (d: Buffer) => (text += d.toString()));
    socket.on('end', () => resolve(text.trim() || 'ERROR closed without an answer'));
    socket.on('timeout', () => socket.destroy(Object.assign(new Error('timed out'), { code: 'ETIMEDOUT' })));
    socket.on('error', (e: NodeJS.ErrnoException) => resolve(`ERROR ${e.code ?? e.message}`));
  });
}
