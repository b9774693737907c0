import type { CaChoice } from '../adapters/ca/open.js';
import { UsageError } from './usage.js';

/** Options every command that signs with (or records beside) the mesh CA takes. */
export const CA_OPTIONS = {
  ca: { type: 'string', default: 'internal' },
  'ca-root-secret': { type: 'string' },
  kubeconfig: { type: 'string' },
  'cfssl-url': { type: 'string' },
  'cfssl-profile': { type: 'string' },
} as const;

export type CaValues = { ca?: string; 'cfssl-url'?: string; 'cfssl-profile'?: string; 'ca-root-secret'?: string; kubeconfig?: string };

export function caChoice(values: CaValues): CaChoice {
  if (values.ca === 'internal' || values.ca === undefined) {
    if (values['cfssl-url'] !== undefined) throw new UsageError('--cfssl-url needs --ca cfssl');
    const secret = values['ca-root-secret'];
    if (secret === undefined) return { kind: 'internal' };
    const m = /^([a-z0-9][-a-z0-9]*)\/([a-z0-9][-a-z0-9.]*)$/.exec(secret);
    if (!m) throw new UsageError(`--ca-root-secret expects NAMESPACE/NAME, got ${JSON.stringify(secret)}`);
    return { kind: 'internal', rootSecret: { namespace: m[1]!, name: m[2]!, ...(values.kubeconfig ? { kubeconfig: values.kubeconfig } : {}) } };
  }
  if (values['ca-root-secret'] !== undefined) throw new UsageError('--ca-root-secret is for the internal CA; cfssl keeps its own key');
  if (values.ca !== 'cfssl') throw new UsageError(`--ca expects "internal" or "cfssl", got ${JSON.stringify(values.ca)}`);
  if (values['cfssl-url'] === undefined) throw new UsageError('--ca cfssl needs --cfssl-url URL (the cfssl serve API)');
  return { kind: 'cfssl', url: values['cfssl-url'], ...(values['cfssl-profile'] ? { profile: values['cfssl-profile'] } : {}) };
}
