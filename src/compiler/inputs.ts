/**
 * The one value every adapter produces and the compiler consumes.
 *
 * Documents are kept raw (`unknown`): decoding is part of the compiler so that
 * every document, whatever its source, gets a status entry, and so that the
 * result never depends on which adapter read it or in what order.
 */

/** Where a document came from, for error messages: `file.yaml#2 (line 14)`. */
export interface Origin {
  /** A file path, or a URI-like name for non-file sources (`kubernetes:…`). */
  readonly source: string;
  /** 0-based index of the document inside its source. */
  readonly document: number;
  /** 1-based line where the document starts; 0 when unknown. */
  readonly line: number;
}

export interface InputDocument {
  readonly origin: Origin;
  readonly value: unknown;
  /** For a `kind: List`, the 1-based line where each of its items starts (when the adapter knows). */
  readonly itemLines?: readonly number[];
  /**
   * Live only: objects of this document whose newest version was rejected
   * while an earlier version of theirs had been accepted. The document holds
   * that earlier version (it stays in force); this says why, keyed by the
   * object's place in the document (`""`, or `items[3].` in a List).
   */
  readonly held?: Readonly<Record<string, HeldVersion>>;
}

/** A rejected version of an object, and when the version kept in force was accepted. */
export interface HeldVersion {
  /** ISO 8601: when the version in force was first delivered valid. */
  readonly acceptedAt: string;
  /** What was wrong with the newest version (paths as in the document). */
  readonly problems: readonly { readonly path: string; readonly message: string }[];
}

/** Something an adapter could not turn into a document (e.g. a YAML syntax error). */
export interface InputProblem {
  readonly origin: Origin;
  readonly message: string;
}

/** A certificate issued to one identity: PEM chain (leaf first) and PEM private key. */
export interface IdentityCertificate {
  readonly identity: string;
  readonly certificateChain: string;
  readonly privateKey: string;
}

/**
 * Certificates issued so far, from the certificate issuer adapter. Absent
 * offline: snapshots then name their secrets (SDS) without carrying them.
 */
export interface CertificateInputs {
  /** PEM roots every proxy trusts. */
  readonly trustBundle: string;
  readonly identities: readonly IdentityCertificate[];
}

/** What only a running controller knows; absent offline. */
export interface LiveInputs {
  /**
   * Node ids of the VM proxies connected now (`NS/SA/vm:NAME`). A VM's
   * endpoints are served only while its proxy is connected; absent (an
   * offline compile) means every VM's endpoints are served.
   */
  readonly connectedVirtualMachines?: readonly string[];
  /**
   * The trust domain the running controller serves (its xDS port admits
   * only proxies of it): a MeshConfig naming another is refused until a
   * restart, so a running mesh is never cut off from its proxies.
   */
  readonly runningTrustDomain?: string;
}

export interface MeshInputs extends LiveInputs {
  readonly documents: readonly InputDocument[];
  readonly problems: readonly InputProblem[];
  readonly certificates?: CertificateInputs;
}

export function formatOrigin(origin: Origin): string {
  const line = origin.line > 0 ? `:${origin.line}` : '';
  return `${origin.source}${line} (document ${origin.document + 1})`;
}

export function compareOrigins(a: Origin, b: Origin): number {
  if (a.source !== b.source) return a.source < b.source ? -1 : 1;
  return a.document - b.document;
}
