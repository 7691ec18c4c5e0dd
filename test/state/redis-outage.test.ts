// Redis going away and coming back (empty: the test server saves nothing).
// Replicas keep routing on what they know, local changes count at once, and
// everything queued is written, in order, when Redis returns.
import t from 'tap';
import { startRedis } from '../helpers/redis.js';
import { waitFor } from '../helpers/wait.js';
import { captureLogger, openStore, rawClient, uniquePrefix, waitForState, waitForStatus } from './redis-fixture.js';

const redis = await startRedis(t);
const raw = await rawClient(t, redis);

const unhandled: unknown[] = [];
const recordUnhandled = (err: unknown): void => { unhandled.push(err); };
process.on('unhandledRejection', recordUnhandled);
t.teardown(() => { process.off('unhandledRejection', recordUnhandled); });

t.test('Redis killed, then restarted empty', async (t) => {
  const keyPrefix = uniquePrefix();
  const { logger, lines } = captureLogger();
  const a = await openStore(t, redis, { replicaId: 'a', keyPrefix, logger });
  const b = await openStore(t, redis, { replicaId: 'b', keyPrefix });
  a.publishHealth('cyber1', { status: 'up', sinceMs: 1, reason: 'status 200' });
  await waitForState(b, (s) => s.health.cyber1?.a !== undefined, 'A\'s verdict');

  const aDown = waitForStatus(a, false);
  const bDown = waitForStatus(b, false);
  await redis.stop();
  await Promise.all([aDown, bDown]);
  t.equal(a.isUp(), false, 'isUp() false once the connection is gone');

  let notified = 0;
  a.onState(() => { notified++; });
  t.doesNotThrow(() => a.apply({ op: 'drain', kind: 'building', name: 'gedung-cyber-1' }));
  t.equal(notified, 1, 'listeners told at once');
  t.same(a.snapshot().drainedBuildings, ['gedung-cyber-1'], 'the drain counts locally at once');
  a.publishHealth('cyber1', { status: 'down', sinceMs: 2, reason: 'connect ECONNREFUSED' });
  t.equal(a.snapshot().health.cyber1?.a?.status, 'down', 'own verdicts change locally too');

  // Unseen for longer than livenessMs, A drops out of B's view: B decides on its own.
  const alone = await waitForState(b, (s) => !s.replicas.includes('a'), 'A aged out while Redis is down');
  t.same(alone.replicas, ['b']);
  t.same(alone.health, {});

  const aUp = waitForStatus(a, true, 5000);
  const bUp = waitForStatus(b, true, 5000);
  await redis.restart();
  await Promise.all([aUp, bUp]);
  const seen = await waitForState(b, (s) => s.drainedBuildings.includes('gedung-cyber-1') && s.health.cyber1?.a?.status === 'down',
    'the queued drain and A\'s new verdict');
  t.same(seen.replicas, ['a', 'b'], 'A is back in B\'s view');
  t.same(await raw.smembers(`${keyPrefix}drain:buildings`), ['gedung-cyber-1'], 'written to the restarted Redis');
  t.ok(await raw.zscore(`${keyPrefix}replicas`, 'a'), 'heartbeat re-written');

  const warns = lines.filter((l) => l.level === 40);
  t.equal(warns.filter((l) => /unreachable/.test(l.msg)).length, 1, 'one "unreachable" warning for the outage');
  t.ok(warns.filter((l) => /connection failed/.test(l.msg)).length <= 2, 'at most one connection warning per connection, not one per retry');
  t.equal(lines.filter((l) => l.level === 30 && /reachable/.test(l.msg)).length, 2, 'reachable at start and again after the outage');
  t.same(unhandled, [], 'no unhandled rejections');
});

t.test('operations queued during an outage are written in order', async (t) => {
  const keyPrefix = uniquePrefix();
  const a = await openStore(t, redis, { replicaId: 'a', keyPrefix });
  const down = waitForStatus(a, false);
  await redis.stop();
  await down;
  a.apply({ op: 'drain', kind: 'site', name: 'x' });
  a.apply({ op: 'pin', route: 'ceir', site: 'cyber1' });
  a.apply({ op: 'undrain', kind: 'site', name: 'x' });
  a.apply({ op: 'drain', kind: 'site', name: 'y' });
  a.apply({ op: 'pin', route: 'ceir', site: 'serpong' });
  t.same(a.snapshot().drainedSites, ['y']);
  const up = waitForStatus(a, true, 5000);
  await redis.restart();
  await up;
  await waitFor(async () => (await raw.hget(`${keyPrefix}pins`, 'ceir')) === 'serpong', { message: 'the last pin written' });
  t.same(await raw.smembers(`${keyPrefix}drain:sites`), ['y'], 'undrain x was applied after drain x');
  t.same(a.snapshot().drainedSites, ['y']);
});

t.test('the queue of unconfirmed operations is bounded: the oldest go first, with a warning', async (t) => {
  const keyPrefix = uniquePrefix();
  const { logger, lines } = captureLogger();
  const a = await openStore(t, redis, { replicaId: 'a', keyPrefix, logger, maxPendingOps: 2 });
  const down = waitForStatus(a, false);
  await redis.stop();
  await down;
  for (const name of ['s1', 's2', 's3']) a.apply({ op: 'drain', kind: 'site', name });
  t.same(a.snapshot().drainedSites, ['s2', 's3']);
  t.equal(lines.filter((l) => l.level === 40 && /dropped the oldest/.test(l.msg)).length, 1);
  const up = waitForStatus(a, true, 5000);
  await redis.restart();
  await up;
  await waitFor(async () => (await raw.scard(`${keyPrefix}drain:sites`)) === 2, { message: 'the queue written' });
  t.same((await raw.smembers(`${keyPrefix}drain:sites`)).sort(), ['s2', 's3']);
});

t.test('Redis down at start: start() resolves, and the store connects when Redis appears', async (t) => {
  const keyPrefix = uniquePrefix();
  await redis.stop();
  const started = Date.now();
  const a = await openStore(t, redis, { replicaId: 'a', keyPrefix });
  t.ok(Date.now() - started < 2500, 'start() did not hang');
  t.equal(a.isUp(), false);
  a.apply({ op: 'drain', kind: 'site', name: 'early' });
  const up = waitForStatus(a, true, 5000);
  await redis.restart();
  await up;
  t.equal(a.isUp(), true);
  await waitFor(async () => (await raw.sismember(`${keyPrefix}drain:sites`, 'early')) === 1, { message: 'the early drain written' });
  t.same(unhandled, []);
});
