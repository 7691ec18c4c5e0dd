// Passive signals from a worker's live traffic, on their way to the primary's
// passive monitor, which alone judges sites. One IPC message per response
// would cost the data plane a serialization and a system call per request, so
// signals are counted, not listed: "site cyber1 answered 200 to client X, 340
// times" is one entry. A batch leaves every `intervalMs`, or sooner when it
// holds `maxEntries` distinct entries.
//
// Site evidence (the connection failed before the request was sent) and a
// spent retry budget do not wait for the interval: they can take a site down
// or ask for a probe, and every millisecond they wait is a millisecond clients
// keep being sent to a dead building. They leave at the end of the current
// turn of the event loop, so a burst of refused connections is still one
// message.
import type { PassiveHealth } from '../proxy/exchange.js';

export interface SignalBatch {
  /** [site, detail]: nothing reached the site. */
  readonly connectionFailed: ReadonlyArray<readonly [string, string]>;
  /** [site, detail, client, times]: sent, then failed. */
  readonly requestFailed: ReadonlyArray<readonly [string, string, string, number]>;
  /** [site, status, client, times]: the site answered. */
  readonly responded: ReadonlyArray<readonly [string, number, string, number]>;
  /** Sites whose re-sends ran out of budget. */
  readonly retryBudgetSpent: readonly string[];
}

export interface SignalScheduler {
  /** Run once after ms (the batch interval); returns a cancel function. */
  after(ms: number, run: () => void): () => void;
  /** Run at the end of this turn of the event loop. */
  soon(run: () => void): void;
}

export const realScheduler: SignalScheduler = {
  after(ms, run) {
    const timer = setTimeout(run, ms);
    timer.unref();
    return () => clearTimeout(timer);
  },
  soon(run) {
    setImmediate(run);
  },
};

export interface SignalBatcherOptions {
  readonly send: (batch: SignalBatch) => void;
  /** Default 50 ms. */
  readonly intervalMs?: number;
  /** Distinct entries that make a batch leave before its interval (default 1000). */
  readonly maxEntries?: number;
  readonly scheduler?: SignalScheduler;
}

// Keys join fields with a character no site name, status or client address holds.
const SEP = '\u0000';

export class SignalBatcher implements PassiveHealth {
  readonly #send: (batch: SignalBatch) => void;
  readonly #intervalMs: number;
  readonly #maxEntries: number;
  readonly #scheduler: SignalScheduler;
  #connectionFailed: Array<[string, string]> = [];
  #requestFailed = new Map<string, [string, string, string, number]>();
  #responded = new Map<string, [string, number, string, number]>();
  #budgetSpent = new Set<string>();
  #cancelTimer: (() => void) | undefined;
  #soon = false;
  #closed = false;

  constructor(opts: SignalBatcherOptions) {
    this.#send = opts.send;
    this.#intervalMs = opts.intervalMs ?? 50;
    this.#maxEntries = opts.maxEntries ?? 1000;
    this.#scheduler = opts.scheduler ?? realScheduler;
  }

  connectionFailed(site: string, detail: string): void {
    this.#connectionFailed.push([site, detail]);
    this.#flushSoon();
  }

  requestFailed(site: string, detail: string, client: string): void {
    const key = site + SEP + detail + SEP + client;
    const entry = this.#requestFailed.get(key);
    if (entry) entry[3]++;
    else this.#requestFailed.set(key, [site, detail, client, 1]);
    this.#added();
  }

  responded(site: string, status: number, client: string): void {
    const key = site + SEP + status + SEP + client;
    const entry = this.#responded.get(key);
    if (entry) entry[3]++;
    else this.#responded.set(key, [site, status, client, 1]);
    this.#added();
  }

  retryBudgetSpent(site: string): void {
    this.#budgetSpent.add(site);
    this.#flushSoon();
  }

  /** Entries waiting to leave. */
  get pending(): number {
    return this.#connectionFailed.length + this.#requestFailed.size + this.#responded.size + this.#budgetSpent.size;
  }

  /** Send what is waiting now (the worker does before it exits). */
  flush(): void {
    this.#cancelTimer?.();
    this.#cancelTimer = undefined;
    if (this.pending === 0) return;
    const batch: SignalBatch = {
      connectionFailed: this.#connectionFailed,
      requestFailed: [...this.#requestFailed.values()],
      responded: [...this.#responded.values()],
      retryBudgetSpent: [...this.#budgetSpent],
    };
    this.#connectionFailed = [];
    this.#requestFailed = new Map();
    this.#responded = new Map();
    this.#budgetSpent = new Set();
    this.#send(batch);
  }

  /** Flush and stop: later signals are sent at once, one batch each (a closing worker has few). */
  close(): void {
    this.flush();
    this.#closed = true;
  }

  #added(): void {
    if (this.#closed) { this.flush(); return; }
    if (this.#requestFailed.size + this.#responded.size >= this.#maxEntries) { this.flush(); return; }
    this.#cancelTimer ??= this.#scheduler.after(this.#intervalMs, () => {
      this.#cancelTimer = undefined;
      this.flush();
    });
  }

  #flushSoon(): void {
    if (this.#closed) { this.flush(); return; }
    if (this.#soon) return;
    this.#soon = true;
    this.#scheduler.soon(() => {
      this.#soon = false;
      this.flush();
    });
  }
}

/** Feed a worker's batch to the primary's passive monitor, as if the requests had been its own. */
export function replaySignals(batch: SignalBatch, passive: PassiveHealth): void {
  for (const [site, status, client, times] of batch.responded) {
    for (let i = 0; i < times; i++) passive.responded(site, status, client);
  }
  for (const [site, detail, client, times] of batch.requestFailed) {
    for (let i = 0; i < times; i++) passive.requestFailed(site, detail, client);
  }
  for (const [site, detail] of batch.connectionFailed) passive.connectionFailed(site, detail);
  for (const site of batch.retryBudgetSpent) passive.retryBudgetSpent?.(site);
}
