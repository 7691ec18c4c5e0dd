// Long-lived connections and evacuation: a WebSocket open through detour to a
// building that is then drained is cut, and the client's reconnect lands on the
// other building.
import t from 'tap';
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { Registry } from 'prom-client';
import { startGateway } from '../../src/gateway.js';
import { silentLogger } from '../../src/logger.js';
import { testPolicy } from '../helpers/policy.js';
import { TOKEN, fastHealth } from '../helpers/gateway.js';
import { once } from '../helpers/wait.js';

/** A site that passes its health checks and echoes WebSocket frames prefixed with its name. */
async function startSite(name: string): Promise<{ url: string; close(): Promise<void> }> {
  const upgraded = new Set<Duplex>();
  const server = http.createServer((req, res) => { req.resume(); res.writeHead(200).end('ok'); });
  server.on('upgrade', (_req, socket: Duplex) => {
    upgraded.add(socket);
    socket.on('close', () => upgraded.delete(socket));
    socket.on('error', () => {});
    socket.on('end', () => socket.end());
    socket.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n');
    socket.on('data', (d: Buffer) => socket.write(`${name}:${d.toString()}`));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () => {
      for (const s of upgraded) s.destroy();
      server.closeAllConnections();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

async function openWs(base: string): Promise<{ socket: Socket; site: string }> {
  const req = http.request(`${base}/live`, {
    agent: false,
    headers: { connection: 'Upgrade', upgrade: 'websocket', 'sec-websocket-version': '13', 'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==' },
  });
  req.end();
  const [res, socket] = (await once(req, 'upgrade', 5000)) as [http.IncomingMessage, Socket];
  socket.on('error', () => {});
  return { socket, site: String(res.headers['x-detour-site']) };
}

t.test('draining a building cuts WebSockets into it; the reconnect lands on the other building', async (t) => {
  const cyber1 = await startSite('cyber1');
  const serpong = await startSite('serpong');
  t.teardown(() => cyber1.close());
  t.teardown(() => serpong.close());
  const policy = testPolicy({
    admin: { token: TOKEN },
    sites: [
      { name: 'cyber1', url: cyber1.url, building: 'gedung-cyber-1', health: fastHealth },
      { name: 'serpong', url: serpong.url, building: 'serpong-dc', health: fastHealth },
    ],
    routes: [{ name: 'live', sites: ['cyber1', 'serpong'] }],
  });
  const gateway = await startGateway({ policy, logger: silentLogger(), registry: new Registry() });
  t.teardown(() => gateway.close());

  const first = await openWs(gateway.proxyUrl);
  t.teardown(() => first.socket.destroy());
  t.equal(first.site, 'cyber1');
  first.socket.write('hello');
  t.equal(String((await once(first.socket, 'data', 3000))[0]), 'cyber1:hello');

  const closed = once(first.socket, 'close', 5000);
  const res = await fetch(`${gateway.adminUrl}/drain`, {
    method: 'POST', headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
    body: JSON.stringify({ building: 'gedung-cyber-1' }),
  });
  t.equal(res.status, 200);
  await closed;
  t.pass('the WebSocket into the drained building was cut');

  const second = await openWs(gateway.proxyUrl);
  t.teardown(() => second.socket.destroy());
  t.equal(second.site, 'serpong', 'the reconnect goes to the other building');
  second.socket.write('again');
  t.equal(String((await once(second.socket, 'data', 3000))[0]), 'serpong:again');
});
