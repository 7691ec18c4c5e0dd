// When the response clock runs, what a timeout counts as, and the bound on a
// response body that goes silent.
import t from 'tap';
import http from 'node:http';
import { startFakeSite } from '../helpers/fake-site.js';
import { testPolicy } from '../helpers/policy.js';
import { once, waitFor } from '../helpers/wait.js';
import { request, startHarness, startServer, timed } from './fixtures/proxy-harness.js';

/** Resolves after `ms` has passed, through the bounded poll helper (the thing under test is time itself). */
function elapse(ms: number): Promise<void> {
  const from = performance.now();
  return waitFor(() => performance.now() - from >= ms, { timeoutMs: ms + 2000, message: `${ms}ms to pass` });
}

/** How a client response ends: the whole body, or an error (never a hang: bounded by `limitMs`). */
function readOutcome(req: http.ClientRequest, limitMs = 3000): Promise<{ how: 'ended' | 'error' | 'hung'; status?: number; bytes: number }> {
  return new Promise((resolve) => {
    let bytes = 0;
    let status: number | undefined;
    const timer = setTimeout(() => { req.destroy(); resolve({ how: 'hung', bytes }); }, limitMs);
    const done = (how: 'ended' | 'error'): void => {
      clearTimeout(timer);
      resolve({ how, bytes, ...(status === undefined ? {} : { status }) });
    };
    req.on('response', (res) => {
      status = res.statusCode;
      res.on('data', (c: Buffer) => { bytes += c.length; });
      res.on('end', () => done('ended'));
      res.on('error', () => done('error'));
      res.on('aborted', () => done('error'));
    });
    req.on('error', () => done('error'));
  });
}

t.test('a client uploading slowly is not a slow site: the response clock starts once the request is sent', async (t) => {
  let firstChunkAtSite = false;
  const url = await startServer(t, (req, res) => {
    let bytes = 0;
    req.on('data', (c: Buffer) => { bytes += c.length; firstChunkAtSite = true; });
    req.on('end', () => res.end(`got ${bytes}`));
  });
  const responseMs = 100;
  const policy = testPolicy({
    sites: [{ name: 'a', url, timeouts: { responseMs } }],
    // maxBodyBytes 0: the body streams through as the client sends it.
    routes: [{ name: 'r', sites: ['a'], retry: { maxBodyBytes: 0 } }],
  });
  const h = await startHarness(policy);
  t.teardown(() => h.close());

  const req = http.request(`${h.url}/upload`, { method: 'PUT', agent: false, headers: { 'transfer-encoding': 'chunked' } });
  const outcome = readOutcome(req, 5000);
  req.write('x'.repeat(1000));
  await waitFor(() => firstChunkAtSite, { message: 'first chunk at the site' });
  await elapse(4 * responseMs);
  req.end('y'.repeat(1000));
  const res = await outcome;
  t.equal(res.how, 'ended');
  t.equal(res.status, 200, 'not a 504: the upload took longer than responseMs, the site did not');
  t.same(h.passive.failed, []);
  t.same(h.passive.responded, [['a', 200]]);
});

t.test('a response timeout counts toward the failure ratio and a POST is not sent again', async (t) => {
  const a = await startFakeSite({ name: 'a', behaviour: 'hang' });
  const b = await startFakeSite({ name: 'b' });
  t.teardown(() => a.close());
  t.teardown(() => b.close());
  const timeouts = { connectMs: 500, responseMs: 150 };
  const policy = testPolicy({
    sites: [{ name: 'a', url: a.url, timeouts }, { name: 'b', url: b.url, timeouts }],
    routes: [{ name: 'r', sites: ['a', 'b'] }],
  });
  const h = await startHarness(policy);
  t.teardown(() => h.close());

  const res = await request(h.url, '/report', { method: 'POST', body: '{"amount":100}', headers: { 'content-type': 'application/json' } });
  t.equal(res.status, 504);
  t.equal(res.headers['x-detour-site'], 'a');
  t.equal(a.counts.traffic, 1, 'a has the POST (and may still act on it)');
  t.equal(b.counts.traffic, 0, 'so it is not sent to b as well');
  t.same(h.passive.failed, [], 'not an instant down');
  t.match(h.passive.requestFailed, [['a', /response timeout/]], 'request evidence');
});

t.test('a response that stalls after its headers: the client gets an error within timeouts.response, counted against the ratio', async (t) => {
  const url = await startServer(t, (_req, res) => {
    res.writeHead(200, { 'content-length': '100' });
    res.write('partial');
    // ...and never another byte.
  });
  const responseMs = 150;
  const policy = testPolicy({ sites: [{ name: 'a', url, timeouts: { responseMs } }], routes: [{ name: 'r', sites: ['a'] }] });
  const h = await startHarness(policy);
  t.teardown(() => h.close());

  const req = http.request(`${h.url}/data`, { agent: false });
  const { value: outcome, ms } = await timed(() => {
    const o = readOutcome(req);
    req.end();
    return o;
  });
  t.equal(outcome.how, 'error', 'the client sees an error, not a hang');
  t.equal(outcome.status, 200);
  t.equal(outcome.bytes, 'partial'.length);
  t.ok(ms >= responseMs - 10 && ms < responseMs + 1500, `cut off after about responseMs (${ms.toFixed(0)}ms)`);
  await waitFor(() => h.passive.requestFailed.length === 1, { message: 'stall reported' });
  t.same(h.passive.responded, [['a', 200]]);
  t.match(h.passive.requestFailed, [['a', /stalled/]], 'a stalled body is request evidence');
  t.same(h.passive.failed, []);
  await waitFor(() => h.forwarder.inFlight() === 0, { message: 'exchange finished' });
});

t.test('a site that answers before the upload is done and then stalls mid-body is cut off too', async (t) => {
  // The response clock never ran (the request was not fully sent when the
  // headers came): the body's silence is still bounded.
  const url = await startServer(t, (req, res) => {
    req.on('data', () => {});
    res.writeHead(200, { 'content-length': '100' });
    res.write('early');
  });
  const responseMs = 150;
  const policy = testPolicy({
    sites: [{ name: 'a', url, timeouts: { responseMs } }],
    routes: [{ name: 'r', sites: ['a'], retry: { maxBodyBytes: 10 } }],
  });
  const h = await startHarness(policy);
  t.teardown(() => h.close());

  // A streamed upload (over maxBodyBytes) that never ends.
  const req = http.request(`${h.url}/upload`, { agent: false, method: 'PUT', headers: { 'transfer-encoding': 'chunked' } });
  req.write('x'.repeat(100));
  const { value: outcome, ms } = await timed(() => readOutcome(req));
  t.equal(outcome.how, 'error', 'the client sees an error, not a hang');
  t.equal(outcome.status, 200);
  t.equal(outcome.bytes, 'early'.length);
  t.ok(ms >= responseMs - 10 && ms < responseMs + 1500, `cut off after about responseMs (${ms.toFixed(0)}ms)`);
  await waitFor(() => h.passive.requestFailed.length === 1, { message: 'stall reported' });
  t.match(h.passive.requestFailed, [['a', /stalled/]]);
});

t.test('a client that reads slowly is not a stalled site', async (t) => {
  // Far more than the socket buffers between site, detour and client can hold,
  // so detour really waits on the client while the client pauses.
  const chunk = Buffer.alloc(1024 * 1024, 'z');
  const chunks = 48;
  const url = await startServer(t, (_req, res) => {
    res.writeHead(200, { 'content-length': String(chunk.length * chunks) });
    let sent = 0;
    const pump = (): void => {
      while (sent < chunks) {
        sent++;
        if (!res.write(chunk)) {
          res.once('drain', pump);
          return;
        }
      }
      res.end();
    };
    pump();
  });
  const responseMs = 100;
  const policy = testPolicy({ sites: [{ name: 'a', url, timeouts: { responseMs } }], routes: [{ name: 'r', sites: ['a'] }] });
  const h = await startHarness(policy);
  t.teardown(() => h.close());

  const req = http.request(`${h.url}/big`, { agent: false });
  req.end();
  const [res] = (await once(req, 'response')) as [http.IncomingMessage];
  let bytes = 0;
  const ended = new Promise<string>((resolve) => {
    res.on('end', () => resolve('ended'));
    res.on('error', () => resolve('error'));
    res.on('aborted', () => resolve('error'));
  });
  let paused = false;
  res.on('data', (c: Buffer) => {
    bytes += c.length;
    if (paused) return;
    paused = true;
    res.pause();
  });
  await waitFor(() => paused, { message: 'first bytes read' });
  await elapse(5 * responseMs);
  res.resume();
  t.equal(await ended, 'ended');
  t.equal(bytes, chunk.length * chunks, 'the whole body arrived');
  t.same(h.passive.responded, [['a', 200]], 'no stall reported');
});
