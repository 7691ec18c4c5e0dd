import t from 'tap';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { AdminClient } from '../../src/admin/admin-client.js';
import { DetourError } from '../../src/errors.js';
import { policyErrors, sampleStatus } from './fake-control.js';
import { closedPort, goodToken, startTestServer } from './start-server.js';

t.test('every method against a real server', async (t) => {
  const s = await startTestServer(t);
  const client = new AdminClient({ baseUrl: s.url, token: goodToken });

  t.same(await client.status(), sampleStatus());

  const steps: Array<{ name: string; run: () => Promise<unknown>; call: { method: string; args: unknown[] }; message: RegExp }> = [
    { name: 'drain building', run: () => client.drain({ kind: 'building', name: 'gedung-cyber-1' }), call: { method: 'drain', args: [{ kind: 'building', name: 'gedung-cyber-1' }] }, message: /drained building/ },
    { name: 'drain site', run: () => client.drain({ kind: 'site', name: 'cyber1' }), call: { method: 'drain', args: [{ kind: 'site', name: 'cyber1' }] }, message: /drained site/ },
    { name: 'undrain', run: () => client.undrain({ kind: 'site', name: 'cyber1' }), call: { method: 'undrain', args: [{ kind: 'site', name: 'cyber1' }] }, message: /undrained site/ },
    { name: 'pin (name needing encoding)', run: () => client.pin('border control', 'dr'), call: { method: 'pin', args: ['border control', 'dr'] }, message: /pinned to dr/ },
    { name: 'unpin', run: () => client.unpin('border control'), call: { method: 'unpin', args: ['border control'] }, message: /unpinned/ },
    { name: 'failback', run: () => client.failback('ceir'), call: { method: 'approveFailback', args: ['ceir', false] }, message: /approved$/ },
    { name: 'failback --force', run: () => client.failback('ceir', { force: true }), call: { method: 'approveFailback', args: ['ceir', true] }, message: /integrity gate skipped/ },
    { name: 'failover', run: () => client.failover('border control'), call: { method: 'approveFailover', args: ['border control'] }, message: /failover of border control approved/ },
    { name: 'reload', run: () => client.reload(), call: { method: 'reload', args: [] }, message: /policy reloaded/ },
  ];
  for (const step of steps) {
    const result = (await step.run()) as { ok: boolean; message: string };
    t.equal(result.ok, true, step.name);
    t.match(result.message, step.message, step.name);
    t.same(s.control.calls.at(-1), step.call, step.name);
  }
});

t.test('a refused reload is returned, not thrown', async (t) => {
  const s = await startTestServer(t);
  s.control.reloadErrors = policyErrors;
  const result = await new AdminClient({ baseUrl: s.url, token: goodToken }).reload();
  t.equal(result.ok, false);
  if (result.ok) return;
  t.same(result.errors, policyErrors);
  t.equal(result.lines.length, 2);
  t.match(result.lines[0], /^config\/prod\.yaml:12:5 routes\[0\]\.sites\[1\]: unknown site/);
});

t.test('API errors become DetourErrors with the server message and status', async (t) => {
  const s = await startTestServer(t);
  const client = new AdminClient({ baseUrl: s.url, token: goodToken });
  const cases: Array<{ name: string; run: () => Promise<unknown>; status: number; code: string; message: RegExp }> = [
    { name: 'unknown route', run: () => client.pin('nope', 'cyber1'), status: 404, code: 'not_found', message: /^unknown route "nope"$/ },
    { name: 'unknown building', run: () => client.drain({ kind: 'building', name: 'atlantis' }), status: 404, code: 'not_found', message: /atlantis/ },
    { name: 'conflict', run: () => client.unpin('visa'), status: 409, code: 'conflict', message: /not pinned/ },
    { name: 'bad request from the control', run: () => client.pin('ceir', 'dr'), status: 400, code: 'bad_request', message: /not one of route/ },
    { name: 'bad request from validation', run: () => client.drain({ kind: 'site', name: '' }), status: 400, code: 'bad_request', message: /non-empty/ },
    { name: 'no token', run: () => new AdminClient({ baseUrl: s.url }).failover('ceir'), status: 401, code: 'unauthorized', message: /Bearer/ },
    { name: 'empty token is no token', run: () => new AdminClient({ baseUrl: s.url, token: '' }).failover('ceir'), status: 401, code: 'unauthorized', message: /Bearer/ },
    { name: 'wrong token', run: () => new AdminClient({ baseUrl: s.url, token: 'nope' }).reload(), status: 403, code: 'forbidden', message: /invalid admin token/ },
  ];
  for (const c of cases) {
    await t.rejects(c.run(), { name: 'DetourError', status: c.status, code: c.code, message: c.message }, c.name);
  }
});

t.test('the token goes only with mutations; routes are encoded; base path kept', async (t) => {
  const seen: Array<{ url: string; method: string; auth: string | null; body: unknown }> = [];
  const fakeFetch: typeof fetch = async (input, init) => {
    const headers = new Headers(init?.headers);
    seen.push({ url: String(input), method: init?.method ?? 'GET', auth: headers.get('authorization'), body: init?.body ?? null });
    return new Response(JSON.stringify({ ok: true, message: 'fine' }), { status: 200, headers: { 'content-type': 'application/json' } });
  };
  const client = new AdminClient({ baseUrl: 'http://127.0.0.1:9/detour/?x=1', token: 'tok', fetchImpl: fakeFetch });
  await client.status();
  await client.pin('a/b c', 'serpong');
  await client.failback('ceir', { force: true });
  await client.failback('ceir');
  await client.undrain({ kind: 'building', name: 'gedung-cyber-1' });
  t.same(seen, [
    { url: 'http://127.0.0.1:9/detour/status', method: 'GET', auth: null, body: null },
    { url: 'http://127.0.0.1:9/detour/routes/a%2Fb%20c/pin', method: 'POST', auth: 'Bearer tok', body: '{"site":"serpong"}' },
    { url: 'http://127.0.0.1:9/detour/routes/ceir/failback', method: 'POST', auth: 'Bearer tok', body: '{"force":true}' },
    { url: 'http://127.0.0.1:9/detour/routes/ceir/failback', method: 'POST', auth: 'Bearer tok', body: null },
    { url: 'http://127.0.0.1:9/detour/drain', method: 'DELETE', auth: 'Bearer tok', body: '{"building":"gedung-cyber-1"}' },
  ]);
});

t.test('a read challenged with 401 (publicRead: false) is repeated once with the token', async (t) => {
  const seen: Array<string | null> = [];
  const fakeFetch: typeof fetch = async (_input, init) => {
    const auth = new Headers(init?.headers).get('authorization');
    seen.push(auth);
    if (auth === null) return new Response(JSON.stringify({ error: 'missing token', code: 'unauthorized' }), { status: 401 });
    return new Response(JSON.stringify({ version: 'x' }), { status: 200 });
  };
  t.same(await new AdminClient({ baseUrl: 'http://127.0.0.1:9', token: 'tok', fetchImpl: fakeFetch }).status(), { version: 'x' });
  t.same(seen, [null, 'Bearer tok']);
  seen.length = 0;
  await t.rejects(new AdminClient({ baseUrl: 'http://127.0.0.1:9', fetchImpl: fakeFetch }).status(), { name: 'DetourError', status: 401 }, 'without a token the 401 stands');
  t.same(seen, [null]);
});

t.test('invalid base URLs are refused up front', async (t) => {
  for (const baseUrl of ['', 'localhost:9090', 'ftp://127.0.0.1:9090', 'http://']) {
    t.throws(() => new AdminClient({ baseUrl }), { code: 'bad_request', message: /invalid admin URL/ }, JSON.stringify(baseUrl));
  }
});

t.test('an unreachable gateway gives one clear sentence', async (t) => {
  const port = await closedPort();
  const baseUrl = `http://127.0.0.1:${port}`;
  const err = await new AdminClient({ baseUrl }).status().catch((e: unknown) => e);
  t.type(err, DetourError);
  t.equal((err as DetourError).message, `cannot reach detour admin API at ${baseUrl}: connect ECONNREFUSED`);
  t.equal((err as DetourError).code, 'unreachable');
  t.ok((err as DetourError).cause, 'the fetch error is kept as cause');
});

t.test('a gateway that never answers times out', async (t) => {
  const stuck = createServer(() => {
    /* never answers */
  });
  await new Promise<void>((resolve) => stuck.listen(0, '127.0.0.1', resolve));
  t.teardown(() => {
    stuck.closeAllConnections();
    return new Promise<void>((resolve) => stuck.close(() => resolve()));
  });
  const baseUrl = `http://127.0.0.1:${(stuck.address() as AddressInfo).port}`;
  await t.rejects(new AdminClient({ baseUrl, timeoutMs: 150 }).status(), {
    code: 'timeout',
    message: `cannot reach detour admin API at ${baseUrl}: no answer within 150ms`,
  });
});

t.test('something that is not the admin API is reported as such', async (t) => {
  const answers: Array<{ status: number; body: string }> = [
    { status: 502, body: '<html>Bad Gateway</html>' },
    { status: 200, body: '"just a string"' },
    { status: 500, body: '{"message":"no error field"}' },
  ];
  const other = createServer((_req, res) => {
    const a = answers.shift()!;
    res.writeHead(a.status, { 'content-type': 'text/html' }).end(a.body);
  });
  await new Promise<void>((resolve) => other.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => other.close(() => resolve())));
  const client = new AdminClient({ baseUrl: `http://127.0.0.1:${(other.address() as AddressInfo).port}` });
  await t.rejects(client.status(), { code: 'bad_response', status: 502, message: /HTTP 502, not a JSON object/ });
  await t.rejects(client.status(), { code: 'bad_response', status: 502, message: /HTTP 200, not a JSON object/ });
  await t.rejects(client.status(), { code: 'internal', status: 500, message: 'HTTP 500' });
});
