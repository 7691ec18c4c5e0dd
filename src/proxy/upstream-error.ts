// Why one attempt at a site failed before it answered, in one place: a stable
// code, the status detour answers with when no other site can take the request,
// a detail in words for logs and passive health (`connect ECONNREFUSED`,
// `response timeout after 2000ms`), and the original error as `cause`.
import { LOCAL_CODES } from '../errors.js';
import { describeTlsError } from '../tls/client-tls.js';

export type UpstreamErrorCode =
  | 'connect_failed'    // refused, unreachable, DNS: nothing was sent
  | 'connect_timeout'   // no TCP connection within timeouts.connect
  | 'tls_failed'        // the TLS handshake failed (certificate not trusted, wrong name, protocol): nothing was sent
  | 'stale_connection'  // a pooled keep-alive connection the site had already closed: not the site's fault
  | 'reset'             // the connection died before response headers
  | 'response_timeout'  // the request was sent, but no response headers within timeouts.response
  | 'bad_response'      // the site answered something that is not (parseable) HTTP
  | 'local_error';      // detour itself is out of resources (no file descriptor): nobody's site is to blame

const statusByCode: Readonly<Record<UpstreamErrorCode, number>> = {
  connect_failed: 502,
  connect_timeout: 504,
  tls_failed: 502,
  stale_connection: 502,
  reset: 502,
  response_timeout: 504,
  bad_response: 502,
  local_error: 503,
};

export class UpstreamError extends Error {
  override readonly name = 'UpstreamError';
  readonly code: UpstreamErrorCode;
  /** What detour answers (502/504) when no other site can take the request. */
  readonly status: number;
  /** Short, bounded description: `connect ECONNREFUSED`, `response timeout after 2000ms`. */
  readonly detail: string;

  constructor(code: UpstreamErrorCode, detail: string, cause?: unknown) {
    super(detail, cause === undefined ? undefined : { cause });
    this.code = code;
    this.status = statusByCode[code];
    this.detail = detail;
  }
}

export function connectTimeout(ms: number): UpstreamError {
  return new UpstreamError('connect_timeout', `connect timeout after ${ms}ms`);
}

export function responseTimeout(ms: number): UpstreamError {
  return new UpstreamError('response_timeout', `response timeout after ${ms}ms`);
}

/**
 * Failures that prove the site never saw the request, so even a POST may go
 * to the next site. The request is written only after the TLS handshake.
 */
export function isNeverReached(code: UpstreamErrorCode): boolean {
  return code === 'connect_failed' || code === 'connect_timeout' || code === 'tls_failed';
}

/** What the attempt knew about its connection when the error came. */
export interface FailurePhase {
  /** The TCP connection was up: the same ECONNRESET means "refused by a firewall" before and "died while working" after. */
  readonly connected: boolean;
  /** The connection came from the pool and no byte of a response had arrived on it for this request. */
  readonly reusedAndSilent?: boolean;
}

/** Errors a keep-alive connection closed by the site shows on its next use. */
const STALE_CODES = new Set(['ECONNRESET', 'EPIPE', 'ECONNABORTED']);

/** Classify an error from the upstream request. */
export function toUpstreamError(err: unknown, phase: FailurePhase): UpstreamError {
  if (err instanceof UpstreamError) return err;
  const code = typeof (err as { code?: unknown })?.code === 'string' ? (err as { code: string }).code : undefined;
  const message = err instanceof Error ? err.message : String(err);
  if (code?.startsWith('HPE_')) return new UpstreamError('bad_response', `bad response (${code})`, err);
  if (code !== undefined && LOCAL_CODES.has(code)) return new UpstreamError('local_error', `gateway out of resources (${code})`, err);
  const tls = describeTlsError(err);
  if (tls !== undefined) return new UpstreamError('tls_failed', tls, err);
  if (!phase.connected) return new UpstreamError('connect_failed', `connect ${code ?? message}`, err);
  const words = message === 'socket hang up' ? 'socket hang up' : code ?? message;
  if (phase.reusedAndSilent && code !== undefined && STALE_CODES.has(code)) {
    return new UpstreamError('stale_connection', `reused connection closed by the site (${words})`, err);
  }
  return new UpstreamError('reset', words, err);
}
