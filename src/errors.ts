// Every error detour reports to a person or a client: a stable code, the HTTP
// status it maps to, and the original as `cause`. The admin server translates
// these to HTTP at one point; the admin client rebuilds them from answers, so a
// script sees the same code on both sides.

export type DetourErrorCode =
  | 'bad_request'
  | 'unauthorized'
  | 'forbidden'
  | 'not_found'
  | 'method_not_allowed'
  | 'conflict'
  | 'payload_too_large'
  | 'too_many_requests'
  | 'invalid_policy'
  | 'internal'
  | 'bad_response'
  | 'unreachable'
  | 'timeout'
  | 'not_applied';

export interface DetourErrorOptions {
  readonly cause?: unknown;
  /** Extra response headers the HTTP edge must send (Allow, WWW-Authenticate). */
  readonly headers?: Readonly<Record<string, string>>;
}

export class DetourError extends Error {
  override readonly name = 'DetourError';
  /** A DetourErrorCode, or whatever code a newer server sent. */
  readonly code: string;
  readonly status: number;
  readonly headers: Readonly<Record<string, string>>;

  constructor(code: string, status: number, message: string, opts: DetourErrorOptions = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.code = code;
    this.status = status;
    this.headers = opts.headers ?? {};
  }
}

export function isDetourError(e: unknown): e is DetourError {
  return e instanceof DetourError;
}

export function badRequest(message: string, cause?: unknown): DetourError {
  return new DetourError('bad_request', 400, message, { cause });
}

export function unauthorized(message = 'missing or malformed Authorization header; expected "Bearer <token>"'): DetourError {
  return new DetourError('unauthorized', 401, message, { headers: { 'www-authenticate': 'Bearer' } });
}

export function forbidden(message = 'invalid admin token'): DetourError {
  return new DetourError('forbidden', 403, message);
}

export function notFound(message: string): DetourError {
  return new DetourError('not_found', 404, message);
}

export function methodNotAllowed(method: string, path: string, allowed: readonly string[]): DetourError {
  return new DetourError('method_not_allowed', 405, `${method} is not allowed on ${path}; use ${allowed.join(', ')}`, {
    headers: { allow: allowed.join(', ') },
  });
}

export function conflict(message: string): DetourError {
  return new DetourError('conflict', 409, message);
}

export function payloadTooLarge(limitBytes: number): DetourError {
  return new DetourError('payload_too_large', 413, `request body is larger than ${limitBytes} bytes`);
}

/** Too many failed authentications from one address (see admin/auth-limiter.ts). */
export function tooManyRequests(retryAfterSeconds: number): DetourError {
  return new DetourError('too_many_requests', 429, `too many failed authentications from this address; retry in ${retryAfterSeconds}s`, {
    headers: { 'retry-after': String(retryAfterSeconds) },
  });
}

export function internalError(message: string, cause?: unknown): DetourError {
  return new DetourError('internal', 500, message, { cause });
}

/**
 * A command was taken, but not every worker process confirmed the route table
 * it produced in time (see workers/version-acks.ts): 503, and the caller should
 * look at /status before assuming it applies everywhere.
 */
export function notApplied(message: string): DetourError {
  return new DetourError('not_applied', 503, message);
}

/** The gateway could not be reached at all (no HTTP answer). */
export function unreachable(baseUrl: string, detail: string, cause?: unknown): DetourError {
  return new DetourError('unreachable', 503, `cannot reach detour admin API at ${baseUrl}: ${detail}`, { cause });
}

export function timedOut(baseUrl: string, timeoutMs: number, cause?: unknown): DetourError {
  return new DetourError('timeout', 504, `cannot reach detour admin API at ${baseUrl}: no answer within ${timeoutMs}ms`, { cause });
}

/** Something answered, but not like a detour admin API (a proxy page, HTML, truncated JSON). */
export function badResponse(message: string, status: number, cause?: unknown): DetourError {
  return new DetourError('bad_response', status >= 400 ? status : 502, message, { cause });
}

const codeByStatus: Readonly<Record<number, DetourErrorCode>> = {
  400: 'bad_request',
  401: 'unauthorized',
  403: 'forbidden',
  404: 'not_found',
  405: 'method_not_allowed',
  409: 'conflict',
  413: 'payload_too_large',
  422: 'invalid_policy',
  429: 'too_many_requests',
};

export function codeForStatus(status: number): string {
  return codeByStatus[status] ?? (status >= 500 ? 'internal' : 'bad_request');
}

/**
 * Wrap anything thrown into a DetourError. Unknown errors become a bare 500:
 * their message may carry internals, so it goes to the log (via cause), not to the client.
 */
export function toDetourError(e: unknown): DetourError {
  if (e instanceof DetourError) return e;
  return internalError('internal error', e);
}

/**
 * System error codes that mean detour itself ran out of something (file
 * descriptors): evidence about the gateway, never about the site it was
 * trying to reach. Probes and live traffic blame no site for them.
 */
export const LOCAL_CODES: ReadonlySet<string> = new Set(['EMFILE', 'ENFILE']);
