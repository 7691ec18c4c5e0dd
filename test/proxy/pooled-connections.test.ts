// Keep-alive connections the site has already closed: the pool's problem, not
// the site's. And idle pooled connections are dropped before a site's own
// keep-alive timeout is likely to close them under us.
import t from 'tap';
import net, { type AddressInfo } from 'node:net';
import { startFakeSite } from '../helpers/fake-site.js';
import { testPolicy, type TestRouteInput } from '../helpers/policy.js';
import { waitFor } from '../helpers/wait.js';
import { silentLogger } from '../../src/logger.js';
import { createProxyEngine } from '../../src/proxy/http-proxy-adapter.js';
import { defaultAgentLimits } from '../../src/proxy/upstream-agents.js';
import { request, startHarness, startServer, type Cleanup } from './fixtures/proxy-harness.js';

/**
 * A site that answers the first request on each connection with keep-alive,
 * then resets the connection when a second request arrives on it: what a site
 * does when its keep-alive timeout closes the connection just as we reuse it.
 */
async function startClosingSite(t: Cleanup): Promise<{ url: string; served: string[]; resets: number }> {
  const state = { url: '', served: [] as string[], resets: 0 };
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    let requests = 0;
    let buffered = '';
    let bodyLeft = 0;
    const answer = (): void => { socket.write('HTTP/1.1 200 OK\r\ncontent-length: 4\r\nconnection: keep-alive\r\n\r\nsite'); };
    socket.on('data', (d: Buffer) => {
      if (bodyLeft > 0) {
        bodyLeft -= d.length;
        if (bodyLeft <= 0) answer();
        return;
      }
      buffered += d.toString('latin1');
      const end = buffered.indexOf('\r\n\r\n');
      if (end === -1) return;
      const head = buffered.slice(0, end);
      const bodyHere = buffered.length - end - 4;
      buffered = '';
      requests++;
      if (requests > 1) {
        state.resets++;
        socket.resetAndDestroy();
        return;
      }
      state.served.push(head.split(' ')[1] ?? '');
      bodyLeft = Number(/content-length:\s*(\d+)/i.exec(head)?.[1] ?? 0) - bodyHere;
      if (bodyLeft <= 0) answer();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => {
    for (const s of sockets) s.destroy();
    return new Promise<void>((resolve) => server.close(() => resolve()));
  });
  state.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return state;
}

async function setup(t: Cleanup, route: Partial<TestRouteInput> = {}) {
  const a = await startClosingSite(t);
  const b = await startFakeSite({ name: 'b' });
  t.teardown(() => b.close());
  const policy = testPolicy({
    sites: [{ name: 'a', url: a.url }, { name: 'b', url: b.url }],
    routes: [{ name: 'r', sites: ['a', 'b'], ...route }],
  });
  const h = await startHarness(policy);
  t.teardown(() => h.close());
  // The first request leaves a pooled connection behind.
  const first = await request(h.url, '/first');
  if (first.text !== 'site') throw new Error(`setup: first request got ${first.status} ${first.text}`);
  return { a, b, h };
}

t.test('a stale pooled connection: same site again on a new connection, site not blamed', async (t) => {
  const { a, b, h } = await setup(t);
  const res = await request(h.url, '/second');
  t.equal(res.status, 200);
  t.equal(res.headers['x-detour-site'], 'a', 'served by the same site');
  t.equal(a.resets, 1, 'the pooled connection really was reset');
  t.same(a.served, ['/first', '/second']);
  t.equal(b.counts.traffic, 0, 'not moved to another site');
  t.same(h.passive.failed, [], 'no passive failure');
  t.equal(await h.metric('detour_retries_total', { route: 'r', from: 'a', to: 'b' }), 0);
});

t.test('a stale pooled connection under a streamed body: 502, site not blamed', async (t) => {
  const { a, b, h } = await setup(t, { retry: { maxBodyBytes: 10 } });
  const res = await request(h.url, '/upload', { method: 'PUT', body: 'x'.repeat(1000) });
  t.equal(res.status, 502);
  t.equal(res.headers['x-detour-site'], 'a');
  t.equal(a.resets, 1);
  t.equal(b.counts.traffic, 0);
  t.same(h.passive.failed, []);
  t.same(h.passive.responded, [['a', 200]], 'only the first request was reported');
});

t.test('a POST fully written on a stale connection is not sent again (the site may have it), site not blamed', async (t) => {
  const { a, b, h } = await setup(t);
  const res = await request(h.url, '/pay', { method: 'POST', body: '{"amount":1}' });
  t.equal(res.status, 502);
  t.equal(a.resets, 1);
  t.same(a.served, ['/first'], 'not sent again to a');
  t.equal(b.counts.traffic, 0, 'nor to b');
  t.same(h.passive.failed, []);
});

t.test('idle pooled connections are closed before the site would close them', async (t) => {
  t.ok(defaultAgentLimits.freeSocketTimeoutMs < 5000, 'below the 5 s default keep-alive timeout of Node servers');
  let closed = 0;
  let opened = 0;
  const url = await startServer(t, (_req, res) => res.end('ok'));
  // startServer's server is not exposed: count connections through a tiny TCP relay instead.
  const relay = net.createServer((client) => {
    opened++;
    const upstream = net.connect(Number(new URL(url).port), '127.0.0.1');
    client.pipe(upstream).pipe(client);
    const done = (): void => { client.destroy(); upstream.destroy(); };
    client.on('error', done);
    upstream.on('error', done);
    client.on('close', () => { closed++; done(); });
    upstream.on('close', done);
  });
  await new Promise<void>((resolve) => relay.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => relay.close(() => resolve())));
  const relayUrl = `http://127.0.0.1:${(relay.address() as AddressInfo).port}`;

  const policy = testPolicy({ sites: [{ name: 'a', url: relayUrl }], routes: [{ name: 'r', sites: ['a'] }] });
  const engine = createProxyEngine({ logger: silentLogger(), agentLimits: { maxFreeSockets: 4, freeSocketTimeoutMs: 100 } });
  const h = await startHarness(policy, {}, { engine });
  t.teardown(() => h.close());
  t.equal((await request(h.url, '/')).status, 200);
  t.equal(opened, 1);
  await waitFor(() => closed === 1, { timeoutMs: 1500, message: 'the idle connection closed by detour' });
  t.equal((await request(h.url, '/')).status, 200, 'the next request opens a new one');
  t.equal(opened, 2);
});
