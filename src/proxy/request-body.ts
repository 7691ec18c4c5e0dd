// Read a request body into memory when it is small enough to send twice.
// A body we hold in full can be re-sent byte for byte to the next site (whether
// the method allows sending it again is the exchange's call). A larger body
// streams through once and its request is never retried (we could not send it
// again). A body over the route's limit (limits.bodyBytes) is refused: at once
// when its Content-Length says so, or when the bytes counted so far pass it
// (chunked), even after streaming to a site has begun.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { PassThrough } from 'node:stream';
import type { OutgoingBody } from './http-proxy-adapter.js';

export type ReadBody =
  | OutgoingBody
  /** The client went away or broke the body before it was complete. */
  | { readonly kind: 'aborted'; readonly detail: string }
  /** More than the limit (413). */
  | { readonly kind: 'too_large' };

const NO_BODY: ReadBody = Object.freeze({ kind: 'none' });

/** True when the body can be sent again on a retry. */
export function isReplayable(body: OutgoingBody): boolean {
  return body.kind === 'none' || body.kind === 'buffered';
}

/**
 * `maxBytes`: the most held in memory (else streamed); `limitBytes`: the most
 * accepted at all. `onLimitExceeded` is called if a streamed body passes the
 * limit after this resolved; the stream is then cut off.
 *
 * The answer comes at once, not as a promise, when no byte has to be read to
 * know it (no body, or a declared length that settles it): that is most
 * requests, and a promise, its await and its microtask for each of them was
 * work the bare proxy does not do.
 */
export function readRequestBody(
  req: IncomingMessage, maxBytes: number, limitBytes = Number.POSITIVE_INFINITY, onLimitExceeded?: () => void,
): ReadBody | Promise<ReadBody> {
  const length = contentLength(req);
  const chunked = req.headers['transfer-encoding'] !== undefined;
  if (!chunked && (length === undefined || length === 0)) return NO_BODY;
  if (!chunked && length !== undefined && length > limitBytes) return { kind: 'too_large' };
  // A declared length above the limit: do not hold anything, stream it all.
  if (!chunked && length !== undefined && length > maxBytes) return { kind: 'stream' };

  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let total = 0;
    const finish = (result: ReadBody): void => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onError);
      req.off('close', onClose);
      resolve(result);
    };
    const onData = (chunk: Buffer): void => {
      chunks.push(chunk);
      total += chunk.length;
      if (total > limitBytes) {
        req.pause();
        finish({ kind: 'too_large' });
      } else if (total > maxBytes) {
        // Too big after all (chunked): forward what we have, then the rest, once.
        req.pause();
        const stream = new PassThrough();
        // The client's error ends this copy too, but only we listen on it (the
        // proxy pipes it without an error listener): unheard, the error would crash
        // the process. The request's own handlers answer for the broken upload.
        stream.on('error', () => {});
        for (const c of chunks) stream.write(c);
        finish({ kind: 'stream', stream });
        req.on('error', (err) => stream.destroy(err));
        const count = (more: Buffer): void => {
          total += more.length;
          if (total <= limitBytes) return;
          req.off('data', count);
          req.unpipe(stream);
          stream.destroy();
          onLimitExceeded?.();
        };
        req.on('data', count);
        req.pipe(stream);
      }
    };
    const onEnd = (): void => finish({ kind: 'buffered', bytes: Buffer.concat(chunks, total) });
    const onError = (err: Error): void => finish({ kind: 'aborted', detail: err.message });
    const onClose = (): void => {
      if (!req.complete) finish({ kind: 'aborted', detail: 'client closed the request before its body was complete' });
    };
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onError);
    req.on('close', onClose);
  });
}

function contentLength(req: IncomingMessage): number | undefined {
  const raw = req.headers['content-length'];
  if (raw === undefined) return undefined;
  const n = Number(raw);
  return Number.isSafeInteger(n) && n >= 0 ? n : undefined;
}

/**
 * After refusing a request whose body is still arriving: read and drop the
 * rest (so the client reads the answer instead of a reset), and close the
 * connection once the answer is out, at the latest `lingerMs` later.
 */
export function closeAfterAnswer(req: IncomingMessage, res: ServerResponse, lingerMs = 2000): void {
  res.shouldKeepAlive = false;
  req.unpipe();
  req.resume();
  res.once('finish', () => {
    const timer = setTimeout(() => req.socket.destroy(), lingerMs);
    timer.unref();
    req.socket.once('close', () => clearTimeout(timer));
  });
}
