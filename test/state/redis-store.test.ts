// Two replicas on one real redis-server: what one applies, the other sees, and
// the key layout is the documented one. Outages are in redis-outage.test.ts.
import t from 'tap';
import { createServer, type Socket } from 'node:net';
import { startRedis } from '../helpers/redis.js';
import { waitFor } from '../helpers/wait.js';
import { captureLogger, openStore, rawClient, uniquePrefix, waitForState, waitForStatus } from './redis-fixture.js';
import { RedisStore } from '../../src/state/redis-store.js';

const redis = await startRedis(t);
const raw = await rawClient(t, redis);

t.test('a drain applied on A is in A\'s snapshot at once and reaches B', async (t) => {
  const keyPrefix = uniquePrefix();
  const a = await openStore(t, redis, { replicaId: 'a', keyPrefix });
  const b = await openStore(t, redis, { replicaId: 'b', keyPrefix });
  t.equal(a.isUp(), true, 'start() resolved after the first read');
  t.equal(a.kind, 'redis');
  const seenByA: string[][] = [];
  a.onState((s) => seenByA.push([...s.drainedBuildings]));
  a.apply({ op: 'drain', kind: 'building', name: 'gedung-cyber-1' });
  t.same(seenByA[0], ['gedung-cyber-1'], 'A notified synchronously, before any Redis round trip');
  t.same(a.snapshot().drainedBuildings, ['gedung-cyber-1']);
  await waitForState(b, (s) => s.drainedBuildings.includes('gedung-cyber-1'), 'the drain');
  t.same(await raw.smembers(`${keyPrefix}drain:buildings`), ['gedung-cyber-1'], 'stored in the drain:buildings SET');
  a.apply({ op: 'undrain', kind: 'building', name: 'gedung-cyber-1' });
  await waitForState(b, (s) => s.drainedBuildings.length === 0, 'the undrain');
});

t.test('pins, approvals and clearApproval travel both ways, in the documented keys', async (t) => {
  const keyPrefix = uniquePrefix();
  const a = await openStore(t, redis, { replicaId: 'a', keyPrefix });
  const b = await openStore(t, redis, { replicaId: 'b', keyPrefix });
  a.apply({ op: 'pin', route: 'ceir', site: 'serpong' });
  a.apply({ op: 'approveFailback', route: 'ceir', approval: { atMs: 1234, force: true } });
  b.apply({ op: 'approveFailover', route: 'visa', approval: { atMs: 99, force: false } });
  b.apply({ op: 'drain', kind: 'site', name: 'cyber1' });
  const expected = (s: ReturnType<RedisStore['snapshot']>) => s.pins.ceir === 'serpong' && s.failbackApprovals.ceir?.force === true
    && s.failoverApprovals.visa?.atMs === 99 && s.drainedSites.includes('cyber1');
  await waitForState(a, expected, 'B\'s approval and drain');
  const onB = await waitForState(b, expected, 'A\'s pin and approval');
  t.same(onB.failbackApprovals, { ceir: { atMs: 1234, force: true } });
  t.same(await raw.hgetall(`${keyPrefix}pins`), { ceir: 'serpong' });
  t.same(JSON.parse((await raw.hget(`${keyPrefix}approvals:failback`, 'ceir'))!), { atMs: 1234, force: true });
  t.same(JSON.parse((await raw.hget(`${keyPrefix}approvals:failover`, 'visa'))!), { atMs: 99, force: false });
  t.same(await raw.smembers(`${keyPrefix}drain:sites`), ['cyber1']);

  b.apply({ op: 'clearApproval', kind: 'failback', route: 'ceir' });
  b.apply({ op: 'unpin', route: 'ceir' });
  const cleared = await waitForState(a, (s) => !s.failbackApprovals.ceir && !s.pins.ceir, 'cleared approval and pin');
  t.same(cleared.failoverApprovals, { visa: { atMs: 99, force: false } }, 'the other kind of approval stays');
  t.equal(await raw.hexists(`${keyPrefix}approvals:failback`, 'ceir'), 0);
});

t.test('health verdicts from both replicas are visible to both and re-published with each heartbeat', async (t) => {
  const keyPrefix = uniquePrefix();
  const a = await openStore(t, redis, { replicaId: 'a', keyPrefix });
  const b = await openStore(t, redis, { replicaId: 'b', keyPrefix });
  a.publishHealth('cyber1', { status: 'down', sinceMs: 10, reason: '2 failed probes' });
  b.publishHealth('cyber1', { status: 'up', sinceMs: 20, reason: 'status 200' });
  t.same(a.snapshot().health.cyber1?.a?.status, 'down', 'own verdict in the snapshot at once');
  const both = (s: ReturnType<RedisStore['snapshot']>) => s.health.cyber1?.a?.status === 'down' && s.health.cyber1?.b?.status === 'up';
  for (const store of [a, b]) {
    const s = await waitForState(store, both, 'both verdicts');
    t.same(s.replicas, ['a', 'b'], `${store.replicaId} sees both replicas`);
  }
  const stored = JSON.parse((await raw.hget(`${keyPrefix}health`, 'cyber1\ta'))!);
  t.match(stored, { status: 'down', sinceMs: 10, reason: '2 failed probes', atMs: Number });
  const firstAt = b.snapshot().health.cyber1!.a!.atMs;
  await waitForState(b, (s) => (s.health.cyber1?.a?.atMs ?? 0) > firstAt, 'a newer atMs from A\'s heartbeat');
  t.ok(await raw.zscore(`${keyPrefix}replicas`, 'a'), 'heartbeat in the replicas ZSET');
});

t.test('a withdrawn verdict is deleted from Redis and leaves the other replica\'s snapshot', async (t) => {
  const keyPrefix = uniquePrefix();
  const a = await openStore(t, redis, { replicaId: 'a', keyPrefix });
  const b = await openStore(t, redis, { replicaId: 'b', keyPrefix });
  a.publishHealth('old-site', { status: 'up', sinceMs: 10, reason: 'status 200' });
  await waitForState(b, (s) => s.health['old-site']?.a?.status === 'up', 'B sees A\'s verdict');
  a.forgetHealth('old-site');
  t.equal(a.snapshot().health['old-site']?.a, undefined, 'gone from A at once');
  await waitForState(b, (s) => s.health['old-site']?.a === undefined, 'gone from B');
  t.equal(await raw.hget(`${keyPrefix}health`, 'old-site\ta'), null, 'deleted in Redis');
  a.publishHealth('other', { status: 'up', sinceMs: 10, reason: 'status 200' });
  const seen = await waitForState(b, (s) => s.health.other?.a !== undefined, 'A\'s other verdict');
  const firstAt = seen.health.other!.a!.atMs;
  await waitForState(b, (s) => (s.health.other?.a?.atMs ?? 0) > firstAt, 'A\'s next heartbeat');
  t.equal(await raw.hget(`${keyPrefix}health`, 'old-site\ta'), null, 'not re-published by the heartbeat');
});

t.test('a replica that stops heartbeating leaves replicas and health after livenessMs; only it is cleaned', async (t) => {
  const keyPrefix = uniquePrefix();
  const a = await openStore(t, redis, { replicaId: 'a', keyPrefix });
  // C writes once (start and its verdict), then its next heartbeat is a minute away.
  const c = await openStore(t, redis, { replicaId: 'c', keyPrefix, heartbeatMs: 60_000, livenessMs: 120_000 });
  c.publishHealth('cyber1', { status: 'down', sinceMs: 1, reason: 'only C sees it' });
  a.publishHealth('cyber1', { status: 'up', sinceMs: 1, reason: 'status 200' });
  await waitForState(a, (s) => s.health.cyber1?.c !== undefined && s.replicas.includes('c'), 'C\'s verdict');
  const lastBeat = Number(await raw.zscore(`${keyPrefix}replicas`, 'c'));
  const gone = await waitForState(a, (s) => !s.replicas.includes('c'), 'C gone');
  t.ok(Date.now() - lastBeat >= 500 - 50, `not dropped before the window (${Date.now() - lastBeat}ms after its heartbeat)`);
  t.same(Object.keys(gone.health.cyber1 ?? {}), ['a'], 'its verdict is gone too');
  t.same(gone.replicas, ['a']);
  // Cleaning is opportunistic: right after the read that found C stale.
  await waitFor(async () => (await raw.zscore(`${keyPrefix}replicas`, 'c')) === null, { message: 'C\'s heartbeat removed' });
  t.equal(await raw.hexists(`${keyPrefix}health`, 'cyber1\tc'), 0, 'C\'s verdict removed');
  t.equal(await raw.hexists(`${keyPrefix}health`, 'cyber1\ta'), 1, 'A\'s verdict kept');
  t.ok(await raw.zscore(`${keyPrefix}replicas`, 'a'), 'A\'s heartbeat kept');
});

t.test('a replica that closes leaves the vote at once, without waiting for livenessMs', async (t) => {
  const keyPrefix = uniquePrefix();
  const a = await openStore(t, redis, { replicaId: 'a', keyPrefix, heartbeatMs: 100, livenessMs: 60_000 });
  const b = await openStore(t, redis, { replicaId: 'b', keyPrefix, heartbeatMs: 100, livenessMs: 60_000 });
  b.publishHealth('serpong', { status: 'down', sinceMs: 1, reason: 'b sees it down' });
  await waitForState(a, (s) => s.health.serpong?.b !== undefined, 'B\'s verdict');
  await b.close();
  const s = await waitForState(a, (x) => !x.replicas.includes('b'), 'B gone', 2000);
  t.equal(s.health.serpong, undefined);
  t.equal(await raw.zscore(`${keyPrefix}replicas`, 'b'), null);
  t.equal(b.isUp(), false, 'a closed store is not up');
});

t.test('pub/sub is only a hint: a lost message is made up by the periodic re-read', async (t) => {
  const keyPrefix = uniquePrefix();
  const b = await openStore(t, redis, { replicaId: 'b', keyPrefix, heartbeatMs: 100 });
  // Written behind the store's back, no PUBLISH: like a message lost in transit.
  await raw.sadd(`${keyPrefix}drain:sites`, 'cyber1');
  await raw.hset(`${keyPrefix}pins`, 'ceir', 'serpong');
  const s = await waitForState(b, (x) => x.drainedSites.includes('cyber1') && x.pins.ceir === 'serpong', 'the unannounced write', 2000);
  t.same(s.drainedSites, ['cyber1']);
});

t.test('a message makes a replica re-read at once, long before its heartbeat', async (t) => {
  const keyPrefix = uniquePrefix();
  const b = await openStore(t, redis, { replicaId: 'b', keyPrefix, heartbeatMs: 20_000, livenessMs: 60_000 });
  const started = Date.now();
  await raw.sadd(`${keyPrefix}drain:buildings`, 'tower');
  await raw.publish(`${keyPrefix}changed`, 'someone');
  await waitForState(b, (x) => x.drainedBuildings.includes('tower'), 'the announced write', 2000);
  t.ok(Date.now() - started < 20_000);
});

t.test('a malformed entry costs one warning, not the rest of the state', async (t) => {
  const keyPrefix = uniquePrefix();
  const { logger, lines } = captureLogger();
  await raw.hset(`${keyPrefix}approvals:failback`, 'ceir', 'not json');
  await raw.hset(`${keyPrefix}pins`, 'visa', 'dr');
  const b = await openStore(t, redis, { replicaId: 'b', keyPrefix, logger });
  const s = await waitForState(b, (x) => x.pins.visa === 'dr', 'the good pin');
  t.same(s.failbackApprovals, {});
  // Every heartbeat is followed by a full re-read: wait for a few.
  const threeBeatsLater = Number(await raw.zscore(`${keyPrefix}replicas`, 'b')) + 300;
  await waitFor(async () => Number(await raw.zscore(`${keyPrefix}replicas`, 'b')) > threeBeatsLater, { message: 'three more heartbeats' });
  const warnings = lines.filter((l) => l.level === 40 && l.msg.includes('approvals:failback entry for route ceir'));
  t.equal(warnings.length, 1, 'warned once over several re-reads');
  t.equal(b.isUp(), true);
});

t.test('a key of the wrong type: the operation is dropped with a warning, the store reports itself down until fixed', async (t) => {
  const keyPrefix = uniquePrefix();
  const { logger, lines } = captureLogger();
  const a = await openStore(t, redis, { replicaId: 'a', keyPrefix, logger });
  const down = waitForStatus(a, false);
  await raw.set(`${keyPrefix}drain:sites`, 'not a set');
  a.apply({ op: 'drain', kind: 'site', name: 'cyber1' });
  await down;
  t.equal(a.isUp(), false, 'shared state cannot be read: not up');
  t.ok(lines.some((l) => l.level === 40 && /refused an operation/.test(l.msg) && /WRONGTYPE/.test(String(l.err))), 'the dropped operation is logged');
  t.same(a.snapshot().drainedSites, [], 'a refused operation is not kept as pending forever');
  const up = waitForStatus(a, true);
  await raw.del(`${keyPrefix}drain:sites`);
  await up;
});

t.test('a listener that throws is logged and does not stop the others', async (t) => {
  const keyPrefix = uniquePrefix();
  const { logger, lines } = captureLogger();
  const a = await openStore(t, redis, { replicaId: 'a', keyPrefix, logger });
  a.onState(() => { throw new Error('listener bug'); });
  const seen: string[][] = [];
  a.onState((s) => seen.push([...s.drainedSites]));
  t.doesNotThrow(() => a.apply({ op: 'drain', kind: 'site', name: 'x' }));
  t.same(seen, [['x']]);
  t.ok(lines.some((l) => l.level === 50 && /listener threw/.test(l.msg)));
});

t.test('an unreachable URL: start() resolves, isUp() is false, apply() still works locally', async (t) => {
  const { logger, lines } = captureLogger();
  const store = new RedisStore({ url: 'redis://127.0.0.1:1', logger, replicaId: 'lonely', heartbeatMs: 100, livenessMs: 500 });
  t.teardown(() => store.close());
  const started = Date.now();
  await store.start();
  t.ok(Date.now() - started < 1500, `start() did not wait out its timeout on a refused connection (${Date.now() - started}ms)`);
  t.equal(store.isUp(), false);
  store.apply({ op: 'drain', kind: 'site', name: 'cyber1' });
  store.publishHealth('cyber1', { status: 'down', sinceMs: 1, reason: 'x' });
  t.same(store.snapshot().drainedSites, ['cyber1']);
  t.same(Object.keys(store.snapshot().health.cyber1 ?? {}), ['lonely']);
  t.ok(lines.some((l) => l.level === 40 && /connection failed/.test(l.msg)), 'the failure is logged at warn');
});

t.test('a server that accepts and never answers: start() gives up after startTimeoutMs', async (t) => {
  const sockets = new Set<Socket>();
  const silent = createServer((s) => { sockets.add(s); s.on('error', () => {}); });
  await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => {
    for (const s of sockets) s.destroy();
    silent.close(() => resolve());
  }));
  const port = (silent.address() as { port: number }).port;
  const store = new RedisStore({
    url: `redis://127.0.0.1:${port}`, logger: captureLogger().logger, replicaId: 'stuck',
    heartbeatMs: 100, livenessMs: 500, startTimeoutMs: 300, commandTimeoutMs: 5000,
  });
  t.teardown(() => store.close());
  const started = Date.now();
  await store.start();
  const tookMs = Date.now() - started;
  t.ok(tookMs >= 250 && tookMs < 2000, `resolved by the start timeout (${tookMs}ms)`);
  t.equal(store.isUp(), false);
});

t.test('close() leaves nothing that keeps the process alive', async (t) => {
  // Ref'd sockets and timers: what would keep a test process (or detour) from exiting.
  const handles = () => process.getActiveResourcesInfo().filter((r) => r === 'TCPSocketWrap' || r === 'Timeout').length;
  const settled = async (): Promise<number> => {
    let last = -1;
    for (;;) {
      const now = handles();
      if (now === last) return now;
      last = now;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  };
  const before = await settled();
  const keyPrefix = uniquePrefix();
  const store = new RedisStore({ url: redis.url, logger: captureLogger().logger, replicaId: 'h', keyPrefix, heartbeatMs: 50, livenessMs: 500 });
  await store.start();
  store.apply({ op: 'drain', kind: 'site', name: 'x' });
  store.publishHealth('x', { status: 'up', sinceMs: 1, reason: 'ok' });
  t.ok(handles() >= before + 2, 'the measure sees the two connections while open');
  await store.close();
  await store.close(); // twice is fine
  await waitFor(() => handles() <= before, { timeoutMs: 1000, message: 'handles released' }).catch(() => {});
  t.equal(handles(), before, `no sockets or timers left: ${process.getActiveResourcesInfo().join(', ')}`);
  t.same(await raw.smembers(`${keyPrefix}drain:sites`), ['x'], 'the last operation was written before closing');
  t.equal(await raw.zscore(`${keyPrefix}replicas`, 'h'), null, 'and the replica left');
});
