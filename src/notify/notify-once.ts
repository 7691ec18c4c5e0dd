// Webhooks with replicas: sent by the leader only, once per transition, also
// across a takeover. The leader does not send what it computed; it sends what
// the shared history holds (history-stream.ts), in stream order, so a new
// leader finds what the old one appended but never sent.
//
// Each notification is claimed in Redis before it is sent (notify:<id> =
// claimed:<replica>, with a TTL longer than a whole delivery with its
// retries), and marked delivered after every webhook has answered or given
// up. What that buys, honestly:
//   - two leaders at once (a lease handover) never both send: the claim is
//     atomic, only one wins;
//   - a new leader sends what the old one appended but never claimed (it died
//     between the two), and never resends what was marked delivered;
//   - a leader that dies after the receiver got the notification but before
//     marking it delivered leaves a claim that expires: the next leader sends
//     it again. That one case is at-least-once, on purpose: a page sent twice
//     is better than a failover nobody was paged for. The body is the same
//     and x-detour-event-id names the transition, so a receiver can drop it.
// Only recent events are considered (catchUpMs): a cluster started after a
// long stop does not page for last week's failover.
import type { Logger } from '../logger.js';
import { NOTIFY_EVENTS } from '../model/events.js';
import type { ClaimResult, HistoryRecord } from '../state/history-stream.js';
import type { GatewayEvent } from '../model/events.js';

/** What this needs of the shared history. */
export interface NotificationLedger {
  onRecords(listener: (records: readonly HistoryRecord[]) => void): void;
  claimNotification(id: string, ttlMs: number): Promise<ClaimResult>;
  markNotified(id: string): Promise<void>;
}

export interface NotifyOnceDeps {
  readonly history: NotificationLedger;
  readonly notify: (event: GatewayEvent, opts: { readonly id: string }) => Promise<void>;
  /** The leader hook: only the leader sends. */
  readonly isLeader: () => boolean;
  readonly logger: Logger;
  /** How long a claim holds (a whole delivery with every retry must fit). */
  readonly claimTtlMs: () => number;
  /** Events older than this are never sent by catch-up. Default 5 minutes. */
  readonly catchUpMs?: number;
  readonly now?: () => number;
}

export class NotifyOnce {
  readonly #deps: NotifyOnceDeps;
  readonly #now: () => number;
  readonly #catchUpMs: number;
  /** Ids this replica is done with (delivered, or sent by it); forgotten once out of the recent records. */
  readonly #done = new Set<string>();
  #running: Promise<void> = Promise.resolve();
  #closed = false;

  constructor(deps: NotifyOnceDeps) {
    this.#deps = deps;
    this.#now = deps.now ?? Date.now;
    this.#catchUpMs = deps.catchUpMs ?? 5 * 60_000;
    deps.history.onRecords((records) => {
      // One pass at a time, in stream order.
      this.#running = this.#running.then(() => this.#pass(records));
    });
  }

  /** Resolves when the passes queued so far have finished (tests, shutdown). */
  idle(): Promise<void> {
    return this.#running;
  }

  close(): void {
    this.#closed = true;
  }

  async #pass(records: readonly HistoryRecord[]): Promise<void> {
    const present = new Set(records.map((r) => r.id));
    for (const id of this.#done) if (!present.has(id)) this.#done.delete(id);
    if (this.#closed || !this.#deps.isLeader()) return;
    const oldestMs = this.#now() - this.#catchUpMs;
    for (const r of records) {
      if (r.kind !== 'event' || !NOTIFY_EVENTS.has(r.event.type) || this.#done.has(r.id)) continue;
      if (Date.parse(r.event.time) < oldestMs) continue;
      if (this.#closed || !this.#deps.isLeader()) return;
      let claim: ClaimResult;
      try {
        claim = await this.#deps.history.claimNotification(r.id, this.#deps.claimTtlMs());
      } catch (err) {
        // Redis is gone: the next pass after it returns tries again.
        this.#deps.logger.warn({ err: (err as Error).message, id: r.id }, 'notify: could not claim a notification; trying on the next read');
        return;
      }
      if (claim === 'delivered') this.#done.add(r.id);
      if (claim !== 'won') continue; // 'claimed': another replica sends it; looked at again until delivered or expired
      this.#done.add(r.id);
      const { id } = r;
      void this.#deps.notify(r.event, { id }).then(() => this.#deps.history.markNotified(id)).catch((err: unknown) => {
        // The claim expires and the next leader sends it again (at-least-once, see above).
        this.#deps.logger.warn({ err: (err as Error).message, id }, 'notify: sent, but could not mark it delivered');
      });
    }
  }
}
