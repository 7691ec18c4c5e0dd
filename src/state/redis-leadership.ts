// The leader lease and the published decision, in Redis.
//
// Recipe: the single-instance Redis lock (redis.io, "Distributed locks with
// Redis", the single-instance part): `SET lease <value> NX PX <leaseMs>` to
// take it, renewal by a Lua compare-and-set (PEXPIRE only if the value is
// still ours) every leaseMs/3, release on shutdown by a Lua compare-and-delete.
// Not Redlock: detour has one Redis (or one Sentinel-managed primary), and
// Redlock's guarantees need N independent masters and bounded clock drift
// that nobody here runs. What the lease cannot guarantee by itself (a paused
// leader that wakes after losing it) the epoch does: every decision carries the
// epoch it was published under, the publish script refuses a writer that no
// longer holds the lease, and sites can refuse requests routed by an older epoch.
//
// Keys (under the store's prefix, default "detour:"):
//   leader            STRING "<replicaId>\t<random>" with PX leaseMs: the lease
//   decision:epoch    STRING integer: highest epoch ever handed out
//   decision          STRING JSON PublishedDecision: the leader's last decision
//   decided           pub/sub channel; message = epoch (a hint only: re-read)
//   members           HASH replicaId -> JSON { atMs, epoch }: per-replica heartbeat
//
// A leader that cannot renew steps down on its own clock before the lease can
// expire in Redis (it counts from when it SENT the renewal), so two replicas
// never both believe they lead for longer than the clock drift of one lease.
import { randomBytes } from 'node:crypto';
import type { Redis, RedisOptions } from 'ioredis';
import { redisClass } from './redis-connection.js';
import type { Logger } from '../logger.js';
import type { RouteDecision } from '../routing/route-table.js';
import {
  nextEpoch, type LeaderChange, type Leadership, type LeadershipView, type PublishedDecision, type ReplicaView,
} from '../leader/leadership.js';
import { RepeatLoop } from '../health/repeat-loop.js';

export interface RedisLeadershipOptions {
  readonly url: string;
  readonly logger: Logger;
  readonly replicaId: string;
  readonly keyPrefix?: string;
  /** Lease time (default 3000); renewed every leaseMs/3. */
  readonly leaseMs?: number;
  readonly commandTimeoutMs?: number;
  readonly now?: () => number;
}

export const DEFAULT_LEASE_MS = 3000;

/** KEYS: lease, epoch. ARGV: value, leaseMs, nowMs. Returns the new epoch (string) or false. */
export const acquireScript = `
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  local e = math.max((tonumber(redis.call('GET', KEYS[2])) or 0) + 1, tonumber(ARGV[3]))
  local s = string.format('%.0f', e)
  redis.call('SET', KEYS[2], s)
  return s
end
return false
`;

/** KEYS: lease. ARGV: value, leaseMs. 1 when renewed, 0 when the lease is not ours. */
export const renewScript = `
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
`;

/** KEYS: lease. ARGV: value. 1 when released, 0 when it was not ours. */
export const releaseScript = `
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
`;

/**
 * KEYS: lease, epoch, decision. ARGV: value, epoch, decision JSON, channel.
 * Written only by the lease holder, and never under an epoch older than the
 * highest handed out: 1 when written, 0 when refused.
 */
export const publishScript = `
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
local current = tonumber(redis.call('GET', KEYS[2])) or 0
if tonumber(ARGV[2]) < current then return 0 end
redis.call('SET', KEYS[2], ARGV[2])
redis.call('SET', KEYS[3], ARGV[3])
redis.call('PUBLISH', ARGV[4], ARGV[2])
return 1
`;

interface Keys {
  readonly lease: string;
  readonly epoch: string;
  readonly decision: string;
  readonly channel: string;
  readonly members: string;
}

/** Members silent for this many leases are left out of the view (and deleted by the leader). */
const FORGET_AFTER_LEASES = 20;

export class RedisLeadership implements Leadership {
  readonly kind = 'redis' as const;
  readonly replicaId: string;
  readonly #log: Logger;
  readonly #keys: Keys;
  readonly #cmd: Redis;
  readonly #sub: Redis;
  readonly #leaseMs: number;
  readonly #now: () => number;
  /** Unique per process: a restarted replica with the same id never renews its predecessor's lease. */
  readonly #value: string;
  readonly #loop: RepeatLoop;
  readonly #leaderListeners = new Set<(c: LeaderChange) => void>();
  readonly #publishedListeners = new Set<(d: PublishedDecision) => void>();
  #isLeader = false;
  #stepDownTimer: NodeJS.Timeout | undefined;
  #retryTimer: NodeJS.Timeout | undefined;
  #leader: string | null = null;
  #epoch = 0;
  #applied: number | null = null;
  #published: PublishedDecision | undefined;
  #publishedRaw = '';
  #members: ReplicaView[] = [];
  #up = false;
  #started = false;
  #closing = false;
  /** The decision waiting to be written (the newest wins; writes never pile up). */
  #toPublish: { readonly json: string; readonly epoch: number } | undefined;
  #writing: Promise<void> | undefined;

  constructor(opts: RedisLeadershipOptions) {
    this.replicaId = opts.replicaId;
    this.#leaseMs = opts.leaseMs ?? DEFAULT_LEASE_MS;
    if (!Number.isFinite(this.#leaseMs) || this.#leaseMs < 30) throw new Error(`leader lease must be at least 30 ms, got ${this.#leaseMs}`);
    this.#now = opts.now ?? Date.now;
    this.#log = opts.logger.child({ component: 'leader', replicaId: this.replicaId });
    const prefix = opts.keyPrefix ?? 'detour:';
    this.#keys = {
      lease: `${prefix}leader`, epoch: `${prefix}decision:epoch`, decision: `${prefix}decision`,
      channel: `${prefix}decided`, members: `${prefix}members`,
    };
    this.#value = `${this.replicaId}\t${randomBytes(6).toString('hex')}`;
    const commandTimeout = opts.commandTimeoutMs ?? Math.max(100, Math.floor(this.#leaseMs / 3));
    const connection = (role: string): RedisOptions => ({
      lazyConnect: true,
      // Never queue: a renewal sent late is worse than one not sent.
      enableOfflineQueue: false,
      maxRetriesPerRequest: 1,
      retryStrategy: (times) => Math.min(2 ** (times - 1) * 100, Math.max(200, this.#leaseMs / 3)),
      commandTimeout,
      connectTimeout: Math.max(commandTimeout, 1000),
      autoResubscribe: false,
      connectionName: `detour:${this.replicaId.replace(/[^\w.:-]/g, '_')}:${role}`,
    });
    const Client = redisClass();
    this.#cmd = new Client(opts.url, connection('leader'));
    this.#sub = new Client(opts.url, connection('decided'));
    let errorLogged = false;
    const onError = (err: Error) => {
      if (errorLogged || this.#closing) return;
      errorLogged = true;
      this.#log.warn({ err: err.message }, 'leader: Redis connection failed; retrying in the background');
    };
    this.#cmd.on('error', onError);
    // A lost connection is known at once, not at the next tick: followers stop applying
    // a decision nobody can update and route on their own.
    this.#cmd.on('close', () => this.#setUp(false));
    this.#sub.on('error', onError);
    this.#cmd.on('ready', () => {
      errorLogged = false;
      void this.#loop.runNow();
    });
    this.#sub.on('ready', () => {
      this.#sub.subscribe(this.#keys.channel).then(() => void this.#loop.runNow(), onError);
    });
    this.#sub.on('message', () => void this.#loop.runNow());
    this.#loop = new RepeatLoop(() => this.#tick(), () => this.#leaseMs / 3);
  }

  async start(): Promise<void> {
    if (this.#started || this.#closing) return;
    this.#started = true;
    await Promise.all([this.#cmd.connect().catch(() => undefined), this.#sub.connect().catch(() => undefined)]);
    await this.#loop.runNow();
    this.#loop.start();
  }

  isLeader(): boolean {
    return this.#isLeader;
  }

  isUp(): boolean {
    return this.#up;
  }

  published(): PublishedDecision | undefined {
    return this.#published;
  }

  publish(routes: readonly RouteDecision[], movesTraffic: boolean): number {
    if (!this.#isLeader) return this.#epoch;
    if (movesTraffic) this.#epoch = nextEpoch(this.#epoch, this.#now());
    const decision: PublishedDecision = { epoch: this.#epoch, leader: this.replicaId, atMs: this.#now(), routes };
    this.#published = decision;
    this.#toPublish = { json: JSON.stringify(decision), epoch: this.#epoch };
    this.#writing ??= this.#writePublished().finally(() => { this.#writing = undefined; });
    return this.#epoch;
  }

  noteApplied(epoch: number): void {
    this.#applied = epoch;
  }

  view(): LeadershipView {
    const now = this.#now();
    const others = this.#members.filter((m) => m.id !== this.replicaId);
    const self: ReplicaView = {
      id: this.replicaId, heartbeatMs: this.#members.find((m) => m.id === this.replicaId)?.heartbeatMs ?? null,
      redisReachable: this.#up, epoch: this.#applied,
    };
    const replicas = [self, ...others.map((m) => ({ ...m, redisReachable: m.heartbeatMs !== null && now - m.heartbeatMs <= this.#leaseMs }))]
      .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    return { leader: this.#up || this.#isLeader ? this.#leader : null, replicas };
  }

  onLeaderChange(listener: (c: LeaderChange) => void): () => void {
    this.#leaderListeners.add(listener);
    return () => this.#leaderListeners.delete(listener);
  }

  onPublished(listener: (d: PublishedDecision) => void): () => void {
    this.#publishedListeners.add(listener);
    return () => this.#publishedListeners.delete(listener);
  }

  async close(): Promise<void> {
    if (this.#closing) return;
    this.#closing = true;
    await this.#loop.stop();
    clearTimeout(this.#stepDownTimer);
    clearTimeout(this.#retryTimer);
    await this.#writing;
    if (this.#isLeader && this.#cmd.status === 'ready') {
      // Hand over now rather than after the lease: another replica takes it on its next tick.
      try {
        await this.#cmd.eval(releaseScript, 1, this.#keys.lease, this.#value);
        await this.#cmd.hdel(this.#keys.members, this.replicaId);
        await this.#cmd.publish(this.#keys.channel, 'released');
      } catch (err) {
        this.#log.warn({ err: errorMessage(err) }, 'leader: could not release the lease; it expires on its own');
      }
    }
    this.#isLeader = false;
    this.#leaderListeners.clear();
    this.#publishedListeners.clear();
    for (const conn of [this.#cmd, this.#sub]) {
      if (conn.status === 'ready') await conn.quit().catch(() => undefined);
      conn.disconnect();
    }
  }

  // ---- the loop: renew or acquire, heartbeat, read ---------------------------

  async #tick(): Promise<void> {
    if (this.#closing || this.#cmd.status !== 'ready') {
      this.#setUp(false);
      return;
    }
    const sentAtMs = this.#now();
    try {
      if (this.#isLeader) {
        const renewed = Number(await this.#cmd.eval(renewScript, 1, this.#keys.lease, this.#value, this.#leaseMs));
        if (renewed === 1) this.#holdUntil(sentAtMs + this.#leaseMs);
        else this.#stepDown('the lease is held by another replica');
      }
      if (!this.#isLeader) {
        const won = await this.#cmd.eval(acquireScript, 2, this.#keys.lease, this.#keys.epoch, this.#value, this.#leaseMs, sentAtMs);
        if (typeof won === 'string') this.#becomeLeader(Number(won), sentAtMs);
      }
      const [[, lease], [, ttlMs], [, decision], [, members]] = checkExec(await this.#cmd.multi()
        .get(this.#keys.lease)
        .pttl(this.#keys.lease)
        .get(this.#keys.decision)
        .hgetall(this.#keys.members)
        .hset(this.#keys.members, this.replicaId, JSON.stringify({ atMs: this.#now(), epoch: this.#applied }))
        .exec(), 5);
      this.#setUp(true);
      // A follower tries again the moment the lease can expire, not up to a tick later:
      // a dead leader is replaced within the lease time.
      if (!this.#isLeader && typeof ttlMs === 'number' && ttlMs > 0) this.#retryAt(ttlMs + 5);
      this.#readMembers(members);
      this.#readLeader(typeof lease === 'string' ? lease : null);
      if (typeof decision === 'string') this.#readDecision(decision);
      else this.#forgetDecision();
      if (this.#isLeader) {
        // A publish that failed (Redis blinked) is written again now, not only with the next decision.
        if (this.#toPublish && !this.#writing) this.#writing = this.#writePublished().finally(() => { this.#writing = undefined; });
        await this.#forgetSilent();
      }
    } catch (err) {
      this.#setUp(false, err);
    }
  }

  #retryAt(delayMs: number): void {
    if (delayMs >= this.#leaseMs / 3) return; // the next tick comes first anyway
    clearTimeout(this.#retryTimer);
    this.#retryTimer = setTimeout(() => void this.#loop.runNow(), delayMs);
    this.#retryTimer.unref();
  }

  #becomeLeader(epoch: number, sentAtMs: number): void {
    this.#isLeader = true;
    this.#epoch = Math.max(this.#epoch, epoch);
    this.#holdUntil(sentAtMs + this.#leaseMs);
    this.#leader = this.replicaId;
    this.#log.info({ epoch: this.#epoch }, `leader: this replica took the lease (epoch ${this.#epoch}); its decisions now apply everywhere`);
    this.#notifyLeader();
  }

  /** Leadership lasts until this time on our clock; a bit earlier, so the holder stops before Redis expires it. */
  #holdUntil(untilMs: number): void {

    clearTimeout(this.#stepDownTimer);
    const margin = Math.min(50, this.#leaseMs / 10);
    this.#stepDownTimer = setTimeout(() => this.#stepDown('could not renew the lease in time'), Math.max(0, untilMs - margin - this.#now()));
    this.#stepDownTimer.unref();
  }

  #stepDown(why: string): void {
    clearTimeout(this.#stepDownTimer);
    if (!this.#isLeader) return;
    this.#isLeader = false;
    this.#leader = null;
    this.#log.warn({ epoch: this.#epoch }, `leader: this replica stepped down: ${why}`);
    this.#notifyLeader();
  }

  #readLeader(lease: string | null): void {
    const id = lease === null ? null : lease.slice(0, Math.max(0, lease.indexOf('\t')));
    const leader = lease === this.#value ? this.replicaId : id || null;
    if (lease !== this.#value && this.#isLeader) this.#stepDown('the lease is held by another replica');
    if (leader === this.#leader) return;
    this.#leader = leader;
    this.#notifyLeader();
  }

  #readDecision(raw: string): void {
    if (raw === this.#publishedRaw) return;
    const parsed = parseDecision(raw);
    if (!parsed) {
      this.#log.warn('leader: ignoring a malformed published decision');
      return;
    }
    this.#publishedRaw = raw;
    // A newer epoch is always the truth; our own publication in flight is newer than an older read.
    if (this.#published && parsed.epoch < this.#published.epoch) return;
    if (this.#isLeader && parsed.leader === this.replicaId) return;
    this.#published = parsed;
    if (!this.#isLeader) this.#epoch = Math.max(this.#epoch, parsed.epoch);
    for (const l of this.#publishedListeners) safely(() => l(parsed), this.#log);
  }

  /**
   * Redis has no decision (it restarted empty, or was flushed): what we cached
   * is from before, and applying it would steer by a decision made without the
   * outage's news. Route on our own until the leader publishes again.
   */
  #forgetDecision(): void {
    if (this.#published === undefined || this.#isLeader) return;
    this.#published = undefined;
    this.#publishedRaw = '';
    this.#notifyLeader();
  }

  #readMembers(raw: unknown): void {
    const out: ReplicaView[] = [];
    if (raw && typeof raw === 'object') {
      for (const [id, text] of Object.entries(raw as Record<string, string>)) {
        const v = parseJson(text) as { atMs?: unknown; epoch?: unknown } | undefined;
        if (!v || typeof v.atMs !== 'number') continue;
        if (this.#now() - v.atMs > FORGET_AFTER_LEASES * this.#leaseMs) continue;
        out.push({ id, heartbeatMs: v.atMs, redisReachable: true, epoch: typeof v.epoch === 'number' ? v.epoch : null });
      }
    }
    this.#members = out;
  }

  async #forgetSilent(): Promise<void> {
    const members = await this.#cmd.hgetall(this.#keys.members);
    const cutoff = this.#now() - FORGET_AFTER_LEASES * this.#leaseMs;
    const silent = Object.entries(members).filter(([, text]) => {
      const v = parseJson(text) as { atMs?: unknown } | undefined;
      return !v || typeof v.atMs !== 'number' || v.atMs < cutoff;
    }).map(([id]) => id);
    if (silent.length > 0) await this.#cmd.hdel(this.#keys.members, ...silent);
  }

  async #writePublished(): Promise<void> {
    while (this.#toPublish && !this.#closing) {
      const { json, epoch } = this.#toPublish;
      this.#toPublish = undefined;
      if (!this.#isLeader || this.#cmd.status !== 'ready') return;
      try {
        const ok = Number(await this.#cmd.eval(publishScript, 3, this.#keys.lease, this.#keys.epoch, this.#keys.decision,
          this.#value, epoch, json, this.#keys.channel));
        if (ok !== 1) this.#stepDown('the publish was refused: the lease or the epoch moved on');
        else this.#publishedRaw = json;
      } catch (err) {
        // The next decision, or the next takeover, writes again; followers keep the last one meanwhile.
        this.#log.warn({ err: errorMessage(err), epoch }, 'leader: could not publish the decision');
        this.#toPublish ??= { json, epoch };
        return;
      }
    }
  }

  #setUp(up: boolean, err?: unknown): void {
    if (up === this.#up) return;
    this.#up = up;
    if (up) this.#log.info('leader: Redis reachable; following the published decision');
    else if (!this.#closing) this.#log.warn({ err: errorMessage(err) }, 'leader: Redis unreachable; serving the last decision known plus this replica\'s own health');
    this.#notifyLeader();
  }

  #notifyLeader(): void {
    const change: LeaderChange = { leader: this.view().leader, isLeader: this.#isLeader, epoch: this.#isLeader ? this.#epoch : null };
    for (const l of this.#leaderListeners) safely(() => l(change), this.#log);
  }
}

function parseDecision(raw: string): PublishedDecision | undefined {
  const v = parseJson(raw) as Partial<PublishedDecision> | undefined;
  if (!v || typeof v !== 'object' || !Number.isFinite(v.epoch) || typeof v.leader !== 'string' || !Array.isArray(v.routes)) return undefined;
  const routesOk = v.routes.every((r) => r && typeof r === 'object' && typeof r.name === 'string' && typeof r.state === 'string'
    && Array.isArray(r.weights) && Array.isArray(r.eligible) && (r.active === null || typeof r.active === 'string')
    && Number.isFinite(r.sinceMs) && typeof r.reason === 'string');
  if (!routesOk) return undefined;
  return { epoch: v.epoch!, leader: v.leader, atMs: Number(v.atMs) || 0, routes: v.routes };
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

function checkExec(results: [Error | null, unknown][] | null, expected: number): [Error | null, unknown][] {
  if (!results || results.length !== expected) throw new Error('Redis transaction was discarded');
  for (const [err] of results) if (err) throw err;
  return results;
}

function safely(fn: () => void, log: Logger): void {
  try {
    fn();
  } catch (err) {
    log.error({ err: errorMessage(err) }, 'leader: listener threw');
  }
}

function errorMessage(err: unknown): string | undefined {
  if (err === undefined) return undefined;
  return err instanceof Error ? err.message : String(err);
}
