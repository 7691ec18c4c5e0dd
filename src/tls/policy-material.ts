// Everything secret or cryptographic a policy points at, read from disk in one
// go: the listener's and the admin API's certificate pairs, the admin token
// (from admin.tokenFile), and each https:// site's trust. A reload reads it all
// again before anything is swapped, so a broken certificate pair or an empty
// token file keeps the running ones and fails the reload, naming the file.
import type { SecureContextOptions } from 'node:tls';
import type { ListenerTlsPolicy, Policy, PolicyError } from '../config/policy.js';
import { loadClientTls, type ClientTls } from './client-tls.js';
import { readKeyPair, readTokenFile } from './tls-files.js';

export interface PolicyMaterial {
  /** For https.createServer / setSecureContext; undefined = plain HTTP. */
  readonly listener?: SecureContextOptions;
  readonly admin?: SecureContextOptions;
  /** admin.token, or the contents of admin.tokenFile. */
  readonly adminToken?: string;
  /** Trust per https:// site URL. */
  readonly sites: ReadonlyMap<string, ClientTls>;
}

export type MaterialResult =
  | { readonly ok: true; readonly material: PolicyMaterial }
  | { readonly ok: false; readonly errors: readonly PolicyError[] };

export function loadPolicyMaterial(policy: Policy, nowMs: number): MaterialResult {
  const errors: PolicyError[] = [];
  // Positions were reported by the check pass when the file was parsed; this is
  // the same check again, so only a file changed in between can fail here.
  const fail = (path: string, message: string) => errors.push({ file: policy.file, line: 1, col: 1, path, message });
  const pair = (tls: ListenerTlsPolicy | undefined, path: string): SecureContextOptions | undefined => {
    if (tls === undefined) return undefined;
    const read = readKeyPair(tls.cert, tls.key, nowMs);
    if (!read.ok) {
      fail(`${path}.${read.at}`, read.message);
      return undefined;
    }
    return { cert: read.value.cert, key: read.value.key, minVersion: tls.minVersion };
  };
  const listener = pair(policy.listen.tls, 'listen.tls');
  const admin = pair(policy.admin.tls, 'admin.tls');
  let adminToken = policy.admin.token;
  if (policy.admin.tokenFile !== undefined) {
    const token = readTokenFile(policy.admin.tokenFile);
    if (token.ok) adminToken = token.value;
    else fail('admin.tokenFile', token.message);
  }
  const sites = new Map<string, ClientTls>();
  for (const site of policy.sites) {
    const trust = loadClientTls(site, nowMs);
    if (!trust.ok) fail(trust.path, trust.message);
    else if (trust.value !== undefined) sites.set(site.url, trust.value);
  }
  if (errors.length > 0) return { ok: false, errors };
  return {
    ok: true,
    material: { ...(listener && { listener }), ...(admin && { admin }), ...(adminToken !== undefined && { adminToken }), sites },
  };
}

/** Every file the material is read from, for watching: a rotated certificate reloads like an edited policy. */
export function materialFiles(policy: Policy): string[] {
  const files = [policy.listen.tls?.cert, policy.listen.tls?.key, policy.admin.tls?.cert, policy.admin.tls?.key, policy.admin.tokenFile];
  for (const site of policy.sites) files.push(site.tls?.ca, site.tls?.cert, site.tls?.key);
  return [...new Set(files.filter((f): f is string => f !== undefined))];
}
