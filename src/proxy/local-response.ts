// Answers detour writes itself (no route, no site, site failed). Short text a
// person can read in curl output, never a stack trace, and never a second
// response on top of a half-sent one.
import { STATUS_CODES, type ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';

export interface LocalAnswer {
  readonly status: number;
  readonly message: string;
  readonly headers?: Readonly<Record<string, string>>;
}

/** Write a complete response; if one was already started, the best we can do is cut it off. */
export function sendLocal(res: ServerResponse, answer: LocalAnswer): void {
  if (res.destroyed || res.writableEnded) return;
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const body = `${answer.message}\n`;
  res.writeHead(answer.status, {
    'content-type': 'text/plain; charset=utf-8',
    'content-length': Buffer.byteLength(body),
    'cache-control': 'no-store',
    ...answer.headers,
  });
  res.end(body);
}

/** The same on a raw socket, for upgrade requests that get no upgrade; the socket is ended after. */
export function sendLocalOnSocket(socket: Duplex, answer: LocalAnswer): void {
  if (socket.destroyed || !socket.writable) {
    socket.destroy();
    return;
  }
  const body = `${answer.message}\n`;
  const headers: Record<string, string | number> = {
    'content-type': 'text/plain; charset=utf-8',
    'content-length': Buffer.byteLength(body),
    connection: 'close',
    ...answer.headers,
  };
  const lines = [`HTTP/1.1 ${answer.status} ${STATUS_CODES[answer.status] ?? 'Error'}`];
  for (const [name, value] of Object.entries(headers)) lines.push(`${name}: ${value}`);
  socket.end(`${lines.join('\r\n')}\r\n\r\n${body}`);
}
