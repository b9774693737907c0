/** One row of the Kubernetes-source bench in a process of its own (bench/run.ts forks it); sends it to the parent, or prints it when run alone. */
import { measureKube } from './kube.js';

const row = await measureKube(Number(process.argv[2] ?? 1000));
if (process.send) process.send(row, () => process.exit(0));
else {
  process.stdout.write(`${JSON.stringify(row)}\n`);
  process.exit(0);
}
