// What one client may cost the listener (policy `limits`): header bytes, how
// long the request head and the whole request may take, keep-alive idleness,
// and connections at once. Node enforces all of them itself once they are set;
// what it needs from us is a checking interval short enough to matter (it looks
// for expired heads and requests only every 30 s by default, so one laptop
// trickling bytes could hold every socket for half a minute past the limit)
// and answers that say which limit was hit.
import type { Server, ServerOptions } from 'node:http';
import type { Duplex } from 'node:stream';
import type { LimitsPolicy } from '../config/policy.js';

/** How often Node looks for heads and requests past their timeout: limits hold within about this much. */
export const CONNECTIONS_CHECKING_INTERVAL_MS = 500;

/** Options for http.createServer / https.createServer; the interval can only be set here. */
export function clientServerOptions(limits: LimitsPolicy): ServerOptions {
  return {
    maxHeaderSize: limits.headerBytes,
    headersTimeout: limits.headersTimeoutMs,
    requestTimeout: limits.requestTimeoutMs,
    keepAliveTimeout: limits.keepAliveTimeoutMs,
    connectionsCheckingInterval: CONNECTIONS_CHECKING_INTERVAL_MS,
    // RFC 9112 3.2: an HTTP/1.1 request without Host is refused.
    requireHostHeader: true,
  };
}

/**
 * Apply (new) limits to a running server. Node reads them per connection or at
 * each check, so a reload takes effect for new connections and heads at once.
 */
export function applyClientLimits(server: Server, limits: LimitsPolicy): void {
  // Not in @types/node, but read by Node for every new connection.
  (server as Server & { maxHeaderSize: number }).maxHeaderSize = limits.headerBytes;
  server.headersTimeout = limits.headersTimeoutMs;
  server.requestTimeout = limits.requestTimeoutMs;
  server.keepAliveTimeout = limits.keepAliveTimeoutMs;
  // Connections beyond this are closed as soon as they are accepted.
  server.maxConnections = limits.maxConnections;
}

/** The answer to a request Node could not parse or that ran out of time, by Node's error code. */
export function clientErrorStatus(err: Error): number {
  const code = (err as { code?: unknown }).code;
  if (code === 'HPE_HEADER_OVERFLOW') return 431;
  if (code === 'ERR_HTTP_REQUEST_TIMEOUT') return 408;
  return 400;
}

const REASONS: Readonly<Record<number, string>> = {
  400: 'Bad Request', 408: 'Request Timeout', 431: 'Request Header Fields Too Large',
};

/**
 * Node's `clientError`: answer once and close the connection for good (a
 * half-close would leave a trickling client holding the socket). A response
 * that had already started on this socket cannot be followed by another one.
 * Returns the status sent, or undefined when there was no one to answer (the
 * client reset the connection, which Node reports here too).
 */
export function answerClientError(err: Error, socket: Duplex): number | undefined {
  const status = clientErrorStatus(err);
  const code = (err as { code?: unknown }).code;
  const started = (socket as { _httpMessage?: { headersSent?: boolean } })._httpMessage?.headersSent === true;
  if (code === 'ECONNRESET' || code === 'EPIPE' || !socket.writable) {
    socket.destroy();
    return undefined;
  }
  if (!started) {
    const body = `detour: ${REASONS[status]!.toLowerCase()}\n`;
    socket.end(`HTTP/1.1 ${status} ${REASONS[status]!}\r\ncontent-type: text/plain; charset=utf-8\r\n`
      + `content-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`, () => socket.destroy());
    return status;
  }
  socket.destroy();
  return undefined;
}
