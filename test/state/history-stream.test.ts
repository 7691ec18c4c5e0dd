// The shared history on a real redis-server: what one replica appends, the
// other shows; one id is one entry however many replicas append it; the stream
// stays bounded; notification claims go to one replica; a bad entry is skipped.
import t, { type Test } from 'tap';
import { Redis } from 'ioredis';
import { HistoryStream, parseRecord, type HistoryRecord } from '../../src/state/history-stream.js';
import { startRedis } from '../helpers/redis.js';
import { waitFor } from '../helpers/wait.js';
import { captureLogger, uniquePrefix } from './redis-fixture.js';

const redis = await startRedis(t);
const raw = new Redis(redis.url);
t.teardown(() => raw.disconnect());

async function open(t: Test, keyPrefix: string, replicaId: string, extra: { maxLen?: number } = {}): Promise<HistoryStream> {
  const stream = new HistoryStream({ url: redis.url, keyPrefix, replicaId, logger: captureLogger().logger, refreshMs: 100, ...extra });
  t.teardown(() => stream.close());
  await stream.start();
  return stream;
}

const event = (id: string, replica: string, type = 'drained', time = new Date().toISOString()): HistoryRecord =>
  ({ id, replica, kind: 'event', event: { type: type as never, time, message: `${type} ${id}` } });

t.test('one history: appended on A, shown on B, in order, with the audit entries apart', async (t) => {
  const keyPrefix = uniquePrefix();
  const a = await open(t, keyPrefix, 'a');
  const b = await open(t, keyPrefix, 'b');
  t.equal(a.isUp(), true);
  a.append(event('e1', 'a'));
  t.same(a.events().map((e) => e.id), ['e1'], 'shown on A at once, before Redis confirms');
  b.append(event('e2', 'b'));
  a.append({ id: 'x1', replica: 'a', kind: 'audit', audit: { time: new Date().toISOString(), source: '127.0.0.1', action: 'drain', target: 'site cyber1', result: 'ok', status: 200, message: 'drained' } });
  await waitFor(() => b.events().length === 2 && b.audit().length === 1 && a.events().length === 2, { timeoutMs: 3000, message: 'both see both' });
  t.same(a.events().map((e) => [e.id, e.replica]), b.events().map((e) => [e.id, e.replica]), 'the same history on both');
  t.same(b.audit()[0], { time: b.audit()[0]!.time, source: '127.0.0.1', action: 'drain', target: 'site cyber1', result: 'ok', status: 200, message: 'drained', id: 'x1', replica: 'a' });
  t.equal(await raw.xlen(`${keyPrefix}history`), 3, 'in the documented stream key');
});

t.test('the same id from several replicas is one entry', async (t) => {
  const keyPrefix = uniquePrefix();
  const a = await open(t, keyPrefix, 'a');
  const b = await open(t, keyPrefix, 'b');
  a.append(event('d:failedOver:ceir:cyber1>serpong:1000', 'a', 'failedOver'));
  b.append(event('d:failedOver:ceir:cyber1>serpong:1000', 'b', 'failedOver'));
  b.append(event('d:failedOver:ceir:cyber1>serpong:2000', 'b', 'failedOver'));
  await waitFor(() => a.events().length === 2 && b.events().length === 2, { timeoutMs: 3000 });
  await waitFor(async () => (await raw.xlen(`${keyPrefix}history`)) === 2, { timeoutMs: 3000 });
  t.same(a.events().map((e) => e.id), ['d:failedOver:ceir:cyber1>serpong:1000', 'd:failedOver:ceir:cyber1>serpong:2000']);
});

t.test('bounded: MAXLEN ~ keeps the stream near maxLen; /status shows the newest', async (t) => {
  const keyPrefix = uniquePrefix();
  const a = await open(t, keyPrefix, 'a', { maxLen: 10 });
  for (let i = 0; i < 400; i++) a.append(event(`n${i}`, 'a'));
  await waitFor(() => a.events().at(-1)?.id === 'n399' && a.records().length <= 200, { timeoutMs: 5000, message: 'written' });
  const len = await raw.xlen(`${keyPrefix}history`);
  t.ok(len < 400 && len <= 10 + 100, `trimmed to ${len} (approximate trimming works per stream node of 100)`);
  t.equal(a.events().length, 100, 'shown: the newest 100');
});

t.test('notification claims: one winner; delivered stays delivered', async (t) => {
  const keyPrefix = uniquePrefix();
  const a = await open(t, keyPrefix, 'a');
  const b = await open(t, keyPrefix, 'b');
  const [ra, rb] = await Promise.all([a.claimNotification('n1', 5000), b.claimNotification('n1', 5000)]);
  t.same([ra, rb].sort(), ['claimed', 'won']);
  await a.markNotified('n1');
  t.equal(await b.claimNotification('n1', 5000), 'delivered');
  t.equal(await b.claimNotification('n2', 50), 'won');
  await new Promise((r) => setTimeout(r, 120));
  t.equal(await a.claimNotification('n2', 5000), 'won', 'an expired claim (its holder died) can be taken again');
});

t.test('Redis away: own records queue and are shown; written when it is back', async (t) => {
  const own = await startRedis(t);
  const keyPrefix = uniquePrefix();
  const a = new HistoryStream({ url: own.url, keyPrefix, replicaId: 'a', logger: captureLogger().logger, refreshMs: 100 });
  t.teardown(() => a.close());
  await a.start();
  await own.stop();
  await waitFor(() => !a.isUp(), { timeoutMs: 5000, message: 'down seen' });
  a.append(event('while-down', 'a'));
  t.same(a.events().map((e) => e.id), ['while-down']);
  await own.restart();
  const check = new Redis(own.url);
  t.teardown(() => check.disconnect());
  await waitFor(async () => (await check.xlen(`${keyPrefix}history`)) === 1, { timeoutMs: 8000, message: 'written after the outage' });
  await waitFor(() => a.isUp(), { timeoutMs: 3000, message: 'up again after the read' });
  t.same(a.events().map((e) => e.id), ['while-down'], 'now read back from the stream');
});

t.test('parseRecord skips what is not a record', async (t) => {
  for (const bad of [undefined, 'not json', '7', '{"id":1}', '{"id":"a","replica":"r","kind":"event","event":{"type":"x"}}', '{"id":"a","replica":"r","kind":"other"}',
    '{"id":"a","replica":"r","kind":"audit","audit":[]}']) t.equal(parseRecord(bad), undefined, String(bad));
  t.ok(parseRecord(JSON.stringify(event('ok', 'r'))));
});
