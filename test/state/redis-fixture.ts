// Shared setup for the Redis store tests: stores with short timers on a
// throwaway redis-server, a raw client to look behind the store's back, and
// waiting on the store's own notifications instead of sleeping.
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { pino, type Logger } from 'pino';
import { RedisStore, type RedisStoreOptions } from '../../src/state/redis-store.js';
import type { SharedState } from '../../src/state/state-store.js';
import type { RedisServer, Teardown } from '../helpers/redis.js';

export interface LogLine {
  readonly level: number;
  readonly msg: string;
  readonly [key: string]: unknown;
}

/** A pino logger that keeps every line (levels: 30 info, 40 warn, 50 error). */
export function captureLogger(): { logger: Logger; lines: LogLine[] } {
  const lines: LogLine[] = [];
  const logger = pino({ level: 'debug' }, { write: (line: string) => { lines.push(JSON.parse(line) as LogLine); } });
  return { logger, lines };
}

export function uniquePrefix(): string {
  return `t${randomBytes(3).toString('hex')}:`;
}

export async function openStore(
  t: Teardown, redis: { url: string }, opts: Partial<RedisStoreOptions> & { replicaId: string; keyPrefix: string },
): Promise<RedisStore> {
  const store = new RedisStore({
    url: redis.url, logger: captureLogger().logger,
    heartbeatMs: 100, livenessMs: 500, maxReconnectDelayMs: 200, commandTimeoutMs: 500, ...opts,
  });
  t.teardown(() => store.close());
  await store.start();
  return store;
}

/** Resolves with the first snapshot (current or notified) that satisfies `cond`. */
export function waitForState(
  store: RedisStore, cond: (s: SharedState) => boolean, message: string, timeoutMs = 3000,
): Promise<SharedState> {
  if (cond(store.snapshot())) return Promise.resolve(store.snapshot());
  return new Promise((resolve, reject) => {
    let done = false;
    const timer = setTimeout(() => {
      done = true;
      reject(new Error(`${store.replicaId}: no snapshot with ${message} within ${timeoutMs}ms; last: ${JSON.stringify(store.snapshot())}`));
    }, timeoutMs);
    store.onState((s) => {
      if (done || !cond(s)) return;
      done = true;
      clearTimeout(timer);
      resolve(s);
    });
  });
}

/** Resolves with the next onStatus value equal to `up`. */
export function waitForStatus(store: RedisStore, up: boolean, timeoutMs = 3000): Promise<void> {
  return new Promise((resolve, reject) => {
    let done = false;
    const timer = setTimeout(() => {
      done = true;
      reject(new Error(`${store.replicaId}: onStatus(${up}) not called within ${timeoutMs}ms`));
    }, timeoutMs);
    store.onStatus((value) => {
      if (done || value !== up) return;
      done = true;
      clearTimeout(timer);
      resolve();
    });
  });
}

/** A plain client for writing and inspecting keys directly. */
export async function rawClient(t: Teardown, redis: RedisServer): Promise<Redis> {
  const client = new Redis(redis.url, { lazyConnect: true, maxRetriesPerRequest: 1 });
  client.on('error', () => {}); // the server is killed on purpose in some tests
  t.teardown(() => client.disconnect());
  await client.connect();
  return client;
}
