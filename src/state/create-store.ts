// Picks the store the policy asks for: `state.redis` shares state between
// replicas; without it, state stays in this process.
import type { Policy } from '../config/policy.js';
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
    url: redis.url,
    keyPrefix: redis.keyPrefix,
    logger: opts.logger,
    replicaId: opts.replicaId,
    heartbeatMs: opts.heartbeatMs,
    livenessMs: opts.livenessMs,
  });
}
