// Redis losing its data (a restart without persistence, a flush) must not
// undrain anything: the epoch tells it apart from an operator's undrain made on
// another replica, which must still win.
import t, { type Test } from 'tap';
import type { Redis } from 'ioredis';
import { startRedis } from '../helpers/redis.js';
import { waitFor } from '../helpers/wait.js';
import type { RedisStore } from '../../src/state/redis-store.js';
import type { SharedState } from '../../src/state/state-store.js';
import { captureLogger, openStore, rawClient, uniquePrefix, waitForState, waitForStatus, type LogLine } from './redis-fixture.js';

const redis = await startRedis(t);
const raw = await rawClient(t, redis);

const BUILDING = 'gedung-cyber-1';
const hasDrainAndPin = (s: SharedState): boolean => s.drainedBuildings.includes(BUILDING) && s.pins.ceir === 'serpong';
const isLostWarning = (l: LogLine): boolean => l.level === 40 && /state store lost its data \(epoch changed/.test(l.msg);

/** Every snapshot the store emits from now on. */
function record(store: RedisStore): SharedState[] {
  const seen: SharedState[] = [];
  store.onState((s) => seen.push(s));
  return seen;
}

/** Resolves once the replica's heartbeat in Redis moved on by `count` periods: it has synced that often since. */
async function waitForHeartbeats(client: Redis, keyPrefix: string, replicaId: string, count: number, heartbeatMs = 100): Promise<void> {
  const from = Number(await client.zscore(`${keyPrefix}replicas`, replicaId));
  await waitFor(async () => Number(await client.zscore(`${keyPrefix}replicas`, replicaId)) >= from + count * heartbeatMs,
    { timeoutMs: 3000, message: `${count} more heartbeats of ${replicaId}` });
}

async function holdsDrainAndPin(keyPrefix: string): Promise<boolean> {
  return (await raw.sismember(`${keyPrefix}drain:buildings`, BUILDING)) === 1 && (await raw.hget(`${keyPrefix}pins`, 'ceir')) === 'serpong';
}

/** A drains a building and pins a route; both replicas see it, and have read it under the current epoch. */
async function drainAndPinOnA(t: Test, keyPrefix: string) {
  const logA = captureLogger();
  const logB = captureLogger();
  const a = await openStore(t, redis, { replicaId: 'a', keyPrefix, logger: logA.logger });
  const b = await openStore(t, redis, { replicaId: 'b', keyPrefix, logger: logB.logger });
  a.apply({ op: 'drain', kind: 'building', name: BUILDING });
  a.apply({ op: 'pin', route: 'ceir', site: 'serpong' });
  await waitForState(b, hasDrainAndPin, 'the drain and the pin');
  t.ok(hasDrainAndPin(a.snapshot()));
  const epoch = await raw.get(`${keyPrefix}epoch`);
  t.match(epoch, /^[0-9a-f]{16}$/, 'an epoch in Redis');
  return { a, b, logA, logB, epoch };
}

t.test('Redis restarted empty: both replicas keep the drain and the pin, and write them back', async (t) => {
  const keyPrefix = uniquePrefix();
  const { a, b, logA, logB, epoch } = await drainAndPinOnA(t, keyPrefix);
  const seenByA = record(a);
  const seenByB = record(b);

  const down = Promise.all([waitForStatus(a, false), waitForStatus(b, false)]);
  await redis.stop();
  await down;
  // Unseen for longer than livenessMs, A leaves B's view; seeing it again after
  // the restart takes a read of the new, empty Redis: exactly when a drain could vanish.
  await waitForState(b, (s) => !s.replicas.includes('a'), 'A aged out while Redis is down');
  const up = Promise.all([waitForStatus(a, true, 5000), waitForStatus(b, true, 5000)]);
  await redis.restart();
  await up;
  await waitForState(b, (s) => s.replicas.includes('a'), 'A back in B\'s view');
  await waitFor(() => holdsDrainAndPin(keyPrefix), { timeoutMs: 3000, message: 'the drain and the pin back in Redis' });

  t.ok(hasDrainAndPin(a.snapshot()), 'A still has them');
  t.ok(hasDrainAndPin(b.snapshot()), 'B still has them');
  t.ok(seenByB.length >= 2, `B emitted snapshots through the outage (${seenByB.length})`);
  t.same(seenByB.filter((s) => !hasDrainAndPin(s)), [], 'no snapshot of B ever showed them missing');
  t.same(seenByA.filter((s) => !hasDrainAndPin(s)), [], 'nor one of A');
  const newEpoch = await raw.get(`${keyPrefix}epoch`);
  t.match(newEpoch, /^[0-9a-f]{16}$/);
  t.not(newEpoch, epoch, 'the restarted Redis has a new epoch');
  t.equal(logA.lines.filter(isLostWarning).length, 1, 'A warned once');
  t.equal(logB.lines.filter(isLostWarning).length, 1, 'B warned once');

  // The new epoch is the one both remember now: an undrain is the truth again.
  b.apply({ op: 'undrain', kind: 'building', name: BUILDING });
  await waitForState(a, (s) => s.drainedBuildings.length === 0, 'B\'s undrain');
  await waitForHeartbeats(raw, keyPrefix, 'a', 3);
  t.same(a.snapshot().drainedBuildings, [], 'A did not bring the drain back');
  t.same(await raw.smembers(`${keyPrefix}drain:buildings`), []);
  t.equal(a.snapshot().pins.ceir, 'serpong', 'the pin stays');
  t.equal(logA.lines.filter(isLostWarning).length + logB.lines.filter(isLostWarning).length, 2, 'no further warnings');
});

t.test('same epoch: an undrain on B is followed by A, never resurrected', async (t) => {
  const keyPrefix = uniquePrefix();
  const { a, b, logA, logB, epoch } = await drainAndPinOnA(t, keyPrefix);
  b.apply({ op: 'undrain', kind: 'building', name: BUILDING });
  b.apply({ op: 'unpin', route: 'ceir' });
  await waitForState(a, (s) => s.drainedBuildings.length === 0 && s.pins.ceir === undefined, 'B\'s undrain and unpin');
  const seenByA = record(a);
  await waitForHeartbeats(raw, keyPrefix, 'a', 3);
  t.same(seenByA.filter((s) => s.drainedBuildings.length > 0 || s.pins.ceir !== undefined), [], 'A never showed them again');
  t.same(await raw.smembers(`${keyPrefix}drain:buildings`), []);
  t.same(await raw.hgetall(`${keyPrefix}pins`), {});
  t.equal(await raw.get(`${keyPrefix}epoch`), epoch, 'the epoch did not change');
  t.same([...logA.lines, ...logB.lines].filter(isLostWarning), []);
});

t.test('FLUSHALL without a restart is handled like a restart', async (t) => {
  const keyPrefix = uniquePrefix();
  const { a, b, logA, logB, epoch } = await drainAndPinOnA(t, keyPrefix);
  a.apply({ op: 'approveFailback', route: 'ceir', approval: { atMs: 1234, force: true } });
  await waitForState(b, (s) => s.failbackApprovals.ceir !== undefined, 'the approval');
  const seenByA = record(a);
  const seenByB = record(b);

  await raw.flushall();
  await waitFor(() => logA.lines.some(isLostWarning) && logB.lines.some(isLostWarning),
    { timeoutMs: 3000, message: 'both replicas noticing the flush' });
  await waitFor(() => holdsDrainAndPin(keyPrefix), { timeoutMs: 3000, message: 'the drain and the pin back in Redis' });

  t.same(JSON.parse((await raw.hget(`${keyPrefix}approvals:failback`, 'ceir'))!), { atMs: 1234, force: true }, 'the approval too');
  t.ok(hasDrainAndPin(a.snapshot()) && hasDrainAndPin(b.snapshot()), 'both still have them');
  t.same(seenByB.filter((s) => !hasDrainAndPin(s) || !s.failbackApprovals.ceir), [], 'no snapshot of B ever showed them missing');
  t.same(seenByA.filter((s) => !hasDrainAndPin(s) || !s.failbackApprovals.ceir), [], 'nor one of A');
  t.not(await raw.get(`${keyPrefix}epoch`), epoch, 'a new epoch');
  t.equal(a.isUp() && b.isUp(), true, 'a flush is not an outage');
  await waitFor(async () => (await raw.zscore(`${keyPrefix}replicas`, 'a')) !== null && (await raw.zscore(`${keyPrefix}replicas`, 'b')) !== null,
    { message: 'heartbeats re-written' });
  t.equal(logA.lines.filter(isLostWarning).length, 1, 'A warned once');
  t.equal(logB.lines.filter(isLostWarning).length, 1, 'B warned once');
});

t.test('an undrain made locally during the outage still wins over the rebuilt drain', async (t) => {
  const keyPrefix = uniquePrefix();
  const a = await openStore(t, redis, { replicaId: 'a', keyPrefix });
  a.apply({ op: 'drain', kind: 'building', name: BUILDING });
  a.apply({ op: 'drain', kind: 'site', name: 'cyber1' });
  await waitFor(async () => (await raw.sismember(`${keyPrefix}drain:sites`, 'cyber1')) === 1, { message: 'drains written' });
  await waitForHeartbeats(raw, keyPrefix, 'a', 1); // a read after the write: both confirmed under this epoch
  const down = waitForStatus(a, false);
  await redis.stop();
  await down;
  a.apply({ op: 'undrain', kind: 'building', name: BUILDING });
  const seen = record(a);
  const up = waitForStatus(a, true, 5000);
  await redis.restart();
  await up;
  await waitFor(async () => (await raw.sismember(`${keyPrefix}drain:sites`, 'cyber1')) === 1, { message: 'the site drain rebuilt' });
  await waitForHeartbeats(raw, keyPrefix, 'a', 2);
  t.same(await raw.smembers(`${keyPrefix}drain:buildings`), [], 'the undrain was written after the rebuild');
  t.same(a.snapshot().drainedBuildings, []);
  t.same(seen.filter((s) => s.drainedBuildings.length > 0 || !s.drainedSites.includes('cyber1')), [], 'no flicker either way');
});

t.test('a first start on an empty Redis creates the epoch and re-writes nothing', async (t) => {
  const keyPrefix = uniquePrefix();
  const logs = [captureLogger(), captureLogger(), captureLogger()];
  // Started together: whichever SET NX wins, all three read under the same epoch.
  const [a] = await Promise.all(logs.map((log, i) => openStore(t, redis, { replicaId: `r${i}`, keyPrefix, logger: log.logger })));
  const epoch = await raw.get(`${keyPrefix}epoch`);
  t.match(epoch, /^[0-9a-f]{16}$/);
  t.same((await raw.keys(`${keyPrefix}*`)).sort(), [`${keyPrefix}epoch`, `${keyPrefix}replicas`], 'nothing but the epoch and heartbeats');
  a!.apply({ op: 'drain', kind: 'site', name: 'cyber1' });
  await waitForHeartbeats(raw, keyPrefix, 'r2', 2);
  t.equal(await raw.get(`${keyPrefix}epoch`), epoch, 'nobody replaced it');
  t.same(logs.flatMap((l) => l.lines).filter(isLostWarning), [], 'nobody thought Redis lost its data');
});

t.test('state written before epochs existed is taken as it is, and stays the truth', async (t) => {
  const keyPrefix = uniquePrefix();
  await raw.sadd(`${keyPrefix}drain:sites`, 'legacy', 'other');
  const { logger, lines } = captureLogger();
  const a = await openStore(t, redis, { replicaId: 'a', keyPrefix, logger });
  t.same(a.snapshot().drainedSites, ['legacy', 'other']);
  t.match(await raw.get(`${keyPrefix}epoch`), /^[0-9a-f]{16}$/, 'the epoch was added');
  await raw.srem(`${keyPrefix}drain:sites`, 'legacy');
  await waitForState(a, (s) => s.drainedSites.length === 1, 'the removal behind its back');
  await waitForHeartbeats(raw, keyPrefix, 'a', 2);
  t.same(await raw.smembers(`${keyPrefix}drain:sites`), ['other'], 'not written back');
  t.same(lines.filter(isLostWarning), []);
});
