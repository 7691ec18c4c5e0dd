import t from 'tap';
import http from 'node:http';
import { startFakeSite } from '../helpers/fake-site.js';
import { testPolicy } from '../helpers/policy.js';
import { once, waitFor } from '../helpers/wait.js';
import { request, startHarness, startServer, timed } from './fixtures/proxy-harness.js';


t.test('relays the answer and names the site; keeps the client Host; adds X-Forwarded-*', async (t) => {
  const a = await startFakeSite({ name: 'cyber1' });
  t.teardown(() => a.close());
  const policy = testPolicy({ sites: [{ name: 'cyber1', url: a.url }], routes: [{ name: 'ceir', sites: ['cyber1'] }] });
  const h = await startHarness(policy);
  t.teardown(() => h.close());

  const res = await request(h.url, '/imei/123?x=1', { headers: { host: 'ceir.example.go.id', 'x-forwarded-for': '10.9.9.9' } });
  t.equal(res.status, 200);
  t.equal(res.headers['x-detour-site'], 'cyber1');
  t.equal(res.headers['x-fake-site'], 'cyber1');
  t.same(JSON.parse(res.text), { site: 'cyber1', method: 'GET', path: '/imei/123?x=1', bodyBytes: 0 });

  const seen = a.requests[0]!;
  t.equal(seen.headers.host, 'ceir.example.go.id', 'Host is the client\'s (changeOrigin off)');
  t.equal(seen.headers['x-forwarded-for'], '127.0.0.1', 'an untrusted client\'s X-Forwarded-For is dropped; detour starts the chain');
  t.equal(seen.headers['x-forwarded-proto'], 'http');
  t.equal(seen.headers['x-forwarded-host'], 'ceir.example.go.id');
  t.equal(seen.headers['x-forwarded-port'], '80');
});

t.test('hop-by-hop headers are not forwarded, in either direction', async (t) => {
  let seen: http.IncomingHttpHeaders = {};
  const url = await startServer(t, (req, res) => {
    seen = req.headers;
    res.writeHead(200, {
      connection: 'x-site-hop, keep-alive',
      'keep-alive': 'timeout=7',
      'x-site-hop': 'secret',
      'proxy-authenticate': 'Basic',
      'x-end-to-end': 'kept',
    });
    res.end('ok');
  });
  const policy = testPolicy({ sites: [{ name: 'a', url }], routes: [{ name: 'r', sites: ['a'] }] });
  const h = await startHarness(policy);
  t.teardown(() => h.close());

  const res = await request(h.url, '/', {
    method: 'POST',
    body: 'body',
    headers: {
      'transfer-encoding': 'chunked',
      connection: 'x-client-hop, keep-alive',
      'x-client-hop': 'secret',
      'keep-alive': 'timeout=10',
      te: 'trailers',
      trailer: 'x-checksum',
      'proxy-authorization': 'Basic abc',
      'proxy-connection': 'keep-alive',
      'x-end-to-end': 'kept',
    },
  });
  t.equal(res.status, 200);
  for (const name of ['x-client-hop', 'te', 'trailer', 'proxy-authorization', 'proxy-connection', 'upgrade']) {
    t.notOk(name in seen, `request header ${name} stripped`);
  }
  t.not(seen['keep-alive'], 'timeout=10', 'client keep-alive parameters not forwarded');
  t.not(seen.connection, 'x-client-hop, keep-alive', 'client Connection not forwarded');
  t.equal(seen['x-end-to-end'], 'kept');
  t.notOk('transfer-encoding' in seen, 'a buffered body is re-framed...');
  t.equal(seen['content-length'], '4', '...with its exact length');
  for (const name of ['x-site-hop', 'proxy-authenticate']) t.notOk(name in res.headers, `response header ${name} stripped`);
  t.not(res.headers['keep-alive'], 'timeout=7', 'site keep-alive parameters not forwarded');
  t.equal(res.headers['x-end-to-end'], 'kept');
});

t.test('streams bodies both ways without waiting for the end', async (t) => {
  // The site echoes each request chunk at once; the client only sends the next
  // chunk after it has read the previous echo. Any buffering would deadlock.
  const url = await startServer(t, (req, res) => {
    res.writeHead(200, { 'content-type': 'application/octet-stream' });
    res.flushHeaders();
    req.on('data', (c: Buffer) => res.write(c));
    req.on('end', () => res.end('|end'));
  });
  const policy = testPolicy({
    sites: [{ name: 'a', url }],
    routes: [{ name: 'r', sites: ['a'], retry: { maxBodyBytes: 0 } }],
  });
  const h = await startHarness(policy);
  t.teardown(() => h.close());

  const req = http.request(`${h.url}/stream`, { method: 'POST', agent: false, headers: { 'transfer-encoding': 'chunked' } });
  req.flushHeaders();
  req.write('one');
  const [res] = (await once(req, 'response')) as [http.IncomingMessage];
  t.equal(res.headers['x-detour-site'], 'a');
  const received: string[] = [];
  for (const chunk of ['two', 'three']) {
    const [data] = (await once(res, 'data')) as [Buffer];
    received.push(data.toString());
    req.write(chunk);
  }
  req.end();
  const rest: Buffer[] = [];
  res.on('data', (c: Buffer) => rest.push(c));
  await once(res, 'end');
  t.same(received, ['one', 'two']);
  t.equal(Buffer.concat(rest).toString(), 'three|end');
});

t.test('no matching route: 404 with a short body', async (t) => {
  const policy = testPolicy({
    sites: [{ name: 'a', url: 'http://127.0.0.1:9' }],
    routes: [{ name: 'ceir', sites: ['a'], match: { host: 'ceir.example.go.id' } }],
  });
  const h = await startHarness(policy);
  t.teardown(() => h.close());
  const res = await request(h.url, '/', { headers: { host: 'other.example' } });
  t.equal(res.status, 404);
  t.match(res.text, /no route/);
  t.notOk(res.headers['x-detour-site']);
  t.equal(await h.metric('detour_requests_total', { route: 'none', site: 'none', code: '404' }), 1);
});

t.test('route with no serving site: unavailable status, Retry-After, names the route, fast', async (t) => {
  const a = await startFakeSite({ name: 'a' });
  t.teardown(() => a.close());
  const policy = testPolicy({
    sites: [{ name: 'a', url: a.url }],
    routes: [{ name: 'ceir', sites: ['a'] }],
    unavailable: { status: 503, retryAfterSeconds: 17 },
  });
  const h = await startHarness(policy, { ceir: { state: 'unavailable' } });
  t.teardown(() => h.close());

  const { value: res, ms } = await timed(() => request(h.url, '/x', { method: 'POST', body: 'payload' }));
  t.equal(res.status, 503);
  t.equal(res.headers['retry-after'], '17');
  t.equal(res.text, 'detour: no site can serve route "ceir" right now\n');
  t.ok(ms < 500, `answered in ${ms.toFixed(0)}ms`);
  t.equal(a.counts.traffic, 0, 'no site was contacted');
  t.equal(await h.metric('detour_requests_total', { route: 'ceir', site: 'none', code: '503' }), 1);

  // Weights empty but state not marked unavailable: same answer, never a hang.
  h.setDecisions({ ceir: { weights: [] } });
  const res2 = await request(h.url, '/x');
  t.equal(res2.status, 503);
  t.equal(res2.headers['retry-after'], '17');
});

t.test('weights spread requests; metrics count requests and durations per site', async (t) => {
  const a = await startFakeSite({ name: 'a' });
  const b = await startFakeSite({ name: 'b' });
  t.teardown(() => a.close());
  t.teardown(() => b.close());
  const policy = testPolicy({ sites: [{ name: 'a', url: a.url }, { name: 'b', url: b.url }], routes: [{ name: 'r', sites: ['a', 'b'] }] });
  const picks = [0.1, 0.9, 0.2, 0.95];
  let i = 0;
  const h = await startHarness(policy, { r: { weights: [{ site: 'a', weight: 50 }, { site: 'b', weight: 50 }] } }, { random: () => picks[i++ % picks.length]! });
  t.teardown(() => h.close());

  const sites: string[] = [];
  for (let n = 0; n < 4; n++) sites.push(String((await request(h.url, '/')).headers['x-detour-site']));
  t.same(sites, ['a', 'b', 'a', 'b']);
  t.equal(a.counts.traffic, 2);
  t.equal(b.counts.traffic, 2);
  t.equal(await h.metric('detour_requests_total', { route: 'r', site: 'a', code: '200' }), 2);
  t.equal(await h.metric('detour_requests_total', { route: 'r', site: 'b', code: '200' }), 2);
  t.equal(await h.metric('detour_request_duration_seconds', { route: 'r', site: 'a' }), 2);
  t.same(h.passive.responded, [['a', 200], ['b', 200], ['a', 200], ['b', 200]], 'every upstream response reported');
});

t.test('close(): in-flight requests finish within the grace period, new ones are refused', async (t) => {
  const a = await startFakeSite({ name: 'a', behaviour: { status: 200, body: 'slow', delayMs: 150 } });
  t.teardown(() => a.close());
  const policy = testPolicy({ sites: [{ name: 'a', url: a.url }], routes: [{ name: 'r', sites: ['a'] }] });
  const h = await startHarness(policy);
  t.teardown(() => h.close());

  const pending = request(h.url, '/');
  await waitFor(() => h.forwarder.inFlight() === 1 && a.pending === 1, { message: 'request in flight' });
  const closing = h.forwarder.close(2000);
  const refused = await request(h.url, '/');
  t.equal(refused.status, 503, 'new work refused while closing');
  const res = await pending;
  t.equal(res.text, 'slow', 'in-flight request completed');
  await closing;
  t.equal(h.forwarder.inFlight(), 0);
});

t.test('close(): past the grace period what is left is cut off', async (t) => {
  const a = await startFakeSite({ name: 'a', behaviour: 'hang' });
  t.teardown(() => a.close());
  const policy = testPolicy({ sites: [{ name: 'a', url: a.url }], routes: [{ name: 'r', sites: ['a'] }] });
  const h = await startHarness(policy);
  t.teardown(() => h.close());
  const pending = request(h.url, '/').then(() => 'answered', () => 'cut off');
  await waitFor(() => a.pending === 1, { message: 'request waiting at the site' });
  const { ms } = await timed(() => h.forwarder.close(100));
  t.ok(ms >= 90 && ms < 1000, `waited the grace period (${ms.toFixed(0)}ms)`);
  t.equal(await pending, 'cut off');
});
