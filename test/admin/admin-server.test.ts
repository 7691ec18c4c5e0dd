import t from 'tap';
import { request as httpRequest } from 'node:http';
import { connect } from 'node:net';
import { startAdminServer } from '../../src/admin/admin-server.js';
import { silentLogger } from '../../src/logger.js';
import { policyErrors, sampleStatus } from './fake-control.js';
import { goodToken, startTestServer } from './start-server.js';

interface Answer {
  readonly status: number;
  readonly headers: Headers;
  readonly text: string;
  readonly json: any;
}

async function call(base: string, method: string, path: string, opts: { body?: unknown; rawBody?: string; token?: string | null; headers?: Record<string, string> } = {}): Promise<Answer> {
  const headers: Record<string, string> = { ...opts.headers };
  const token = opts.token === undefined ? goodToken : opts.token;
  if (token !== null) headers.authorization = `Bearer ${token}`;
  let body: string | undefined = opts.rawBody;
  if (opts.body !== undefined) {
    body = JSON.stringify(opts.body);
    headers['content-type'] = 'application/json';
  }
  const res = await fetch(`${base}${path}`, { method, headers, body });
  const text = await res.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: res.status, headers: res.headers, text, json };
}

// Every mutating endpoint with a body it accepts and the control call it makes.
const mutations: Array<{ method: string; path: string; body?: unknown; expectCall: { method: string; args: unknown[] } }> = [
  { method: 'POST', path: '/drain', body: { building: 'gedung-cyber-1' }, expectCall: { method: 'drain', args: [{ kind: 'building', name: 'gedung-cyber-1' }] } },
  { method: 'POST', path: '/drain', body: { site: 'cyber1' }, expectCall: { method: 'drain', args: [{ kind: 'site', name: 'cyber1' }] } },
  { method: 'POST', path: '/drain', body: { site: 'cyber1', force: true }, expectCall: { method: 'drain', args: [{ kind: 'site', name: 'cyber1' }, { force: true }] } },
  { method: 'POST', path: '/drain', body: { site: 'cyber1', force: false }, expectCall: { method: 'drain', args: [{ kind: 'site', name: 'cyber1' }] } },
  { method: 'DELETE', path: '/drain', body: { building: 'serpong-dc' }, expectCall: { method: 'undrain', args: [{ kind: 'building', name: 'serpong-dc' }] } },
  { method: 'DELETE', path: '/drain', body: { site: 'dr' }, expectCall: { method: 'undrain', args: [{ kind: 'site', name: 'dr' }] } },
  { method: 'POST', path: '/routes/ceir/pin', body: { site: 'serpong' }, expectCall: { method: 'pin', args: ['ceir', 'serpong'] } },
  { method: 'POST', path: '/routes/ceir/failback', expectCall: { method: 'approveFailback', args: ['ceir', false] } },
  { method: 'POST', path: '/routes/ceir/failback', body: { force: true }, expectCall: { method: 'approveFailback', args: ['ceir', true] } },
  { method: 'POST', path: '/routes/ceir/failback', body: { force: false }, expectCall: { method: 'approveFailback', args: ['ceir', false] } },
  { method: 'POST', path: '/routes/border%20control/failover', expectCall: { method: 'approveFailover', args: ['border control'] } },
  { method: 'POST', path: '/reload', expectCall: { method: 'reload', args: [] } },
];

t.test('reads need no token', async (t) => {
  const s = await startTestServer(t);

  const health = await call(s.url, 'GET', '/healthz', { token: null });
  t.equal(health.status, 200);
  t.same(health.json, { status: 'ok' });

  const status = await call(s.url, 'GET', '/status', { token: null });
  t.equal(status.status, 200);
  t.match(status.headers.get('content-type'), /^application\/json/);
  t.same(status.json, sampleStatus(), 'status document passes through unchanged');

  const metrics = await call(s.url, 'GET', '/metrics', { token: null });
  t.equal(metrics.status, 200);
  t.equal(metrics.headers.get('content-type'), 'text/plain; version=0.0.4; charset=utf-8', 'content type comes from control.metrics()');
  t.match(metrics.text, /^detour_site_up\{site="cyber1"/m);

  const head = await fetch(`${s.url}/healthz`, { method: 'HEAD' });
  t.equal(head.status, 200, 'HEAD is served like GET');

  const slash = await call(s.url, 'GET', '/status/?verbose=1', { token: null });
  t.equal(slash.status, 200, 'a trailing slash and a query string are tolerated');

  t.same(s.control.calls.map((c) => c.method), ['status', 'metrics', 'status']);
});

t.test('every mutation reaches the control with the right arguments', async (t) => {
  const s = await startTestServer(t);
  for (const m of mutations) {
    const before = s.control.calls.length;
    const res = await call(s.url, m.method, m.path, { body: m.body });
    t.equal(res.status, 200, `${m.method} ${m.path} ${JSON.stringify(m.body)}`);
    t.equal(res.json.ok, true);
    t.type(res.json.message, 'string');
    t.match(res.headers.get('content-type'), /^application\/json/);
    t.same(s.control.calls.slice(before), [m.expectCall], `${m.method} ${m.path} calls ${m.expectCall.method}`);
  }
  // unpin needs a pin first: the fake answers 409 otherwise.
  const unpin = await call(s.url, 'DELETE', '/routes/ceir/pin');
  t.equal(unpin.status, 200);
  t.same(s.control.calls.at(-1), { method: 'unpin', args: ['ceir'] });
});

t.test('auth: without a configured token every mutation is refused', async (t) => {
  for (const token of [undefined, '', '   ']) {
    const s = await startTestServer(t, { token });
    for (const m of mutations) {
      for (const sent of [null, goodToken, '']) {
        const res = await call(s.url, m.method, m.path, { body: m.body, token: sent });
        t.equal(res.status, 403, `token ${JSON.stringify(token)}: ${m.method} ${m.path} with ${JSON.stringify(sent)}`);
        t.same(res.json, { error: 'admin token not configured; mutations are disabled', code: 'forbidden' });
      }
    }
    t.same(s.control.calls, [], 'the control never saw a refused call');
    t.equal((await call(s.url, 'GET', '/status', { token: null })).status, 200, 'reads still work');
  }
});

t.test('auth: missing, malformed, wrong and right tokens', async (t) => {
  const s = await startTestServer(t);
  const cases: Array<{ name: string; header: string | null; status: number }> = [
    { name: 'missing header', header: null, status: 401 },
    { name: 'other scheme', header: `Basic ${goodToken}`, status: 401 },
    { name: 'scheme only', header: 'Bearer', status: 401 },
    { name: 'scheme and spaces', header: 'Bearer   ', status: 401 },
    { name: 'wrong token', header: 'Bearer nope', status: 403 },
    { name: 'token prefix', header: `Bearer ${goodToken.slice(0, -1)}`, status: 403 },
    { name: 'token plus suffix', header: `Bearer ${goodToken}x`, status: 403 },
    { name: 'right token', header: `Bearer ${goodToken}`, status: 200 },
    { name: 'lower-case scheme', header: `bearer ${goodToken}`, status: 200 },
  ];
  for (const m of mutations) {
    for (const c of cases) {
      const before = s.control.calls.length;
      const res = await call(s.url, m.method, m.path, { body: m.body, token: null, headers: c.header === null ? {} : { authorization: c.header } });
      t.equal(res.status, c.status, `${m.method} ${m.path}: ${c.name}`);
      if (c.status === 401) t.equal(res.headers.get('www-authenticate'), 'Bearer', 'challenge header on 401');
      if (c.status === 403) t.equal(res.json.error, 'invalid admin token');
      t.equal(s.control.calls.length - before, c.status === 200 ? 1 : 0, 'control called only when authorised');
      if (m.path.endsWith('/pin') && c.status === 200) await call(s.url, 'DELETE', m.path); // keep the fake's pin state clean
    }
  }
});

t.test('bad bodies get 400 with a message and never reach the control', async (t) => {
  const s = await startTestServer(t);
  const cases: Array<{ name: string; method: string; path: string; raw: string; message: RegExp }> = [
    { name: 'invalid JSON', method: 'POST', path: '/drain', raw: '{"building": ', message: /^invalid JSON body/ },
    { name: 'both site and building', method: 'POST', path: '/drain', raw: '{"building":"a","site":"b"}', message: /exactly one of "building" or "site"/ },
    { name: 'neither site nor building', method: 'DELETE', path: '/drain', raw: '{}', message: /exactly one of "building" or "site"/ },
    { name: 'empty drain body', method: 'POST', path: '/drain', raw: '', message: /exactly one of "building" or "site"/ },
    { name: 'wrong type', method: 'POST', path: '/drain', raw: '{"building": 7}', message: /building: .*string/ },
    { name: 'empty name', method: 'POST', path: '/drain', raw: '{"site": ""}', message: /site: must be a non-empty string/ },
    { name: 'unknown field', method: 'POST', path: '/drain', raw: '{"site":"cyber1","forse":true}', message: /Unrecognized key.*forse/ },
    { name: 'force on undrain', method: 'DELETE', path: '/drain', raw: '{"site":"cyber1","force":true}', message: /Unrecognized key.*force/ },
    { name: 'force not a boolean', method: 'POST', path: '/drain', raw: '{"site":"cyber1","force":"yes"}', message: /force: .*boolean/ },
    { name: 'array body', method: 'POST', path: '/drain', raw: '["cyber1"]', message: /expected object/ },
    { name: 'null body', method: 'POST', path: '/routes/ceir/pin', raw: 'null', message: /expected object/ },
    { name: 'pin without site', method: 'POST', path: '/routes/ceir/pin', raw: '{}', message: /site/ },
    { name: 'pin site wrong type', method: 'POST', path: '/routes/ceir/pin', raw: '{"site":["a"]}', message: /site: / },
    { name: 'failback force not boolean', method: 'POST', path: '/routes/ceir/failback', raw: '{"force":"yes"}', message: /force: .*boolean/ },
    { name: 'failover with fields', method: 'POST', path: '/routes/ceir/failover', raw: '{"now":true}', message: /Unrecognized key.*now/ },
    { name: 'reload with fields', method: 'POST', path: '/reload', raw: '{"file":"/etc/passwd"}', message: /Unrecognized key.*file/ },
    { name: 'unpin with fields', method: 'DELETE', path: '/routes/ceir/pin', raw: '{"site":"cyber1"}', message: /Unrecognized key.*site/ },
    { name: 'malformed percent-encoding', method: 'POST', path: '/routes/%E0%A4%A/failback', raw: '', message: /percent-encoding/ },
  ];
  for (const c of cases) {
    const res = await call(s.url, c.method, c.path, { rawBody: c.raw, headers: { 'content-type': 'application/json' } });
    t.equal(res.status, 400, c.name);
    t.equal(res.json.code, 'bad_request', c.name);
    t.match(res.json.error, c.message, c.name);
  }
  const invalidUtf8 = await new Promise<number>((resolve, reject) => {
    const req = httpRequest(`${s.url}/drain`, { method: 'POST', headers: { authorization: `Bearer ${goodToken}` } }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', reject);
    req.end(Buffer.from([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x7d]));
  });
  t.equal(invalidUtf8, 400, 'invalid UTF-8 is a bad request');
  t.same(s.control.calls, [], 'no bad body reached the control');
});

t.test('control results map to HTTP statuses', async (t) => {
  const s = await startTestServer(t);
  const cases: Array<{ name: string; method: string; path: string; body?: unknown; status: number; code: string; error: RegExp }> = [
    { name: 'unknown building', method: 'POST', path: '/drain', body: { building: 'atlantis' }, status: 404, code: 'not_found', error: /unknown building "atlantis"/ },
    { name: 'unknown site', method: 'DELETE', path: '/drain', body: { site: 'nowhere' }, status: 404, code: 'not_found', error: /unknown site "nowhere"/ },
    { name: 'unknown route', method: 'POST', path: '/routes/nope/pin', body: { site: 'cyber1' }, status: 404, code: 'not_found', error: /unknown route "nope"/ },
    { name: 'pin to unknown site', method: 'POST', path: '/routes/ceir/pin', body: { site: 'mars' }, status: 404, code: 'not_found', error: /unknown site "mars"/ },
    { name: 'pin to a site outside the route', method: 'POST', path: '/routes/ceir/pin', body: { site: 'dr' }, status: 400, code: 'bad_request', error: /not one of route/ },
    { name: 'unpin an unpinned route', method: 'DELETE', path: '/routes/visa/pin', status: 409, code: 'conflict', error: /not pinned/ },
    { name: 'failback with nothing pending', method: 'POST', path: '/routes/visa/failback', status: 409, code: 'conflict', error: /no pending failback/ },
    { name: 'failover with nothing pending', method: 'POST', path: '/routes/ceir/failover', status: 409, code: 'conflict', error: /no pending failover/ },
    { name: 'failover of unknown route', method: 'POST', path: '/routes/ghost/failover', status: 404, code: 'not_found', error: /unknown route "ghost"/ },
  ];
  for (const c of cases) {
    const res = await call(s.url, c.method, c.path, { body: c.body });
    t.equal(res.status, c.status, c.name);
    t.equal(res.json.code, c.code, c.name);
    t.match(res.json.error, c.error, c.name);
  }
});

t.test('route names in the path are URL-decoded', async (t) => {
  const s = await startTestServer(t);
  const res = await call(s.url, 'POST', '/routes/border%20control/pin', { body: { site: 'dr' } });
  t.equal(res.status, 200);
  t.same(s.control.calls.at(-1), { method: 'pin', args: ['border control', 'dr'] });
  const slash = await call(s.url, 'POST', '/routes/a%2Fb/failback');
  t.equal(slash.status, 404, 'an encoded slash stays inside the name');
  t.same(s.control.calls.at(-1), { method: 'approveFailback', args: ['a/b', false] });
});

t.test('unknown paths are 404, wrong methods 405 with Allow', async (t) => {
  const s = await startTestServer(t);
  for (const path of ['/nope', '/routes', '/routes/ceir', '/routes//pin', '/routes/ceir/pin/extra', '/drain/site', '/statuses']) {
    const res = await call(s.url, 'POST', path, { token: null });
    t.equal(res.status, 404, `POST ${path}`);
    t.equal(res.json.code, 'not_found');
  }
  const cases: Array<{ method: string; path: string; allow: string }> = [
    { method: 'POST', path: '/status', allow: 'GET, HEAD' },
    { method: 'POST', path: '/', allow: 'GET, HEAD' },
    { method: 'DELETE', path: '/healthz', allow: 'GET, HEAD' },
    { method: 'PUT', path: '/metrics', allow: 'GET, HEAD' },
    { method: 'GET', path: '/drain', allow: 'POST, DELETE' },
    { method: 'PATCH', path: '/routes/ceir/pin', allow: 'POST, DELETE' },
    { method: 'GET', path: '/routes/ceir/failback', allow: 'POST' },
    { method: 'DELETE', path: '/routes/ceir/failover', allow: 'POST' },
    { method: 'GET', path: '/reload', allow: 'POST' },
  ];
  for (const c of cases) {
    const res = await call(s.url, c.method, c.path, { token: null });
    t.equal(res.status, 405, `${c.method} ${c.path}`);
    t.equal(res.headers.get('allow'), c.allow, `${c.method} ${c.path} Allow`);
    t.equal(res.json.code, 'method_not_allowed');
  }
  t.same(s.control.calls, []);
});

t.test('bodies over the limit get 413', async (t) => {
  const limit = 1024;
  const s = await startTestServer(t, { maxBodyBytes: limit });
  const big = JSON.stringify({ site: 'x'.repeat(limit) });

  const declared = await call(s.url, 'POST', '/drain', { rawBody: big });
  t.equal(declared.status, 413, 'content-length over the limit');
  t.equal(declared.json.code, 'payload_too_large');

  // Chunked, no content-length: the limit is enforced while reading.
  const chunked = await new Promise<{ status: number; body: string }>((resolve, reject) => {
    const req = httpRequest(`${s.url}/drain`, { method: 'POST', headers: { authorization: `Bearer ${goodToken}`, 'transfer-encoding': 'chunked' } }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    for (let i = 0; i < 4; i++) req.write(big.slice(0, 600));
    req.end();
  });
  t.equal(chunked.status, 413, 'streamed body over the limit');
  t.match(JSON.parse(chunked.body).error, /larger than 1024 bytes/);

  const fits = await call(s.url, 'POST', '/drain', { rawBody: JSON.stringify({ site: 'cyber1' }) });
  t.equal(fits.status, 200, 'a small body still works afterwards');
  t.same(s.control.calls.map((c) => c.method), ['drain']);
});

t.test('the default body limit is 64 KiB', async (t) => {
  const s = await startTestServer(t);
  const justOver = JSON.stringify({ site: 'x'.repeat(64 * 1024) });
  t.equal((await call(s.url, 'POST', '/drain', { rawBody: justOver })).status, 413);
  const under = JSON.stringify({ site: 'y'.repeat(60 * 1024) });
  t.equal((await call(s.url, 'POST', '/drain', { rawBody: under })).status, 404, 'under the limit reaches the control (unknown site)');
});

t.test('reload answers 200 or 422 with errors and formatted lines', async (t) => {
  const s = await startTestServer(t);
  const good = await call(s.url, 'POST', '/reload');
  t.equal(good.status, 200);
  t.same(good.json, { ok: true, message: 'policy reloaded: 3 routes, 3 sites' });

  s.control.reloadErrors = policyErrors;
  const bad = await call(s.url, 'POST', '/reload');
  t.equal(bad.status, 422);
  t.equal(bad.json.ok, false);
  t.equal(bad.json.code, 'invalid_policy');
  t.same(bad.json.errors, policyErrors);
  t.same(bad.json.lines, [
    'config/prod.yaml:12:5 routes[0].sites[1]: unknown site "serpongg"; did you mean "serpong"?',
    'config/prod.yaml:30:3 drain.buildingz: unknown key',
  ]);
  t.match(bad.json.error, /2 problem/);
});

t.test('mutations are logged with action and outcome, never the token', async (t) => {
  const s = await startTestServer(t);
  await call(s.url, 'POST', '/drain', { body: { building: 'gedung-cyber-1' } });
  await call(s.url, 'POST', '/routes/ceir/failback', { body: { force: true } });
  await call(s.url, 'POST', '/routes/nope/pin', { body: { site: 'cyber1' } });
  await call(s.url, 'POST', '/reload', { token: 'wrong-token' });
  await call(s.url, 'GET', '/status');

  const lines = s.logs.filter((l) => typeof l.action === 'string');
  t.same(
    lines.map((l) => [l.action, l.status, l.level]),
    [['drain', 200, 30], ['failback', 200, 30], ['pin', 404, 30], ['reload', 403, 30]],
    'one info line per mutation, none for reads',
  );
  t.equal(lines[0]!.target, 'building gedung-cyber-1');
  t.equal(lines[0]!.outcome, 'drained building gedung-cyber-1');
  t.equal(lines[1]!.force, true, 'a forced failback says so');
  t.match(lines[2]!.outcome, /unknown route "nope"/);
  t.equal(lines[3]!.outcome, 'invalid admin token');
  t.notMatch(s.rawLog(), goodToken, 'the right token is never logged');
  t.notMatch(s.rawLog(), 'wrong-token', 'a wrong token is never logged');
});

t.test('nothing a client sends crashes the server', async (t) => {
  const s = await startTestServer(t);

  s.control.failWith = new Error('database exploded at 10.0.0.3');
  for (const [method, path, body] of [['GET', '/status', undefined], ['GET', '/metrics', undefined], ['POST', '/drain', { site: 'cyber1' }], ['POST', '/reload', undefined]] as const) {
    const res = await call(s.url, method, path, { body });
    t.equal(res.status, 500, `${method} ${path} when the control throws`);
    t.same(res.json, { error: 'internal error', code: 'internal' }, 'internals are not leaked to the client');
  }
  t.ok(s.logs.some((l) => l.level === 50), 'the failure is logged at error');
  s.control.failWith = null;

  // Garbage on the wire, a request cut short mid-body.
  const garbage = await new Promise<string>((resolve, reject) => {
    const sock = connect(s.port, '127.0.0.1', () => sock.end('THIS IS NOT HTTP\r\n\r\n'));
    let got = '';
    sock.setEncoding('utf8');
    sock.on('data', (c: string) => (got += c));
    sock.on('close', () => resolve(got));
    sock.on('error', reject);
  });
  t.match(garbage, /^HTTP\/1\.1 400/, 'malformed HTTP gets 400 from node');

  await new Promise<void>((resolve, reject) => {
    const sock = connect(s.port, '127.0.0.1', () => {
      sock.write(`POST /drain HTTP/1.1\r\nhost: x\r\nauthorization: Bearer ${goodToken}\r\ncontent-length: 100\r\n\r\n{"site":`);
      // Give the server the partial body, then vanish.
      setImmediate(() => {
        sock.destroy();
        resolve();
      });
    });
    sock.on('error', reject);
  });

  const after = await call(s.url, 'GET', '/healthz');
  t.equal(after.status, 200, 'still serving');
});

t.test('startAdminServer rejects with a clear error when the port is taken', async (t) => {
  const s = await startTestServer(t);
  await t.rejects(
    startAdminServer({ host: '127.0.0.1', port: s.port, token: undefined, control: s.control, logger: silentLogger() }),
    { message: new RegExp(`cannot start admin API on 127\\.0\\.0\\.1:${s.port}: .*EADDRINUSE`) },
  );
});

t.test('close() is idempotent and waits for the server to stop', async (t) => {
  const s = await startTestServer(t);
  await call(s.url, 'GET', '/healthz'); // leaves a keep-alive connection open
  await Promise.all([s.server.close(), s.server.close()]);
  await t.rejects(fetch(`${s.url}/healthz`), 'nothing listens after close');
});
