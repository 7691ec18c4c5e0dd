// What the site receives is what the route was matched on: the request target
// byte for byte, no dot segments, X-Forwarded-* as detour saw them, and a
// plain request that happens to offer an `Upgrade: h2c`.
import t from 'tap';
import net from 'node:net';
import { startFakeSite, type FakeSite } from '../helpers/fake-site.js';
import { testPolicy } from '../helpers/policy.js';
import { waitFor } from '../helpers/wait.js';
import { parseRequestTarget } from '../../src/proxy/request-target.js';
import { request, startHarness, type Cleanup, type Harness } from './fixtures/proxy-harness.js';

t.test('parseRequestTarget', async (t) => {
  // target -> forwarded path, or null when refused
  const scenarios: Array<[string, string | null]> = [
    ['/a/b?x=1', '/a/b?x=1'],
    ['/', '/'],
    ['//double//slashes/', '/double/slashes/'],
    ['/a;v=1/b?x=//y', '/a;v=1/b?x=//y'],
    ['/a%2Fb', null],
    ['/a%5cb', null],
    ['/a\\b', null],
    ['/a%00', null],
    ['/public/../internal', null],
    ['/public/./x', null],
    ['/public/..', null],
    ['/..', null],
    ['/.', null],
    ['/public/%2e%2e/internal', null],
    ['/public/%2E./internal', null],
    ['/public/.%2e/internal', null],
    ['/public/..%2finternal', null],
    ['/public/..%5Cinternal', null],
    ['/public\\..\\internal', null],
    ['/public/..;jsessionid=1/internal', null],
    ['/x#/../y', null],
    ['/public/...', '/public/...'],
    ['/public/..x', '/public/..x'],
    ['/public/.well-known', '/public/.well-known'],
    ['/search?path=../x', '/search?path=../x'],
    ['http://example.com/a/b?q', '/a/b?q'],
    ['http://example.com', '/'],
    ['http://example.com?q', '/?q'],
    ['http://example.com/a/../b', null],
    ['*', '*'],
    ['example.com:443', null],
  ];
  for (const [target, expected] of scenarios) {
    const result = parseRequestTarget(target);
    t.same(result.ok ? result.path : null, expected, `${target} -> ${expected ?? 'refused'}`);
  }
});

t.test('parseRequestTarget: routes match without ;params, absolute-form must name the Host', async (t) => {
  // [target, Host, routePath or null when refused]
  const scenarios: Array<[string, string | undefined, string | null]> = [
    ['/ceir;v=1/records;jsessionid=2?q=;x', 'a', '/ceir/records?q=;x'],
    ['/ceir', 'a', '/ceir'],
    ['*', 'a', '*'],
    ['http://a/x', 'a', '/x'],
    ['http://A.:80/x', 'a', '/x'],
    ['https://a:443/x', 'a', '/x'],
    ['http://a:8080/x', 'a:8080', '/x'],
    ['http://a:8080/x', 'a', null],
    ['http://a/x', 'b', null],
    ['http://user@a/x', 'a', null],
    ['http://[::1]:80/x', '[::1]', '/x'],
    ['http://b/x', undefined, '/x'],
  ];
  for (const [target, host, expected] of scenarios) {
    const result = parseRequestTarget(target, host);
    t.same(result.ok ? result.routePath : null, expected, `${target} (Host ${host}) -> ${expected ?? 'refused'}`);
  }
});

/** Send raw bytes on a new connection; resolves with everything the server sent once it closes. */
function rawRequest(port: number, text: string, timeoutMs = 2000): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1', () => socket.write(text));
    let received = '';
    const timer = setTimeout(() => { socket.destroy(); reject(new Error(`no close within ${timeoutMs}ms; got ${JSON.stringify(received)}`)); }, timeoutMs);
    socket.on('data', (d: Buffer) => { received += d.toString('latin1'); });
    socket.on('error', () => {});
    socket.on('close', () => { clearTimeout(timer); resolve(received); });
  });
}

function statusOf(raw: string): number {
  return Number(/^HTTP\/1\.1 (\d{3})/.exec(raw)?.[1] ?? 0);
}

async function twoRoutes(t: Cleanup): Promise<{ pub: FakeSite; internal: FakeSite; h: Harness }> {
  const pub = await startFakeSite({ name: 'pub' });
  const internal = await startFakeSite({ name: 'internal' });
  t.teardown(() => pub.close());
  t.teardown(() => internal.close());
  const policy = testPolicy({
    sites: [{ name: 'pub', url: pub.url }, { name: 'internal', url: internal.url }],
    routes: [
      { name: 'public', sites: ['pub'], match: { pathPrefix: '/public' } },
      { name: 'internal', sites: ['internal'], match: { pathPrefix: '/internal' } },
    ],
  });
  const h = await startHarness(policy);
  t.teardown(() => h.close());
  return { pub, internal, h };
}

t.test('dot segments are refused with 400: a route and its site never disagree on the path', async (t) => {
  const { pub, internal, h } = await twoRoutes(t);
  for (const target of ['/public/../internal/secret', '/public/%2e%2e/internal/secret', '/public/..%2Finternal/secret']) {
    const raw = await rawRequest(h.port, `GET ${target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
    t.equal(statusOf(raw), 400, target);
    t.match(raw, /dot segments/);
  }
  t.equal(pub.counts.traffic + internal.counts.traffic, 0, 'no site contacted');
  t.equal(await h.metric('detour_requests_total', { route: 'none', site: 'none', code: '400' }), 3);
});

t.test('the request target is forwarded exactly as received', async (t) => {
  const { pub, h } = await twoRoutes(t);
  const target = '/public/a;v=1/{x}/%7e?q=/../y&r=%20';
  const raw = await rawRequest(h.port, `GET ${target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
  t.equal(statusOf(raw), 200);
  t.equal(pub.requests[0]?.path, target);

  const absolute = await rawRequest(h.port, 'GET http://x/public/abs?q=1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
  t.equal(statusOf(absolute), 200);
  t.equal(pub.requests[1]?.path, '/public/abs?q=1', 'absolute-form reduced to the path it was matched on');
});

t.test('X-Forwarded-Proto, -Host and -Port are what detour saw; a trusted proxy\'s X-Forwarded-For is appended to', async (t) => {
  const a = await startFakeSite({ name: 'a' });
  t.teardown(() => a.close());
  const policy = testPolicy({ sites: [{ name: 'a', url: a.url }], routes: [{ name: 'r', sites: ['a'] }], trustedProxies: ['127.0.0.1'] });
  const h = await startHarness(policy);
  t.teardown(() => h.close());

  await request(h.url, '/x', {
    headers: {
      host: 'shop.example:8443',
      'x-forwarded-proto': 'https',
      'x-forwarded-host': 'evil.example',
      'x-forwarded-port': '443',
      'x-forwarded-for': '1.2.3.4',
    },
  });
  const seen = a.requests[0]!.headers;
  t.equal(seen['x-forwarded-proto'], 'http', 'a client cannot claim https');
  t.equal(seen['x-forwarded-host'], 'shop.example:8443');
  t.equal(seen['x-forwarded-port'], '8443');
  t.equal(seen['x-forwarded-for'], '1.2.3.4,127.0.0.1');

  await request(h.url, '/y', { headers: { host: 'plain.example' } });
  t.equal(a.requests[1]!.headers['x-forwarded-port'], '80', 'default port for http');
});

t.test('Upgrade: h2c is ignored: the request is served as plain HTTP/1.1, then the connection closes', async (t) => {
  const a = await startFakeSite({ name: 'a' });
  t.teardown(() => a.close());
  const policy = testPolicy({ sites: [{ name: 'a', url: a.url }], routes: [{ name: 'r', sites: ['a'] }] });
  const h = await startHarness(policy);
  t.teardown(() => h.close());

  const upgrade = 'Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n';
  const raw = await rawRequest(h.port, `GET /page HTTP/1.1\r\nHost: x\r\n${upgrade}\r\n`);
  t.equal(statusOf(raw), 200);
  t.match(raw, /\r\nx-detour-site: a\r\n/i);
  t.match(raw, /\r\nconnection: close\r\n/i);
  t.match(raw, /"path":"\/page"/);
  const seen = a.requests[0]!.headers;
  t.notOk('upgrade' in seen, 'no Upgrade forwarded');
  t.notOk('http2-settings' in seen, 'no HTTP2-Settings forwarded');
  t.not(String(seen.connection ?? '').toLowerCase(), 'upgrade, http2-settings');

  const post = await rawRequest(h.port, `POST /form HTTP/1.1\r\nHost: x\r\n${upgrade}Content-Length: 11\r\n\r\nhello world`);
  t.equal(statusOf(post), 200);
  t.equal(a.requests[1]?.method, 'POST');
  t.equal(a.requests[1]?.body.toString(), 'hello world', 'the body is forwarded');

  const chunked = await rawRequest(h.port, `POST /form HTTP/1.1\r\nHost: x\r\n${upgrade}Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n`);
  t.equal(statusOf(chunked), 400, 'a chunked body with an upgrade offer is refused, not mangled');
  t.equal(a.counts.traffic, 2);
  await waitFor(() => h.forwarder.inFlight() === 0, { message: 'exchanges on the closed connections finished' });
});
