// Which table version each worker has in place, and a way to wait until every
// live worker has at least a given one. An admin call that drains a building
// answers 2xx only once this says so: from then on no worker routes by an older
// table, so no new request reaches the building.
//
// A worker that dies stops being waited for (its replacement starts from the
// current table, and answers nothing before it has one). A wait that runs out
// says which workers lag, so the admin call can answer 503 naming them instead
// of hanging or claiming what is not true.
import type { SignalScheduler } from './signal-batch.js';

export type AckResult<W> =
  | { readonly ok: true }
  | { readonly ok: false; readonly lagging: readonly W[] };

interface Waiter<W> {
  readonly version: number;
  readonly resolve: (result: AckResult<W>) => void;
  readonly cancel: () => void;
}

export class VersionAcks<W> {
  /** worker -> highest version it acknowledged (0: none yet). */
  readonly #applied = new Map<W, number>();
  readonly #waiters = new Set<Waiter<W>>();
  readonly #after: SignalScheduler['after'];

  constructor(after: SignalScheduler['after']) {
    this.#after = after;
  }

  /** From now on, waits include this worker. */
  expect(worker: W): void {
    if (!this.#applied.has(worker)) this.#applied.set(worker, 0);
  }

  applied(worker: W, version: number): void {
    const before = this.#applied.get(worker);
    if (before === undefined || version <= before) return;
    this.#applied.set(worker, version);
    this.#settle();
  }

  /** The worker is gone: waits no longer include it. */
  forget(worker: W): void {
    if (this.#applied.delete(worker)) this.#settle();
  }

  versionOf(worker: W): number | undefined {
    return this.#applied.get(worker);
  }

  lagging(version: number): W[] {
    return [...this.#applied].filter(([, v]) => v < version).map(([w]) => w);
  }

  /** Resolves once every expected worker has `version` or a newer one, or after timeoutMs with the ones that lag. */
  waitFor(version: number, timeoutMs: number): Promise<AckResult<W>> {
    if (this.lagging(version).length === 0) return Promise.resolve({ ok: true });
    return new Promise((resolve) => {
      const waiter: Waiter<W> = {
        version,
        resolve,
        cancel: this.#after(timeoutMs, () => {
          this.#waiters.delete(waiter);
          resolve({ ok: false, lagging: this.lagging(version) });
        }),
      };
      this.#waiters.add(waiter);
    });
  }

  /** Give every waiter its answer now (the pool is closing): whoever lags, lags. */
  releaseAll(): void {
    for (const waiter of this.#waiters) {
      waiter.cancel();
      const lagging = this.lagging(waiter.version);
      waiter.resolve(lagging.length === 0 ? { ok: true } : { ok: false, lagging });
    }
    this.#waiters.clear();
  }

  #settle(): void {
    for (const waiter of this.#waiters) {
      if (this.lagging(waiter.version).length > 0) continue;
      this.#waiters.delete(waiter);
      waiter.cancel();
      waiter.resolve({ ok: true });
    }
  }
}
