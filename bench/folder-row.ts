/** One row of the watched-folder bench in a process of its own (bench/run.ts forks one per row); sends it to the parent. */
import { measureFolder } from './folder.js';

const [services, perNamespace, permissive, hub, routes] = process.argv.slice(2);
const row = await measureFolder(Number(services), { perNamespace: Number(perNamespace ?? 50), permissive: permissive === 'true', hub: hub === 'true', routes: routes === 'true' });
process.send!(row, () => process.exit(0));
