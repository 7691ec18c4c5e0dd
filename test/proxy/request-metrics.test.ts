import t from 'tap';
import { Registry } from 'prom-client';
import { createMetrics } from '../../src/metrics/metrics.js';
import { RequestMetrics } from '../../src/proxy/request-metrics.js';

async function counts(registry: Registry): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  const requests = await registry.getSingleMetric('detour_requests_total')!.get();
  for (const v of requests.values) out[`${v.labels.route}/${v.labels.site}/${v.labels.code}`] = v.value;
  const duration = await registry.getSingleMetric('detour_request_duration_seconds')!.get();
  for (const v of duration.values) {
    if ((v as { metricName?: string }).metricName === 'detour_request_duration_seconds_count') out[`count ${v.labels.route}/${v.labels.site}`] = v.value;
  }
  return out;
}

t.test('every request is counted once, by route, site and code, through cached children', async (t) => {
  const registry = new Registry();
  const m = new RequestMetrics(createMetrics(registry));
  m.record('api', 'a', 200, 0.01);
  m.record('api', 'a', 200, 0.02);
  m.record('api', 'a', 503, 0.03);
  m.record('api', 'none', 503, 0.001);
  m.record('web', 'b', 200, 0.5);
  t.same(await counts(registry), {
    'api/a/200': 2, 'api/a/503': 1, 'api/none/503': 1, 'web/b/200': 1,
    'count api/a': 3, 'count api/none': 1, 'count web/b': 1,
  });
  t.equal(m.cachedPairs, 3);
});

t.test('a reset registry and a forgotten cache keep counting from there', async (t) => {
  const registry = new Registry();
  const metrics = createMetrics(registry);
  const m = new RequestMetrics(metrics);
  m.record('api', 'a', 200, 0.01);
  metrics.requests.reset();
  m.record('api', 'a', 200, 0.01);
  m.forget();
  t.equal(m.cachedPairs, 0);
  m.record('api', 'a', 200, 0.01);
  t.equal((await counts(registry))['api/a/200'], 2, 'counted after the reset, once per request');
});

t.test('the cache is bounded: past maxPairs it starts afresh, and nothing is lost', async (t) => {
  const registry = new Registry();
  const m = new RequestMetrics(createMetrics(registry), 3);
  for (const route of ['r1', 'r2', 'r3', 'r4', 'r5']) m.record(route, 'a', 200, 0.01);
  t.ok(m.cachedPairs <= 3, `cached ${m.cachedPairs} pairs`);
  m.record('r1', 'a', 200, 0.01);
  const c = await counts(registry);
  t.same([c['r1/a/200'], c['r2/a/200'], c['r5/a/200']], [2, 1, 1]);
});
