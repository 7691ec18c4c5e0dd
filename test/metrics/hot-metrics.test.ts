// The request-path counter and histogram export exactly what prom-client's
// own Counter and Histogram export for the same observations: dashboards,
// alerts and the worker-process merge (AggregatorRegistry) read them.
import t from 'tap';
import { AggregatorRegistry, Counter, Histogram, Registry } from 'prom-client';
import { HotCounter, HotHistogram } from '../../src/metrics/hot-metrics.js';

const BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
const counterConfig = { name: 'x_requests_total', help: 'Requests.', labelNames: ['route', 'site', 'code'] as const };
const histogramConfig = { name: 'x_duration_seconds', help: 'Duration.', labelNames: ['route', 'site'] as const, buckets: BUCKETS };

function pair() {
  const theirs = new Registry();
  const ours = new Registry();
  return {
    theirs, ours,
    promCounter: new Counter({ ...counterConfig, registers: [theirs] }),
    promHistogram: new Histogram({ ...histogramConfig, registers: [theirs] }),
    hotCounter: new HotCounter({ ...counterConfig, registers: [ours] }),
    hotHistogram: new HotHistogram({ ...histogramConfig, registers: [ours] }),
  };
}

/** Observations on both, the hot side through kept cells as the request path does. */
function feed(p: ReturnType<typeof pair>, seed: number): void {
  let x = seed;
  const random = (): number => {
    x = (x * 1103515245 + 12345) % 2147483648;
    return x / 2147483648;
  };
  const cells = new Map<string, { c: ReturnType<HotCounter<'route' | 'site' | 'code'>['labels']>; h: ReturnType<HotHistogram<'route' | 'site'>['labels']> }>();
  for (let i = 0; i < 500; i++) {
    const route = `r${Math.floor(random() * 3)}`;
    const site = ['a', 'b', 'none'][Math.floor(random() * 3)]!;
    const code = ['200', '503', '404'][Math.floor(random() * 3)]!;
    // Values on bucket bounds too (le is "less than or equal").
    const seconds = random() < 0.2 ? BUCKETS[Math.floor(random() * BUCKETS.length)]! : random() * (random() < 0.1 ? 60 : 1);
    p.promCounter.labels({ route, site, code }).inc();
    p.promHistogram.labels({ route, site }).observe(seconds);
    const key = `${route}/${site}/${code}`;
    let cell = cells.get(key);
    if (!cell) cells.set(key, (cell = { c: p.hotCounter.labels({ route, site, code }), h: p.hotHistogram.labels({ route, site }) }));
    cell.c.inc();
    cell.h.observe(seconds);
  }
}

t.test('the text exposition is the same, line for line', async (t) => {
  const p = pair();
  t.equal(await p.ours.metrics(), await p.theirs.metrics(), 'nothing observed yet');
  feed(p, 7);
  const ours = await p.ours.metrics();
  t.equal(ours, await p.theirs.metrics());
  t.match(ours, /x_duration_seconds_bucket\{le="\+Inf",route="r\d",site="\w+"\} \d+/);
});

t.test('getMetricsAsJSON and the worker merge give the same figures', async (t) => {
  const a = pair();
  const b = pair();
  feed(a, 1);
  feed(b, 2);
  const strip = (json: unknown): unknown => JSON.parse(JSON.stringify(json, (k, v: unknown) => (k === 'exemplar' || k === 'sharedLabels' ? undefined : v)));
  t.same(strip(await a.ours.getMetricsAsJSON()), strip(await a.theirs.getMetricsAsJSON()));
  // What the primary does with each worker's snapshot.
  const mergedOurs = AggregatorRegistry.aggregate([await a.ours.getMetricsAsJSON(), await b.ours.getMetricsAsJSON()]);
  const mergedTheirs = AggregatorRegistry.aggregate([await a.theirs.getMetricsAsJSON(), await b.theirs.getMetricsAsJSON()]);
  t.equal(await mergedOurs.metrics(), await mergedTheirs.metrics());
});

t.test('reset empties every series; kept cells count again from zero', async (t) => {
  const p = pair();
  const cell = p.hotCounter.labels({ route: 'r', site: 'a', code: '200' });
  const duration = p.hotHistogram.labels({ route: 'r', site: 'a' });
  cell.inc();
  duration.observe(0.2);
  p.promCounter.inc({ route: 'r', site: 'a', code: '200' });
  p.promHistogram.observe({ route: 'r', site: 'a' }, 0.2);
  p.ours.resetMetrics();
  p.theirs.resetMetrics();
  t.equal(await p.ours.metrics(), await p.theirs.metrics(), 'nothing exported after a reset');
  cell.inc(0);
  p.promCounter.inc({ route: 'r', site: 'a', code: '200' }, 0);
  duration.observe(3);
  p.promHistogram.observe({ route: 'r', site: 'a' }, 3);
  t.equal(await p.ours.metrics(), await p.theirs.metrics(), 'counted by 0 is exported at 0, as prom-client does');
  p.hotCounter.inc({ route: 'r', site: 'a', code: '200' }, 2);
  t.match(await p.ours.metrics(), /x_requests_total\{route="r",site="a",code="200"\} 2/);
});

t.test('bad input is refused, as prom-client refuses it', async (t) => {
  const p = pair();
  t.throws(() => p.hotCounter.inc({ route: 'r', site: 'a', code: '200' }, -1), /finite amount/);
  t.throws(() => p.hotCounter.inc({ route: 'r', site: 'a', code: '200' }, Number.NaN), /finite amount/);
  t.throws(() => p.hotHistogram.observe({ route: 'r', site: 'a' }, Number.POSITIVE_INFINITY), /not a valid number/);
  t.throws(() => p.hotHistogram.observe({ route: 'r' } as never, 1), /label site is missing/);
  t.throws(() => new HotCounter({ ...counterConfig, registers: [p.ours] }), /already been registered/);
  t.equal(await p.ours.metrics(), await p.theirs.metrics(), 'nothing was recorded');
});
