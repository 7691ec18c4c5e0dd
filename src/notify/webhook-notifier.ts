// Tells the outside world (chat, paging, ticketing) what the gateway did.
// A notification must never slow or break routing: notify() only queues, each
// webhook has its own bounded queue delivered in order by one pump, and a
// receiver that is down or slow costs memory up to the bound, nothing more.
import type { Logger } from '../logger.js';
import type { Metrics } from '../metrics/metrics.js';
import type { WebhookPolicy } from '../config/policy.js';
import type { GatewayEvent } from '../admin/admin-control.js';
import { describeError } from '../health/http-get.js';

export interface WebhookNotifierDeps {
  readonly logger: Logger;
  readonly metrics: Metrics;
  readonly fetchImpl?: typeof fetch;
  /** Wait before retry number `attempt` (0-based); default 200ms * 2^attempt, capped at 5s. */
  readonly backoffMs?: (attempt: number) => number;
  /** Events kept per webhook while its receiver is slow; the oldest are dropped beyond it (default 1000). */
  readonly maxQueued?: number;
}

/** The JSON body every webhook receives; absent fields are null so receivers see one shape. */
export interface WebhookPayload {
  readonly type: string;
  readonly time: string;
  readonly route: string | null;
  readonly from: string | null;
  readonly to: string | null;
  readonly reason: string | null;
  readonly message: string;
  readonly site: string | null;
}

const DEFAULT_MAX_QUEUED = 1000;

export function defaultBackoffMs(attempt: number): number {
  return Math.min(200 * 2 ** attempt, 5000);
}

export class WebhookNotifier {
  readonly #ctx: QueueContext;
  /** url -> queue; a webhook whose settings change keeps its queue (e.g. a rotated token header). */
  readonly #queues = new Map<string, WebhookQueue>();
  #closed = false;

  constructor(deps: WebhookNotifierDeps) {
    this.#ctx = {
      logger: deps.logger,
      metrics: deps.metrics,
      fetchImpl: deps.fetchImpl ?? fetch,
      backoffMs: deps.backoffMs ?? defaultBackoffMs,
      maxQueued: deps.maxQueued ?? DEFAULT_MAX_QUEUED,
    };
  }

  update(webhooks: readonly WebhookPolicy[]): void {
    if (this.#closed) return;
    const wanted = new Map(webhooks.map((w) => [w.url, w]));
    for (const [url, queue] of this.#queues) {
      if (wanted.has(url)) continue;
      void queue.abort('webhook removed from the policy');
      this.#queues.delete(url);
    }
    for (const [url, policy] of wanted) {
      const queue = this.#queues.get(url);
      if (queue === undefined) this.#queues.set(url, new WebhookQueue(policy, this.#ctx));
      else queue.policy = policy;
    }
  }

  /**
   * Queues the event for every webhook and returns at once. Never throws. The
   * promise (which never rejects) settles once every webhook has delivered it
   * or given up on it; `id` is sent as x-detour-event-id, so a receiver can
   * drop the rare duplicate (see notify-once.ts).
   */
  notify(event: GatewayEvent, opts: { readonly id?: string } = {}): Promise<void> {
    if (this.#closed || this.#queues.size === 0) return Promise.resolve();
    try {
      const item = { body: JSON.stringify(toPayload(event)), ...(opts.id !== undefined ? { id: opts.id } : {}) };
      return Promise.all([...this.#queues.values()].map((queue) => new Promise<void>((done) => queue.push({ ...item, done })))).then(() => undefined);
    } catch (err) {
      this.#ctx.logger.warn({ err, type: event?.type }, 'webhook notification not queued');
      return Promise.resolve();
    }
  }

  /** Resolves when every queue is empty and nothing is in flight. */
  async flushed(): Promise<void> {
    await Promise.all([...this.#queues.values()].map((q) => q.idle()));
  }

  /** Delivers what it can within graceMs, then aborts the rest (counted as failed). */
  async close(graceMs: number): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    let timer: NodeJS.Timeout | undefined;
    const grace = new Promise<void>((resolve) => { timer = setTimeout(resolve, Math.max(0, graceMs)); });
    await Promise.race([this.flushed(), grace]);
    clearTimeout(timer);
    await Promise.all([...this.#queues.values()].map((q) => q.abort('gateway shutting down')));
    this.#queues.clear();
  }
}

function toPayload(event: GatewayEvent): WebhookPayload {
  return {
    type: event.type,
    time: event.time,
    route: event.route ?? null,
    from: event.from ?? null,
    to: event.to ?? null,
    reason: event.reason ?? null,
    message: event.message,
    site: event.site ?? null,
  };
}

interface QueueContext {
  readonly logger: Logger;
  readonly metrics: Metrics;
  readonly fetchImpl: typeof fetch;
  readonly backoffMs: (attempt: number) => number;
  readonly maxQueued: number;
}

interface QueuedNotification {
  readonly body: string;
  readonly id?: string;
  /** Delivered, given up on, dropped or aborted. */
  readonly done: () => void;
}

class WebhookQueue {
  policy: WebhookPolicy;
  readonly #ctx: QueueContext;
  readonly #pending: QueuedNotification[] = [];
  readonly #abort = new AbortController();
  #pumping: Promise<void> | undefined;
  #isPumping = false;

  constructor(policy: WebhookPolicy, ctx: QueueContext) {
    this.policy = policy;
    this.#ctx = ctx;
  }

  push(item: QueuedNotification): void {
    if (this.#abort.signal.aborted) {
      item.done();
      return;
    }
    if (this.#pending.length >= this.#ctx.maxQueued) {
      this.#pending.shift()!.done();
      this.#ctx.metrics.notifications.inc({ result: 'failed' });
      this.#ctx.logger.warn({ webhook: this.#where(), maxQueued: this.#ctx.maxQueued }, 'webhook queue full: dropped the oldest notification');
    }
    this.#pending.push(item);
    if (!this.#isPumping) this.#pumping = this.#pump();
  }

  async idle(): Promise<void> {
    while (this.#isPumping) await this.#pumping;
  }

  /** Stops delivering: the attempt in flight is aborted, what is left is counted as failed. */
  async abort(why: string): Promise<void> {
    this.#abort.abort();
    await this.idle();
    const dropped = this.#pending.splice(0);
    for (const item of dropped) item.done();
    const left = dropped.length;
    if (left > 0) {
      this.#ctx.metrics.notifications.inc({ result: 'failed' }, left);
      this.#ctx.logger.warn({ webhook: this.#where(), left }, `webhook notifications not delivered: ${why}`);
    }
  }

  async #pump(): Promise<void> {
    // Set and cleared with no await in between the last queue check and the
    // flag, so a push() can never land in a queue nobody is pumping.
    this.#isPumping = true;
    try {
      while (this.#pending.length > 0 && !this.#abort.signal.aborted) {
        const item = this.#pending.shift()!;
        const sent = await this.#deliver(item);
        this.#ctx.metrics.notifications.inc({ result: sent ? 'sent' : 'failed' });
        item.done();
      }
    } finally {
      this.#isPumping = false;
    }
  }

  async #deliver({ body, id }: QueuedNotification): Promise<boolean> {
    const signal = this.#abort.signal;
    let lastError = '';
    for (let attempt = 0; ; attempt++) {
      const { url, headers, timeoutMs, retries } = this.policy;
      try {
        const res = await this.#ctx.fetchImpl(url, {
          method: 'POST',
          headers: { ...headers, 'content-type': 'application/json', ...(id !== undefined ? { 'x-detour-event-id': id } : {}) },
          body,
          signal: AbortSignal.any([signal, AbortSignal.timeout(timeoutMs)]),
        });
        // Release the connection; receivers' answers are not read.
        await res.body?.cancel().catch(() => undefined);
        if (res.ok) return true;
        lastError = `status ${res.status}`;
      } catch (err) {
        // fetch wraps socket errors: `fetch failed` with the real one (connect ECONNREFUSED) as cause.
        const e = err as Error | undefined;
        lastError = e?.name === 'TimeoutError' ? `timeout after ${timeoutMs}ms` : describeError(e?.cause ?? err);
      }
      if (signal.aborted) return false;
      if (attempt >= retries) break;
      await sleep(this.#ctx.backoffMs(attempt), signal);
      if (signal.aborted) return false;
    }
    this.#ctx.logger.warn({ webhook: this.#where(), attempts: this.policy.retries + 1, error: lastError }, 'webhook delivery failed');
    return false;
  }

  /** Webhook urls often carry a secret in the path: logs get the origin only. */
  #where(): string {
    try {
      return new URL(this.policy.url).origin;
    } catch {
      return '(bad url)';
    }
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted || ms <= 0) {
      resolve();
      return;
    }
    const done = (): void => {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    };
    // Not unref'd: a backoff is part of a delivery in progress, like its socket;
    // close(graceMs) bounds it.
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
  });
}
