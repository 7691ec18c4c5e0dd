// The policy decides the store: state.redis -> Redis, absent -> memory.
import t from 'tap';
import { createStateStore } from '../../src/state/create-store.js';
import { MemoryStore } from '../../src/state/memory-store.js';
import { RedisStore } from '../../src/state/redis-store.js';
import { silentLogger } from '../../src/logger.js';
import { testPolicy } from '../helpers/policy.js';

const sites = [{ name: 'cyber1', url: 'http://127.0.0.1:1' }];
const routes = [{ name: 'ceir', sites: ['cyber1'] }];

t.test('no state: memory', async (t) => {
  const store = createStateStore(testPolicy({ sites, routes }), { logger: silentLogger(), replicaId: 'r1' });
  t.teardown(() => store.close());
  t.type(store, MemoryStore);
  t.equal(store.kind, 'memory');
  t.equal(store.replicaId, 'r1');
});

t.test('state.redis: Redis, not connected until start()', async (t) => {
  const policy = testPolicy({ sites, routes, state: { redis: { url: 'redis://127.0.0.1:1/0', keyPrefix: 'x:' } } });
  const store = createStateStore(policy, { logger: silentLogger(), replicaId: 'r2', heartbeatMs: 100, livenessMs: 500 });
  t.teardown(() => store.close());
  t.type(store, RedisStore);
  t.equal(store.kind, 'redis');
  t.equal(store.replicaId, 'r2');
  t.equal(store.isUp(), false);
  t.same(store.snapshot().replicas, ['r2']);
});

t.test('bad settings are refused with a clear message', async (t) => {
  const logger = silentLogger();
  t.throws(() => new RedisStore({ url: 'http://127.0.0.1:6379', logger }), /not a Redis URL/);
  t.throws(() => new RedisStore({ url: 'nonsense', logger }), /not a URL/);
  t.throws(() => new RedisStore({ url: 'redis://127.0.0.1:1', logger, heartbeatMs: 0 }), /heartbeatMs must be a positive/);
  t.throws(() => new RedisStore({ url: 'redis://127.0.0.1:1', logger, heartbeatMs: 1000, livenessMs: 1000 }), /livenessMs \(1000\) must be longer than heartbeatMs/);
});
