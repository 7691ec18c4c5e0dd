// Passive detection: what live traffic tells us about a site, between probes.
// Two kinds of evidence, told apart by when the failure happened:
//  - site evidence: the request never reached the site (refused, connect
//    timeout, TLS handshake). Reported at once: the site is down for everyone.
//  - request evidence: the request was sent, then the connection broke, the
//    answer timed out, or the site answered with a status in `passive.statuses`.
//    That may be the request's own fault (a crashing handler, a WAF reset), so
//    it only counts toward a failure ratio (passive-window.ts); crossing it makes
//    the site suspect, and a probe decides. At most one suspicion per site per
//    probe interval, so a client hammering a broken URL costs probes, not sites.
// This only ever reports failures: bringing a site back is the probes' job.
import { samePart, type SitePolicy } from '../config/policy.js';
import type { Metrics } from '../metrics/metrics.js';
import { FailureWindow, judgeWindow } from './passive-window.js';

export interface PassiveMonitorDeps {
  /** The site failed before any request reached it: down at once. */
  siteFailed(site: string, detail: string): void;
  /** Requests to the site fail above the ratio: probe it now; it goes down only if the probe fails too. */
  siteSuspected(site: string, detail: string): void;
  readonly metrics?: Pick<Metrics, 'passiveFailures'>;
  readonly now?: () => number;
}

interface SiteWatch {
  readonly site: SitePolicy;
  readonly window: FailureWindow;
  readonly windowWords: string;
  readonly statuses: ReadonlySet<number>;
  /** No new suspicion before this time (one probe per interval is enough). */
  quietUntilMs: number;
  lastFailure: string;
}

export class PassiveMonitor {
  readonly #deps: PassiveMonitorDeps;
  readonly #now: () => number;
  #watches = new Map<string, SiteWatch>();

  constructor(deps: PassiveMonitorDeps) {
    this.#deps = deps;
    this.#now = deps.now ?? Date.now;
  }

  /** Sites whose passive settings did not change keep their window. */
  update(sites: readonly SitePolicy[]): void {
    const next = new Map<string, SiteWatch>();
    for (const site of sites) {
      const before = this.#watches.get(site.name);
      if (before && sameSettings(before.site, site)) {
        next.set(site.name, { ...before, site });
        continue;
      }
      next.set(site.name, {
        site,
        window: new FailureWindow(site.passive.windowMs, site.passive.minClients),
        windowWords: words(site.passive.windowMs),
        statuses: new Set(site.passive.statuses),
        quietUntilMs: 0,
        lastFailure: '',
      });
    }
    this.#watches = next;
  }

  /** Site evidence. Requests still in flight to a site removed by a reload are ignored. */
  connectionFailed(site: string, detail: string): void {
    if (!this.#watches.has(site)) return;
    this.#deps.metrics?.passiveFailures.inc({ site, kind: 'site' });
    this.#deps.siteFailed(site, detail);
  }

  /** Request evidence: the request was sent, then failed (reset, hang-up, timeout, unparseable answer). */
  requestFailed(site: string, detail: string, client: string): void {
    const watch = this.#watches.get(site);
    if (watch) this.#record(watch, true, detail, client);
  }

  /** The site answered: a failure if the status is one of `passive.statuses`, else a success. */
  responded(site: string, status: number, client: string): void {
    const watch = this.#watches.get(site);
    if (!watch) return;
    // The detail is only kept for failures: no string per successful response.
    const failed = watch.statuses.has(status);
    this.#record(watch, failed, failed ? `status ${status}` : '', client);
  }

  /**
   * Re-sends off `site` ran out of budget: ask a probe now, whatever the ratio
   * says (a site failing every request crosses its budget before its ratio when
   * it had much traffic just before). Same one-per-interval limit.
   */
  retryBudgetSpent(site: string): void {
    const watch = this.#watches.get(site);
    if (!watch || watch.site.passive.failureThreshold <= 0) return;
    const now = this.#now();
    if (now < watch.quietUntilMs) return;
    watch.quietUntilMs = now + watch.site.health.intervalMs;
    this.#deps.siteSuspected(site, `its retry budget is spent (last: ${watch.lastFailure || 'failed requests'})`);
  }

  #record(watch: SiteWatch, failed: boolean, detail: string, client: string): void {
    const now = this.#now();
    watch.window.record(now, failed, client);
    if (!failed) return;
    this.#deps.metrics?.passiveFailures.inc({ site: watch.site.name, kind: 'request' });
    watch.lastFailure = detail;
    if (now < watch.quietUntilMs) return;
    const judgement = judgeWindow(watch.window.counts(now), watch.site.passive, watch.windowWords);
    if (!judgement.suspect) return;
    watch.quietUntilMs = now + watch.site.health.intervalMs;
    this.#deps.siteSuspected(watch.site.name, `${judgement.detail} (last: ${watch.lastFailure})`);
  }
}

function sameSettings(a: SitePolicy, b: SitePolicy): boolean {
  // Field by field: two JSON.stringify texts per site were ~10 ms of a 1,000-site reload's turn.
  return a.url === b.url && samePart(a.passive, b.passive);
}

function words(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000}s` : `${ms}ms`;
}
