// Shared state in Redis, so every replica routes on the same drains, pins,
// approvals and health verdicts. Nothing on the request path waits for Redis:
// apply() and publishHealth() change the local snapshot at once and queue the
// write; a single sync loop writes, then re-reads everything.
//
// Pub/sub is at-most-once, so a message is only a hint to re-read: the whole
// state is also re-read on every (re)connect and on every heartbeat, and a lost
// message costs at most one heartbeat of delay. Two connections, because a
// subscribed connection must not carry commands.
//
// Redis may also lose everything (a restart without persistence, a flush). An
// epoch key tells that apart from an operator's change: when it differs from
// the one last read, the last confirmed drains, pins and approvals are written
// again, so a restarted Redis never undrains a building (see findLostOps).
import type { Redis, RedisOptions } from 'ioredis';
import type { Logger } from '../logger.js';
import type { ReplicaVerdict, SharedState, StateOp, StateStore } from './state-store.js';
import { createReplicaId } from './replica-id.js';
import { createRedisClient, type RedisTarget } from './redis-connection.js';
import {
  applyStoredOp, composeSnapshot, emptyStoredState, findLostOps, findStale, type StoredState,
} from './stored-state.js';
import {
  createEpoch, createRedisKeys, healthField, parseReadAll, queueOp, queueReadAll, READ_ALL_REPLIES, removeStaleScript,
  type ExecResult, type RedisKeys,
} from './redis-layout.js';

/** url (redis:// or rediss://), and optionally Sentinel and TLS trust (see redis-connection.ts). */
export interface RedisStoreOptions extends RedisTarget {
  readonly logger: Logger;
  /** Default "detour:". */
  readonly keyPrefix?: string;
  /** Default `${hostname}-${pid}-${4 hex}`. */
  readonly replicaId?: string;
  /** Heartbeat, verdict re-publication and full re-read period (default 1000). */
  readonly heartbeatMs?: number;
  /** Replicas silent for longer are left out, with their verdicts (default 5000). */
  readonly livenessMs?: number;
  /** Unconfirmed operations kept while Redis is unreachable; the oldest are dropped first (default 1000). */
  readonly maxPendingOps?: number;
  /** start() stops waiting for Redis after this long and keeps trying in the background (default 2000). */
  readonly startTimeoutMs?: number;
  /** Cap of the exponential reconnect backoff (default 2000). */
  readonly maxReconnectDelayMs?: number;
  /** A command unanswered for this long counts as a failure (default 1000). */
  readonly commandTimeoutMs?: number;
  readonly now?: () => number;
}

/** One object per queued operation: written entries are removed by identity, wherever they sit in the queue. */
interface PendingOp {
  readonly op: StateOp;
}

/** Operations written per transaction when a backlog drains after an outage. */
const WRITE_BATCH = 100;
/** Distinct malformed-entry warnings remembered, so a bad entry warns once, not every second. */
const WARNED_LIMIT = 1000;

export class RedisStore implements StateStore {
  readonly kind = 'redis' as const;
  readonly replicaId: string;
  readonly #log: Logger;
  readonly #keys: RedisKeys;
  readonly #cmd: Redis;
  readonly #sub: Redis;
  readonly #heartbeatMs: number;
  readonly #livenessMs: number;
  readonly #maxPending: number;
  readonly #startTimeoutMs: number;
  readonly #commandTimeoutMs: number;
  readonly #now: () => number;
  readonly #stateListeners = new Set<(state: SharedState) => void>();
  readonly #statusListeners = new Set<(up: boolean) => void>();
  readonly #own = new Map<string, ReplicaVerdict>();
  /** Own verdicts withdrawn locally and not yet deleted in Redis. */
  readonly #forgotten = new Set<string>();
  readonly #warned = new Set<string>();
  readonly #errorLogged = { command: false, subscriber: false };
  /** Last successful read plus the writes confirmed since: what is rebuilt if Redis loses its data. */
  #stored: StoredState = emptyStoredState;
  #pending: PendingOp[] = [];
  /** A verdict changed: write it and publish. */
  #ownChanged = false;
  /** Time to refresh the heartbeat and re-write every own verdict. */
  #heartbeatDue = false;
  #snapshot: SharedState;
  #snapshotKey = '';
  #commandReady = false;
  #lastCommandOk = false;
  #up = false;
  #syncWanted = false;
  #loop: Promise<void> | undefined;
  #tickTimer: NodeJS.Timeout | undefined;
  #started = false;
  #closing = false;
  #closed: Promise<void> | undefined;
  #resolveSubscribed: () => void = () => {};
  readonly #subscribed = new Promise<void>((resolve) => { this.#resolveSubscribed = resolve; });

  constructor(opts: RedisStoreOptions) {
    this.#heartbeatMs = checkPositive('heartbeatMs', opts.heartbeatMs ?? 1000);
    this.#livenessMs = checkPositive('livenessMs', opts.livenessMs ?? 5000);
    if (this.#livenessMs <= this.#heartbeatMs) {
      throw new Error(`state store: livenessMs (${this.#livenessMs}) must be longer than heartbeatMs (${this.#heartbeatMs}), or replicas would flicker out between heartbeats`);
    }
    this.#maxPending = checkPositive('maxPendingOps', opts.maxPendingOps ?? 1000);
    this.#startTimeoutMs = checkPositive('startTimeoutMs', opts.startTimeoutMs ?? 2000);
    this.#commandTimeoutMs = checkPositive('commandTimeoutMs', opts.commandTimeoutMs ?? 1000);
    const maxReconnectDelayMs = checkPositive('maxReconnectDelayMs', opts.maxReconnectDelayMs ?? 2000);
    checkRedisUrl(opts.url);
    this.replicaId = opts.replicaId ?? createReplicaId();
    this.#log = opts.logger.child({ component: 'state-store', replicaId: this.replicaId });
    this.#keys = createRedisKeys(opts.keyPrefix ?? 'detour:');
    this.#now = opts.now ?? Date.now;
    const connection = (role: string): RedisOptions => ({
      lazyConnect: true,
      // Fail fast instead of queueing: the sync loop keeps its own queue of
      // operations and retries after reconnecting, in order.
      enableOfflineQueue: false,
      maxRetriesPerRequest: 1,
      retryStrategy: (times) => Math.min(2 ** (times - 1) * 100, maxReconnectDelayMs),
      commandTimeout: this.#commandTimeoutMs,
      connectTimeout: Math.max(this.#commandTimeoutMs, 1000),
      // Subscribing again is done on every `ready`, together with a re-read.
      autoResubscribe: false,
      connectionName: `detour:${this.replicaId.replace(/[^\w.:-]/g, '_')}:${role}`,
    });
    this.#cmd = createRedisClient(opts, connection('cmd'));
    this.#sub = createRedisClient(opts, connection('sub'));
    this.#snapshot = this.#compose();
    this.#snapshotKey = JSON.stringify(this.#snapshot);
    this.#listen();
  }

  async start(): Promise<void> {
    if (this.#started || this.#closing) return;
    this.#started = true;
    // A refused connection rejects connect() at once; later attempts are the
    // retry strategy's, in the background.
    const command = this.#cmd.connect().then(() => this.#requestSync(), () => undefined);
    const subscriber = this.#sub.connect().then(() => this.#subscribed, () => undefined);
    await settleWithin(Promise.all([command, subscriber]), this.#startTimeoutMs);
    this.#scheduleTick();
  }

  apply(op: StateOp): void {
    this.#pending.push({ op });
    if (this.#pending.length > this.#maxPending) {
      const dropped = this.#pending.shift()!;
      this.#log.warn({ op: dropped.op, maxPendingOps: this.#maxPending },
        'state store: too many unconfirmed operations while Redis is unreachable; dropped the oldest');
    }
    this.#emit();
    void this.#requestSync();
  }

  publishHealth(site: string, verdict: Omit<ReplicaVerdict, 'atMs'>): void {
    const prev = this.#own.get(site);
    if (prev && prev.status === verdict.status && prev.sinceMs === verdict.sinceMs && prev.reason === verdict.reason
      && prev.passiveOnly === verdict.passiveOnly) return;
    this.#own.set(site, {
      status: verdict.status, sinceMs: verdict.sinceMs, reason: verdict.reason, atMs: this.#now(),
      ...(verdict.passiveOnly ? { passiveOnly: true } : {}),
    });
    this.#ownChanged = true;
    this.#emit();
    void this.#requestSync();
  }

  forgetHealth(site: string): void {
    if (!this.#own.delete(site)) return;
    // Deleted from Redis with the next write, so other replicas stop counting it.
    this.#forgotten.add(site);
    this.#ownChanged = true;
    this.#emit();
    void this.#requestSync();
  }

  onState(listener: (state: SharedState) => void): void {
    this.#stateListeners.add(listener);
  }

  onStatus(listener: (up: boolean) => void): void {
    this.#statusListeners.add(listener);
  }

  isUp(): boolean {
    return this.#up;
  }

  snapshot(): SharedState {
    return this.#snapshot;
  }

  close(): Promise<void> {
    if (!this.#closed) {
      this.#closing = true;
      this.#closed = this.#shutdown();
    }
    return this.#closed;
  }

  // ---- connections ----------------------------------------------------------

  #listen(): void {
    this.#cmd.on('ready', () => {
      this.#errorLogged.command = false;
      this.#commandReady = true;
      // Redis may have restarted empty: our heartbeat and verdicts go back at once.
      this.#heartbeatDue = true;
      void this.#requestSync();
    });
    const commandLost = (): void => {
      this.#commandReady = false;
      this.#setStatus();
    };
    this.#cmd.on('close', commandLost);
    this.#cmd.on('end', commandLost);
    this.#cmd.on('error', (err: Error) => this.#logConnectionError('command', err));

    this.#sub.on('ready', () => {
      this.#errorLogged.subscriber = false;
      this.#sub.subscribe(this.#keys.channel).then(
        () => {
          this.#resolveSubscribed();
          // Messages sent while we were not subscribed are lost: re-read.
          void this.#requestSync();
        },
        (err: Error) => {
          this.#resolveSubscribed();
          this.#logConnectionError('subscriber', err);
        },
      );
    });
    this.#sub.on('message', (channel: string) => {
      if (channel === this.#keys.channel) void this.#requestSync();
    });
    this.#sub.on('error', (err: Error) => this.#logConnectionError('subscriber', err));
  }

  /** Once per outage and connection: a retry every few hundred ms must not flood the log. */
  #logConnectionError(role: 'command' | 'subscriber', err: Error): void {
    if (this.#errorLogged[role] || this.#closing) return;
    this.#errorLogged[role] = true;
    this.#log.warn({ err: err.message }, `state store: Redis ${role} connection failed; retrying in the background`);
  }

  #setStatus(err?: unknown): void {
    const up = this.#commandReady && this.#lastCommandOk && !this.#closing;
    if (up === this.#up) return;
    this.#up = up;
    if (up) this.#log.info('state store: Redis reachable; shared state in sync');
    else if (!this.#closing) {
      this.#log.warn({ err: errorMessage(err) ?? 'connection closed', pendingOps: this.#pending.length },
        'state store: Redis unreachable; routing on the last known shared state, local changes are queued');
    }
    for (const listener of this.#statusListeners) {
      try {
        listener(up);
      } catch (listenerErr) {
        this.#log.error({ err: errorMessage(listenerErr) }, 'state store: status listener threw');
      }
    }
  }

  #commandDone(ok: boolean, err?: unknown): void {
    this.#lastCommandOk = ok;
    this.#setStatus(err);
  }

  // ---- sync loop ------------------------------------------------------------

  /** Coalesces requests: one sync at a time, and one more if asked while it ran. Never rejects. */
  #requestSync(): Promise<void> {
    this.#syncWanted = true;
    // Started from a microtask, so #loop is assigned before the loop can clear it.
    this.#loop ??= Promise.resolve().then(() => this.#runLoop());
    return this.#loop;
  }

  async #runLoop(): Promise<void> {
    try {
      while (this.#syncWanted && !this.#closing) {
        this.#syncWanted = false;
        await this.#syncOnce();
      }
    } finally {
      this.#loop = undefined;
    }
  }

  /**
   * Writes first (queued operations, then own heartbeat and verdicts), then
   * reads everything; when that read finds Redis emptied, writes again at once.
   */
  async #syncOnce(): Promise<void> {
    if (!this.#commandReady) {
      this.#emit(); // replicas may have aged out of the liveness window meanwhile
      return;
    }
    try {
      await this.#writeAll();
      const read = await this.#readAll();
      const lost = this.#adopt(read);
      this.#commandDone(true);
      this.#emit();
      if (lost) await this.#writeAll();
      await this.#removeStale(read);
    } catch (err) {
      this.#commandDone(false, err);
      this.#emit();
    }
  }

  async #writeAll(): Promise<void> {
    const wroteOps = await this.#writePending();
    const wroteVerdict = await this.#writeOwn();
    if (wroteOps || wroteVerdict) await this.#cmd.publish(this.#keys.channel, this.replicaId);
  }

  /**
   * Takes a read as the new stored state; true when Redis had lost its data.
   * Then the ops rebuilding the last confirmed state go AHEAD of the pending
   * ones (an undrain made here during the outage still wins over the rebuilt
   * drain), and stored and pending change together, before any snapshot, so
   * the drains never disappear in between.
   */
  #adopt(read: StoredState): boolean {
    const rebuild = findLostOps(this.#stored, read);
    if (rebuild) {
      this.#log.warn({ previousEpoch: this.#stored.epoch, epoch: read.epoch, rebuildOps: rebuild.length, pendingOps: this.#pending.length },
        'state store lost its data (epoch changed: Redis restarted without persistence or was flushed); re-writing the last known drains and pins');
      this.#pending = [...rebuild.map((op) => ({ op })), ...this.#pending];
      // Others should not lose sight of this replica until its next heartbeat.
      this.#heartbeatDue = true;
    }
    this.#stored = read;
    return rebuild !== undefined;
  }

  async #writePending(): Promise<boolean> {
    let wrote = false;
    while (this.#pending.length > 0) {
      const batch = this.#pending.slice(0, WRITE_BATCH);
      const tx = this.#cmd.multi();
      for (const { op } of batch) queueOp(tx, this.#keys, op);
      const results = checkExec(await tx.exec(), batch.length);
      let stored = this.#stored;
      results.forEach(([err], i) => {
        const { op } = batch[i]!;
        // A data error (a key of the wrong type) would fail the same way forever.
        if (err) this.#log.warn({ op, err: err.message }, 'state store: Redis refused an operation; dropped it');
        else stored = applyStoredOp(stored, op);
      });
      this.#stored = stored;
      // apply() may have dropped some of the batch meanwhile, and added others behind it.
      const written = new Set(batch);
      this.#pending = this.#pending.filter((p) => !written.has(p));
      wrote = true;
    }
    return wrote;
  }

  /** Heartbeat and every own verdict, stamped now; true when a verdict changed (worth a publish). */
  async #writeOwn(): Promise<boolean> {
    if (!this.#ownChanged && !this.#heartbeatDue) return false;
    const changed = this.#ownChanged;
    this.#ownChanged = false;
    this.#heartbeatDue = false;
    const atMs = this.#now();
    const written = new Map<string, [ReplicaVerdict, ReplicaVerdict]>();
    const tx = this.#cmd.multi().zadd(this.#keys.replicas, atMs, this.replicaId);
    for (const [site, verdict] of this.#own) {
      const stamped = { ...verdict, atMs };
      written.set(site, [verdict, stamped]);
      tx.hset(this.#keys.health, healthField(site, this.replicaId), JSON.stringify(stamped));
    }
    const forgotten = [...this.#forgotten].filter((site) => !this.#own.has(site));
    for (const site of forgotten) tx.hdel(this.#keys.health, healthField(site, this.replicaId));
    try {
      for (const [err] of checkExec(await tx.exec(), written.size + forgotten.length + 1)) if (err) throw err;
      for (const site of forgotten) this.#forgotten.delete(site);
    } catch (err) {
      this.#ownChanged ||= changed;
      this.#heartbeatDue = true;
      throw err;
    }
    // A verdict that changed while the write was in flight keeps its newer value.
    for (const [site, [before, stamped]] of written) if (this.#own.get(site) === before) this.#own.set(site, stamped);
    return changed;
  }

  async #readAll(): Promise<StoredState> {
    const tx = this.#cmd.multi();
    queueReadAll(tx, this.#keys, createEpoch());
    return parseReadAll(checkExec(await tx.exec(), READ_ALL_REPLIES), (message) => this.#warnOnce(message));
  }

  async #removeStale(stored: StoredState): Promise<void> {
    const stale = findStale(stored, this.#now(), this.#livenessMs, this.replicaId);
    if (stale.replicas.length === 0 && stale.fields.length === 0) return;
    const cutoffMs = this.#now() - this.#livenessMs;
    await this.#cmd.eval(removeStaleScript, 2, this.#keys.replicas, this.#keys.health, cutoffMs, ...stale.fields);
    this.#log.info({ replicas: stale.replicas }, 'state store: forgot replicas that stopped heartbeating');
  }

  #scheduleTick(): void {
    if (this.#closing) return;
    this.#tickTimer = setTimeout(() => {
      this.#heartbeatDue = true;
      void this.#requestSync().then(() => this.#scheduleTick());
    }, this.#heartbeatMs);
    this.#tickTimer.unref();
  }

  // ---- snapshots ------------------------------------------------------------

  #compose(): SharedState {
    return composeSnapshot({
      stored: this.#stored,
      pending: this.#pending.map((p) => p.op),
      own: this.#own,
      replicaId: this.replicaId,
      nowMs: this.#now(),
      livenessMs: this.#livenessMs,
    });
  }

  /** Notify only on change: a re-read that found nothing new stays quiet. */
  #emit(): void {
    if (this.#closing) return;
    const next = this.#compose();
    const key = JSON.stringify(next);
    if (key === this.#snapshotKey) return;
    this.#snapshot = next;
    this.#snapshotKey = key;
    for (const listener of this.#stateListeners) {
      try {
        listener(next);
      } catch (err) {
        this.#log.error({ err: errorMessage(err) }, 'state store: state listener threw');
      }
    }
  }

  #warnOnce(message: string): void {
    if (this.#warned.has(message)) return;
    if (this.#warned.size >= WARNED_LIMIT) this.#warned.clear();
    this.#warned.add(message);
    this.#log.warn(`state store: ${message}`);
  }

  // ---- shutdown -------------------------------------------------------------

  async #shutdown(): Promise<void> {
    clearTimeout(this.#tickTimer);
    const wasUp = this.#up;
    // Closing is not an outage: nobody is told the store went down.
    this.#stateListeners.clear();
    this.#statusListeners.clear();
    this.#setStatus();
    if (wasUp) await settleWithin(this.#leave(), this.#commandTimeoutMs);
    await Promise.all([quitConnection(this.#cmd, this.#commandTimeoutMs), quitConnection(this.#sub, this.#commandTimeoutMs)]);
  }

  /**
   * Last writes of a replica shutting down: operations an operator made just
   * before, and leaving the vote now rather than after livenessMs.
   */
  async #leave(): Promise<void> {
    await this.#loop;
    try {
      await this.#writePending();
      const tx = this.#cmd.multi().zrem(this.#keys.replicas, this.replicaId);
      for (const site of this.#own.keys()) tx.hdel(this.#keys.health, healthField(site, this.replicaId));
      checkExec(await tx.exec(), this.#own.size + 1);
      await this.#cmd.publish(this.#keys.channel, this.replicaId);
    } catch (err) {
      this.#log.warn({ err: errorMessage(err), pendingOps: this.#pending.length },
        'state store: could not write the last changes before closing');
    }
  }
}

function checkExec(results: [Error | null, unknown][] | null, expected: number): ExecResult {
  if (!results) throw new Error('Redis transaction was discarded');
  if (results.length !== expected) throw new Error(`Redis transaction answered ${results.length} replies, expected ${expected}`);
  return results;
}

function checkPositive(name: string, value: number): number {
  if (!Number.isFinite(value) || value <= 0) throw new Error(`state store: ${name} must be a positive number of milliseconds, got ${value}`);
  return value;
}

function checkRedisUrl(url: string): void {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new Error(`state store: not a URL: ${JSON.stringify(url)} (expected redis://host:port/db)`);
  }
  if (parsed.protocol !== 'redis:' && parsed.protocol !== 'rediss:') {
    throw new Error(`state store: ${parsed.protocol} is not a Redis URL (expected redis:// or rediss://)`);
  }
}

function errorMessage(err: unknown): string | undefined {
  if (err === undefined) return undefined;
  return err instanceof Error ? err.message : String(err);
}

/** Waits for `work` (whose errors are ignored) at most timeoutMs; the timer never holds the process. */
async function settleWithin(work: Promise<unknown>, timeoutMs: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<void>((resolve) => {
    timer = setTimeout(resolve, timeoutMs);
    timer.unref();
  });
  try {
    await Promise.race([work.then(() => undefined, () => undefined), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** QUIT politely when connected; disconnect in every case, which also cancels a pending reconnect. */
async function quitConnection(conn: Redis, timeoutMs: number): Promise<void> {
  if (conn.status === 'ready') await settleWithin(conn.quit(), timeoutMs);
  conn.disconnect();
}
