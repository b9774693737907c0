import { stringify } from 'yaml';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { didYouMean } from '../compiler/did-you-mean.js';
import { parseArgs } from 'node:util';
import { openProxyCertificateRecords } from '../adapters/ca/open.js';
import { identityOf } from '../compiler/ir/types.js';
import { UsageError } from './usage.js';
import { caChoice } from './ca-options.js';
import { columns } from '../output/render.js';
import { ADMIN_TOKEN_FILE, readAdminToken } from '../runtime/admin-auth.js';

export const HELP_CERTS = `smc certs list [--state DIR | --ca-root-secret NS/NAME] [-o json]
smc certs revoke (--serial SERIAL | --identity NS/SA) [--state DIR | --ca-root-secret NS/NAME]

Proxy certificates are the long-lived certificates 'smc bootstrap' writes for a
sidecar to authenticate to the xDS port. Each is UNCLAIMED until a proxy first
connects with it, then CLAIMED by that node id: one certificate, one node (a
second node presenting it is refused). A REVOKED one can no longer open a stream.
Service certificates (SDS) are not listed here: they are short-lived and renewed
by the controller.

Options:
      --state DIR          The controller's state folder (default .smc-state)
      --ca-root-secret NS/NAME
                           The root is in that Secret (as the controller's
                           --ca-root-secret): the records are ProxyCertificate
                           objects in its namespace, shared by every replica
      --kubeconfig FILE    With --ca-root-secret (default $KUBECONFIG,
                           ~/.kube/config or in-cluster)
  -o, --output json|yaml   Machine-readable list
      --serial SERIAL      Revoke one certificate (as 'smc certs list' prints it)
      --identity NS/SA     Revoke every proxy certificate of that identity
      --trust-domain TD    Trust domain of --identity (default cluster.local)
  -h, --help               Show this help

A revocation closes the streams open with that certificate within a second
(the running controller watches the state folder; on Kubernetes every replica
watches the ProxyCertificate objects). A damaged record file is
reported by name and the others keep working.

Exit status: 0 done; 1 nothing matched --serial/--identity, or a record could
not be read; 2 usage error.

Examples:
  smc certs list --state /var/lib/smc
  smc certs revoke --identity bookthief/bookthief --state /var/lib/smc
  smc certs list --ca-root-secret smc-system/smc-ca
`;

/** The options of `certsCommand` (its help lists each; completion and suggestions read them). */
export const OPTIONS_CERTS = {
  state: { type: 'string', default: '.smc-state' },
  output: { type: 'string', short: 'o' },
  serial: { type: 'string' },
  identity: { type: 'string' },
  'trust-domain': { type: 'string', default: 'cluster.local' },
  'ca-root-secret': { type: 'string' },
  kubeconfig: { type: 'string' },
  help: { type: 'boolean', short: 'h', default: false },
} as const;

export async function certsCommand(args: string[]): Promise<number> {
  const [sub, ...rest] = args;
  if (sub === '-h' || sub === '--help') {
    process.stdout.write(HELP_CERTS);
    return 0;
  }
  const { values } = parseArgs({
    args: rest,
    options: OPTIONS_CERTS,
  });
  if (values.help || sub === undefined || sub === 'help') {
    process.stdout.write(HELP_CERTS);
    return sub === undefined ? 2 : 0;
  }
  if (sub !== 'list' && sub !== 'revoke') {
    const close = didYouMean(sub, ['list', 'revoke']);
    throw new UsageError(`unknown subcommand ${JSON.stringify(sub)}${close ? `; did you mean "${close}"?` : ''} (list or revoke)`);
  }
  if (sub === 'revoke' && (values.serial === undefined) === (values.identity === undefined)) throw new UsageError('revoke needs exactly one of --serial SERIAL or --identity NS/SA');
  const choice = caChoice(values);
  // A folder with neither a mesh CA nor any record is not a controller's state folder: an empty list would mislead.
  if (choice.kind === 'internal' && !choice.rootSecret && !existsSync(join(values.state, 'ca', 'root.crt')) && !existsSync(join(values.state, 'proxy-certificates'))) {
    throw new UsageError(`${values.state} holds no mesh CA (no ca/root.crt) and no proxy-certificate records: give the controller's --state DIR, or --ca-root-secret NS/NAME on Kubernetes`);
  }
  const store = await openProxyCertificateRecords(choice, values.state);
  if (sub === 'list') {
    const { records, problems } = await store.list();
    // A damaged record is reported on its own; every other record is still listed.
    for (const p of problems) process.stderr.write(`smc certs: ${p}\n`);
    const code = problems.length > 0 ? 1 : 0;
    if (values.output === 'json' || values.output === 'yaml') {
      const doc = { proxyCertificates: records, problems };
      process.stdout.write(values.output === 'json' ? `${JSON.stringify(doc, null, 2)}\n` : stringify(doc, { lineWidth: 0 }));
      return code;
    }
    if (values.output !== undefined) throw new UsageError(`-o expects json or yaml, got ${JSON.stringify(values.output)}`);
    const header = ['SERIAL', 'IDENTITY', 'STATE', 'ISSUED', 'EXPIRES', 'CLAIMED BY'];
    const rows = records.map((r) => [r.serial, r.identity, r.state.toUpperCase(), r.issuedAt, r.notAfter, r.claimedBy ?? '']);
    process.stdout.write(columns([header, ...rows]));
    return code;
  }
  if (sub === 'revoke') {
    let which: { serial: string } | { identity: string };
    if (values.serial !== undefined) which = { serial: values.serial };
    else {
      const m = /^([a-z0-9][-a-z0-9.]*)\/([a-z0-9][-a-z0-9.]*)$/.exec(values.identity!);
      if (!m) throw new UsageError(`--identity expects NAMESPACE/SERVICEACCOUNT, got ${JSON.stringify(values.identity)}`);
      which = { identity: identityOf(values['trust-domain'], m[1]!, m[2]!) };
    }
    const { revoked, problems } = await store.revoke(which, new Date());
    for (const r of revoked) process.stdout.write(`revoked ${r.serial} (${r.identity})\n`);
    for (const p of problems) process.stderr.write(`smc certs revoke: ${p}; if it is a certificate of ${'identity' in which ? which.identity : 'this identity'}, it is NOT revoked\n`);
    if (revoked.length === 0) {
      process.stderr.write(`smc certs revoke: no unrevoked proxy certificate matches ${JSON.stringify(which)} in ${values.state}\n`);
      return 1;
    }
    return problems.length > 0 ? 1 : 0;
  }
  throw new UsageError(`unknown subcommand ${JSON.stringify(sub)}`);
}

export const HELP_CA = `smc ca rotate-root [--admin HOST:PORT] [--state DIR]

Asks a running controller (internal CA) to rotate the mesh root without
breaking traffic: (1) a new root joins every proxy's trust bundle; (2) once all
have acknowledged it, the new root signs and every service certificate is
re-issued; (3) once all have acknowledged those, the old root leaves the
bundle. It is kept (ca/retired-*, or in the root Secret) so proxy bootstrap certificates and
older bootstraps keep working on the xDS port. If a proxy does not acknowledge
in time the rotation pauses (exit 1, naming it); run the command again to
resume. Back up <state>/ca afterwards.

The admin port takes this only with the token in <state>/admin-token: --state
names the controller's state folder (default .smc-state).

Options:
      --admin HOST:PORT   The controller's admin port (default 127.0.0.1:15129)
      --state DIR         The controller's state folder, for the admin token
                          (default .smc-state)
  -h, --help              Show this help

Exit status: 0 rotated; 1 paused (a proxy did not acknowledge; run again to
resume) or refused; 2 usage error.

Example:
  smc ca rotate-root --state /var/lib/smc && smc proxy-status
`;

/** The options of `caCommand` (its help lists each; completion and suggestions read them). */
export const OPTIONS_CA = { admin: { type: 'string', default: '127.0.0.1:15129' }, state: { type: 'string', default: '.smc-state' }, help: { type: 'boolean', short: 'h', default: false } } as const;

export async function caCommand(args: string[]): Promise<number> {
  const [sub, ...rest] = args;
  if (sub === '-h' || sub === '--help') {
    process.stdout.write(HELP_CA);
    return 0;
  }
  const { values } = parseArgs({
    args: rest,
    options: OPTIONS_CA,
  });
  if (values.help || sub !== 'rotate-root') {
    process.stdout.write(HELP_CA);
    return values.help ? 0 : 2;
  }
  const token = await readAdminToken(values.state);
  if (token === undefined) {
    process.stderr.write(`smc ca rotate-root: no admin token in ${values.state} (${ADMIN_TOKEN_FILE}): give the running controller's --state\n`);
    return 2;
  }
  let res: Response;
  try {
    res = await fetch(`http://${values.admin}/ca/rotate-root`, { method: 'POST', headers: { authorization: `Bearer ${token}` } });
  } catch (e) {
    process.stderr.write(`smc ca: cannot reach the controller's admin port at ${values.admin}: ${(e as Error).message}\n`);
    return 3;
  }
  const body = (await res.json().catch(() => ({}))) as { rotated?: boolean; error?: string };
  if (body.rotated) {
    process.stdout.write('the mesh root was rotated; back up the state folder\'s ca/ now\n');
    return 0;
  }
  process.stderr.write(`smc ca rotate-root: ${body.error ?? `HTTP ${res.status}`}\n`);
  return 1;
}
