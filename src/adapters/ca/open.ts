import { openProxyCertificates, type ProxyCertificates } from './proxy-certificates.js';
import { secretStorage, type SecretStorageOptions } from './ca-storage.js';
import { openCfsslSigner } from './cfssl.js';
import { openInternalCA } from './internal-ca.js';
import type { Signer } from './signer.js';

/** Which CA signs the mesh's certificates: smc's own (default) or an external one. */
export type CaChoice =
  | { readonly kind: 'internal'; readonly rootSecret?: SecretStorageOptions }
  | { readonly kind: 'cfssl'; readonly url: string; readonly profile?: string };

/** `create: false`: the CA must exist already (commands that sign for a running mesh); otherwise a first start makes it. */
export async function openSigner(choice: CaChoice, stateDir: string, trustDomain: string, log: (line: string) => void, options: { create?: boolean } = {}): Promise<Signer> {
  if (choice.kind === 'cfssl') {
    const signer = await openCfsslSigner(choice);
    log(`ca: certificates are signed by ${signer.name}${choice.profile ? ` (profile ${choice.profile})` : ''}`);
    return signer;
  }
  // On Kubernetes the root can live in a Secret instead of the state folder.
  return openInternalCA(stateDir, trustDomain, log, choice.rootSecret ? secretStorage(choice.rootSecret) : undefined, options);
}

/**
 * Where proxy-certificate records live: beside the root. With the root in a
 * Secret, as ProxyCertificate objects in the Secret's namespace, shared by
 * every replica and by `smc bootstrap`/`smc certs` run elsewhere; otherwise
 * in the state folder.
 */
export async function openProxyCertificateRecords(choice: CaChoice | undefined, stateDir: string): Promise<ProxyCertificates> {
  if (choice?.kind === 'internal' && choice.rootSecret) {
    // Loaded only here: the Kubernetes client is large.
    const { kubernetesProxyCertificates } = await import('./proxy-certificates-kubernetes.js');
    return kubernetesProxyCertificates({ namespace: choice.rootSecret.namespace, ...(choice.rootSecret.kubeconfig ? { kubeconfig: choice.rootSecret.kubeconfig } : {}) });
  }
  return openProxyCertificates(stateDir);
}
