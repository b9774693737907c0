import { parentPort } from 'node:worker_threads';
import { loadEnvoyProtos } from '../adapters/envoy-protos.js';
import { createCompileEngine, type WorkerRequest } from './compile-engine.js';

/**
 * The compiler, in a worker thread: a compile of a large mesh never holds the
 * event loop that serves ADS. The thread runs one compile engine
 * (compile-engine.ts) and answers each request in order.
 */
const engine = createCompileEngine();

// Envoy's protos are loaded while the thread waits for its first compile (the controller starts it before its sources have read).
if (parentPort) setImmediate(() => loadEnvoyProtos());

parentPort?.on('message', (m: WorkerRequest) => parentPort!.postMessage(engine.handle(m)));
