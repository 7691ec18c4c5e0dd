// Several replicas behind one address, sharing state through a real Redis
// (started on a free port for this test, killed on purpose to test outages):
// every replica sees the same drains and pins; health is decided by quorum, so
// one replica's bad path to a site does not fail everyone over; with Redis gone,
// replicas keep routing on what they last knew and their own probes, and
// reconcile when it returns.
import t, { type Test } from 'tap';
import { Registry } from 'prom-client';
import { startGateway, type Gateway } from '../../src/gateway.js';
import { silentLogger } from '../../src/logger.js';
import { startRedis, type RedisServer } from '../helpers/redis.js';
import { startFakeSite, type FakeSite } from '../helpers/fake-site.js';
import { testPolicy } from '../helpers/policy.js';
import { request } from '../helpers/load.js';
import { waitFor } from '../helpers/wait.js';
import { TOKEN, fastHealth } from '../helpers/gateway.js';

interface Cluster {
  readonly redis: RedisServer;
  readonly sites: Record<'cyber1' | 'serpong', FakeSite>;
  readonly replicas: Gateway[];
  admin(i: number, method: string, path: string, body?: unknown): Promise<number>;
}

async function startCluster(t: Test, count: number): Promise<Cluster> {
  const redis = await startRedis(t);
  const cyber1 = await startFakeSite({ name: 'cyber1' });
  const serpong = await startFakeSite({ name: 'serpong' });
  t.teardown(() => cyber1.close());
  t.teardown(() => serpong.close());
  const prefix = `test${process.pid}${Math.random().toString(16).slice(2, 8)}:`;
  const replicas: Gateway[] = [];
  for (let i = 0; i < count; i++) {
    const policy = testPolicy({
      admin: { token: TOKEN },
      sites: [
        { name: 'cyber1', url: cyber1.url, building: 'gedung-cyber-1', health: fastHealth },
        { name: 'serpong', url: serpong.url, building: 'serpong-dc', health: fastHealth },
      ],
      routes: [{ name: 'ceir', sites: ['cyber1', 'serpong'], failback: { holdDownMs: 200 } }],
      state: { redis: { url: redis.url, keyPrefix: prefix } },
    });
    const g = await startGateway({ policy, logger: silentLogger(), registry: new Registry(), replicaId: `replica-${i}` });
    t.teardown(() => g.close());
    replicas.push(g);
  }
  const admin = async (i: number, method: string, path: string, body?: unknown) => {
    const res = await fetch(`${replicas[i]!.adminUrl}${path}`, {
      method, headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    await res.text();
    return res.status;
  };
  return { redis, sites: { cyber1, serpong }, replicas, admin };
}

const active = (g: Gateway) => g.table().byName.get('ceir')!.active;

t.test('a drain or pin made on one replica reaches every replica', async (t) => {
  const c = await startCluster(t, 2);
  const [a, b] = c.replicas as [Gateway, Gateway];
  await waitFor(() => active(a) === 'cyber1' && active(b) === 'cyber1', { timeoutMs: 5000 });
  t.equal(await c.admin(0, 'POST', '/drain', { building: 'gedung-cyber-1' }), 200);
  t.equal(active(a), 'serpong', 'the replica that was asked moves at once');
  await waitFor(() => active(b) === 'serpong', { timeoutMs: 3000, message: 'replica b sees the drain' });
  const before = c.sites.cyber1.counts.traffic;
  for (let i = 0; i < 10; i++) t.equal((await request(`${b.proxyUrl}/x`, undefined)).site, 'serpong');
  t.equal(c.sites.cyber1.counts.traffic, before, 'no request from either replica reaches the drained building');
  const status = await (await fetch(`${b.adminUrl}/status`)).json() as any;
  t.same(status.drains.buildings, ['gedung-cyber-1']);
  t.same(status.stateStore, { kind: 'redis', up: true });

  t.equal(await c.admin(1, 'DELETE', '/drain', { building: 'gedung-cyber-1' }), 200);
  t.equal(await c.admin(1, 'POST', '/routes/ceir/pin', { site: 'serpong' }), 200);
  await waitFor(() => a.table().byName.get('ceir')!.state === 'pinned', { timeoutMs: 3000, message: 'pin reaches replica a' });
  t.equal(a.table().byName.get('ceir')!.pinnedTo, 'serpong');
});

t.test('health by quorum: one replica that cannot reach a site does not fail the others over', async (t) => {
  const c = await startCluster(t, 3);
  await waitFor(() => c.replicas.every((g) => active(g) === 'cyber1'
    && Object.keys(g.control.shared().health.cyber1 ?? {}).length === 3), { timeoutMs: 5000, message: 'every replica sees three verdicts' });
  // Replica 0 alone loses its path to cyber1: its own probes fail.
  c.replicas[0]!.control.probeResult('cyber1', false, 'connect EHOSTUNREACH');
  c.replicas[0]!.control.probeResult('cyber1', false, 'connect EHOSTUNREACH');
  await waitFor(() => /quorum/.test(c.replicas[0]!.control.health('cyber1')!.reason), { timeoutMs: 3000, message: 'quorum applied' });
  t.equal(c.replicas[0]!.control.health('cyber1')!.status, 'up', 'outvoted by the two replicas that reach it');
  t.ok(c.replicas.every((g) => active(g) === 'cyber1'), 'nobody failed over');

  // The building really dies: every replica's probes fail, and all move.
  c.sites.cyber1.setAll('status:503');
  await waitFor(() => c.replicas.every((g) => active(g) === 'serpong'), { timeoutMs: 5000, message: 'all replicas fail over' });
  t.pass('all replicas failed over together');
});

t.test('Redis goes away: replicas keep routing and probing; drains made meanwhile are written when it returns', async (t) => {
  const c = await startCluster(t, 2);
  const [a, b] = c.replicas as [Gateway, Gateway];
  await waitFor(() => active(a) === 'cyber1' && active(b) === 'cyber1', { timeoutMs: 5000 });
  await c.redis.stop();
  await waitFor(async () => /detour_state_store_up 0/.test(await (await fetch(`${a.adminUrl}/metrics`)).text()), { timeoutMs: 5000, message: 'store down seen' });

  // Routing and own probes go on.
  c.sites.cyber1.setAll('status:503');
  await waitFor(() => active(a) === 'serpong' && active(b) === 'serpong', { timeoutMs: 5000, message: 'failover on own probes' });
  for (let i = 0; i < 5; i++) t.equal((await request(`${a.proxyUrl}/x`, undefined)).status, 200);
  c.sites.cyber1.setAll('ok');
  await waitFor(() => active(a) === 'cyber1' && active(b) === 'cyber1', { timeoutMs: 5000, message: 'failback on own probes' });

  // A drain during the outage takes effect locally at once...
  t.equal(await c.admin(0, 'POST', '/drain', { site: 'cyber1' }), 200);
  t.equal(active(a), 'serpong');
  t.equal(active(b), 'cyber1', 'b cannot know yet');
  // ...and reaches b once Redis is back (empty: nothing was saved).
  await c.redis.restart();
  await waitFor(() => active(b) === 'serpong', { timeoutMs: 8000, message: 'b reconciles the drain' });
  await waitFor(async () => /detour_state_store_up 1/.test(await (await fetch(`${b.adminUrl}/metrics`)).text()), { timeoutMs: 5000 });
  t.pass('reconciled');
});
