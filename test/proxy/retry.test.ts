import t from 'tap';
import { randomBytes, createHash } from 'node:crypto';
import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import { startFakeSite, type FakeBehaviour, type FakeSite } from '../helpers/fake-site.js';
import { testPolicy, type TestRouteInput } from '../helpers/policy.js';
import { request, startHarness, timed, type Harness } from './fixtures/proxy-harness.js';

type Cleanup = { teardown(fn: () => unknown): void };

interface Setup {
  readonly a: FakeSite;
  readonly b: FakeSite;
  readonly h: Harness;
}

/** Two fake sites a (preferred) and b behind one route, with short timeouts. */
async function setup(t: Cleanup, opts: { a?: FakeBehaviour; b?: FakeBehaviour; route?: Partial<TestRouteInput>; responseMs?: number; only?: boolean } = {}): Promise<Setup> {
  const a = await startFakeSite({ name: 'a', behaviour: opts.a ?? 'ok' });
  const b = await startFakeSite({ name: 'b', behaviour: opts.b ?? 'ok' });
  t.teardown(() => a.close());
  t.teardown(() => b.close());
  const timeouts = { connectMs: 500, responseMs: opts.responseMs ?? 2000 };
  const policy = testPolicy({
    sites: [{ name: 'a', url: a.url, timeouts }, { name: 'b', url: b.url, timeouts }],
    routes: [{ name: 'r', sites: opts.only ? ['a'] : ['a', 'b'], ...opts.route }],
  });
  const h = await startHarness(policy);
  t.teardown(() => h.close());
  return { a, b, h };
}

t.test('GET is retried on the next site when the first refuses the connection: no client error', async (t) => {
  const { a, b, h } = await setup(t);
  await a.kill();
  for (let i = 0; i < 3; i++) {
    const res = await request(h.url, `/get/${i}`);
    t.equal(res.status, 200, `request ${i} succeeded`);
    t.equal(res.headers['x-detour-site'], 'b');
  }
  t.equal(b.counts.traffic, 3);
  t.equal(await h.metric('detour_retries_total', { route: 'r', from: 'a', to: 'b' }), 3);
  t.equal(await h.metric('detour_requests_total', { route: 'r', site: 'b', code: '200' }), 3);
  t.equal(h.passive.failed.length, 3);
  t.same(h.passive.failed[0], ['a', 'connect ECONNREFUSED']);
  t.equal(b.requests[0]!.headers['x-forwarded-for'], '127.0.0.1', 'X-Forwarded-For not stacked by the retry');
});

t.test('a retryable status from the first site is discarded and the next site answers', async (t) => {
  const { a, b, h } = await setup(t, { a: { status: 503, body: 'primary says no' } });
  const res = await request(h.url, '/x');
  t.equal(res.status, 200);
  t.equal(res.headers['x-detour-site'], 'b');
  t.notMatch(res.text, /primary says no/, 'the failed response is not sent');
  t.equal(a.counts.traffic, 1);
  t.equal(b.counts.traffic, 1);
  t.same(h.passive.responded, [['a', 503], ['b', 200]]);
  t.same(h.passive.failed, [], 'a 5xx answer is not a connection failure');
});

t.test('a status not in retry.on is passed through', async (t) => {
  const { b, h } = await setup(t, { a: 'status:500' });
  const res = await request(h.url, '/x');
  t.equal(res.status, 500);
  t.equal(res.headers['x-detour-site'], 'a');
  t.equal(b.counts.traffic, 0);
});

t.test('only one retry: when the next site also fails, its answer goes to the client', async (t) => {
  const c = await startFakeSite({ name: 'c' });
  t.teardown(() => c.close());
  const a = await startFakeSite({ name: 'a', behaviour: 'status:503' });
  const b = await startFakeSite({ name: 'b', behaviour: 'status:502' });
  t.teardown(() => a.close());
  t.teardown(() => b.close());
  const policy = testPolicy({
    sites: [{ name: 'a', url: a.url }, { name: 'b', url: b.url }, { name: 'c', url: c.url }],
    routes: [{ name: 'r', sites: ['a', 'b', 'c'] }],
  });
  const h = await startHarness(policy);
  t.teardown(() => h.close());
  const res = await request(h.url, '/');
  t.equal(res.status, 502);
  t.equal(res.headers['x-detour-site'], 'b');
  t.equal(c.counts.traffic, 0, 'no second retry');
});

t.test('no other site: 502 on reset, naming the site', async (t) => {
  const { h } = await setup(t, { a: 'reset', only: true });
  const res = await request(h.url, '/x');
  t.equal(res.status, 502);
  t.equal(res.headers['x-detour-site'], 'a');
  t.match(res.text, /site "a" failed/);
  t.same(h.passive.failed, [], 'a reset after the request was sent is not site evidence...');
  t.equal(h.passive.requestFailed.length, 1, '...it is request evidence');
  t.equal(h.passive.requestFailed[0]![0], 'a');
  t.equal(await h.metric('detour_requests_total', { route: 'r', site: 'a', code: '502' }), 1);
});

t.test('no other site: 502 on refused connection', async (t) => {
  const { a, h } = await setup(t, { only: true });
  await a.kill();
  const res = await request(h.url, '/x');
  t.equal(res.status, 502);
  t.match(res.text, /connect ECONNREFUSED/);
});

t.test('no other site: 504 when the response times out', async (t) => {
  const { h } = await setup(t, { a: 'hang', only: true, responseMs: 150 });
  const { value: res, ms } = await timed(() => request(h.url, '/x'));
  t.equal(res.status, 504);
  t.equal(res.headers['x-detour-site'], 'a');
  t.ok(ms >= 140 && ms < 1500, `timed out after about responseMs (${ms.toFixed(0)}ms)`);
  t.same(h.passive.failed, [], 'a slow answer does not mark the site down at once...');
  t.match(h.passive.requestFailed, [['a', /response timeout/]], '...it counts toward the failure ratio');
});

t.test('a response timeout is retried on the next site', async (t) => {
  const { b, h } = await setup(t, { a: 'hang', responseMs: 150 });
  const res = await request(h.url, '/x');
  t.equal(res.status, 200);
  t.equal(res.headers['x-detour-site'], 'b');
  t.equal(b.counts.traffic, 1);
});

t.test('POST with a small body survives a refused connection, body intact', async (t) => {
  const { a, b, h } = await setup(t);
  await a.kill();
  const body = randomBytes(20_000);
  const res = await request(h.url, '/upload', { method: 'POST', body, headers: { 'content-type': 'application/octet-stream' } });
  t.equal(res.status, 200);
  t.equal(res.headers['x-detour-site'], 'b');
  t.equal(a.counts.traffic, 0, 'the first site never saw it');
  const seen = b.requests[0]!;
  t.equal(seen.method, 'POST');
  t.equal(sha(seen.body), sha(body), 'retried body is byte for byte the original');
  t.equal(seen.headers['content-length'], String(body.length));
});

t.test('PUT with a small chunked body is buffered, retried intact', async (t) => {
  const { b, h } = await setup(t, { a: 'status:503' });
  const res = await request(h.url, '/upload', { method: 'PUT', body: 'chunked payload', headers: { 'transfer-encoding': 'chunked' } });
  t.equal(res.status, 200);
  t.equal(b.requests[0]?.body.toString(), 'chunked payload');
});

t.test('POST with a body over retry.maxBodyBytes streams through and is not retried', async (t) => {
  const { b, h } = await setup(t, { a: 'reset', route: { retry: { maxBodyBytes: 1024 } } });
  const res = await request(h.url, '/upload', { method: 'POST', body: randomBytes(4096) });
  t.equal(res.status, 502);
  t.equal(res.headers['x-detour-site'], 'a');
  t.equal(b.counts.traffic, 0, 'not retried');
  t.equal(await h.metric('detour_retries_total', { route: 'r', from: 'a', to: 'b' }), 0);
});

t.test('a chunked body that grows over the limit streams through intact (not retried)', async (t) => {
  const { a, h } = await setup(t, { route: { retry: { maxBodyBytes: 1024 } } });
  const body = randomBytes(10_000);
  const res = await request(h.url, '/upload', { method: 'POST', body, headers: { 'transfer-encoding': 'chunked' } });
  t.equal(res.status, 200);
  t.equal(sha(a.requests[0]!.body), sha(body));
});

t.test('a site answering garbage instead of HTTP: 502, counted like a 5xx, not retried', async (t) => {
  const garbage = net.createServer((socket) => {
    socket.on('error', () => {});
    socket.once('data', () => socket.end('this is not HTTP\r\n\r\n'));
  });
  await new Promise<void>((resolve) => garbage.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => garbage.close(() => resolve())));
  const url = `http://127.0.0.1:${(garbage.address() as AddressInfo).port}`;
  const b = await startFakeSite({ name: 'b' });
  t.teardown(() => b.close());
  const policy = testPolicy({
    sites: [{ name: 'g', url }, { name: 'b', url: b.url }],
    routes: [{ name: 'only', sites: ['g'], match: { pathPrefix: '/only' } }, { name: 'both', sites: ['g', 'b'] }],
  });
  const h = await startHarness(policy);
  t.teardown(() => h.close());

  const res = await request(h.url, '/only/x');
  t.equal(res.status, 502);
  t.match(res.text, /bad response/);
  // The same application answers on every site: retrying would only spread the failure.
  const other = await request(h.url, '/x');
  t.equal(other.status, 502);
  t.equal(other.headers['x-detour-site'], 'g');
  t.equal(b.counts.traffic, 0, 'not retried on b');
  t.same(h.passive.failed, [], 'not a connection failure (no instant down)');
  t.match(h.passive.requestFailed, [['g', /bad response/], ['g', /bad response/]], 'counted toward the failure ratio');
});

t.test('a response header over Node\'s default 16 KiB limit passes through (not a parse error)', async (t) => {
  const cookie = `session=${'a'.repeat(20_000)}`;
  const { b, h } = await setup(t, { a: { status: 200, body: 'logged in', headers: { 'set-cookie': cookie } } });
  const res = await new Promise<{ status: number; cookie: string | undefined; text: string }>((resolve, reject) => {
    // The test client must accept the big header too.
    const req = http.request(`${h.url}/login`, { agent: false, maxHeaderSize: 64 * 1024 }, (r) => {
      const chunks: Buffer[] = [];
      r.on('data', (c: Buffer) => chunks.push(c));
      r.on('end', () => resolve({ status: r.statusCode ?? 0, cookie: r.headers['set-cookie']?.[0], text: Buffer.concat(chunks).toString() }));
    });
    req.on('error', reject);
    req.end();
  });
  t.equal(res.status, 200);
  t.equal(res.cookie, cookie);
  t.equal(res.text, 'logged in');
  t.equal(b.counts.traffic, 0);
  t.same(h.passive.responded, [['a', 200]]);
});

t.test('connections to a site are kept alive and reused', async (t) => {
  const { a, h } = await setup(t);
  for (let i = 0; i < 5; i++) t.equal((await request(h.url, `/${i}`)).status, 200);
  t.equal(a.counts.traffic, 5);
  t.equal(a.counts.connections, 1, 'one upstream connection for five sequential requests');
});

function sha(b: Buffer): string {
  return createHash('sha256').update(b).digest('hex');
}
