// Where events and audit entries go, and where /status and webhooks take them
// from. Without state.redis: exactly as before (the control plane's local ring,
// the admin server's audit log, a webhook per notable event). With it: one
// shared, bounded history in Redis (history-stream.ts) that every replica
// shows, decision events appended by the leader only, webhooks sent by the
// leader once per transition (notify-once.ts). While Redis is unreachable a
// replica shows its own ring and audit log again (and queues its own records
// for when Redis returns).
import type { Logger } from '../logger.js';
import type { RedisPolicy } from '../config/policy.js';
import type { GatewayEvent } from '../model/events.js';
import { NOTIFY_EVENTS } from '../model/events.js';
import type { AuditEntry } from '../admin/audit-log.js';
import { NotifyOnce } from '../notify/notify-once.js';
import { HistoryStream } from './history-stream.js';
import { decisionEventId, decisionSubject, ownEventId } from './history-ids.js';
import { redisTarget } from './create-store.js';

/** What the history reads of the control plane to name a decision (when its state began). */
export interface DecisionClock {
  routeSinceMs(route: string): number | undefined;
  siteSinceMs(site: string): number | undefined;
  integritySinceMs(route: string): number | undefined;
}

export interface SharedHistoryDeps {
  /** state.redis; undefined: one replica, local history. */
  readonly redis: RedisPolicy | undefined;
  readonly replicaId: string;
  readonly logger: Logger;
  readonly isLeader: () => boolean;
  readonly clock: DecisionClock;
  readonly notify: (event: GatewayEvent, opts?: { readonly id?: string }) => Promise<void>;
  /** How long a notification claim holds: a whole delivery with its retries. */
  readonly claimTtlMs: () => number;
  readonly local: { events(): readonly GatewayEvent[]; audit(): readonly AuditEntry[] };
  readonly now?: () => number;
  /** Test knobs. */
  readonly refreshMs?: number;
  readonly maxLen?: number;
}

export interface SharedHistory {
  /** A control-plane event happened (on this replica). */
  event(event: GatewayEvent): void;
  /** The admin server recorded an audit entry (this replica took the call). */
  audit(entry: AuditEntry): void;
  recentEvents(): readonly GatewayEvent[];
  recentAudit(): readonly AuditEntry[];
  start(): Promise<void>;
  close(): Promise<void>;
}

export function createSharedHistory(deps: SharedHistoryDeps): SharedHistory {
  if (deps.redis === undefined) {
    return {
      event: (event) => { if (NOTIFY_EVENTS.has(event.type)) void deps.notify(event); },
      audit: () => undefined,
      recentEvents: () => deps.local.events(),
      recentAudit: () => deps.local.audit(),
      start: async () => undefined,
      close: async () => undefined,
    };
  }
  const now = deps.now ?? Date.now;
  const stream = new HistoryStream({
    ...redisTarget(deps.redis), keyPrefix: deps.redis.keyPrefix, replicaId: deps.replicaId,
    logger: deps.logger.child({ component: 'history' }),
    ...(deps.refreshMs !== undefined ? { refreshMs: deps.refreshMs } : {}),
    ...(deps.maxLen !== undefined ? { maxLen: deps.maxLen } : {}),
  });
  const once = new NotifyOnce({
    history: stream, notify: (event, opts) => deps.notify(event, opts), isLeader: deps.isLeader,
    logger: deps.logger.child({ component: 'notify' }), claimTtlMs: deps.claimTtlMs, now,
  });
  let seq = 0;
  const ownId = () => ownEventId(deps.replicaId, now(), seq++);
  return {
    event(event) {
      const subject = decisionSubject(event);
      if (subject === null) {
        stream.append({ id: ownId(), replica: deps.replicaId, kind: 'event', event });
        return;
      }
      // Decisions: the leader's to tell (every replica computes them).
      if (!deps.isLeader()) return;
      const sinceMs = subject === 'route' ? deps.clock.routeSinceMs(event.route!)
        : subject === 'site' ? deps.clock.siteSinceMs(event.site!) : deps.clock.integritySinceMs(event.route!);
      const id = sinceMs === undefined ? ownId() : decisionEventId(event, sinceMs);
      stream.append({ id, replica: deps.replicaId, kind: 'event', event });
    },
    audit(entry) {
      stream.append({ id: ownId(), replica: deps.replicaId, kind: 'audit', audit: entry });
    },
    recentEvents: () => (stream.isUp() ? stream.events() : deps.local.events()),
    recentAudit: () => (stream.isUp() ? stream.audit() : deps.local.audit()),
    start: () => stream.start(),
    async close() {
      once.close();
      await stream.close();
    },
  };
}
