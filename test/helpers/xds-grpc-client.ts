/**
 * A proxyless gRPC application for tests: a real @grpc/grpc-js-xds client
 * in its own process (the xDS client is a per-process singleton), reading
 * its bootstrap from GRPC_XDS_BOOTSTRAP. For each line `call N` on stdin it
 * makes N unary calls (20 in flight) to the xds:/// target in argv[2] and
 * prints one JSON line: how many answers came from each backend name.
 */
import * as grpc from '@grpc/grpc-js';
import * as xds from '@grpc/grpc-js-xds';
import { createInterface } from 'node:readline';

xds.register();
const target = process.argv[2]!;
const client = new grpc.Client(target, grpc.credentials.createInsecure());
const identity = (b: Buffer) => b;

const once = () =>
  new Promise<string>((resolve) => {
    client.makeUnaryRequest("/smc.test.Who/Name", identity, identity, Buffer.alloc(0), { deadline: Date.now() + 5_000 }, (err, res) =>
      resolve(err ? `error: ${err.details}` : res!.toString()),
    );
  });

async function calls(n: number): Promise<Record<string, number>> {
  const counts: Record<string, number> = {};
  let left = n;
  const worker = async () => {
    while (left > 0) {
      left--;
      const who = await once();
      counts[who] = (counts[who] ?? 0) + 1;
    }
  };
  await Promise.all(Array.from({ length: 20 }, worker));
  return counts;
}

for await (const line of createInterface({ input: process.stdin })) {
  const m = /^call (\d+)$/.exec(line.trim());
  if (!m) continue;
  process.stdout.write(`${JSON.stringify(await calls(Number(m[1])))}\n`);
}
client.close();

