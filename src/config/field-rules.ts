// Checks for single policy values (durations, URLs, names, numbers from the
// environment), shared by the schema and the cross-reference pass. Each returns
// a message an operator can act on, or the cleaned value.
import { isIP } from 'node:net';
import ms from 'ms';

/** Site, route and building names: safe in URLs, metric labels and log lines. */
export const NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;
export const NAME_RULE = "must start with a letter or digit and use only letters, digits, '.', '_' and '-'";

export type Checked<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly message: string };

const BARE_NUMBER = /^[-+]?(\d+\.?\d*|\.\d+)$/;

const MAX_DURATION_MS = 24 * 24 * 60 * 60 * 1000;

export function parseDurationMs(input: unknown): Checked<number> {
  if (input === null) return { ok: false, message: 'is empty (expected a duration like 500ms, 2s or 5m)' };
  if (typeof input === 'number' || (typeof input === 'string' && BARE_NUMBER.test(input.trim()))) {
    // A bare 30 could mean seconds or milliseconds; guessing wrong by 1000x is worse than asking.
    return { ok: false, message: `needs a unit: write ${String(input).trim()}ms or ${String(input).trim()}s, not a bare number` };
  }
  if (typeof input !== 'string') return { ok: false, message: `must be a duration like 500ms, 2s or 5m (got ${describeValue(input)})` };
  const text = input.trim();
  const value = text === '' ? undefined : (ms(text as ms.StringValue) as number | undefined);
  if (value === undefined || !Number.isFinite(value)) {
    return { ok: false, message: `"${input}" is not a duration (use a number and a unit: 250ms, 2s, 5m, 1h)` };
  }
  if (value < 0) return { ok: false, message: `"${input}" is negative; durations must be 0 or more` };
  // Node's timers hold at most 2^31-1 ms (about 24.8 days); a longer one fires after 1 ms.
  if (value > MAX_DURATION_MS) return { ok: false, message: `"${input}" is too long; durations must be at most 24d` };
  return { ok: true, value: Math.round(value) };
}

export interface UrlRule {
  readonly schemes: readonly string[];
  /** Webhooks often carry a token in the query; upstream base URLs must not. */
  readonly allowQuery: boolean;
  readonly allowCredentials: boolean;
  readonly example: string;
}

export function checkUrl(input: unknown, rule: UrlRule): Checked<string> {
  if (input === null) return { ok: false, message: `is empty (expected a URL like ${rule.example})` };
  if (typeof input !== 'string') return { ok: false, message: `must be a URL like ${rule.example} (got ${describeValue(input)})` };
  const text = input.trim();
  if (!text.includes('://')) {
    // `10.0.0.10:8080` or `localhost:8080` would otherwise parse with a bogus scheme.
    return { ok: false, message: `"${input}" is not a URL: write the scheme too, like ${rule.example}` };
  }
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return { ok: false, message: `"${input}" is not a valid URL (expected something like ${rule.example})` };
  }
  const scheme = url.protocol.slice(0, -1);
  const schemes = rule.schemes.join(' or ');
  if (!rule.schemes.includes(scheme)) return { ok: false, message: `"${input}" must use ${schemes}, not ${scheme}` };
  if (url.hostname === '') return { ok: false, message: `"${input}" has no host` };
  if (url.hash !== '' || text.includes('#')) return { ok: false, message: `"${input}" must not have a #fragment` };
  if (!rule.allowQuery && (url.search !== '' || text.includes('?'))) {
    return { ok: false, message: `"${input}" must not have a ?query (a base path like /api is fine)` };
  }
  if (!rule.allowCredentials && (url.username !== '' || url.password !== '')) {
    return { ok: false, message: `"${input}" must not contain a user or password` };
  }
  return { ok: true, value: text };
}

export const UPSTREAM_URL: UrlRule = { schemes: ['http', 'https'], allowQuery: false, allowCredentials: false, example: 'http://10.0.0.10:8080' };
export const WEBHOOK_URL: UrlRule = { schemes: ['http', 'https'], allowQuery: true, allowCredentials: false, example: 'https://hooks.example.go.id/detour' };
export const REDIS_URL: UrlRule = { schemes: ['redis', 'rediss'], allowQuery: true, allowCredentials: true, example: 'redis://127.0.0.1:6379/0' };

const HOST_LABEL = '[a-z0-9](?:[a-z0-9-]*[a-z0-9])?';
const HOST_PATTERN = new RegExp(`^(?:\\*\\.)?${HOST_LABEL}(?:\\.${HOST_LABEL})*$`);

/** Route hosts compare case-insensitively, so they are stored in lower case; `*.` matches any subdomain. */
export function checkHostPattern(input: string): Checked<string> {
  const host = input.trim().toLowerCase();
  if (!HOST_PATTERN.test(host)) {
    return { ok: false, message: `"${input}" is not a host name; write it like ceir.example.go.id or *.example.go.id (no scheme, port or path)` };
  }
  return { ok: true, value: host };
}

export function checkRequestPath(input: string): Checked<string> {
  if (!input.startsWith('/')) return { ok: false, message: `"${input}" must start with /` };
  if (/\s/.test(input)) return { ok: false, message: `"${input}" must not contain spaces` };
  return { ok: true, value: input };
}

/** Numbers that came in through `${VAR}` arrive as text; take them as numbers. */
export function coerceNumber(input: unknown): unknown {
  if (typeof input === 'string' && /^\s*[-+]?(\d+\.?\d*|\.\d+)\s*$/.test(input)) return Number(input);
  return input;
}

export function describeValue(input: unknown): string {
  if (input === undefined) return 'nothing';
  if (input === null) return 'an empty value';
  if (Array.isArray(input)) return 'a list';
  if (typeof input === 'string') return JSON.stringify(input.length > 40 ? `${input.slice(0, 40)}…` : input);
  if (typeof input === 'object') return 'a map';
  return String(input);
}

// --- Edge limits: byte sizes and CIDRs (limits, routes[].limits, trustedProxies) ---

const BYTE_UNITS: Readonly<Record<string, number>> = { b: 1, kb: 1024, mb: 1024 ** 2, gb: 1024 ** 3 };
const MAX_BYTES = 1024 ** 4;

/** `16384`, `16kb`, `10mb`, `1gb` -> bytes (k/m/g are powers of 1024, as in nginx). */
export function parseByteSize(input: unknown): Checked<number> {
  const example = 'a size like 16384, 64kb or 10mb';
  if (input === null) return { ok: false, message: `is empty (expected ${example})` };
  if (typeof input === 'number') {
    if (!Number.isSafeInteger(input) || input < 0) return { ok: false, message: `must be a whole number of bytes, 0 or more (got ${input})` };
    return input > MAX_BYTES ? { ok: false, message: 'must be at most 1024gb' } : { ok: true, value: input };
  }
  if (typeof input !== 'string') return { ok: false, message: `must be ${example} (got ${describeValue(input)})` };
  const match = /^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$/i.exec(input);
  const unit = match?.[2]?.toLowerCase() || 'b';
  const factor = BYTE_UNITS[unit];
  if (!match || factor === undefined) return { ok: false, message: `"${input}" is not a size (use b, kb, mb or gb: 16kb, 10mb)` };
  const value = Math.round(Number(match[1]) * factor);
  return value > MAX_BYTES ? { ok: false, message: `"${input}" is too large; at most 1024gb` } : { ok: true, value };
}

/** `10.0.0.0/8`, `2001:db8::/32`, or one address (a /32 or /128). */
export function checkCidr(input: unknown): Checked<string> {
  const example = 'a CIDR like 10.0.0.0/8 or an address like 192.0.2.7';
  if (typeof input !== 'string') return { ok: false, message: `must be ${example} (got ${describeValue(input)})` };
  const text = input.trim();
  const [address = '', bits, extra] = text.split('/');
  const family = isIP(address);
  if (family === 0 || extra !== undefined) return { ok: false, message: `"${input}" is not ${example}` };
  if (bits !== undefined) {
    const max = family === 4 ? 32 : 128;
    if (!/^\d{1,3}$/.test(bits) || Number(bits) > max) return { ok: false, message: `"${input}": the prefix length must be 0 to ${max}` };
  }
  return { ok: true, value: text };
}
