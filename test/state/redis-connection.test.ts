// Redis the way operators run it, against real servers: a redis-server that
// speaks only TLS (rediss://, certificate from a test CA), and a
// redis-sentinel watching a plain master. The store must share state through
// both, and must refuse a TLS server it cannot verify.
import t from 'tap';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { RedisStore } from '../../src/state/redis-store.js';
import { createStateStore } from '../../src/state/create-store.js';
import { sentinelOptions } from '../../src/state/redis-connection.js';
import { parsePolicy } from '../../src/config/parse-policy.js';
import { startRedis } from '../helpers/redis.js';
import { startReplica, startSentinel, startTlsRedis } from '../helpers/redis-servers.js';
import { makeCa } from '../helpers/tls.js';
import { captureLogger, uniquePrefix, waitForState } from './redis-fixture.js';

const fast = { heartbeatMs: 100, livenessMs: 500, maxReconnectDelayMs: 200, commandTimeoutMs: 1000, startTimeoutMs: 3000 };

t.test('rediss://: shared state through a TLS-only redis-server, verified against state.redis.tls.ca', async (t) => {
  const ca = makeCa(t, 'redis-ca');
  const cert = ca.issue('redis', { ip: ['127.0.0.1'] });
  const redis = await startTlsRedis(t, { cert: cert.cert, key: cert.key, ca: ca.cert, caPem: ca.pem(ca.cert) });

  // Through the policy file, as an operator writes it: the CA is read and checked like other TLS files.
  const dir = ca.dir;
  const file = join(dir, 'policy.yaml');
  const yaml = (caLine: string) => [
    'sites: { a: { url: "http://127.0.0.1:1" } }', 'routes: [{ name: r, sites: [a] }]',
    `state: { redis: { url: "${redis.url}", keyPrefix: "${uniquePrefix()}"${caLine} } }`, '',
  ].join('\n');
  writeFileSync(file, yaml(`, tls: { ca: ${ca.cert} }`));
  const parsed = parsePolicy(yaml(`, tls: { ca: ${ca.cert} }`), file, {});
  if (!parsed.ok) return t.fail(parsed.errors.map((e) => e.message).join('\n'));
  t.equal(parsed.policy.state!.redis.tls!.ca, ca.cert);
  const a = createStateStore(parsed.policy, { logger: captureLogger().logger, replicaId: 'a', heartbeatMs: 100, livenessMs: 500 });
  t.teardown(() => a.close());
  await a.start();
  t.equal(a.isUp(), true, 'connected over TLS');
  const b = new RedisStore({ url: redis.url, ca: Buffer.from(ca.pem(ca.cert)), keyPrefix: parsed.policy.state!.redis.keyPrefix,
    logger: captureLogger().logger, replicaId: 'b', ...fast });
  t.teardown(() => b.close());
  await b.start();
  a.apply({ op: 'drain', kind: 'building', name: 'gedung-cyber-1' });
  await waitForState(b, (s) => s.drainedBuildings.includes('gedung-cyber-1'), 'the drain over TLS');

  // Without the CA the server's certificate does not verify: never "up".
  const untrusted = new RedisStore({ url: redis.url, keyPrefix: uniquePrefix(), logger: captureLogger().logger, replicaId: 'c', ...fast, startTimeoutMs: 1000 });
  t.teardown(() => untrusted.close());
  await untrusted.start();
  t.equal(untrusted.isUp(), false, 'a certificate from an unknown CA is refused');

  // A plain redis:// client gets nothing from a TLS-only port either.
  const plain = new RedisStore({ url: `redis://127.0.0.1:${redis.port}`, keyPrefix: uniquePrefix(), logger: captureLogger().logger, replicaId: 'd', ...fast, startTimeoutMs: 1000 });
  t.teardown(() => plain.close());
  await plain.start();
  t.equal(plain.isUp(), false);
});

t.test('Sentinel: the store finds the master through redis-sentinel and shares state there', async (t) => {
  const master = await startRedis(t);
  const sentinel = await startSentinel(t, master.port, 'detourmaster');
  const keyPrefix = uniquePrefix();
  const parsed = parsePolicy([
    'sites: { a: { url: "http://127.0.0.1:1" } }', 'routes: [{ name: r, sites: [a] }]',
    `state: { redis: { url: "redis://detourmaster/0", keyPrefix: "${keyPrefix}", name: detourmaster, sentinels: ["127.0.0.1:${sentinel.port}"] } }`, '',
  ].join('\n'), '/tmp/p.yaml', {});
  if (!parsed.ok) return t.fail(parsed.errors.map((e) => e.message).join('\n'));
  t.same(parsed.policy.state!.redis.sentinels, [{ host: '127.0.0.1', port: sentinel.port }]);
  const a = createStateStore(parsed.policy, { logger: captureLogger().logger, replicaId: 'a', heartbeatMs: 100, livenessMs: 500 });
  t.teardown(() => a.close());
  await a.start();
  t.equal(a.isUp(), true, 'connected to the master the sentinel named');
  a.apply({ op: 'pin', route: 'r', site: 'a' });
  const raw = new Redis(master.url);
  t.teardown(() => raw.disconnect());
  let pinned: string | null = null;
  for (let i = 0; i < 50 && pinned === null; i++) {
    pinned = await raw.hget(`${keyPrefix}pins`, 'r');
    if (pinned === null) await new Promise((r) => setTimeout(r, 50));
  }
  t.equal(pinned, 'a', 'written on the master itself');
});

t.test('Sentinel promotes the replica: the store follows it to the new master', async (t) => {
  const master = await startRedis(t);
  const replica = await startReplica(t, master.port);
  const sentinel = await startSentinel(t, master.port, 'promoted');
  const ask = new Redis({ host: '127.0.0.1', port: sentinel.port });
  t.teardown(() => ask.disconnect());
  // Sentinel learns of the replica from the master's INFO (every 10 s at most).
  // Sentinel learns of the replica from the master's INFO, then connects to it: wait until it counts as a good one.
  const goodReplica = async () => {
    const replicas = await ask.call('SENTINEL', 'replicas', 'promoted') as string[][];
    return replicas.some((fields) => {
      const at = (k: string) => fields[fields.indexOf(k) + 1];
      return at('flags') === 'slave' && at('master-link-status') === 'ok';
    });
  };
  for (let i = 0; i < 200 && !(await goodReplica()); i++) await new Promise((r) => setTimeout(r, 100));
  const keyPrefix = uniquePrefix();
  const store = new RedisStore({ url: 'redis://promoted', sentinels: [{ host: '127.0.0.1', port: sentinel.port }], name: 'promoted',
    keyPrefix, logger: captureLogger().logger, replicaId: 'a', ...fast });
  t.teardown(() => store.close());
  await store.start();
  t.equal(store.isUp(), true);
  store.apply({ op: 'drain', kind: 'site', name: 'before' });
  const onMaster = new Redis(master.url);
  t.teardown(() => onMaster.disconnect());
  for (let i = 0; i < 100 && !(await onMaster.sismember(`${keyPrefix}drain:sites`, 'before')); i++) await new Promise((r) => setTimeout(r, 50));

  // Sentinel also wants a recent INFO answer from the replica (refreshed every 10 s before a failover): retry a few times.
  let answer: unknown;
  for (let i = 0; i < 30 && answer !== 'OK'; i++) {
    answer = await ask.call('SENTINEL', 'failover', 'promoted').catch((err: Error) => err.message);
    if (answer !== 'OK') await new Promise((r) => setTimeout(r, 500));
  }
  t.equal(answer, 'OK', 'a failover by hand, as an operator would');
  const newMaster = new Redis(replica.url);
  t.teardown(() => newMaster.disconnect());
  for (let i = 0; i < 200 && !/role:master/.test(await newMaster.info('replication')); i++) await new Promise((r) => setTimeout(r, 100));
  t.match(await newMaster.info('replication'), /role:master/, 'the replica is the master now');
  // Wait for Sentinel to demote the old master too: a write it took in between
  // would be lost when it resyncs from the new one (Redis replicates
  // asynchronously; see README: a drain made during those moments can be lost).
  const oldMaster = new Redis(master.url);
  t.teardown(() => oldMaster.disconnect());
  for (let i = 0; i < 200 && !/role:slave/.test(await oldMaster.info('replication')); i++) await new Promise((r) => setTimeout(r, 100));
  store.apply({ op: 'drain', kind: 'site', name: 'after' });
  let members: string[] = [];
  for (let i = 0; i < 200 && !members.includes('after'); i++) {
    members = await newMaster.smembers(`${keyPrefix}drain:sites`);
    if (!members.includes('after')) await new Promise((r) => setTimeout(r, 100));
  }
  t.same(members.sort(), ['after', 'before'], 'the drain made after the promotion is on the new master, with the one before');
});

t.test('sentinelOptions: ioredis options from the policy (credentials and db from the URL, TLS to the master)', async (t) => {
  t.equal(sentinelOptions({ url: 'redis://127.0.0.1:6379' }, {}), undefined, 'one server: the URL is used as is');
  const options = sentinelOptions({ url: 'rediss://user:s%40cret@mymaster/2', sentinels: [{ host: 'h', port: 26379 }], name: 'g', servername: 'redis.internal' }, { lazyConnect: true });
  const { reconnectOnError, ...rest } = options!;
  t.same(rest, {
    lazyConnect: true, username: 'user', password: 's@cret', db: 2, sentinels: [{ host: 'h', port: 26379 }], name: 'g',
    tls: { servername: 'redis.internal' }, enableTLSForSentinelMode: true, failoverDetector: true,
  });
  t.equal(typeof reconnectOnError === 'function' && reconnectOnError(new Error("READONLY You can't write against a read only replica.")), 1, 'a demoted master: reconnect through the sentinels');
  t.equal(typeof reconnectOnError === 'function' && reconnectOnError(new Error('ERR other')), false);
});
