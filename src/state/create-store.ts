// Picks the store the policy asks for: `state.redis` shares state between
// replicas; without it, state stays in this process.
import type { Policy, RedisPolicy } from '../config/policy.js';
import { readCaFile } from '../tls/tls-files.js';
import type { RedisTarget } from './redis-connection.js';
import type { Logger } from '../logger.js';
import type { StateStore } from './state-store.js';
import { MemoryStore } from './memory-store.js';
import { RedisStore } from './redis-store.js';

export interface CreateStateStoreOptions {
  readonly logger: Logger;
  readonly replicaId?: string;
  readonly heartbeatMs?: number;
  readonly livenessMs?: number;
}

export function createStateStore(policy: Policy, opts: CreateStateStoreOptions): StateStore {
  const redis = policy.state?.redis;
  if (!redis) return new MemoryStore({ replicaId: opts.replicaId, logger: opts.logger });
  return new RedisStore({
    ...redisTarget(redis),
    keyPrefix: redis.keyPrefix,
    logger: opts.logger,
    replicaId: opts.replicaId,
    heartbeatMs: opts.heartbeatMs,
    livenessMs: opts.livenessMs,
  });
}

/**
 * Where Redis is, from state.redis: URL, sentinels, and the CA read from disk
 * (checked by `detour check` and at load already; a file gone since throws here,
 * before anything starts).
 */
export function redisTarget(redis: RedisPolicy): RedisTarget {
  let ca: Buffer | undefined;
  if (redis.tls?.ca !== undefined) {
    const read = readCaFile(redis.tls.ca);
    if (!read.ok) throw new Error(`state.redis.tls.ca: ${read.message}`);
    ca = read.value;
  }
  return {
    url: redis.url,
    ...(redis.sentinels ? { sentinels: redis.sentinels } : {}),
    ...(redis.name !== undefined ? { name: redis.name } : {}),
    ...(ca ? { ca } : {}),
    ...(redis.tls?.servername !== undefined ? { servername: redis.tls.servername } : {}),
  };
}
