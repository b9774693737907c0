import { readFileSync } from 'node:fs';

/** This build's version, from package.json (read once, at start). */
export const SMC_VERSION = (JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
