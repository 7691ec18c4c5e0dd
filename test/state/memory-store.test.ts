// The single-replica store: synchronous, always up, same snapshot shape as Redis.
import t from 'tap';
import { MemoryStore } from '../../src/state/memory-store.js';
import type { SharedState } from '../../src/state/state-store.js';
import { silentLogger } from '../../src/logger.js';

t.test('apply() changes the snapshot and tells listeners before returning', async (t) => {
  const store = new MemoryStore({ replicaId: 'solo' });
  t.teardown(() => store.close());
  await store.start();
  const seen: SharedState[] = [];
  store.onState((s) => seen.push(s));
  t.equal(store.kind, 'memory');
  t.same(store.snapshot().replicas, ['solo']);
  store.apply({ op: 'drain', kind: 'building', name: 'gedung-cyber-1' });
  t.equal(seen.length, 1, 'notified synchronously');
  t.same(seen[0]!.drainedBuildings, ['gedung-cyber-1']);
  t.equal(store.snapshot(), seen[0], 'snapshot() is what listeners got');
  store.apply({ op: 'pin', route: 'ceir', site: 'serpong' });
  store.apply({ op: 'approveFailback', route: 'ceir', approval: { atMs: 5, force: false } });
  store.apply({ op: 'clearApproval', kind: 'failback', route: 'ceir' });
  t.same(store.snapshot().pins, { ceir: 'serpong' });
  t.same(store.snapshot().failbackApprovals, {});
  t.same(store.snapshot().drainedBuildings, ['gedung-cyber-1'], 'earlier operations kept');
  t.ok(Object.isFrozen(store.snapshot()));
});

t.test('publishHealth stores this replica\'s verdict, stamped with now', async (t) => {
  let now = 1000;
  const store = new MemoryStore({ replicaId: 'solo', now: () => now });
  t.teardown(() => store.close());
  const seen: SharedState[] = [];
  store.onState((s) => seen.push(s));
  store.publishHealth('cyber1', { status: 'down', sinceMs: 900, reason: '2 failed probes' });
  now = 2000;
  store.publishHealth('serpong', { status: 'up', sinceMs: 10, reason: 'status 200' });
  t.same(store.snapshot().health, {
    cyber1: { solo: { status: 'down', sinceMs: 900, reason: '2 failed probes', atMs: 1000 } },
    serpong: { solo: { status: 'up', sinceMs: 10, reason: 'status 200', atMs: 2000 } },
  });
  t.equal(seen.length, 2);
  store.forgetHealth('cyber1');
  t.same(Object.keys(store.snapshot().health), ['serpong'], 'a withdrawn verdict leaves the snapshot');
  store.forgetHealth('nowhere');
  t.equal(seen.length, 3, 'withdrawing nothing tells nobody');
});

t.test('always up, never reports a status change; a throwing listener does not break apply()', async (t) => {
  const store = new MemoryStore({ logger: silentLogger() });
  t.match(store.replicaId, /^.+-\d+-[0-9a-f]{4}$/, 'default id: host-pid-random');
  let statusCalls = 0;
  store.onStatus(() => { statusCalls++; });
  store.onState(() => { throw new Error('listener bug'); });
  const after: SharedState[] = [];
  store.onState((s) => after.push(s));
  t.doesNotThrow(() => store.apply({ op: 'drain', kind: 'site', name: 'cyber1' }));
  t.equal(after.length, 1, 'later listeners still notified');
  t.equal(store.isUp(), true);
  await store.close();
  t.equal(statusCalls, 0);
  store.apply({ op: 'drain', kind: 'site', name: 'serpong' });
  t.equal(after.length, 1, 'no listeners after close');
});

t.test('every snapshot keeps the votes of its moment, across thousands of verdicts', async (t) => {
  // Verdicts are a log under the snapshots (compacted as it grows): a snapshot
  // read late must still show what was true when it was taken, in site order.
  let now = 0;
  const store = new MemoryStore({ replicaId: 'solo', now: () => now });
  t.teardown(() => store.close());
  const expected = new Map<string, Record<string, unknown>>();
  const taken: Array<{ snapshot: SharedState; votes: Record<string, unknown> }> = [];
  let x = 3;
  for (let i = 0; i < 3000; i++) {
    x = (x * 1103515245 + 12345) % 2147483648;
    const site = `s${x % 150}`;
    now = i;
    if (x % 7 === 0) {
      store.forgetHealth(site);
      expected.delete(site);
    } else {
      const status = x % 2 === 0 ? 'up' : 'down';
      store.publishHealth(site, { status, sinceMs: i, reason: `r${i}` });
      expected.set(site, { solo: { status, sinceMs: i, reason: `r${i}`, atMs: i } });
    }
    if (i % 97 === 0) taken.push({ snapshot: store.snapshot(), votes: Object.fromEntries(expected) });
  }
  // Read only now, long after each was taken.
  for (const { snapshot, votes } of taken) {
    t.same(snapshot.health, votes);
    t.same(Object.keys(snapshot.health), Object.keys(votes), 'in the order sites first got a verdict');
  }
  t.same(store.snapshot().health, Object.fromEntries(expected));
  t.ok(Object.isFrozen(store.snapshot().health));
});

t.test('a site named like an object property is just a site', async (t) => {
  const store = new MemoryStore({ replicaId: 'solo' });
  t.teardown(() => store.close());
  for (const name of ['__proto__', 'constructor', 'toString']) store.publishHealth(name, { status: 'up', sinceMs: 1, reason: 'ok' });
  const health = store.snapshot().health;
  t.same(Object.keys(health), ['__proto__', 'constructor', 'toString']);
  t.ok(Object.hasOwn(health, '__proto__'), 'an own property, not the prototype');
  t.equal(Object.getPrototypeOf(health), Object.prototype);
});
