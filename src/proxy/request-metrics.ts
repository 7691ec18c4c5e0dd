// The two metrics every request updates (detour_requests_total and
// detour_request_duration_seconds), through their cells kept per (route,
// site, code), so a request does one map lookup and plain arithmetic
// (src/metrics/hot-metrics.ts). Cells stay valid across a registry reset
// (they are emptied in place); the cache is dropped when a reload changes
// the sites (forget()) and is bounded, so routes removed by reloads do not pile up.
import type { CounterCell, HistogramCell } from '../metrics/hot-metrics.js';
import type { Metrics } from '../metrics/metrics.js';

interface Children {
  readonly duration: HistogramCell;
  readonly byCode: Map<number, CounterCell>;
}

/** Routes x sites cached before the cache is started afresh (codes per pair are few). */
const DEFAULT_MAX_PAIRS = 10_000;

export class RequestMetrics {
  private readonly byRoute = new Map<string, Map<string, Children>>();
  private pairs = 0;

  constructor(private readonly metrics: Metrics, private readonly maxPairs = DEFAULT_MAX_PAIRS) {}

  /** (route, site) pairs whose children are cached. */
  get cachedPairs(): number {
    return this.pairs;
  }

  /** One finished request of `route`, served by `site` (or 'none') with `code`, `seconds` after it arrived. */
  record(route: string, site: string, code: number, seconds: number): void {
    const children = this.children(route, site);
    let counter = children.byCode.get(code);
    if (!counter) {
      counter = this.metrics.requests.labels({ route, site, code: String(code) });
      children.byCode.set(code, counter);
    }
    counter.inc();
    children.duration.observe(seconds);
  }

  /** Drop the cached children (after a reload changed routes or sites). */
  forget(): void {
    this.byRoute.clear();
    this.pairs = 0;
  }

  private children(route: string, site: string): Children {
    let sites = this.byRoute.get(route);
    const cached = sites?.get(site);
    if (cached) return cached;
    if (this.pairs >= this.maxPairs) {
      this.forget();
      sites = undefined;
    }
    if (!sites) this.byRoute.set(route, (sites = new Map()));
    const children: Children = { duration: this.metrics.requestDuration.labels({ route, site }), byCode: new Map() };
    sites.set(site, children);
    this.pairs++;
    return children;
  }
}
