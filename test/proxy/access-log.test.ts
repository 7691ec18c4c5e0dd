// The access log against a real gateway: one JSON line per request with who,
// what, where from and why, including requests detour refused itself; the file
// is reopened after rotation; sampling; a path that cannot be written is
// reported and costs nothing.
import t from 'tap';
import net from 'node:net';
import { readFile, rename } from 'node:fs/promises';
import { join } from 'node:path';
import pino from 'pino';
import { startRig } from '../helpers/gateway.js';
import { waitFor } from '../helpers/wait.js';
import { AccessLog } from '../../src/proxy/access-log.js';
import { silentLogger } from '../../src/logger.js';
import { request } from './fixtures/proxy-harness.js';

async function lines(file: string): Promise<Array<Record<string, unknown>>> {
  const text = await readFile(file, 'utf8').catch(() => '');
  return text.split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);
}

function rawAndClose(port: number, text: string): Promise<void> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1', () => s.write(text));
    s.on('data', () => {});
    s.on('error', () => resolve());
    s.on('close', () => resolve());
  });
}

t.test('one JSON line per request, with the fields an incident review needs', async (t) => {
  const file = join(t.testdir({}), 'access.log');
  const lenient = { intervalMs: 500, timeoutMs: 2000, fall: 10 };
  const rig = await startRig(t, [{ name: 'sick', probe: lenient }, { name: 'healthy', probe: lenient }], () => ({
    routes: [
      { name: 'ceir', sites: ['sick', 'healthy'], match: { pathPrefix: '/ceir' }, limits: { bodyBytes: 10 } },
      { name: 'down', sites: ['sick'], match: { pathPrefix: '/down' } },
    ],
    accessLog: { path: file, sample: 1 },
  }));
  const url = rig.gateway.proxyUrl;
  rig.sites.sick!.set({ status: 503, body: 'no' });
  t.equal((await request(url, '/ceir/records/7?secret=1', { headers: { host: 'ceir.example.go.id' } })).status, 200);
  t.equal((await request(url, '/nowhere')).status, 404);
  t.equal((await request(url, '/ceir%2Fx')).status, 400);
  t.equal((await request(url, '/ceir/upload', { method: 'POST', body: 'x'.repeat(11) })).status, 413);
  t.equal((await request(url, '/down/x')).status, 503, 'the only site answers 503 and there is nowhere to retry');
  await rawAndClose(rig.gateway.proxyAddress.port, 'HELLO\r\n\r\n');
  await waitFor(async () => (await lines(file)).length >= 6, { timeoutMs: 3000, message: 'six lines written' });
  const got = await lines(file);
  t.equal(got.length, 6, 'one line each');

  const [served, notFound, badTarget, tooLarge, failed, refused] = got;
  t.match(served, {
    client: '127.0.0.1', method: 'GET', host: 'ceir.example.go.id', path: '/ceir/records/7', route: 'ceir', site: 'healthy',
    status: 200, retries: 1, why: 'sick -> healthy: status 503',
  });
  t.ok(Number.isFinite(Date.parse(String(served!.time))), 'time is an ISO date');
  t.ok(typeof served!.durationMs === 'number' && served!.durationMs >= 0, 'duration in ms');
  t.ok(Number(served!.bytes) > 0, 'bytes written to the client');
  t.notMatch(JSON.stringify(served), /secret/, 'the query is not logged');
  t.match(notFound, { path: '/nowhere', route: 'none', site: 'none', status: 404, retries: 0, why: /no route/ });
  t.match(badTarget, { status: 400, route: 'none', why: /encoded slashes/ });
  t.match(tooLarge, { status: 413, route: 'ceir', site: 'none', why: /body over 10 bytes/ });
  t.match(failed, { status: 503, route: 'down', site: 'sick', retries: 0 });
  t.match(refused, { status: 400, method: null, client: '127.0.0.1', why: /HPE_INVALID_METHOD/ });
});

t.test('rotation: after the file is moved away, reopenLogs (SIGUSR1) writes to a new file at the path', async (t) => {
  const dir = t.testdir({});
  const file = join(dir, 'access.log');
  const rig = await startRig(t, [{ name: 'a' }], () => ({ routes: [{ name: 'r', sites: ['a'] }], accessLog: { path: file, sample: 1 } }));
  await request(rig.gateway.proxyUrl, '/before');
  await waitFor(async () => (await lines(file)).length === 1, { timeoutMs: 3000, message: 'first line' });
  await rename(file, `${file}.1`);
  await request(rig.gateway.proxyUrl, '/moved');
  await waitFor(async () => (await lines(`${file}.1`)).length === 2, { timeoutMs: 3000, message: 'still writing to the moved file until reopened' });
  rig.gateway.reopenLogs();
  await request(rig.gateway.proxyUrl, '/after');
  await waitFor(async () => (await lines(file)).length === 1, { timeoutMs: 3000, message: 'a new file after reopening' });
  t.same((await lines(file)).map((l) => l.path), ['/after']);
  t.same((await lines(`${file}.1`)).map((l) => l.path), ['/before', '/moved']);
});

t.test('a reload can turn the access log on, move it and turn it off', async (t) => {
  const dir = t.testdir({});
  const rig = await startRig(t, [{ name: 'a' }], () => ({ routes: [{ name: 'r', sites: ['a'] }] }));
  await request(rig.gateway.proxyUrl, '/off');
  t.ok(rig.gateway.applyPolicy({ ...rig.policy, accessLog: { path: join(dir, 'one.log'), sample: 1 } }).ok);
  await request(rig.gateway.proxyUrl, '/one');
  t.ok(rig.gateway.applyPolicy({ ...rig.policy, accessLog: { path: join(dir, 'two.log'), sample: 1 } }).ok);
  await request(rig.gateway.proxyUrl, '/two');
  t.ok(rig.gateway.applyPolicy(rig.policy).ok);
  await request(rig.gateway.proxyUrl, '/off-again');
  await waitFor(async () => (await lines(join(dir, 'two.log'))).length === 1, { timeoutMs: 3000, message: 'second file written' });
  t.same((await lines(join(dir, 'one.log'))).map((l) => l.path), ['/one']);
  t.same((await lines(join(dir, 'two.log'))).map((l) => l.path), ['/two']);
});

t.test('AccessLog: sampling, an unwritable path, and stdout', async (t) => {
  const dir = t.testdir({});
  let r = 0.7;
  const log = new AccessLog({ logger: silentLogger(), random: () => r });
  t.teardown(() => log.close());
  const fakeReq = { socket: { remoteAddress: '127.0.0.1', bytesWritten: 0 }, headers: {}, method: 'GET', url: '/x' } as never;
  const fakeRes = () => ({ once: () => {}, headersSent: false }) as never;
  t.equal(log.begin(fakeReq, fakeRes()), undefined, 'no access log configured: nothing noted');
  log.update({ path: join(dir, 'sampled.log'), sample: 0.5 });
  t.equal(log.begin(fakeReq, fakeRes()), undefined, 'sampled out (0.7 >= 0.5)');
  r = 0.2;
  t.ok(log.begin(fakeReq, fakeRes()), 'sampled in (0.2 < 0.5)');
  log.refused(new net.Socket(), 400, 'x');
  r = 0.9;
  log.refused(new net.Socket(), 400, 'not sampled');
  await log.close();
  t.same((await lines(join(dir, 'sampled.log'))).map((l) => l.why), ['x'], 'refusals are sampled too');

  const errors: string[] = [];
  const logger = pino({ level: 'error' }, { write: (line: string) => { errors.push(line); } });
  const broken = new AccessLog({ logger });
  broken.update({ path: join(dir, 'no', 'such', 'dir', 'access.log'), sample: 1 });
  t.match(errors[0], /access log: cannot open the file/, 'the open error is logged at once');
  t.equal(broken.isOpen, false);
  t.equal(broken.begin(fakeReq, fakeRes()), undefined, 'an unwritable log notes nothing');
  broken.reopen();
  await broken.close();

  const stdout = new AccessLog({ logger: silentLogger() });
  stdout.update({ path: 'stdout', sample: 1 });
  stdout.reopen();
  await stdout.close();
  t.pass('stdout is neither reopened nor closed');
});
