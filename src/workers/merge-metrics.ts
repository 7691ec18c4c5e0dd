// One /metrics exposition over the primary and every worker. The rule:
//  - counters and histograms are summed over all processes (each worker counts
//    the requests it served; the primary counts probes, reloads, webhooks);
//  - gauges come from the primary alone: they describe state (site up, active
//    site, drained, workers), which the primary owns, and a worker's copy is
//    either empty or a stale echo. Summing them would say a site is "up 3".
//
// A worker that dies takes its counts with it; a sum that drops looks like a
// counter reset to Prometheus, and rate() would count the survivors' whole
// totals again. So the last snapshot scraped from a worker is kept when it
// dies ("retired") and stays in the sum: what it served before its last
// scrape is never lost; what it served after that is.
import { AggregatorRegistry } from 'prom-client';
import type { MetricSnapshot } from './protocol.js';

type Metric = MetricSnapshot[number];
type Value = Metric['values'][number] & { readonly metricName?: string };

const SUMMED = new Set(['counter', 'histogram']);

function isSummed(m: Metric): boolean {
  return SUMMED.has(String(m.type));
}

function valueKey(v: Value): string {
  const labels = Object.entries(v.labels).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `${v.metricName ?? ''}|${JSON.stringify(labels)}`;
}

/**
 * Merge the primary's snapshot with the workers' (and retired workers').
 * Metrics keep the primary's order; metrics only workers define follow.
 */
export function mergeSnapshots(primary: MetricSnapshot, workers: readonly MetricSnapshot[]): MetricSnapshot {
  const merged = new Map<string, { metric: Metric; values: Map<string, Value> }>();
  const add = (m: Metric, sum: boolean) => {
    let entry = merged.get(m.name);
    if (!entry) {
      entry = { metric: m, values: new Map() };
      merged.set(m.name, entry);
    }
    for (const v of m.values as Value[]) {
      const key = valueKey(v);
      const before = entry.values.get(key);
      entry.values.set(key, before && sum ? { ...before, value: before.value + v.value } : before ?? { ...v });
    }
  };
  for (const m of primary) add(m, isSummed(m));
  for (const snapshot of workers) {
    for (const m of snapshot) {
      if (!isSummed(m)) continue;
      const known = merged.get(m.name);
      // A metric the primary has as a gauge stays the primary's.
      if (known && !isSummed(known.metric)) continue;
      add(m, true);
    }
  }
  return [...merged.values()].map(({ metric, values }) => ({ ...metric, values: [...values.values()] }));
}

/** Prometheus text of a merged snapshot. */
export async function renderSnapshot(snapshot: MetricSnapshot): Promise<{ readonly contentType: string; readonly body: string }> {
  // aggregate() sums each metric over the list it is given; with one element, it just renders.
  const registry = AggregatorRegistry.aggregate([snapshot]);
  return { contentType: registry.contentType, body: await registry.metrics() };
}

/** The last snapshot of every worker, and the sum of those that died. */
export class MetricsLedger<W> {
  readonly #last = new Map<W, MetricSnapshot>();
  #retired: MetricSnapshot = [];

  record(worker: W, snapshot: MetricSnapshot): void {
    this.#last.set(worker, snapshot);
  }

  /** The worker died: its last counts stay in every later sum. */
  retire(worker: W): void {
    const last = this.#last.get(worker);
    this.#last.delete(worker);
    if (last) this.#retired = mergeSnapshots([], [this.#retired, last]);
  }

  /** The counts retired workers left behind (merge it with the live ones). */
  get retired(): MetricSnapshot {
    return this.#retired;
  }
}
