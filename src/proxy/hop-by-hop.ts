// Hop-by-hop headers describe one connection, not the message (RFC 9110 7.6.1):
// a proxy must not pass them on. Besides the fixed list, any header named in
// `Connection` is hop-by-hop for that message.
import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http';

const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'te', 'trailer', 'transfer-encoding', 'upgrade']);

function connectionTokens(headers: IncomingHttpHeaders): Set<string> {
  const raw = headers.connection;
  const list = Array.isArray(raw) ? raw.join(',') : raw ?? '';
  return new Set(list.split(',').map((t) => t.trim().toLowerCase()).filter(Boolean));
}

function isHopByHop(name: string, named: ReadonlySet<string>): boolean {
  const n = name.toLowerCase();
  return HOP_BY_HOP.has(n) || n.startsWith('proxy-') || named.has(n);
}

/** End-to-end headers only; the input is not changed. */
export function stripHopByHop(headers: IncomingHttpHeaders): OutgoingHttpHeaders {
  const named = connectionTokens(headers);
  const out: OutgoingHttpHeaders = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value !== undefined && !isHopByHop(name, named)) out[name] = value;
  }
  return out;
}
