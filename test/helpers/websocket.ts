// WebSocket test tools without a WebSocket library: a site that passes its
// health checks and echoes frames prefixed with its name, and a raw client
// handshake through detour. Frames are plain bytes here; framing does not matter
// to a proxy that relays both ways.
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { once } from './wait.js';

export interface Teardown {
  teardown(fn: () => unknown): void;
}

export interface WsSite {
  readonly url: string;
  /** Upgraded connections the site still has open. */
  readonly open: Set<Duplex>;
}

/** A site answering 200 to plain requests (health checks) and echoing WebSocket frames as `<name>:<frame>`. */
export async function startWsSite(t: Teardown, name: string): Promise<WsSite> {
  const open = new Set<Duplex>();
  const server = http.createServer((req, res) => { req.resume(); res.writeHead(200).end('ok'); });
  server.on('upgrade', (_req, socket: Duplex) => {
    open.add(socket);
    socket.on('close', () => open.delete(socket));
    socket.on('error', () => {});
    // The server socket allows half-open connections; a WebSocket server closes when its peer does.
    socket.on('end', () => socket.end());
    socket.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n');
    socket.on('data', (d: Buffer) => socket.write(`${name}:${d.toString()}`));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => {
    // Upgraded sockets are no longer the HTTP server's: close them ourselves.
    for (const s of open) s.destroy();
    server.closeAllConnections();
    return new Promise<void>((resolve) => server.close(() => resolve()));
  });
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, open };
}

/** A WebSocket handshake to `url`; resolves once upgraded, with the site that took it (x-detour-site). */
export async function openWs(t: Teardown, url: string): Promise<{ socket: Socket; site: string }> {
  const req = http.request(url, {
    agent: false,
    headers: { connection: 'Upgrade', upgrade: 'websocket', 'sec-websocket-version': '13', 'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==' },
  });
  req.end();
  const [res, socket] = (await once(req, 'upgrade', 5000)) as [http.IncomingMessage, Socket];
  socket.on('error', () => {});
  t.teardown(() => socket.destroy());
  if (res.statusCode !== 101) throw new Error(`handshake answered ${res.statusCode}`);
  return { socket, site: String(res.headers['x-detour-site']) };
}
