// A request is sent a second time only when that cannot make something happen
// twice: its method may run twice (GET, PUT, DELETE...), or the site provably
// never saw it.
import t from 'tap';
import { startFakeSite, type FakeBehaviour, type FakeSite } from '../helpers/fake-site.js';
import { testPolicy } from '../helpers/policy.js';
import { waitFor } from '../helpers/wait.js';
import { silentLogger } from '../../src/logger.js';
import { createProxyEngine, type OutgoingBody, type ProxyEngine } from '../../src/proxy/http-proxy-adapter.js';
import { request, startHarness, type Cleanup, type Harness } from './fixtures/proxy-harness.js';

async function setup(t: Cleanup, a: FakeBehaviour): Promise<{ a: FakeSite; b: FakeSite; h: Harness }> {
  const siteA = await startFakeSite({ name: 'a', behaviour: a });
  const siteB = await startFakeSite({ name: 'b' });
  t.teardown(() => siteA.close());
  t.teardown(() => siteB.close());
  const policy = testPolicy({
    sites: [{ name: 'a', url: siteA.url }, { name: 'b', url: siteB.url }],
    routes: [{ name: 'r', sites: ['a', 'b'] }],
  });
  const h = await startHarness(policy);
  t.teardown(() => h.close());
  return { a: siteA, b: siteB, h };
}

t.test('a connection reset after the request was sent', async (t) => {
  // method -> sent again to b?
  const scenarios: Array<[string, boolean]> = [
    ['POST', false], ['PATCH', false], ['LOCK', false],
    ['GET', true], ['PUT', true], ['DELETE', true], ['OPTIONS', true],
  ];
  for (const [method, resent] of scenarios) {
    await t.test(method, async (t) => {
      const { a, b, h } = await setup(t, 'reset');
      // An explicit length: Node's client sends a GET body without one.
      const res = await request(h.url, '/thing', { method, body: 'payload', headers: { 'content-length': '7' } });
      t.equal(a.counts.traffic, 1, 'a had the whole request');
      t.equal(b.counts.traffic, resent ? 1 : 0, resent ? 'sent again to b' : 'not sent again');
      t.equal(res.status, resent ? 200 : 502);
      t.equal(res.headers['x-detour-site'], resent ? 'b' : 'a');
      if (resent) t.equal(b.requests[0]?.body.toString(), 'payload');
      t.equal(h.passive.failed.length, 0, 'a reset after the request was sent is not site evidence');
      t.equal(h.passive.requestFailed.length, 1, 'it counts toward a\'s failure ratio');
      t.equal(h.passive.requestFailed[0]![0], 'a');
    });
  }
});

t.test('a retryable status: a POST gets the answer, a PUT is sent again', async (t) => {
  const post = await setup(t, { status: 503, body: 'a is busy' });
  const res = await request(post.h.url, '/thing', { method: 'POST', body: 'x' });
  t.equal(res.status, 503);
  t.equal(res.text, 'a is busy');
  t.equal(post.b.counts.traffic, 0);

  const put = await setup(t, 'status:503');
  const again = await request(put.h.url, '/thing', { method: 'PUT', body: 'x' });
  t.equal(again.status, 200);
  t.equal(again.headers['x-detour-site'], 'b');
});

t.test('siteDown(): a POST the site already has stays there', async (t) => {
  const { a, b, h } = await setup(t, { status: 200, body: 'a handled it', delayMs: 300 });
  const pending = request(h.url, '/pay', { method: 'POST', body: '{"amount":1}' });
  await waitFor(() => a.pending === 1, { message: 'POST at a' });
  h.setDecisions({ r: { eligible: ['b'], weights: [{ site: 'b', weight: 100 }] } });
  h.forwarder.siteDown('a');
  const res = await pending;
  t.equal(res.text, 'a handled it');
  t.equal(b.counts.traffic, 0, 'not run a second time on b');
});

t.test('siteDown(): a POST still connecting to the downed site moves, body intact', async (t) => {
  // A connect that hangs needs an address that drops SYNs (not loopback), so
  // this engine stands in for site a: its attempts never get connected.
  const b = await startFakeSite({ name: 'b' });
  t.teardown(() => b.close());
  const real = createProxyEngine({ logger: silentLogger() });
  const aUrl = 'http://127.0.0.1:9';
  const atA: OutgoingBody[] = [];
  let aborted = 0;
  const engine: ProxyEngine = {
    web(req, res, target, body, onOutcome) {
      if (target.url !== aUrl) return real.web(req, res, target, body, onOutcome);
      atA.push(body);
      return { abort: () => { aborted++; }, reachedSite: () => false };
    },
    ws: (...args) => real.ws(...args),
    retainOrigins: (urls) => real.retainOrigins(urls),
    close: () => real.close(),
  };
  const policy = testPolicy({ sites: [{ name: 'a', url: aUrl }, { name: 'b', url: b.url }], routes: [{ name: 'r', sites: ['a', 'b'] }] });
  const h = await startHarness(policy, {}, { engine });
  t.teardown(() => h.close());

  const pending = request(h.url, '/pay', { method: 'POST', body: '{"amount":1}' });
  await waitFor(() => atA.length === 1, { message: 'POST connecting to a' });
  h.setDecisions({ r: { eligible: ['b'], weights: [{ site: 'b', weight: 100 }] } });
  h.forwarder.siteDown('a');
  const res = await pending;
  t.equal(res.status, 200);
  t.equal(res.headers['x-detour-site'], 'b');
  t.equal(b.requests[0]?.body.toString(), '{"amount":1}');
  t.equal(aborted, 1, 'the attempt at a was abandoned');
});
