/** One row of the watched-folder bench in a process of its own (bench/run.ts forks one per row); sends it to the parent. */
import { measureFolder } from './folder.js';

const row = await measureFolder(Number(process.argv[2]));
process.send!(row, () => process.exit(0));
