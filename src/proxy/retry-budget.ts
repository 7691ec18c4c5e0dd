// How many re-sends a site's trouble may cause (Envoy's retry budget, by
// request counts instead of concurrency). Without one, a building that answers
// every request with 503 makes detour send each request twice: the healthy
// building takes its own load plus all of the sick one's, just when it can
// least afford it. With one, re-sends of requests that a site received stay
// within a share of what that site received:
//
//   allowed while  retries < max(percent/100 * requests, minPerSecond * windowSeconds)
//
// counted per route and site over a sliding window (10 one-second buckets):
// `requests` are attempts sent to the site, `retries` are re-sends away from
// it. The floor keeps a quiet route able to retry its occasional failure.
// Since every route's re-sends away from a site stay within `percent` of that
// route's requests to it, all re-sends away from the site stay within
// `percent` of its traffic too (plus the floors).
//
// Moves of requests still waiting on a site that was just declared down are
// counted but never refused: the route is moving all its traffic off that site
// anyway, so they add nothing the next site would not get, and refusing them
// would hold clients until their response timeout.
//
// Pure apart from its own counters: time comes in as `nowMs`.
import type { RetryBudgetPolicy } from '../config/policy.js';

export const RETRY_BUDGET_WINDOW_MS = 10_000;
const BUCKET_MS = 1000;
const BUCKETS = RETRY_BUDGET_WINDOW_MS / BUCKET_MS;

export interface BudgetCounts {
  readonly requests: number;
  readonly retries: number;
}

/** One route-and-site's counts in ring buckets; a bucket is reset when its second comes round again. */
class SlidingCounts {
  private readonly seconds = new Array<number>(BUCKETS).fill(-1);
  private readonly requests = new Array<number>(BUCKETS).fill(0);
  private readonly retries = new Array<number>(BUCKETS).fill(0);

  add(kind: 'requests' | 'retries', nowMs: number): void {
    const i = this.bucket(nowMs);
    this[kind][i]! += 1;
  }

  totals(nowMs: number): BudgetCounts {
    const current = Math.floor(nowMs / BUCKET_MS);
    let requests = 0;
    let retries = 0;
    for (let i = 0; i < BUCKETS; i++) {
      const second = this.seconds[i]!;
      if (second > current - BUCKETS && second <= current) {
        requests += this.requests[i]!;
        retries += this.retries[i]!;
      }
    }
    return { requests, retries };
  }

  private bucket(nowMs: number): number {
    const second = Math.floor(nowMs / BUCKET_MS);
    const i = ((second % BUCKETS) + BUCKETS) % BUCKETS;
    if (this.seconds[i] !== second) {
      this.seconds[i] = second;
      this.requests[i] = 0;
      this.retries[i] = 0;
    }
    return i;
  }
}

export class RetryBudget {
  /** route -> site -> counts: nested, so counting a request builds no key string. */
  private readonly windows = new Map<string, Map<string, SlidingCounts>>();

  /** An attempt of `route` was sent to `site`. */
  sent(route: string, site: string, nowMs: number): void {
    this.window(route, site).add('requests', nowMs);
  }

  /** Whether one more request of `route` that `site` received may be re-sent elsewhere. Spends nothing. */
  allows(route: string, site: string, rule: RetryBudgetPolicy, nowMs: number): boolean {
    const { requests, retries } = this.counts(route, site, nowMs);
    const share = (rule.percent / 100) * requests;
    const floor = rule.minPerSecond * (RETRY_BUDGET_WINDOW_MS / 1000);
    return retries < Math.max(share, floor);
  }

  /** A request of `route` that `site` received was re-sent (allowed, or a forced move off a downed site). */
  spend(route: string, site: string, nowMs: number): void {
    this.window(route, site).add('retries', nowMs);
  }

  counts(route: string, site: string, nowMs: number): BudgetCounts {
    return this.windows.get(route)?.get(site)?.totals(nowMs) ?? { requests: 0, retries: 0 };
  }

  /** Forget routes and sites that a reload removed. */
  retain(isKept: (route: string, site: string) => boolean): void {
    for (const [route, sites] of this.windows) {
      for (const site of sites.keys()) if (!isKept(route, site)) sites.delete(site);
      if (sites.size === 0) this.windows.delete(route);
    }
  }

  private window(route: string, site: string): SlidingCounts {
    let sites = this.windows.get(route);
    if (!sites) this.windows.set(route, (sites = new Map()));
    let w = sites.get(site);
    if (!w) sites.set(site, (w = new SlidingCounts()));
    return w;
  }
}
