// Bearer-token check for mutating admin calls. Both sides are hashed before the
// constant-time compare so neither the token's content nor its length leaks
// through response timing (timingSafeEqual needs equal-length buffers).
import { createHash, timingSafeEqual } from 'node:crypto';
import { forbidden, unauthorized } from '../errors.js';

export interface Authorizer {
  /** True when a token is configured; without one every mutation is refused. */
  readonly isEnabled: boolean;
  /** Throws a DetourError (401 or 403) unless the Authorization header carries the token. */
  authorize(authorizationHeader: string | undefined): void;
}

// Lenient about the token's characters (RFC 6750 asks for token68) so an operator's
// token with, say, a '#' is compared rather than rejected as malformed.
const bearerPattern = /^Bearer[ \t]+([^ \t].*?)[ \t]*$/i;

export const tokenNotConfiguredMessage = 'admin token not configured; mutations are disabled';

export function createAuthorizer(token: string | undefined): Authorizer {
  // An unset ${DETOUR_ADMIN_TOKEN} interpolates to an empty string; that must not become "no password".
  const expected = token !== undefined && token.trim() !== '' ? hashToken(token) : undefined;
  return {
    isEnabled: expected !== undefined,
    authorize(header) {
      if (expected === undefined) throw forbidden(tokenNotConfiguredMessage);
      const match = header === undefined ? null : bearerPattern.exec(header);
      if (match === null) throw unauthorized();
      if (!timingSafeEqual(hashToken(match[1]!), expected)) throw forbidden('invalid admin token');
    },
  };
}

function hashToken(token: string): Buffer {
  return createHash('sha256').update(token, 'utf8').digest();
}
