// Request hygiene at the front door, against a real gateway and raw sockets:
// ambiguous framing is refused and never reaches a site, paths that a site
// could read as another route's are settled before matching, Connection
// cannot strip end-to-end headers, X-Forwarded-For is kept only from trusted
// proxies, and the limits (body, header bytes, timeouts, connections) hold.
import t, { type Test } from 'tap';
import net from 'node:net';
import { startRig, type Rig } from '../helpers/gateway.js';
import { request } from '../proxy/fixtures/proxy-harness.js';
import { waitFor } from '../helpers/wait.js';
import type { TestPolicyInput } from '../helpers/policy.js';

// Lenient probes: these tests are about the listener, and a loaded machine must not flap the sites.
const lenient = { intervalMs: 500, timeoutMs: 2000, fall: 10 };
const sites = [{ name: 'ceir', probe: lenient }, { name: 'web', probe: lenient }];

async function edgeRig(t: Test, extra: Partial<Omit<TestPolicyInput, 'sites' | 'routes'>> = {}, routes?: TestPolicyInput['routes']): Promise<Rig> {
  return startRig(t, sites, () => ({
    routes: routes ?? [
      { name: 'ceir', sites: ['ceir'], match: { pathPrefix: '/ceir' } },
      { name: 'catch-all', sites: ['web'] },
    ],
    ...extra,
  }));
}

function portOf(rig: Rig): number {
  return rig.gateway.proxyAddress.port;
}

/** Raw bytes on a new connection; everything the gateway sent once it closes (bounded). */
function raw(port: number, text: string | Buffer, timeoutMs = 3000): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1', () => socket.write(text));
    let received = '';
    const timer = setTimeout(() => { socket.destroy(); reject(new Error(`no close within ${timeoutMs}ms; got ${JSON.stringify(received)}`)); }, timeoutMs);
    socket.on('data', (d: Buffer) => { received += d.toString('latin1'); });
    socket.on('error', () => {});
    socket.on('close', () => { clearTimeout(timer); resolve(received); });
  });
}

function statusOf(response: string): number {
  return Number(/^HTTP\/1\.1 (\d{3})/.exec(response)?.[1] ?? 0);
}

function traffic(rig: Rig): number {
  return Object.values(rig.sites).reduce((n, s) => n + s.counts.traffic, 0);
}

t.test('ambiguous framing is refused with 400 and never reaches a site; the gateway keeps answering', async (t) => {
  const rig = await edgeRig(t);
  const port = portOf(rig);
  const attacks: Array<[string, string, number]> = [
    ['Content-Length with Transfer-Encoding', 'POST /ceir/x HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n', 400],
    ['Transfer-Encoding with Content-Length', 'POST /ceir/x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n0\r\n\r\n', 400],
    ['duplicate Content-Length', 'POST /ceir/x HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nContent-Length: 4\r\n\r\nabcd', 400],
    ['conflicting Content-Length', 'POST /ceir/x HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nContent-Length: 5\r\n\r\nabcde', 400],
    ['Content-Length list', 'POST /ceir/x HTTP/1.1\r\nHost: a\r\nContent-Length: 4, 5\r\n\r\nabcde', 400],
    ['Content-Length with a sign', 'POST /ceir/x HTTP/1.1\r\nHost: a\r\nContent-Length: +4\r\n\r\nabcd', 400],
    ['repeated Transfer-Encoding', 'POST /ceir/x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n', 400],
    ['Transfer-Encoding list', 'POST /ceir/x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n', 400],
    ['Transfer-Encoding chunked twice in one line', 'POST /ceir/x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n', 400],
    ['obfuscated Transfer-Encoding (xchunked)', 'POST /ceir/x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n', 400],
    ['obfuscated Transfer-Encoding (space before colon)', 'POST /ceir/x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n', 400],
    ['obfuscated Transfer-Encoding (folded)', 'POST /ceir/x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\r\n chunked\r\n\r\n0\r\n\r\n', 400],
    ['obfuscated Transfer-Encoding (vertical tab)', 'POST /ceir/x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: \x0bchunked\r\n\r\n0\r\n\r\n', 400],
    ['Transfer-Encoding on HTTP/1.0', 'POST /ceir/x HTTP/1.0\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n', 400],
    ['bare LF line endings', 'GET /ceir/x HTTP/1.1\nHost: a\nX: y\n\n', 400],
    ['bare LF inside the headers', 'GET /ceir/x HTTP/1.1\r\nHost: a\nX: y\r\n\r\n', 400],
    ['bare CR inside the headers', 'GET /ceir/x HTTP/1.1\r\nHost: a\rX: y\r\n\r\n', 400],
    ['NUL in a header value', 'GET /ceir/x HTTP/1.1\r\nHost: a\r\nX: a\x00b\r\n\r\n', 400],
    ['NUL in a header name', 'GET /ceir/x HTTP/1.1\r\nHost: a\r\nX\x00: ab\r\n\r\n', 400],
    ['absolute-form host not the Host header', 'GET http://ceir.internal/ceir/x HTTP/1.1\r\nHost: a\r\n\r\n', 400],
    ['absolute-form with userinfo', 'GET http://u@a/ceir/x HTTP/1.1\r\nHost: a\r\n\r\n', 400],
    ['two Host headers', 'GET /ceir/x HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n', 400],
    ['Host that is not a host', 'GET /ceir/x HTTP/1.1\r\nHost: a/b\r\n\r\n', 400],
    ['no Host on HTTP/1.1', 'GET /ceir/x HTTP/1.1\r\n\r\n', 400],
    ['garbage request line', 'HELLO\r\n\r\n', 400],
    ['HTTP/0.9 request line', 'GET /ceir/x\r\n\r\n', 400],
    ['unknown HTTP version', 'GET /ceir/x HTTP/9.9\r\nHost: a\r\n\r\n', 400],
    ['space in the target', 'GET /ceir/a b HTTP/1.1\r\nHost: a\r\n\r\n', 400],
    ['header block over headerBytes', `GET /ceir/x HTTP/1.1\r\nHost: a\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`, 431],
  ];
  for (const [name, text, status] of attacks) {
    const answer = await raw(port, text);
    t.equal(statusOf(answer), status, `${name}: ${status}`);
    const ok = await request(rig.gateway.proxyUrl, '/ceir/ping');
    t.equal(ok.status, 200, `${name}: the gateway still answers other clients`);
  }
  t.equal(rig.sites.ceir!.requests.filter((r) => r.path !== '/ceir/ping').length + rig.sites.web!.counts.traffic, 0,
    'no attack reached a site');
  t.equal(rig.sites.ceir!.counts.traffic, attacks.length, 'only the ordinary requests did');
});

t.test('absolute-form naming the Host is served, on the path it was matched on', async (t) => {
  const rig = await edgeRig(t);
  const answer = await raw(portOf(rig), 'GET http://CEIR.example:80/ceir/abs?q=1 HTTP/1.1\r\nHost: ceir.example\r\nConnection: close\r\n\r\n');
  t.equal(statusOf(answer), 200);
  t.equal(rig.sites.ceir!.requests[0]?.path, '/ceir/abs?q=1');
});

t.test('paths a site could read as another route are settled before matching', async (t) => {
  const rig = await edgeRig(t);
  const port = portOf(rig);
  // target -> [status, site that gets it, path it gets]
  const cases: Array<[string, number, string | null, string | null]> = [
    ['//ceir/records', 200, 'ceir', '/ceir/records'],
    ['/ceir//records//', 200, 'ceir', '/ceir/records/'],
    ['/ceir;v=1/records', 200, 'ceir', '/ceir;v=1/records'],
    ['/ceir;jsessionid=abc?x=1', 200, 'ceir', '/ceir;jsessionid=abc?x=1'],
    ['/ceir%2Frecords', 400, null, null],
    ['/ceir%2frecords', 400, null, null],
    ['/ceir%5Crecords', 400, null, null],
    ['/ceir\\records', 400, null, null],
    ['/ceir/%00', 400, null, null],
    ['/other//path', 200, 'web', '/other/path'],
    ['/search?next=//ceir/x', 200, 'web', '/search?next=//ceir/x'],
  ];
  for (const [target, status, site, path] of cases) {
    for (const s of Object.values(rig.sites)) s.clearRecords();
    const answer = await raw(port, `GET ${target} HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n`);
    t.equal(statusOf(answer), status, `${target}: ${status}`);
    if (site === null) {
      t.equal(traffic(rig), 0, `${target}: no site contacted`);
      t.match(answer, /encoded|NUL/, `${target}: the answer says why`);
    } else {
      t.equal(rig.sites[site]!.requests[0]?.path, path, `${target}: ${site} gets ${path}`);
      t.equal(traffic(rig), 1, `${target}: only ${site}`);
    }
  }
});

t.test('Connection cannot strip end-to-end headers; hop-by-hop ones are stripped both ways', async (t) => {
  const rig = await edgeRig(t);
  rig.sites.ceir!.set({ status: 200, body: 'ok', headers: { connection: 'x-site-hop, content-type', 'x-site-hop': '1', 'keep-alive': 'timeout=1', 'x-end': 'kept' } });
  const answer = await raw(portOf(rig), 'GET /ceir/x HTTP/1.1\r\nHost: ceir.example.go.id\r\n'
    + 'Connection: close, host, authorization, x-client-hop\r\nAuthorization: Bearer abc\r\nX-Client-Hop: 1\r\nKeep-Alive: 5\r\n'
    + 'Proxy-Authorization: Basic x\r\nTE: trailers\r\n\r\n');
  t.equal(statusOf(answer), 200);
  const seen = rig.sites.ceir!.requests[0]!.headers;
  t.equal(seen.host, 'ceir.example.go.id', 'the site sees the client\'s Host, not its own address');
  t.equal(seen.authorization, 'Bearer abc', 'Authorization survives being named in Connection');
  t.notOk('x-client-hop' in seen, 'a header named in Connection is dropped');
  t.notOk('keep-alive' in seen);
  t.notOk('proxy-authorization' in seen);
  t.notOk('te' in seen);
  const head = answer.split('\r\n\r\n')[0]!.toLowerCase();
  t.match(head, /\r\ncontent-type: text\/plain/, 'the site cannot strip Content-Type through Connection');
  t.match(head, /\r\nx-end: kept/);
  t.notMatch(head, /x-site-hop/, 'a header the site named in Connection is dropped');
  t.notMatch(head, /keep-alive: timeout=1/);
});

t.test('X-Forwarded-For: dropped from untrusted peers, kept from trusted proxies', async (t) => {
  const untrusted = await edgeRig(t);
  await request(untrusted.gateway.proxyUrl, '/ceir/x', { headers: { 'x-forwarded-for': '203.0.113.9' } });
  t.equal(untrusted.sites.ceir!.requests[0]!.headers['x-forwarded-for'], '127.0.0.1', 'detour starts the chain itself');

  const trusted = await edgeRig(t, { trustedProxies: ['127.0.0.0/8'] });
  await request(trusted.gateway.proxyUrl, '/ceir/x', { headers: { 'x-forwarded-for': '203.0.113.9' } });
  t.equal(trusted.sites.ceir!.requests[0]!.headers['x-forwarded-for'], '203.0.113.9,127.0.0.1', 'a trusted proxy\'s chain is extended');

  const elsewhere = await edgeRig(t, { trustedProxies: ['10.0.0.0/8', '::2'] });
  await request(elsewhere.gateway.proxyUrl, '/ceir/x', { headers: { 'x-forwarded-for': '203.0.113.9' } });
  t.equal(elsewhere.sites.ceir!.requests[0]!.headers['x-forwarded-for'], '127.0.0.1', 'a peer outside the list is not trusted');
});

t.test('body limits: 413 by Content-Length and by counting chunks, per route; nothing over the limit is answered by a site', async (t) => {
  const rig = await edgeRig(t, { limits: { bodyBytes: 100_000 } }, [
    { name: 'ceir', sites: ['ceir'], match: { pathPrefix: '/ceir' }, limits: { bodyBytes: 1000 } },
    { name: 'catch-all', sites: ['web'], retry: { maxBodyBytes: 1000 } },
  ]);
  const port = portOf(rig);
  const declared = await raw(port, 'POST /ceir/x HTTP/1.1\r\nHost: a\r\nContent-Length: 1001\r\n\r\n');
  t.equal(statusOf(declared), 413, 'Content-Length over the route limit: 413 before any byte is read');
  t.equal(traffic(rig), 0);

  const chunk = (n: number): string => `${n.toString(16)}\r\n${'x'.repeat(n)}\r\n`;
  const smallChunked = await raw(port, `POST /ceir/x HTTP/1.1\r\nHost: a\r\n${'Transfer-Encoding: chunked'}\r\n\r\n${chunk(600)}${chunk(600)}0\r\n\r\n`);
  t.equal(statusOf(smallChunked), 413, 'chunked over the route limit while buffering: 413');
  t.equal(traffic(rig), 0);

  const ok = await request(rig.gateway.proxyUrl, '/ceir/x', { method: 'POST', body: 'x'.repeat(1000) });
  t.equal(ok.status, 200, 'exactly the limit is accepted');

  // The catch-all buffers 1000 bytes for retries, then streams: the limit still holds mid-stream.
  rig.sites.web!.clearRecords();
  const streamed = await raw(port, `POST /big HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n${chunk(60_000)}${chunk(60_000)}0\r\n\r\n`);
  t.equal(statusOf(streamed), 413, 'chunked over the global limit after streaming began: 413');
  t.equal(rig.sites.web!.requests.length, 0, 'the site never got a complete request');
  const under = await raw(port, `POST /big HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n${chunk(60_000)}${chunk(30_000)}0\r\n\r\n`);
  t.equal(statusOf(under), 200, 'a streamed body under the limit goes through');
  t.equal(rig.sites.web!.requests[0]?.body.length, 90_000);
  const metrics = (await rig.admin('GET', '/metrics')).text;
  t.match(metrics, /detour_requests_total\{route="ceir",site="none",code="413"\} 2/);
  t.equal(rig.gateway.control.table.version > 0, true);
});

t.test('100 connections trickling header bytes are closed within headersTimeout + 1 s; others are answered fast meanwhile', async (t) => {
  const headersTimeoutMs = 2000;
  const rig = await edgeRig(t, { limits: { headersTimeoutMs, requestTimeoutMs: 10_000 } });
  const port = portOf(rig);
  // Each connection's life, from its own connect to the gateway closing it.
  const closedAfterMs: number[] = [];
  const sockets: net.Socket[] = [];
  const startedMs = performance.now();
  const trickle = setInterval(() => { for (const s of sockets) if (!s.destroyed) s.write('a'); }, 100);
  t.teardown(() => { clearInterval(trickle); for (const s of sockets) s.destroy(); });
  await Promise.all(Array.from({ length: 100 }, () => new Promise<void>((resolve) => {
    let connectedMs = 0;
    const s = net.connect(port, '127.0.0.1', () => {
      connectedMs = performance.now();
      s.write('GET /ceir/x HTTP/1.1\r\nHost: a\r\nX-Slow: ');
      resolve();
    });
    s.on('error', () => {});
    s.on('data', () => {});
    s.on('close', () => closedAfterMs.push(performance.now() - connectedMs));
    sockets.push(s);
  })));
  // Meanwhile, ordinary clients.
  const latencies: number[] = [];
  while (closedAfterMs.length < 100 && performance.now() - startedMs < headersTimeoutMs + 5000) {
    const before = performance.now();
    const res = await request(rig.gateway.proxyUrl, '/ceir/ok');
    latencies.push(performance.now() - before);
    if (res.status !== 200) {
      t.fail(`an ordinary request got ${res.status}`);
      break;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  clearInterval(trickle);
  t.equal(closedAfterMs.length, 100, 'every trickling connection was closed');
  const last = Math.max(...closedAfterMs);
  t.ok(last <= headersTimeoutMs + 1000, `the last closed ${Math.round(last)} ms after it connected (limit ${headersTimeoutMs} + 1000)`);
  t.ok(Math.min(...closedAfterMs) >= headersTimeoutMs - 100, `none closed before its time (first after ${Math.round(Math.min(...closedAfterMs))} ms)`);
  latencies.sort((a, b) => a - b);
  const median = latencies[Math.floor(latencies.length / 2)] ?? Infinity;
  const p95 = latencies[Math.floor(latencies.length * 0.95)] ?? Infinity;
  t.ok(latencies.length >= 10, `${latencies.length} ordinary requests made meanwhile`);
  t.ok(median < 100, `ordinary requests: median ${median.toFixed(1)} ms (< 100 ms), p95 ${p95.toFixed(1)} ms`);
  // The tail is the machine's (tests share it); a stalled gateway would show seconds here.
  t.ok(p95 < 1000, 'no ordinary request waited for the trickling ones');
});

t.test('a body trickled past requestTimeout gets 408 and the connection closes', async (t) => {
  const rig = await edgeRig(t, { limits: { headersTimeoutMs: 1000, requestTimeoutMs: 1500 } });
  const startedMs = performance.now();
  const answer = await new Promise<string>((resolve) => {
    const s = net.connect(portOf(rig), '127.0.0.1', () => s.write('POST /ceir/x HTTP/1.1\r\nHost: a\r\nContent-Length: 1000\r\n\r\n'));
    const drip = setInterval(() => { if (!s.destroyed) s.write('x'); }, 100);
    let got = '';
    s.on('data', (d: Buffer) => { got += d.toString('latin1'); });
    s.on('error', () => {});
    s.on('close', () => { clearInterval(drip); resolve(got); });
    t.teardown(() => { clearInterval(drip); s.destroy(); });
  });
  const tookMs = performance.now() - startedMs;
  t.equal(statusOf(answer), 408);
  t.ok(tookMs >= 1400 && tookMs <= 1500 + 1000, `closed after ${Math.round(tookMs)} ms (requestTimeout 1500 ms)`);
});

t.test('requestTimeout bounds receiving the request, not a slow site answering it', async (t) => {
  const rig = await edgeRig(t, { limits: { headersTimeoutMs: 500, requestTimeoutMs: 800 } });
  rig.sites.ceir!.set({ status: 200, body: 'slow but fine', delayMs: 2000 });
  const res = await request(rig.gateway.proxyUrl, '/ceir/slow', { method: 'POST', body: 'x' });
  t.equal(res.status, 200);
  t.equal(res.text, 'slow but fine');
});

t.test('a connection that sends nothing is closed after headersTimeout', async (t) => {
  const rig = await edgeRig(t, { limits: { headersTimeoutMs: 1000, requestTimeoutMs: 5000 } });
  const startedMs = performance.now();
  const silent = await Promise.all(Array.from({ length: 10 }, () => new Promise<number>((resolve) => {
    const s = net.connect(portOf(rig), '127.0.0.1');
    s.on('error', () => {});
    s.on('data', () => {});
    s.on('close', () => resolve(performance.now() - startedMs));
    t.teardown(() => s.destroy());
  })));
  const last = Math.max(...silent);
  t.ok(last <= 1000 + 1000, `all 10 closed by ${Math.round(last)} ms (headersTimeout 1000 ms)`);
});

t.test('idle keep-alive connections close after keepAliveTimeout', async (t) => {
  const rig = await edgeRig(t, { limits: { keepAliveTimeoutMs: 300 } });
  const startedMs = performance.now();
  let answeredMs = 0;
  const answer = await new Promise<string>((resolve) => {
    const s = net.connect(portOf(rig), '127.0.0.1', () => s.write('GET /ceir/x HTTP/1.1\r\nHost: a\r\n\r\n'));
    let got = '';
    s.on('data', (d: Buffer) => { got += d.toString('latin1'); answeredMs ||= performance.now(); });
    s.on('error', () => {});
    s.on('close', () => resolve(got));
    t.teardown(() => s.destroy());
  });
  const idleMs = performance.now() - answeredMs;
  t.equal(statusOf(answer), 200);
  t.ok(idleMs >= 250 && idleMs < 2000, `closed ${Math.round(idleMs)} ms after the answer (keepAliveTimeout 300 ms)`);
  t.ok(answeredMs > startedMs);
});

t.test('maxConnections: connections beyond it are closed at once; a freed slot is usable again', async (t) => {
  const rig = await edgeRig(t, { limits: { maxConnections: 5 } });
  const port = portOf(rig);
  const held: net.Socket[] = [];
  t.teardown(() => { for (const s of held) s.destroy(); });
  for (let i = 0; i < 5; i++) {
    // A whole keep-alive exchange on each, so the gateway has surely accepted it.
    const s = net.connect(port, '127.0.0.1', () => s.write('GET /ceir/x HTTP/1.1\r\nHost: a\r\n\r\n'));
    s.on('error', () => {});
    held.push(s);
    await new Promise((r) => s.once('data', r));
  }
  const refused = await raw(port, 'GET /ceir/x HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n');
  t.equal(refused, '', 'the sixth connection is closed without an answer');
  held.pop()!.destroy();
  await waitFor(async () => statusOf(await raw(port, 'GET /ceir/x HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n')) === 200,
    { timeoutMs: 3000, message: 'a connection is accepted once one is freed' });
  t.pass('a freed slot takes a new connection');
});

t.test('limits change on reload', async (t) => {
  const rig = await edgeRig(t);
  const port = portOf(rig);
  const big = `GET /ceir/x HTTP/1.1\r\nHost: a\r\nX-Big: ${'a'.repeat(10_000)}\r\nConnection: close\r\n\r\n`;
  t.equal(statusOf(await raw(port, big)), 200, '10 kB of headers fit the default 16 kB');
  const result = rig.gateway.applyPolicy({ ...rig.policy, limits: { ...rig.policy.limits, headerBytes: 4096 } });
  t.ok(result.ok);
  t.equal(statusOf(await raw(port, big)), 431, 'after the reload they do not');
});
