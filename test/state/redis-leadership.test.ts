// The leader lease against a real redis-server (its own, on a free port):
// one holder at a time, renewal only by the holder, release on close, an epoch
// that only grows (across takeovers and a Redis that lost its data), a publish
// refused to a replica that does not hold the lease, and a leader that steps
// down on its own when it cannot renew.
import t from 'tap';
import { Redis } from 'ioredis';
import { RedisLeadership, acquireScript, publishScript, releaseScript, renewScript } from '../../src/state/redis-leadership.js';
import type { LeaderChange, PublishedDecision } from '../../src/leader/leadership.js';
import { silentLogger } from '../../src/logger.js';
import { startRedis } from '../helpers/redis.js';
import { waitFor } from '../helpers/wait.js';
import type { RouteDecision } from '../../src/routing/route-table.js';

const LEASE_MS = 600;
const route: RouteDecision = {
  name: 'ceir', state: 'preferred', active: 'cyber1', weights: [{ site: 'cyber1', weight: 100 }], eligible: ['cyber1', 'serpong'],
  preferred: 'cyber1', reason: 'serving from cyber1, its first choice', sinceMs: 1,
};

t.test('scripts: SET NX PX to take, compare-and-set to renew, compare-and-delete to release', async (t) => {
  const redis = await startRedis(t);
  const c = new Redis(redis.url, { lazyConnect: true, maxRetriesPerRequest: 1 });
  c.on('error', () => {});
  await c.connect();
  t.teardown(() => c.disconnect());
  const now = 1_700_000_000_000;
  t.equal(await c.eval(acquireScript, 2, 'l', 'e', 'a\t1', 5000, now), String(now), 'first acquisition: epoch floored at the clock');
  t.equal(await c.eval(acquireScript, 2, 'l', 'e', 'b\t1', 5000, now), null, 'held: the second replica does not get it');
  t.equal(await c.eval(renewScript, 1, 'l', 'b\t1', 5000), 0, 'only the holder renews');
  t.equal(await c.eval(renewScript, 1, 'l', 'a\t1', 5000), 1);
  t.equal(await c.eval(publishScript, 3, 'l', 'e', 'd', 'b\t1', now + 5, '{}', 'ch'), 0, 'a non-holder cannot publish');
  t.equal(await c.eval(publishScript, 3, 'l', 'e', 'd', 'a\t1', now - 5, '{}', 'ch'), 0, 'nor the holder under an older epoch');
  t.equal(await c.eval(publishScript, 3, 'l', 'e', 'd', 'a\t1', now + 5, '{"x":1}', 'ch'), 1);
  t.same([await c.get('e'), await c.get('d')], [String(now + 5), '{"x":1}']);
  t.equal(await c.eval(releaseScript, 1, 'l', 'b\t1'), 0, 'only the holder releases');
  t.equal(await c.eval(releaseScript, 1, 'l', 'a\t1'), 1);
  t.equal(await c.eval(acquireScript, 2, 'l', 'e', 'b\t1', 5000, 0), String(now + 6), 'the next holder: one more than the last, whatever its clock');
});

t.test('one leader among three; release on close hands over; a killed Redis makes the leader step down', async (t) => {
  const redis = await startRedis(t);
  const prefix = `lease${process.pid}:`;
  const make = (id: string) => {
    const l = new RedisLeadership({ url: redis.url, logger: silentLogger(), replicaId: id, keyPrefix: prefix, leaseMs: LEASE_MS });
    t.teardown(() => l.close());
    return l;
  };
  const all = [make('a'), make('b'), make('c')];
  const changes: LeaderChange[] = [];
  all[1]!.onLeaderChange((c) => changes.push(c));
  await Promise.all(all.map((l) => l.start()));
  await waitFor(() => all.filter((l) => l.isLeader()).length === 1 && all.every((l) => l.view().leader !== null), { timeoutMs: 3000, message: 'one leader' });
  const leader = all.find((l) => l.isLeader())!;
  t.same(new Set(all.map((l) => l.view().leader)), new Set([leader.replicaId]), 'everyone names the same leader');
  await waitFor(() => leader.view().replicas.length === 3, { timeoutMs: 3000, message: 'heartbeats of all three' });
  t.ok(leader.view().replicas.every((r) => r.redisReachable && r.heartbeatMs !== null));

  // The leader publishes; the followers read it (pub/sub hint, then a re-read).
  const got: PublishedDecision[] = [];
  const follower = all.find((l) => !l.isLeader())!;
  follower.onPublished((d) => got.push(d));
  const epoch = leader.publish([route], true);
  t.ok(epoch >= Date.now() - 60_000, 'epoch near the clock');
  await waitFor(() => got.length > 0, { timeoutMs: 3000, message: 'the follower reads the decision' });
  t.same(got.at(-1), { epoch, leader: leader.replicaId, atMs: got.at(-1)!.atMs, routes: [route] });
  t.equal(leader.publish([route], false), epoch, 'nothing moved: same epoch');
  t.equal(follower.publish([route], true), follower.publish([route], false), 'a follower publishes nothing');
  follower.noteApplied(epoch);
  await waitFor(() => leader.view().replicas.find((r) => r.id === follower.replicaId)?.epoch === epoch, { timeoutMs: 3000, message: 'applied epoch in the heartbeat' });

  // Release on close: another takes over within a tick, with a higher epoch.
  const startedMs = Date.now();
  await leader.close();
  const rest = all.filter((l) => l !== leader);
  await waitFor(() => rest.some((l) => l.isLeader()), { timeoutMs: LEASE_MS * 3, message: 'a new leader' });
  t.ok(Date.now() - startedMs <= LEASE_MS, `handed over in ${Date.now() - startedMs} ms, within the lease`);
  const next = rest.find((l) => l.isLeader())!;
  const epoch2 = next.publish([route], false);
  t.ok(epoch2 > epoch, 'a leader change moves the epoch');
  t.ok(changes.length > 0, 'the leader-change hook fired');

  // Redis gone: the leader cannot renew and steps down within the lease; nobody leads.
  await redis.stop();
  await waitFor(() => rest.every((l) => !l.isLeader() && !l.isUp()), { timeoutMs: LEASE_MS * 3, message: 'no leader without Redis' });
  t.equal(next.view().leader, null, 'leader unknown while Redis is unreachable');
  t.equal(next.published()?.epoch, epoch2, 'the last decision is kept');

  // Redis back, EMPTY (no persistence): the epoch still grows past everything seen.
  await redis.restart();
  await waitFor(() => rest.some((l) => l.isLeader()), { timeoutMs: 8000, message: 'a leader again' });
  const epoch3 = rest.find((l) => l.isLeader())!.publish([route], false);
  t.ok(epoch3 > epoch2, `epoch ${epoch3} > ${epoch2} after Redis lost its data`);
});

t.test('a malformed published decision is ignored', async (t) => {
  const redis = await startRedis(t);
  const c = new Redis(redis.url, { lazyConnect: true, maxRetriesPerRequest: 1 });
  c.on('error', () => {});
  await c.connect();
  t.teardown(() => c.disconnect());
  await c.set('m:leader', 'someone\tx', 'PX', 60_000);
  await c.set('m:decision', '{"epoch":"nope"}');
  const l = new RedisLeadership({ url: redis.url, logger: silentLogger(), replicaId: 'r', keyPrefix: 'm:', leaseMs: LEASE_MS });
  t.teardown(() => l.close());
  await l.start();
  t.equal(l.isLeader(), false);
  t.equal(l.view().leader, 'someone');
  t.equal(l.published(), undefined);
  await c.set('m:decision', JSON.stringify({ epoch: 9, leader: 'someone', atMs: 1, routes: [route] }));
  await c.publish('m:decided', '9');
  await waitFor(() => l.published()?.epoch === 9, { timeoutMs: 3000, message: 'a good one is read' });
  t.throws(() => new RedisLeadership({ url: redis.url, logger: silentLogger(), replicaId: 'x', leaseMs: 5 }), /at least 30 ms/);
});
