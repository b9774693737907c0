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
  // `http NAME PORT`: answers NAME to every request; /healthz is 200 "ok".
  const [name, port] = args;
  createHttpServer((req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.end(req.url === '/healthz' ? 'ok' : `${name}`);
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
  process.stderr.write('usage: test-app banner NAME PORT... | call HOST PORT | http NAME PORT | get URL [HOST] | grpc-health PORT\n');
  process.exit(2);
}
