// The trust detour places in an https:// site, built once per policy load and
// used by everything that talks to the site (live traffic, probes, integrity
// checks), so a probe can never pass on a certificate live traffic would
// refuse, or the other way round.
//
// The name checked is always the site's own (tls.servername, else the URL's
// host), and it is what SNI carries: Node's agent would otherwise take SNI
// and the name to verify from the request's Host header, which is the
// client's, so a client could choose which certificate the site must show.
import { createHash } from 'node:crypto';
import { isIP } from 'node:net';
import { checkServerIdentity, type ConnectionOptions, type PeerCertificate } from 'node:tls';
import type { SitePolicy } from '../config/policy.js';
import { readCaFile, readKeyPair } from './tls-files.js';

export type ClientTlsOptions = Pick<ConnectionOptions, 'ca' | 'cert' | 'key' | 'servername' | 'rejectUnauthorized' | 'checkServerIdentity'>;

export interface ClientTls {
  /** Changes whenever anything that decides trust changes (file contents included): connection pools are keyed by it. */
  readonly id: string;
  /** The name the site's certificate must carry. */
  readonly name: string;
  readonly options: ClientTlsOptions;
}

export type ClientTlsResult =
  | { readonly ok: true; readonly value: ClientTls | undefined }
  | { readonly ok: false; readonly path: string; readonly message: string };

/** Trust for one site; undefined for http:// sites. Reads the files the site's tls block names. */
export function loadClientTls(site: SitePolicy, nowMs: number): ClientTlsResult {
  let url: URL;
  try {
    url = new URL(site.url);
  } catch {
    return { ok: true, value: undefined };
  }
  if (url.protocol !== 'https:') return { ok: true, value: undefined };
  const tls = site.tls;
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
  const name = tls?.servername ?? host;
  const verify = tls?.verify ?? true;
  const hash = createHash('sha256').update(JSON.stringify([name, verify]));
  const options: { -readonly [K in keyof ClientTlsOptions]: ClientTlsOptions[K] } = {
    // SNI may not carry an IP address; '' also stops Node from using the Host header.
    servername: isIP(name) === 0 ? name : '',
    rejectUnauthorized: verify,
    checkServerIdentity: verify ? (_host: string, cert: PeerCertificate) => checkName(name, cert) : () => undefined,
  };
  if (tls?.ca !== undefined) {
    const ca = readCaFile(tls.ca);
    if (!ca.ok) return { ok: false, path: `sites.${site.name}.tls.ca`, message: ca.message };
    options.ca = ca.value;
    hash.update(ca.value);
  }
  if (tls?.cert !== undefined && tls.key !== undefined) {
    const pair = readKeyPair(tls.cert, tls.key, nowMs);
    if (!pair.ok) return { ok: false, path: `sites.${site.name}.tls.${pair.at}`, message: pair.message };
    options.cert = pair.value.cert;
    options.key = pair.value.key;
    hash.update(pair.value.cert).update(pair.value.key);
  }
  return { ok: true, value: Object.freeze({ id: hash.digest('hex').slice(0, 16), name, options: Object.freeze(options) }) };
}

/** Node's own name check, against the site's name whatever host the connection was opened with. */
function checkName(name: string, cert: PeerCertificate): Error | undefined {
  const err = checkServerIdentity(name, cert);
  if (err !== undefined) Object.assign(err, { host: name });
  return err;
}

/**
 * A TLS failure in words an operator can act on, or undefined when `err` is
 * not one: `certificate signed by unknown authority`, `name mismatch: ceir.internal`.
 */
export function describeTlsError(err: unknown): string | undefined {
  const e = err as { code?: unknown; host?: unknown; message?: unknown } | null;
  const code = typeof e?.code === 'string' ? e.code : undefined;
  if (code === undefined) return undefined;
  if (UNKNOWN_AUTHORITY.has(code)) return 'certificate signed by unknown authority';
  if (code === 'ERR_TLS_CERT_ALTNAME_INVALID') return `name mismatch: ${typeof e?.host === 'string' ? e.host : 'the site name'}`;
  if (code === 'CERT_HAS_EXPIRED') return 'certificate expired';
  if (code === 'CERT_NOT_YET_VALID') return 'certificate not yet valid';
  if (code === 'CERT_REVOKED') return 'certificate revoked';
  if (code.startsWith('ERR_SSL_') || code === 'EPROTO' || code.startsWith('ERR_TLS_')) {
    const message = typeof e?.message === 'string' ? e.message.split('\n')[0]!.replace(/^[\w:]*error:[0-9A-F]*:/i, '').slice(0, 120) : code;
    return `TLS handshake failed: ${message}`;
  }
  if (/CERT|SIGNATURE|ISSUER|CHAIN/.test(code) && !code.startsWith('E')) return `certificate not accepted (${code})`;
  return undefined;
}

const UNKNOWN_AUTHORITY = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'UNABLE_TO_GET_ISSUER_CERT', 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'SELF_SIGNED_CERT_IN_CHAIN', 'DEPTH_ZERO_SELF_SIGNED_CERT',
]);
