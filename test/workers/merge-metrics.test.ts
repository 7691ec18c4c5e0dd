// One exposition over every process: counters and histograms summed, gauges
// from the primary alone, and a dead worker's last counts kept.
import t from 'tap';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { MetricsLedger, mergeSnapshots, renderSnapshot } from '../../src/workers/merge-metrics.js';
import { createMetrics } from '../../src/metrics/metrics.js';
import type { MetricSnapshot } from '../../src/workers/protocol.js';

/** A registry shaped like detour's: a request counter, a duration histogram, a state gauge. */
function processRegistry(requests: Array<[string, number]>, up: number | undefined) {
  const registry = new Registry();
  const counter = new Counter({ name: 'x_requests_total', help: 'h', labelNames: ['code'], registers: [registry] });
  const histogram = new Histogram({ name: 'x_duration_seconds', help: 'h', buckets: [0.1, 1], registers: [registry] });
  const gauge = new Gauge({ name: 'x_site_up', help: 'h', registers: [registry] });
  for (const [code, n] of requests) {
    counter.inc({ code }, n);
    for (let i = 0; i < n; i++) histogram.observe(0.05);
  }
  if (up !== undefined) gauge.set(up);
  return registry.getMetricsAsJSON();
}

function valueOf(snapshot: MetricSnapshot, name: string, labels: Record<string, string> = {}, metricName?: string): number | undefined {
  const metric = snapshot.find((m) => m.name === name);
  const v = metric?.values.find((x) => (metricName === undefined || (x as { metricName?: string }).metricName === metricName)
    && Object.entries(labels).every(([k, val]) => String(x.labels[k]) === val) && Object.keys(x.labels).length === Object.keys(labels).length);
  return v?.value;
}

t.test('counters and histograms are summed; gauges are the primary\'s', async (t) => {
  const primary = await processRegistry([], 1);
  const w1 = await processRegistry([['200', 3], ['503', 1]], 0);
  const w2 = await processRegistry([['200', 4]], 7);
  const merged = mergeSnapshots(primary, [w1, w2]);
  const scenarios: Array<[string, Record<string, string>, string | undefined, number | undefined]> = [
    ['x_requests_total', { code: '200' }, undefined, 7],
    ['x_requests_total', { code: '503' }, undefined, 1],
    ['x_duration_seconds', {}, 'x_duration_seconds_count', 8],
    ['x_duration_seconds', { le: '0.1' }, 'x_duration_seconds_bucket', 8],
    ['x_site_up', {}, undefined, 1],
  ];
  for (const [name, labels, metricName, expected] of scenarios) {
    t.equal(valueOf(merged, name, labels, metricName), expected, `${metricName ?? name} ${JSON.stringify(labels)}`);
  }
  const { body } = await renderSnapshot(merged);
  t.match(body, /^x_requests_total\{code="200"\} 7$/m);
  t.match(body, /^x_site_up 1$/m, 'rendered once, not summed');
});

t.test('a metric only workers have is summed; a worker gauge the primary lacks is dropped', async (t) => {
  const workerOnly = (n: number) => {
    const registry = new Registry();
    new Counter({ name: 'y_total', help: 'h', registers: [registry] }).inc(n);
    new Gauge({ name: 'y_gauge', help: 'h', registers: [registry] }).set(n);
    return registry.getMetricsAsJSON();
  };
  const merged = mergeSnapshots([], [await workerOnly(2), await workerOnly(5)]);
  t.equal(valueOf(merged, 'y_total'), 7);
  t.notOk(merged.find((m) => m.name === 'y_gauge'), 'state gauges never come from workers');
});

t.test('the ledger keeps a dead worker\'s last counts in every later sum', async (t) => {
  const ledger = new MetricsLedger<number>();
  const primary = await processRegistry([], 1);
  ledger.record(1, await processRegistry([['200', 5]], undefined));
  ledger.record(2, await processRegistry([['200', 2]], undefined));
  ledger.record(2, await processRegistry([['200', 3]], undefined));
  ledger.retire(2);
  ledger.retire(3); // never scraped: nothing to keep
  const live = await processRegistry([['200', 6]], undefined);
  t.equal(valueOf(mergeSnapshots(primary, [live, ledger.retired]), 'x_requests_total', { code: '200' }), 9, 'live 6 + retired 3');
  ledger.record(4, await processRegistry([['200', 1]], undefined));
  ledger.retire(4);
  t.equal(valueOf(mergeSnapshots(primary, [ledger.retired]), 'x_requests_total', { code: '200' }), 4, 'retired workers add up');
});

t.test('detour\'s own registry: state gauges of a worker (never bound) are not summed into the primary\'s', async (t) => {
  const primaryRegistry = new Registry();
  const primaryMetrics = createMetrics(primaryRegistry);
  primaryMetrics.bindState(() => ({ table: undefined, sites: [], drainedSites: new Set(), drainedBuildings: new Set(), stateStoreUp: undefined }));
  const workerRegistry = new Registry();
  const workerMetrics = createMetrics(workerRegistry);
  workerMetrics.requests.inc({ route: 'r', site: 'a', code: '200' }, 4);
  const merged = mergeSnapshots(await primaryRegistry.getMetricsAsJSON(), [await workerRegistry.getMetricsAsJSON(), await workerRegistry.getMetricsAsJSON()]);
  t.equal(valueOf(merged, 'detour_requests_total', { route: 'r', site: 'a', code: '200' }), 8);
  t.equal(valueOf(merged, 'detour_state_store_up'), 1, 'not 3');
  t.equal(valueOf(merged, 'detour_config_reloads_total', { result: 'success' }), 0);
});
