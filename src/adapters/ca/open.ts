import { secretStorage, type SecretStorageOptions } from './ca-storage.js';
import { openCfsslSigner } from './cfssl.js';
import { openInternalCA } from './internal-ca.js';
import type { Signer } from './signer.js';

/** Which CA signs the mesh's certificates: smc's own (default) or an external one. */
export type CaChoice =
  | { readonly kind: 'internal'; readonly rootSecret?: SecretStorageOptions }
  | { readonly kind: 'cfssl'; readonly url: string; readonly profile?: string };

export async function openSigner(choice: CaChoice, stateDir: string, trustDomain: string, log: (line: string) => void): Promise<Signer> {
  if (choice.kind === 'cfssl') {
    const signer = await openCfsslSigner(choice);
    log(`ca: certificates are signed by ${signer.name}${choice.profile ? ` (profile ${choice.profile})` : ''}`);
    return signer;
  }
  // On Kubernetes the root can live in a Secret instead of the state folder.
  return openInternalCA(stateDir, trustDomain, log, choice.rootSecret ? secretStorage(choice.rootSecret) : undefined);
}
