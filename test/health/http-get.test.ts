import t from 'tap';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { createAgents, destroyAgents, describeError, httpGet, joinUrl } from '../../src/health/http-get.js';
import { startProbeSite } from '../helpers/probe-site.js';

const agents = createAgents();
t.teardown(() => destroyAgents(agents));

t.test('urls that cannot be fetched are answered in words', async (t) => {
  const cases: Array<[string, string]> = [
    ['not a url', 'bad url not a url'],
    ['ftp://127.0.0.1/x', 'unsupported protocol ftp:'],
  ];
  for (const [url, error] of cases) {
    t.same(await httpGet(url, { timeoutMs: 100, maxBodyBytes: 10, agents }), { ok: false, error }, url);
  }
  const aborted = AbortSignal.abort();
  t.same(await httpGet('http://127.0.0.1:1/', { timeoutMs: 100, maxBodyBytes: 10, agents, signal: aborted }), { ok: false, error: 'aborted' });
});

t.test('the body cap keeps at most maxBodyBytes', async (t) => {
  const site = await startProbeSite({ status: 200, body: '0123456789' });
  t.teardown(() => site.close());
  const table: Array<[maxBodyBytes: number, body: string, truncated: boolean]> = [
    [10, '0123456789', false],
    [100, '0123456789', false],
    [4, '0123', true],
    [0, '', true],
  ];
  for (const [maxBodyBytes, body, truncated] of table) {
    t.same(await httpGet(site.url, { timeoutMs: 1000, maxBodyBytes, agents }), { ok: true, status: 200, body, bytes: Buffer.from(body), truncated }, `cap ${maxBodyBytes}`);
  }
});

t.test('a connection cut mid-body is a failure', async (t) => {
  const server = http.createServer((_req, res) => {
    res.writeHead(200, { 'content-length': '100' });
    res.write('partial', () => res.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()); }));
  const { port } = server.address() as AddressInfo;
  const got = await httpGet(`http://127.0.0.1:${port}/`, { timeoutMs: 1000, maxBodyBytes: 1000, agents });
  t.equal(got.ok, false);
});

t.test('an abort during the request ends it at once', async (t) => {
  const site = await startProbeSite('hang');
  t.teardown(() => site.close());
  const controller = new AbortController();
  const pending = httpGet(site.url, { timeoutMs: 10_000, maxBodyBytes: 10, agents, signal: controller.signal });
  setTimeout(() => controller.abort(), 20);
  t.same(await pending, { ok: false, error: 'aborted' });
});

t.test('errors read as syscall and code, without addresses', async (t) => {
  const refused = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:9'), { code: 'ECONNREFUSED', syscall: 'connect' });
  const hangUp = Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' });
  t.equal(describeError(refused), 'connect ECONNREFUSED');
  t.equal(describeError(hangUp), 'socket hang up');
  t.equal(describeError('weird'), 'weird');
});

t.test('joinUrl', async (t) => {
  const table: Array<[string, string, string]> = [
    ['http://a:1', '/healthz', 'http://a:1/healthz'],
    ['http://a:1/', '/healthz', 'http://a:1/healthz'],
    ['http://a:1/base/', 'ready', 'http://a:1/base/ready'],
  ];
  for (const [base, path, want] of table) t.equal(joinUrl(base, path), want, `${base} + ${path}`);
});
