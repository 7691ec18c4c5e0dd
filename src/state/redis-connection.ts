// How detour reaches Redis the way operators run it: one server by URL
// (redis:// or rediss:// for TLS), or a Sentinel-managed master group
// (state.redis.sentinels + name). Everything goes through ioredis's own
// options (sentinels/name, tls, enableTLSForSentinelMode): no wrapper around
// its connection logic, so failover to a new master is ioredis' documented
// Sentinel behaviour (it asks the sentinels again on every reconnect).
import { createRequire } from 'node:module';
import type { Redis, RedisOptions } from 'ioredis';

let ioredis: typeof import('ioredis') | undefined;

/**
 * The ioredis client class, loaded the first time a replica connects: a
 * gateway without state.redis never does, and loading ioredis (CommonJS, a
 * hundred files) was about 60 ms of every `detour start`.
 */
export function redisClass(): typeof Redis {
  ioredis ??= createRequire(import.meta.url)('ioredis') as typeof import('ioredis');
  return ioredis.Redis;
}

export interface RedisTarget {
  /** redis:// or rediss://. With sentinels: only its scheme, credentials and db are used. */
  readonly url: string;
  /** Sentinel addresses; the master is found by asking them for `name`. */
  readonly sentinels?: readonly { readonly host: string; readonly port: number }[];
  /** The Sentinel master group name (`sentinel monitor <name> ...`). */
  readonly name?: string;
  /** PEM trust anchors for rediss:// (default: system CAs), already read from state.redis.tls.ca. */
  readonly ca?: Buffer;
  /** Name the server certificate must carry (default: the URL host). */
  readonly servername?: string;
}

/** A client for the target with the caller's connection options (timeouts, retries, names). */
export function createRedisClient(target: RedisTarget, options: RedisOptions): Redis {
  const sentinel = sentinelOptions(target, options);
  // One server: ioredis parses the URL itself (rediss:// turns TLS on; our tls
  // object, with the CA, is used because the URL sets none).
  const Client = redisClass();
  return sentinel ? new Client(sentinel) : new Client(target.url, { ...options, ...tlsOptions(target) });
}

function tlsOptions(target: RedisTarget): Pick<RedisOptions, 'tls'> {
  if (new URL(target.url).protocol !== 'rediss:') return {};
  return { tls: { ...(target.ca ? { ca: target.ca } : {}), ...(target.servername ? { servername: target.servername } : {}) } };
}

/** Pure: the ioredis options for a Sentinel target, undefined for one server (exported for tests). */
export function sentinelOptions(target: RedisTarget, options: RedisOptions): RedisOptions | undefined {
  if (target.sentinels === undefined || target.sentinels.length === 0) return undefined;
  const url = new URL(target.url);
  const db = url.pathname.length > 1 ? Number(url.pathname.slice(1)) : undefined;
  const tls = tlsOptions(target);
  return {
    ...options,
    ...(url.username !== '' ? { username: decodeURIComponent(url.username) } : {}),
    ...(url.password !== '' ? { password: decodeURIComponent(url.password) } : {}),
    ...(db !== undefined && Number.isInteger(db) ? { db } : {}),
    sentinels: target.sentinels.map((s) => ({ host: s.host, port: s.port })),
    name: target.name ?? 'mymaster',
    // Told by the sentinels (+switch-master), ioredis reconnects to the new
    // master at once. Belt and braces: a demoted master answers writes with
    // READONLY (EXECABORT inside a transaction); reconnecting asks the sentinels
    // again, and the caller's loop retries the write.
    failoverDetector: true,
    reconnectOnError: (err) => (/^(READONLY|EXECABORT)/.test(err.message) ? 1 : false),
    // The sentinels are asked in plain TCP; the master (data) connection uses TLS with rediss://.
    ...(tls.tls ? { ...tls, enableTLSForSentinelMode: true } : {}),
  };
}
