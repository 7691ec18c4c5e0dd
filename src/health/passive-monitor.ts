// Passive detection: what live traffic tells us about a site, between probes.
// A connection failure is reported at once; 5xx answers only after a streak,
// because one 500 is an application error, a run of them is a sick site.
// This only ever reports failures: bringing a site back is the probes' job.
import type { SitePolicy } from '../config/policy.js';

export interface PassiveMonitorDeps {
  onFailure(site: string, detail: string): void;
}

export class PassiveMonitor {
  readonly #deps: PassiveMonitorDeps;
  /** site -> failureThreshold (0 disables the 5xx rule). */
  #thresholds = new Map<string, number>();
  /** site -> consecutive 5xx answers not yet reported. */
  readonly #streaks = new Map<string, { count: number }>();

  constructor(deps: PassiveMonitorDeps) {
    this.#deps = deps;
  }

  update(sites: readonly SitePolicy[]): void {
    this.#thresholds = new Map(sites.map((s) => [s.name, s.passive.failureThreshold]));
    for (const name of this.#streaks.keys()) {
      if (!this.#thresholds.has(name)) this.#streaks.delete(name);
    }
  }

  /** Requests still in flight to a site removed by a reload are ignored. */
  connectionFailed(site: string, detail: string): void {
    if (!this.#thresholds.has(site)) return;
    this.#deps.onFailure(site, detail);
  }

  /**
   * Reports once per `failureThreshold` consecutive 5xx, then counts again from
   * zero: a site that probes bring back but that still fails live traffic must
   * be able to be marked down again (the reducer ignores repeats while down).
   */
  responded(site: string, status: number): void {
    const threshold = this.#thresholds.get(site);
    if (threshold === undefined) return;
    let streak = this.#streaks.get(site);
    if (streak === undefined) {
      streak = { count: 0 };
      this.#streaks.set(site, streak);
    }
    if (status < 500 || status > 599) {
      streak.count = 0;
      return;
    }
    streak.count += 1;
    if (threshold <= 0 || streak.count < threshold) return;
    const count = streak.count;
    streak.count = 0;
    this.#deps.onFailure(site, `${count} consecutive 5xx responses (last ${status})`);
  }
}
