// Hop-by-hop headers describe one connection, not the message (RFC 9110 7.6.1):
// a proxy must not pass them on. Besides the fixed list, any header named in
// `Connection` is hop-by-hop for that message, except the end-to-end fields
// below: RFC 9110 says a sender must not name them there, and honouring it
// would let a client strip what the site relies on (`Connection: close, host`
// made the site see its own address as Host and serve its default virtual
// host), or a site strip what the client relies on.
import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http';

const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'te', 'trailer', 'transfer-encoding', 'upgrade']);

/** Fields meant for every recipient: `Connection` cannot make detour drop them. */
const END_TO_END = new Set([
  'host', 'content-length', 'content-type', 'content-encoding', 'content-language', 'content-location', 'content-range',
  'authorization', 'cookie', 'set-cookie', 'cache-control', 'pragma', 'expires', 'age', 'date', 'etag', 'last-modified',
  'location', 'vary', 'www-authenticate', 'range', 'accept-ranges', 'if-match', 'if-none-match', 'if-modified-since',
  'if-unmodified-since', 'if-range', 'accept', 'accept-encoding', 'accept-language', 'origin', 'referer', 'user-agent',
  'forwarded', 'x-forwarded-for', 'x-forwarded-host', 'x-forwarded-proto', 'x-forwarded-port', 'x-real-ip',
  'strict-transport-security', 'content-security-policy', 'x-detour-site', 'x-detour-epoch',
]);

/**
 * Headers a `Connection` value names, beyond the fixed list; undefined when it
 * names none (almost every request: no header, or `keep-alive` / `close`), so
 * the common case allocates nothing.
 */
function connectionTokens(headers: IncomingHttpHeaders): Set<string> | undefined {
  const raw = headers.connection;
  if (raw === undefined || raw === '') return undefined;
  if (typeof raw === 'string') {
    const simple = raw.length <= 10 ? raw.toLowerCase() : '';
    if (simple === 'keep-alive' || simple === 'close') return undefined;
  }
  const list = Array.isArray(raw) ? raw.join(',') : raw;
  const named = new Set(list.split(',').map((t) => t.trim().toLowerCase()).filter((t) => t !== '' && !END_TO_END.has(t)));
  return named.size === 0 ? undefined : named;
}

function isHopByHop(name: string, named: ReadonlySet<string> | undefined): boolean {
  const n = name.toLowerCase();
  return HOP_BY_HOP.has(n) || n.startsWith('proxy-') || (named !== undefined && named.has(n));
}

/** End-to-end headers only; the input is not changed. */
export function stripHopByHop(headers: IncomingHttpHeaders): OutgoingHttpHeaders {
  return copyEndToEnd(headers, {});
}

/**
 * Copy the end-to-end headers of `headers` into `out` (which is returned), in
 * one pass: the request path builds the outgoing headers this way without an
 * intermediate object.
 */
export function copyEndToEnd<T extends OutgoingHttpHeaders>(headers: IncomingHttpHeaders, out: T): T {
  const named = connectionTokens(headers);
  for (const name in headers) {
    const value = headers[name];
    if (value !== undefined && !isHopByHop(name, named)) (out as OutgoingHttpHeaders)[name] = value;
  }
  return out;
}
