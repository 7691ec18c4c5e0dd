// Closing the gateway (SIGTERM) must not reset a request a client wrote on an
// idle keep-alive connection just before: it is answered, with `connection:
// close`, and only then is the connection closed. Found by the chaos suite
// (bench/chaos, "SIGTERM during a failover"): GETs sent ~50 ms before SIGTERM
// got ECONNRESET. New connections are refused as soon as closing starts.
import t from 'tap';
import { connect, type Socket } from 'node:net';
import { startRig } from '../helpers/gateway.js';
import { waitFor } from '../helpers/wait.js';

function port(url: string): number {
  return Number(new URL(url).port);
}

/** Reads one HTTP/1.1 response (Content-Length or chunked body) from the socket. */
function readResponse(socket: Socket): Promise<{ head: string; body: string }> {
  return new Promise((resolve, reject) => {
    let buf = '';
    const onData = (chunk: Buffer): void => {
      buf += chunk.toString('latin1');
      const end = buf.indexOf('\r\n\r\n');
      if (end === -1) return;
      const head = buf.slice(0, end);
      const rest = buf.slice(end + 4);
      let body: string;
      if (/transfer-encoding: chunked/i.test(head)) {
        const last = rest.indexOf('0\r\n\r\n');
        if (last === -1) return;
        body = rest.slice(0, last);
      } else {
        const length = Number(/content-length: (\d+)/i.exec(head)?.[1] ?? 0);
        if (rest.length < length) return;
        body = rest.slice(0, length);
      }
      socket.off('data', onData);
      socket.off('error', reject);
      resolve({ head, body });
    };
    socket.on('data', onData);
    socket.once('error', reject);
    socket.once('close', () => reject(new Error(`connection closed before a full response: ${JSON.stringify(buf)}`)));
  });
}

t.test('a request written on an idle keep-alive connection as close() starts is answered, then the connection closes', async (t) => {
  // Slow probes with a long timeout: on a loaded machine a 150 ms probe timeout can take the one site down.
  const rig = await startRig(t, [{ name: 'a', probe: { intervalMs: 1000, timeoutMs: 5000 } }], () => ({ routes: [{ name: 'r', sites: ['a'] }] }));
  await waitFor(async () => (await rig.admin('GET', '/status')).json.sites[0].health === 'up', { timeoutMs: 20_000, message: 'site a up' });
  const socket = connect(port(rig.gateway.proxyUrl), '127.0.0.1');
  t.teardown(() => socket.destroy());
  await new Promise((resolve) => socket.once('connect', resolve));
  socket.write('GET /one HTTP/1.1\r\nhost: x\r\n\r\n');
  const first = await readResponse(socket);
  t.match(first.head, /^HTTP\/1\.1 200/, 'first request served');
  t.match(first.head, /connection: keep-alive/i, 'and the connection kept open: it is idle now');

  const closing = rig.gateway.close();
  socket.write('GET /two HTTP/1.1\r\nhost: x\r\n\r\n');
  const ended = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  const second = await readResponse(socket);
  t.match(second.head, /^HTTP\/1\.1 200/, 'the request on the wire is answered, not reset');
  t.match(second.head, /connection: close/i, 'with connection: close');
  t.match(second.body, /"path":"\/two"/, 'by the site');
  await ended;
  t.pass('then the gateway closes the connection');

  const refused = await new Promise<string>((resolve) => {
    const s = connect(port(rig.gateway.proxyUrl), '127.0.0.1');
    s.once('connect', () => { s.destroy(); resolve('connected'); });
    s.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
  });
  t.equal(refused, 'ECONNREFUSED', 'new connections are refused once closing started');
  await closing;
});

t.test('close() with no open client connection does not linger', async (t) => {
  const rig = await startRig(t, [{ name: 'a' }], () => ({ routes: [{ name: 'r', sites: ['a'] }] }));
  const started = Date.now();
  await rig.gateway.close();
  t.ok(Date.now() - started < 400, `closed in ${Date.now() - started} ms`);
});

t.test('an idle connection nobody uses is closed after the linger, not kept for keepAliveTimeout', async (t) => {
  const rig = await startRig(t, [{ name: 'a' }], () => ({ routes: [{ name: 'r', sites: ['a'] }] }));
  const socket = connect(port(rig.gateway.proxyUrl), '127.0.0.1');
  t.teardown(() => socket.destroy());
  await new Promise((resolve) => socket.once('connect', resolve));
  socket.write('GET / HTTP/1.1\r\nhost: x\r\n\r\n');
  await readResponse(socket);
  const ended = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  socket.on('error', () => {});
  const started = Date.now();
  await rig.gateway.close();
  await ended;
  const tookMs = Date.now() - started;
  t.ok(tookMs < 5000, `closed in ${tookMs} ms`);
});
