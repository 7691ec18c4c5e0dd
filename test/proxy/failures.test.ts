import t from 'tap';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomBytes } from 'node:crypto';
import { startFakeSite } from '../helpers/fake-site.js';
import { testPolicy } from '../helpers/policy.js';
import { once, waitFor } from '../helpers/wait.js';
import { silentLogger } from '../../src/logger.js';
import { createProxyEngine } from '../../src/proxy/http-proxy-adapter.js';
import { UpstreamAgents, defaultAgentLimits } from '../../src/proxy/upstream-agents.js';
import { request, startHarness, startServer, timed } from './fixtures/proxy-harness.js';


t.test('a client that goes away aborts the upstream request', async (t) => {
  let upstreamClosed = false;
  let arrived = false;
  const url = await startServer(t, (_req, res) => {
    arrived = true;
    res.on('close', () => { upstreamClosed = true; });
    // never answers
  });
  const policy = testPolicy({ sites: [{ name: 'a', url }], routes: [{ name: 'r', sites: ['a'] }] });
  const h = await startHarness(policy);
  t.teardown(() => h.close());

  const req = http.request(`${h.url}/slow`, { agent: false });
  req.on('error', () => { /* we destroy it on purpose */ });
  req.end();
  await waitFor(() => arrived, { message: 'request at the site' });
  req.destroy();
  await waitFor(() => upstreamClosed, { message: 'upstream sees the close' });
  await waitFor(() => h.forwarder.inFlight() === 0, { message: 'exchange finished' });
  t.same(h.passive.failed, [], 'a client leaving is not the site\'s fault');
  t.equal(await h.metric('detour_requests_total', { route: 'r', site: 'a', code: '499' }), 1);
});

t.test('a site dying after the headers destroys the client response (error, not a hang)', async (t) => {
  const url = await startServer(t, (_req, res) => {
    res.writeHead(200, { 'content-length': '100000' });
    res.write(randomBytes(1000), () => setTimeout(() => res.socket?.destroy(), 20));
  });
  const policy = testPolicy({ sites: [{ name: 'a', url }], routes: [{ name: 'r', sites: ['a'] }] });
  const h = await startHarness(policy);
  t.teardown(() => h.close());

  const outcome = await new Promise<string>((resolve) => {
    const req = http.request(`${h.url}/big`, { agent: false }, (res) => {
      res.on('data', () => {});
      res.on('end', () => resolve('ended'));
      res.on('error', () => resolve('error'));
      res.on('aborted', () => resolve('error'));
    });
    req.on('error', () => resolve('error'));
    req.end();
  });
  t.equal(outcome, 'error');
  await waitFor(() => h.passive.requestFailed.length === 1, { message: 'passive failure reported' });
  t.same(h.passive.requestFailed, [['a', 'response aborted mid-body']], 'after the headers: request evidence');
  t.same(h.passive.failed, [], 'not site evidence');
});

t.test('siteDown(): a GET hanging on the downed site is re-sent to the next site at once', async (t) => {
  const a = await startFakeSite({ name: 'a', behaviour: 'hang' });
  const b = await startFakeSite({ name: 'b' });
  t.teardown(() => a.close());
  t.teardown(() => b.close());
  const responseMs = 5000;
  const timeouts = { connectMs: 500, responseMs };
  const policy = testPolicy({
    sites: [{ name: 'a', url: a.url, timeouts }, { name: 'b', url: b.url, timeouts }],
    routes: [{ name: 'r', sites: ['a', 'b'] }],
  });
  const h = await startHarness(policy);
  t.teardown(() => h.close());

  const { value: res, ms } = await timed(async () => {
    const pending = request(h.url, '/waiting');
    await waitFor(() => a.pending === 1, { message: 'request hanging at a' });
    // The control plane updates the table first, then tells the proxy.
    h.setDecisions({ r: { state: 'failed-over', active: 'b', weights: [{ site: 'b', weight: 100 }], eligible: ['b'] } });
    h.forwarder.siteDown('a');
    return pending;
  });
  t.equal(res.status, 200);
  t.equal(res.headers['x-detour-site'], 'b');
  t.ok(ms < responseMs / 4, `done in ${ms.toFixed(0)}ms, long before the ${responseMs}ms response timeout`);
  t.equal(await h.metric('detour_retries_total', { route: 'r', from: 'a', to: 'b' }), 1);
  await waitFor(() => a.pending === 0, { message: 'the hanging upstream request was aborted' });
});

t.test('siteDown(): a request whose body could not be buffered is left alone', async (t) => {
  const a = await startFakeSite({ name: 'a', behaviour: { status: 200, body: 'late', delayMs: 300 } });
  const b = await startFakeSite({ name: 'b' });
  t.teardown(() => a.close());
  t.teardown(() => b.close());
  const policy = testPolicy({
    sites: [{ name: 'a', url: a.url }, { name: 'b', url: b.url }],
    routes: [{ name: 'r', sites: ['a', 'b'], retry: { maxBodyBytes: 10 } }],
  });
  const h = await startHarness(policy);
  t.teardown(() => h.close());

  const pending = request(h.url, '/upload', { method: 'POST', body: 'x'.repeat(100) });
  await waitFor(() => a.pending === 1, { message: 'request at a' });
  h.setDecisions({ r: { eligible: ['b'], weights: [{ site: 'b', weight: 100 }] } });
  h.forwarder.siteDown('a');
  const res = await pending;
  t.equal(res.text, 'late', 'the unsafe request stayed on a');
  t.equal(b.counts.traffic, 0);
});

t.test('siteDown(): requests on other sites, and already answering ones, are not touched', async (t) => {
  const a = await startFakeSite({ name: 'a', behaviour: { status: 200, body: 'from a', delayMs: 200 } });
  const b = await startFakeSite({ name: 'b' });
  t.teardown(() => a.close());
  t.teardown(() => b.close());
  const policy = testPolicy({ sites: [{ name: 'a', url: a.url }, { name: 'b', url: b.url }], routes: [{ name: 'r', sites: ['a', 'b'] }] });
  const h = await startHarness(policy);
  t.teardown(() => h.close());
  const pending = request(h.url, '/');
  await waitFor(() => a.pending === 1);
  h.forwarder.siteDown('b');
  t.equal((await pending).text, 'from a');
  t.equal(b.counts.traffic, 0);
});

t.test('waiting for a pooled connection is not connect time: a busy site is not timed out', async (t) => {
  // A pool of one makes a queue: the second request waits for the first one's
  // connection far longer than connectMs, and must still be served.
  const answers: Array<() => void> = [];
  const url = await startServer(t, (req, res) => { answers.push(() => res.end(`done ${req.url}`)); });
  const connectMs = 50;
  const policy = testPolicy({
    sites: [{ name: 'a', url, timeouts: { connectMs, responseMs: 60_000 } }],
    routes: [{ name: 'r', sites: ['a'] }],
  });
  const engine = createProxyEngine({ logger: silentLogger(), agentLimits: { maxSockets: 1, maxFreeSockets: 1 } });
  const h = await startHarness(policy, {}, { engine });
  t.teardown(() => h.close());

  const first = request(h.url, '/first');
  await waitFor(() => answers.length === 1, { message: 'first request holds the only connection' });
  const second = request(h.url, '/second');
  await waitFor(() => h.forwarder.inFlight() === 2, { message: 'second request queued' });
  const queuedAt = performance.now();
  await waitFor(() => performance.now() - queuedAt > 4 * connectMs, { message: 'queued for several connect timeouts' });
  t.same(h.passive.failed, [], 'no connect timeout while queued');
  answers[0]!();
  t.equal((await first).text, 'done /first');
  await waitFor(() => answers.length === 2, { message: 'second request reached the site' });
  answers[1]!();
  const res = await second;
  t.equal(res.status, 200);
  t.equal(res.text, 'done /second');
  t.same(h.passive.failed, []);
});

t.test('the default pool has no connection limit, so nothing queues', async (t) => {
  t.equal(defaultAgentLimits.maxSockets, Infinity);
  const agents = new UpstreamAgents();
  t.teardown(() => agents.close());
  t.equal(agents.agentFor('http://127.0.0.1:1').maxSockets, Infinity);
  t.ok(agents.agentFor('http://127.0.0.1:1').maxFreeSockets <= 256, 'idle connections stay bounded');
});

t.test('WebSocket upgrade relays frames both ways and names the site', async (t) => {
  const server = http.createServer();
  const upgraded = new Set<import('node:stream').Duplex>();
  server.on('upgrade', (req, socket) => {
    upgraded.add(socket);
    socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nx-seen-host: ${req.headers.host}\r\n\r\n`);
    socket.on('data', (d: Buffer) => socket.write(Buffer.concat([Buffer.from('echo:'), d])));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => {
    // Upgraded sockets are no longer the HTTP server's: close them ourselves.
    for (const s of upgraded) s.destroy();
    server.closeAllConnections();
    return new Promise<void>((resolve) => server.close(() => resolve()));
  });
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const policy = testPolicy({ sites: [{ name: 'ws', url }], routes: [{ name: 'live', sites: ['ws'] }] });
  const h = await startHarness(policy);
  t.teardown(() => h.close());

  const req = http.request(`${h.url}/socket`, {
    agent: false,
    headers: { connection: 'Upgrade', upgrade: 'websocket', 'sec-websocket-version': '13', 'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==', host: 'live.example' },
  });
  req.end();
  const [res, socket] = (await once(req, 'upgrade')) as [http.IncomingMessage, import('node:net').Socket];
  t.teardown(() => socket.destroy());
  t.equal(res.statusCode, 101);
  t.equal(res.headers['x-detour-site'], 'ws');
  t.equal(res.headers['x-seen-host'], 'live.example', 'client Host forwarded');
  for (const frame of ['first', 'second']) {
    socket.write(frame);
    const [data] = (await once(socket, 'data')) as [Buffer];
    t.equal(data.toString(), `echo:${frame}`);
  }
  t.equal(await h.metric('detour_requests_total', { route: 'live', site: 'ws', code: '101' }), 1);
});

t.test('WebSocket upgrade to an unavailable route or a dead site gets an HTTP error', async (t) => {
  const a = await startFakeSite({ name: 'a' });
  t.teardown(() => a.close());
  const policy = testPolicy({ sites: [{ name: 'a', url: a.url }], routes: [{ name: 'live', sites: ['a'] }] });
  const h = await startHarness(policy, { live: { state: 'unavailable' } });
  t.teardown(() => h.close());

  const statusOf = async (): Promise<{ status: number; site: string | undefined; retryAfter: string | undefined }> => {
    const req = http.request(`${h.url}/socket`, { agent: false, headers: { connection: 'Upgrade', upgrade: 'websocket' } });
    req.end();
    const [res] = (await once(req, 'response')) as [http.IncomingMessage];
    res.resume();
    return { status: res.statusCode ?? 0, site: res.headers['x-detour-site'] as string | undefined, retryAfter: res.headers['retry-after'] };
  };
  t.same(await statusOf(), { status: 503, site: undefined, retryAfter: '30' });

  h.setDecisions({});
  await a.kill();
  t.same(await statusOf(), { status: 502, site: 'a', retryAfter: undefined });
  t.equal(h.passive.failed[0]?.[0], 'a');
});
