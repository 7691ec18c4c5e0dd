// Where shared state lives in Redis, and how operations and reads map onto it.
// Keys (under a prefix, default "detour:"):
//   drain:sites, drain:buildings   SET of names
//   pins                           HASH route -> site
//   approvals:failback|failover    HASH route -> JSON Approval
//   health                         HASH "<site>\t<replicaId>" -> JSON ReplicaVerdict
//   replicas                       ZSET replicaId -> last heartbeat ms
//   changed                        pub/sub channel; message = writer's replicaId (a hint only)
//   epoch                          STRING, 16 random hex; a new value means Redis lost
//                                  everything before it (restart without persistence, flush)
// Every value is checked when read: the store is shared, and a bad entry written
// by hand or by another version must cost one warning, not a crash.
import { randomBytes } from 'node:crypto';
import type { ChainableCommander } from 'ioredis';
import type { Approval } from '../routing/route-table.js';
import { emptyRecord, emptySharedState, type ReplicaVerdict, type StateOp } from './state-store.js';
import type { StoredState, StoredVerdict } from './stored-state.js';

export interface RedisKeys {
  readonly drainedSites: string;
  readonly drainedBuildings: string;
  readonly pins: string;
  readonly failbackApprovals: string;
  readonly failoverApprovals: string;
  readonly health: string;
  readonly replicas: string;
  readonly channel: string;
  readonly epoch: string;
}

export function createRedisKeys(prefix: string): RedisKeys {
  return {
    drainedSites: `${prefix}drain:sites`,
    drainedBuildings: `${prefix}drain:buildings`,
    pins: `${prefix}pins`,
    failbackApprovals: `${prefix}approvals:failback`,
    failoverApprovals: `${prefix}approvals:failover`,
    health: `${prefix}health`,
    replicas: `${prefix}replicas`,
    channel: `${prefix}changed`,
    epoch: `${prefix}epoch`,
  };
}

export function healthField(site: string, replicaId: string): string {
  return `${site}\t${replicaId}`;
}

/** Queue exactly one command per operation (the caller matches replies to operations by index). */
export function queueOp(tx: ChainableCommander, keys: RedisKeys, op: StateOp): void {
  switch (op.op) {
    case 'drain':
      tx.sadd(op.kind === 'site' ? keys.drainedSites : keys.drainedBuildings, op.name);
      return;
    case 'undrain':
      tx.srem(op.kind === 'site' ? keys.drainedSites : keys.drainedBuildings, op.name);
      return;
    case 'pin':
      tx.hset(keys.pins, op.route, op.site);
      return;
    case 'unpin':
      tx.hdel(keys.pins, op.route);
      return;
    case 'approveFailback':
    case 'approveFailover':
      tx.hset(op.op === 'approveFailback' ? keys.failbackApprovals : keys.failoverApprovals, op.route,
        JSON.stringify({ atMs: op.approval.atMs, force: op.approval.force, ...(op.approval.site ? { site: op.approval.site } : {}) }));
      return;
    case 'clearApproval':
      tx.hdel(op.kind === 'failback' ? keys.failbackApprovals : keys.failoverApprovals, op.route);
      return;
  }
}

/** A fresh epoch: 16 hex characters, random enough that two Redis lifetimes never share one. */
export function createEpoch(): string {
  return randomBytes(8).toString('hex');
}

/** Replies of the transaction queueReadAll() builds. */
export const READ_ALL_REPLIES = 9;

/**
 * Everything, in one transaction: a replica never sees half of another's write.
 * The epoch is created inside the same transaction when it is missing (SET NX
 * does nothing otherwise), so the state read and the epoch it is read under
 * always belong together, and concurrent replicas agree on the one that won.
 */
export function queueReadAll(tx: ChainableCommander, keys: RedisKeys, candidateEpoch: string): void {
  tx.smembers(keys.drainedSites)
    .smembers(keys.drainedBuildings)
    .hgetall(keys.pins)
    .hgetall(keys.failbackApprovals)
    .hgetall(keys.failoverApprovals)
    .hgetall(keys.health)
    .zrange(keys.replicas, 0, '-1', 'WITHSCORES')
    .set(keys.epoch, candidateEpoch, 'NX')
    .get(keys.epoch);
}

export type ExecResult = readonly (readonly [Error | null, unknown])[];

/** Throws when a read failed (a key of the wrong type, say); skips and reports malformed entries. */
export function parseReadAll(results: ExecResult, onBadEntry: (message: string) => void): StoredState {
  if (results.length !== READ_ALL_REPLIES) {
    throw new Error(`expected ${READ_ALL_REPLIES} replies from the state read, got ${results.length}`);
  }
  const values = results.map(([err, value]) => {
    if (err) throw err;
    return value;
  });
  const [sites, buildings, pins, failback, failover, health, replicas, , epoch] = values;
  // Only a key of another type (GET fails, thrown above) or a bug leaves it unset.
  if (typeof epoch !== 'string' || epoch === '') throw new Error(`the state read found no epoch (got ${String(epoch)})`);
  return {
    epoch,
    shared: {
      ...emptySharedState,
      drainedSites: toStrings(sites).sort(),
      drainedBuildings: toStrings(buildings).sort(),
      pins: toRecord(pins),
      failbackApprovals: parseApprovals(toRecord(failback), 'approvals:failback', onBadEntry),
      failoverApprovals: parseApprovals(toRecord(failover), 'approvals:failover', onBadEntry),
    },
    verdicts: parseVerdicts(toRecord(health), onBadEntry),
    // RESP3 may answer WITHSCORES as [member, score] pairs; RESP2 as one flat list.
    heartbeats: parseHeartbeats(toStrings(Array.isArray(replicas) ? replicas.flat() : replicas), onBadEntry),
  };
}

/**
 * Deletes heartbeats older than ARGV[1] and the given health fields, but only
 * those whose replica is still silent when the script runs: a replica that came
 * back between our read and this cleanup keeps its fresh verdicts.
 * KEYS: replicas ZSET, health HASH. ARGV: cutoff ms, fields...
 */
export const removeStaleScript = `
local cutoff = tonumber(ARGV[1])
local removed = 0
for i = 2, #ARGV do
  local id = string.match(ARGV[i], '^[^\\t]*\\t(.*)$')
  local score = id and redis.call('ZSCORE', KEYS[1], id)
  if (not score) or tonumber(score) < cutoff then
    removed = removed + redis.call('HDEL', KEYS[2], ARGV[i])
  end
end
return removed + redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[1])
`;

function toStrings(value: unknown): string[] {
  return Array.isArray(value) ? value.map(String) : [];
}

function toRecord(value: unknown): Record<string, string> {
  const out = emptyRecord<string>();
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return out;
  for (const [k, v] of Object.entries(value)) out[k] = String(v);
  return out;
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

function parseApprovals(raw: Record<string, string>, key: string, onBad: (m: string) => void): Record<string, Approval> {
  const out = emptyRecord<Approval>();
  for (const [route, text] of Object.entries(raw)) {
    const v = parseJson(text) as Partial<Approval> | undefined;
    if (v && typeof v === 'object' && Number.isFinite(v.atMs) && typeof v.force === 'boolean') {
      out[route] = { atMs: v.atMs!, force: v.force, ...(typeof v.site === 'string' ? { site: v.site } : {}) };
    } else {
      onBad(`ignoring malformed ${key} entry for route ${route}: ${text.slice(0, 100)}`);
    }
  }
  return out;
}

function parseVerdicts(raw: Record<string, string>, onBad: (m: string) => void): StoredVerdict[] {
  const out: StoredVerdict[] = [];
  for (const [field, text] of Object.entries(raw)) {
    const tab = field.indexOf('\t');
    const v = parseJson(text) as Partial<ReplicaVerdict> | undefined;
    if (tab <= 0 || tab === field.length - 1 || !isVerdict(v)) {
      onBad(`ignoring malformed health entry ${JSON.stringify(field)}: ${text.slice(0, 100)}`);
      continue;
    }
    out.push({
      field, site: field.slice(0, tab), replicaId: field.slice(tab + 1),
      verdict: { status: v.status, sinceMs: v.sinceMs, reason: v.reason, atMs: v.atMs, ...(v.passiveOnly === true ? { passiveOnly: true } : {}) },
    });
  }
  return out;
}

function isVerdict(v: Partial<ReplicaVerdict> | undefined): v is ReplicaVerdict {
  return typeof v === 'object' && v !== null && (v.status === 'up' || v.status === 'down')
    && Number.isFinite(v.sinceMs) && typeof v.reason === 'string' && Number.isFinite(v.atMs);
}

function parseHeartbeats(flat: string[], onBad: (m: string) => void): Record<string, number> {
  const out = emptyRecord<number>();
  for (let i = 0; i + 1 < flat.length; i += 2) {
    const atMs = Number(flat[i + 1]);
    if (Number.isFinite(atMs)) out[flat[i]!] = atMs;
    else onBad(`ignoring malformed heartbeat of replica ${flat[i]}: ${flat[i + 1]}`);
  }
  return out;
}
