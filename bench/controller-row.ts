/**
 * One row of the controller bench in a process of its own (bench/run.ts
 * forks one per row): each controller starts as it would in production, in a
 * fresh process, and its memory and pauses owe nothing to the rows before it.
 * Sends the row to the parent over IPC.
 */
import { measureController } from './controller.js';

const [services, perIdentity] = process.argv.slice(2).map(Number);
const row = await measureController(services!, perIdentity!);
process.send!(row, () => process.exit(0));
