import * as grpc from '@grpc/grpc-js';
import { loadEnvoyProtos } from '../../src/adapters/envoy-protos.js';

/** A raw ADS client (no xDS library in between) for scripted protocol tests and benchmarks. */
const protos = loadEnvoyProtos();

const wire = (name: string) => {
  const t = protos.lookupType(`envoy.service.discovery.v3.${name}`);
  return {
    serialize: (v: unknown) => Buffer.from(t.encode(t.fromObject(v as Record<string, unknown>)).finish()),
    deserialize: (b: Buffer) => t.toObject(t.decode(b), { defaults: true, arrays: true, longs: String }),
  };
};
const method = (name: string, rq: string, rs: string) => ({
  path: `/envoy.service.discovery.v3.AggregatedDiscoveryService/${name}`,
  requestStream: true,
  responseStream: true,
  requestSerialize: wire(rq).serialize,
  requestDeserialize: wire(rq).deserialize,
  responseSerialize: wire(rs).serialize,
  responseDeserialize: wire(rs).deserialize,
});
export const Client = grpc.makeGenericClientConstructor(
  { sotw: method('StreamAggregatedResources', 'DiscoveryRequest', 'DiscoveryResponse'), delta: method('DeltaAggregatedResources', 'DeltaDiscoveryRequest', 'DeltaDiscoveryResponse') },
  'ADS',
);

export type Resp = { versionInfo: string; systemVersionInfo: string; nonce: string; typeUrl: string; removedResources: string[]; resources: { name: string; version: string; type_url: string }[] };

/** A stream with a queue of responses and a way to wait for the next one (or prove none comes). */
export function open(client: grpc.Client, kind: 'sotw' | 'delta') {
  const call = (client as unknown as Record<string, () => grpc.ClientDuplexStream<unknown, Resp>>)[kind]!();
  const queue: Resp[] = [];
  const waiters: ((r: Resp) => void)[] = [];
  let error: grpc.ServiceError | undefined;
  call.on('data', (r: Resp) => (waiters.length ? waiters.shift()!(r) : queue.push(r)));
  call.on('error', (e: grpc.ServiceError) => (error = e));
  return {
    call,
    send: (m: object) => call.write(m),
    next: (ms = 3000) =>
      new Promise<Resp>((resolve, reject) => {
        if (queue.length) return resolve(queue.shift()!);
        const t = setTimeout(() => reject(new Error(`no response within ${ms} ms${error ? ` (stream error: ${error.details})` : ''}`)), ms);
        waiters.push((r) => {
          clearTimeout(t);
          resolve(r);
        });
      }),
    /** Resolves true when nothing arrives for `ms`. */
    quiet: async (ms = 400) => {
      await new Promise((r) => setTimeout(r, ms));
      return queue.length === 0;
    },
    error: () => error,
  };
}

