import { certificateRequest, certificateFacts, generateKeyPair, privateKeyToPem } from './x509.js';
import type { IssueOptions, Signer } from './signer.js';

/**
 * An external CA: CloudFlare's cfssl, over the HTTP API of `cfssl serve`
 * (POST /api/v1/cfssl/info for the CA certificate, /api/v1/cfssl/sign for a
 * CSR). smc makes the key and the CSR (SPIFFE URI SAN, plus DNS/IP names);
 * cfssl signs with the key it holds. It is the worked example of plugging in
 * an external CA: see signer.ts for the contract.
 *
 * cfssl decides the lifetime from its signing profile (`expiry`); smc asks
 * for a profile by name and renews by the certificate's real expiry. cfssl
 * must be 1.4 or later: older versions drop URI SANs, which this signer
 * detects and reports.
 */
export interface CfsslOptions {
  /** e.g. http://127.0.0.1:8888 */
  readonly url: string;
  /** Signing profile of the cfssl config; its default profile when unset. */
  readonly profile?: string;
}

interface CfsslResponse {
  success: boolean;
  result?: { certificate?: string };
  errors?: { code: number; message: string }[];
}

async function call(url: string, path: string, body: object): Promise<string> {
  let res: Response;
  try {
    res = await fetch(`${url.replace(/\/$/, '')}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body), signal: AbortSignal.timeout(10_000) });
  } catch (e) {
    throw new Error(`cfssl at ${url} is not reachable: ${(e as Error).message}`);
  }
  let json: CfsslResponse;
  try {
    json = (await res.json()) as CfsslResponse;
  } catch {
    throw new Error(`cfssl at ${url}${path} answered HTTP ${res.status} without JSON`);
  }
  if (!json.success || !json.result?.certificate) {
    throw new Error(`cfssl at ${url}${path} refused: ${(json.errors ?? []).map((e) => `${e.message} (code ${e.code})`).join('; ') || `HTTP ${res.status}`}`);
  }
  return json.result.certificate;
}

export async function openCfsslSigner(o: CfsslOptions): Promise<Signer> {
  const profile = o.profile ? { profile: o.profile } : {};
  const root = await call(o.url, '/api/v1/cfssl/info', profile);
  const bundle = root.endsWith('\n') ? root : `${root}\n`;
  return {
    name: `cfssl ${o.url}`,
    trustBundle: () => bundle,
    async issue(spiffeId: string, options: IssueOptions) {
      const keys = await generateKeyPair();
      const csr = await certificateRequest(spiffeId, keys, options);
      const pem = await call(o.url, '/api/v1/cfssl/sign', { certificate_request: csr, ...profile });
      const facts = certificateFacts(pem);
      if (!facts.uris.includes(spiffeId)) {
        throw new Error(`cfssl at ${o.url} signed a certificate without the URI SAN ${spiffeId} (found ${JSON.stringify(facts.uris)}): cfssl 1.4 or later is required`);
      }
      return { certificateChain: pem.endsWith('\n') ? pem : `${pem}\n`, privateKey: await privateKeyToPem(keys.privateKey), notAfter: facts.notAfter, issuedAt: new Date() };
    },
  };
}
