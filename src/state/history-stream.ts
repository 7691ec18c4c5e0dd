// One history for every replica: events and admin audit entries go to a
// bounded Redis stream (XADD MAXLEN ~ maxLen), and /status on any replica
// shows what the stream holds. Nothing on the request path (or /status) waits
// for Redis: append() queues, a single loop writes and re-reads, and readers
// get the last read plus what this replica has not written yet.
//
// Keys (under the state store's prefix, default "detour:"):
//   history                  STREAM, one field `r` = JSON HistoryRecord
//   history:seen:<id>        STRING, written with the entry (SET NX): the same id is appended once
//   history:changed          pub/sub channel, a hint to re-read (re-read every refreshMs anyway)
//   notify:<id>              STRING: "delivered", or "claimed:<replica>" while a leader sends it
//
// A record's id is deterministic for decisions (history-ids.ts), so the same
// transition computed by several replicas, or re-computed by a new leader, is
// one entry: the append script checks and writes the seen key and the entry
// in one step.
import type { Redis, RedisOptions } from 'ioredis';
import type { Logger } from '../logger.js';
import type { GatewayEvent } from '../model/events.js';
import type { AuditEntry } from '../admin/audit-log.js';
import { RepeatLoop } from '../health/repeat-loop.js';
import { createRedisClient, type RedisTarget } from './redis-connection.js';

export type HistoryRecord =
  | { readonly id: string; readonly replica: string; readonly kind: 'event'; readonly event: GatewayEvent }
  | { readonly id: string; readonly replica: string; readonly kind: 'audit'; readonly audit: AuditEntry };

/** An event as /status shows it from the shared history: which entry, and which replica wrote it. */
export type HistoryEvent = GatewayEvent & { readonly id: string; readonly replica: string };
export type HistoryAudit = AuditEntry & { readonly id: string; readonly replica: string };

export type ClaimResult = 'won' | 'delivered' | 'claimed';

export interface HistoryStreamOptions extends RedisTarget {
  readonly keyPrefix: string;
  readonly replicaId: string;
  readonly logger: Logger;
  /** Entries the stream keeps, approximately (MAXLEN ~). Default 1000. */
  readonly maxLen?: number;
  /** Events (and audit entries) /status shows. Default 100. */
  readonly shown?: number;
  /** Re-read period, besides pub/sub hints. Default 2000. */
  readonly refreshMs?: number;
  /** How long an id stays known after its entry was written. Default 24 h. */
  readonly seenTtlMs?: number;
  /** Records kept while Redis is unreachable; the oldest are dropped beyond. Default 1000. */
  readonly maxPending?: number;
  readonly commandTimeoutMs?: number;
}

const APPEND_SCRIPT = `
if redis.call('SET', KEYS[2], '1', 'NX', 'PX', ARGV[2]) then
  redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', 'r', ARGV[3])
  redis.call('PUBLISH', ARGV[4], '1')
  return 1
end
return 0`;

const CLAIM_SCRIPT = `
local v = redis.call('GET', KEYS[1])
if v == false then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 'won'
end
if v == 'delivered' then return 'delivered' end
return 'claimed'`;

export class HistoryStream {
  readonly #log: Logger;
  readonly #replicaId: string;
  readonly #cmd: Redis;
  readonly #sub: Redis;
  readonly #keys: { stream: string; seen: string; channel: string; notify: string };
  readonly #maxLen: number;
  readonly #shown: number;
  readonly #seenTtlMs: number;
  readonly #maxPending: number;
  readonly #loop: RepeatLoop;
  readonly #listeners = new Set<(records: readonly HistoryRecord[]) => void>();
  #pending: HistoryRecord[] = [];
  #records: readonly HistoryRecord[] = [];
  #up = false;
  #closed = false;
  #warned = false;

  constructor(opts: HistoryStreamOptions) {
    this.#log = opts.logger;
    this.#replicaId = opts.replicaId;
    this.#maxLen = opts.maxLen ?? 1000;
    this.#shown = opts.shown ?? 100;
    this.#seenTtlMs = opts.seenTtlMs ?? 24 * 3600_000;
    this.#maxPending = opts.maxPending ?? 1000;
    const p = opts.keyPrefix;
    this.#keys = { stream: `${p}history`, seen: `${p}history:seen:`, channel: `${p}history:changed`, notify: `${p}notify:` };
    const commandTimeout = opts.commandTimeoutMs ?? 1000;
    const connection = (role: string): RedisOptions => ({
      lazyConnect: true, enableOfflineQueue: false, maxRetriesPerRequest: 1, autoResubscribe: false,
      retryStrategy: (times) => Math.min(2 ** (times - 1) * 100, 2000),
      commandTimeout, connectTimeout: Math.max(commandTimeout, 1000),
      connectionName: `detour:${opts.replicaId.replace(/[^\w.:-]/g, '_')}:${role}`,
    });
    this.#cmd = createRedisClient(opts, connection('history'));
    this.#sub = createRedisClient(opts, connection('history-sub'));
    this.#cmd.on('error', (err: Error) => this.#warnOnce(err));
    this.#sub.on('error', (err: Error) => this.#warnOnce(err));
    this.#cmd.on('ready', () => void this.#loop.runNow());
    this.#sub.on('ready', () => {
      this.#sub.subscribe(this.#keys.channel).then(() => void this.#loop.runNow(), (err: Error) => this.#warnOnce(err));
    });
    this.#sub.on('message', () => void this.#loop.runNow());
    this.#loop = new RepeatLoop(() => this.#sync(), () => opts.refreshMs ?? 2000);
  }

  async start(): Promise<void> {
    await Promise.all([this.#cmd.connect().catch(() => undefined), this.#sub.connect().catch(() => undefined)]);
    this.#loop.start();
    await this.#loop.runNow();
  }

  /** Queued and written by the loop; shown at once (as not yet confirmed). Never throws. */
  append(record: HistoryRecord): void {
    if (this.#closed) return;
    this.#pending.push(record);
    if (this.#pending.length > this.#maxPending) this.#pending.shift();
    void this.#loop.runNow();
  }

  /** The last read succeeded: events() and audit() are the shared history. */
  isUp(): boolean {
    return this.#up;
  }

  /** Recent records, oldest first: the last read plus this replica's records not written yet. */
  records(): readonly HistoryRecord[] {
    if (this.#pending.length === 0) return this.#records;
    const known = new Set(this.#records.map((r) => r.id));
    return [...this.#records, ...this.#pending.filter((r) => !known.has(r.id))];
  }

  events(): readonly HistoryEvent[] {
    const out: HistoryEvent[] = [];
    for (const r of this.records()) if (r.kind === 'event') out.push({ ...r.event, id: r.id, replica: r.replica });
    return out.slice(-this.#shown);
  }

  audit(): readonly HistoryAudit[] {
    const out: HistoryAudit[] = [];
    for (const r of this.records()) if (r.kind === 'audit') out.push({ ...r.audit, id: r.id, replica: r.replica });
    return out.slice(-this.#shown);
  }

  /** Called after every successful read with the recent records (the notifier looks for undelivered ones). */
  onRecords(listener: (records: readonly HistoryRecord[]) => void): void {
    this.#listeners.add(listener);
  }

  /** Take the right to send notification `id` for ttlMs, unless it was delivered or someone else holds it. */
  async claimNotification(id: string, ttlMs: number): Promise<ClaimResult> {
    const result = await this.#cmd.eval(CLAIM_SCRIPT, 1, `${this.#keys.notify}${id}`, `claimed:${this.#replicaId}`, ttlMs);
    return result === 'won' || result === 'delivered' ? result : 'claimed';
  }

  /** Delivered (or given up on after every retry): no leader sends it again. */
  async markNotified(id: string): Promise<void> {
    await this.#cmd.set(`${this.#keys.notify}${id}`, 'delivered', 'PX', this.#seenTtlMs);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    // What is still queued gets one last chance (an operator's last action).
    if (this.#up && this.#pending.length > 0) await this.#writePending().catch(() => undefined);
    await this.#loop.stop();
    this.#listeners.clear();
    for (const conn of [this.#cmd, this.#sub]) {
      if (conn.status === 'ready') await conn.quit().catch(() => undefined);
      conn.disconnect();
    }
  }

  // ---- loop -------------------------------------------------------------------

  async #sync(): Promise<void> {
    if (this.#closed || this.#cmd.status !== 'ready') {
      this.#up = false;
      return;
    }
    try {
      await this.#writePending();
      await this.#read();
      this.#up = true;
      this.#warned = false;
    } catch (err) {
      this.#up = false;
      this.#warnOnce(err);
      return;
    }
    for (const listener of this.#listeners) {
      try {
        listener(this.#records);
      } catch (err) {
        this.#log.error({ err: (err as Error).message }, 'history: records listener threw');
      }
    }
  }

  async #writePending(): Promise<void> {
    while (this.#pending.length > 0) {
      const record = this.#pending[0]!;
      await this.#cmd.eval(APPEND_SCRIPT, 2, this.#keys.stream, `${this.#keys.seen}${record.id}`,
        this.#maxLen, this.#seenTtlMs, JSON.stringify(record), this.#keys.channel);
      // Written (or known already): only now is it off the queue, so an outage loses nothing queued.
      if (this.#pending[0] === record) this.#pending.shift();
    }
  }

  async #read(): Promise<void> {
    // Events and audit entries share the stream: read enough for both lists.
    const entries = await this.#cmd.xrevrange(this.#keys.stream, '+', '-', 'COUNT', this.#shown * 2);
    const records: HistoryRecord[] = [];
    for (const [, fields] of entries.reverse()) {
      const at = fields.indexOf('r');
      const record = at >= 0 && at % 2 === 0 ? parseRecord(fields[at + 1]) : undefined;
      if (record) records.push(record);
    }
    this.#records = records;
  }

  #warnOnce(err: unknown): void {
    if (this.#warned || this.#closed) return;
    this.#warned = true;
    this.#log.warn({ err: err instanceof Error ? err.message : String(err) },
      'history: Redis unreachable; /status shows this replica\'s own events until it is back');
  }
}

/** A stream entry written by any version or by hand: checked, and skipped when it is not a record. */
export function parseRecord(raw: string | undefined): HistoryRecord | undefined {
  if (raw === undefined) return undefined;
  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch {
    return undefined;
  }
  if (typeof value !== 'object' || value === null) return undefined;
  const r = value as Record<string, unknown>;
  if (typeof r.id !== 'string' || typeof r.replica !== 'string') return undefined;
  if (r.kind === 'event' && isObject(r.event) && typeof r.event.type === 'string' && typeof r.event.message === 'string'
    && typeof r.event.time === 'string') return r as unknown as HistoryRecord;
  if (r.kind === 'audit' && isObject(r.audit) && typeof r.audit.action === 'string' && typeof r.audit.time === 'string') {
    return r as unknown as HistoryRecord;
  }
  return undefined;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
