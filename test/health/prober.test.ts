import t from 'tap';
import { Registry } from 'prom-client';
import { createMetrics, type Metrics } from '../../src/metrics/metrics.js';
import { silentLogger } from '../../src/logger.js';
import { Prober, jitteredDelayMs, type ProbeResult } from '../../src/health/prober.js';
import type { HealthPolicy } from '../../src/config/policy.js';
import { refusedUrl, startProbeSite, waitFor, type ProbeSite, type SiteBehaviour } from '../helpers/probe-site.js';
import { makeSite } from './site-fixture.js';

/** The part of a tap test these helpers need. */
type Cleanup = { teardown(fn: () => unknown): void };

interface Harness {
  readonly prober: Prober;
  readonly metrics: Metrics;
  readonly results: Array<{ site: string; result: ProbeResult; atMs: number }>;
  resultsOf(site: string): ProbeResult[];
}

function startProber(t: Cleanup, random?: () => number): Harness {
  const metrics = createMetrics(new Registry());
  const results: Harness['results'] = [];
  const prober = new Prober({
    onResult: (site, result) => results.push({ site, result, atMs: performance.now() }),
    metrics,
    logger: silentLogger(),
    random,
  });
  t.teardown(() => prober.close());
  return { prober, metrics, results, resultsOf: (site) => results.filter((r) => r.site === site).map((r) => r.result) };
}

async function startSite(t: Cleanup, behaviour: SiteBehaviour): Promise<ProbeSite> {
  const site = await startProbeSite(behaviour);
  t.teardown(() => site.close());
  return site;
}

async function counterValue(metrics: Metrics, labels: Record<string, string>): Promise<number> {
  const { values } = await metrics.healthChecks.get();
  return values.find((v) => Object.entries(labels).every(([k, want]) => (v.labels as Record<string, unknown>)[k] === want))?.value ?? 0;
}

// Each case: what the site does, the health settings, and the probe's verdict.
const verdicts: Array<{ name: string; behaviour: SiteBehaviour | 'refused'; health?: Partial<HealthPolicy>; passed: boolean; detail: string; status?: number }> = [
  { name: 'expected status passes', behaviour: { status: 200, body: 'ok' }, passed: true, detail: 'status 200', status: 200 },
  { name: 'any listed status passes', behaviour: { status: 204 }, health: { expectStatus: [200, 204] }, passed: true, detail: 'status 204', status: 204 },
  { name: 'other status fails', behaviour: { status: 503, body: 'down' }, passed: false, detail: 'status 503', status: 503 },
  { name: 'a redirect is not a pass', behaviour: { status: 302 }, passed: false, detail: 'status 302', status: 302 },
  { name: 'expectBody found', behaviour: { status: 200, body: '{"db":"ok"}' }, health: { expectBody: 'ok' }, passed: true, detail: 'status 200', status: 200 },
  { name: 'expectBody missing', behaviour: { status: 200, body: 'degraded' }, health: { expectBody: 'ok' }, passed: false, detail: 'body lacks "ok"', status: 200 },
  { name: 'status checked before body', behaviour: { status: 500, body: 'ok' }, health: { expectBody: 'ok' }, passed: false, detail: 'status 500', status: 500 },
  { name: 'nothing listening', behaviour: 'refused', passed: false, detail: 'connect ECONNREFUSED' },
  { name: 'accepts and never answers', behaviour: 'hang', health: { timeoutMs: 150 }, passed: false, detail: 'timeout after 150ms' },
  { name: 'headers in time, body too slow', behaviour: { status: 200, body: 'ok', delayMs: 400 }, health: { timeoutMs: 150 }, passed: false, detail: 'timeout after 150ms' },
];

for (const c of verdicts) {
  t.test(`probe verdict: ${c.name}`, async (t) => {
    const url = c.behaviour === 'refused' ? await refusedUrl() : (await startSite(t, c.behaviour)).url;
    const h = startProber(t);
    h.prober.update([makeSite('cyber1', url, c.health)]);
    await h.prober.firstRound();
    const [result] = h.resultsOf('cyber1');
    t.equal(result?.passed, c.passed, 'passed');
    t.equal(result?.detail, c.detail, 'detail');
    t.equal(result?.status, c.status, 'status');
    t.ok((result?.durationMs ?? -1) >= 0, 'duration measured');
    t.equal(await counterValue(h.metrics, { site: 'cyber1', result: c.passed ? 'pass' : 'fail' }), 1, 'counted');
  });
}

t.test('a hung site costs no more than the timeout and its connection is closed', async (t) => {
  const site = await startSite(t, 'hang');
  const h = startProber(t);
  h.prober.update([makeSite('cyber1', site.url, { timeoutMs: 200 })]);
  await h.prober.firstRound();
  const [result] = h.resultsOf('cyber1');
  t.ok(result!.durationMs >= 190, `took at least the timeout (${result!.durationMs.toFixed(0)}ms)`);
  t.ok(result!.durationMs < 2000, 'and not much more');
  await waitFor(() => site.openSockets === 0, 'the probe connection to close');
});

t.test('the site path is appended to the url, with or without a trailing slash', async (t) => {
  const site = await startSite(t, { status: 200 });
  const h = startProber(t);
  h.prober.update([makeSite('a', `${site.url}/`, { path: '/healthz' }), makeSite('b', `${site.url}/base`, { path: 'ready' })]);
  await h.prober.firstRound();
  t.same([...site.paths].sort(), ['/base/ready', '/healthz']);
});

t.test('behaviour switched at runtime shows in the next round', async (t) => {
  const site = await startSite(t, { status: 200, body: 'ok' });
  const h = startProber(t);
  h.prober.update([makeSite('cyber1', site.url)]);
  await h.prober.firstRound();
  site.set({ status: 503 });
  await h.prober.probeNow('cyber1');
  site.set({ status: 200 });
  await h.prober.probeNow();
  t.same(h.resultsOf('cyber1').map((r) => r.detail), ['status 200', 'status 503', 'status 200']);
  t.equal(await counterValue(h.metrics, { site: 'cyber1', result: 'pass' }), 2);
  t.equal(await counterValue(h.metrics, { site: 'cyber1', result: 'fail' }), 1);
  const { values } = await h.metrics.healthCheckDuration.get();
  t.equal(values.find((v) => v.metricName?.endsWith('_count') && v.labels.site === 'cyber1')?.value, 3, 'durations observed');
});

t.test('jitter delay stays within intervalMs ± jitter', async (t) => {
  const table: Array<[interval: number, jitter: number, random: number, expected: number]> = [
    [1000, 0, 0, 1000],
    [1000, 0, 0.99, 1000],
    [1000, 0.1, 0, 900],
    [1000, 0.1, 0.5, 1000],
    [1000, 0.1, 0.999999, 1100],
    [1000, 1, 0, 0],
    [1000, 2, 0, 0], // jitter is capped at 1: a delay is never negative
    [500, 0.5, 0.75, 625],
  ];
  for (const [interval, jitter, random, expected] of table) {
    t.equal(jitteredDelayMs(interval, jitter, () => random), expected, `${interval}ms ±${jitter} at random ${random}`);
  }
  for (let i = 0; i < 200; i++) {
    const d = jitteredDelayMs(1000, 0.2, Math.random);
    if (d < 800 || d > 1200) t.fail(`delay ${d} out of bounds`);
  }
});

t.test('probes re-arm after finishing, using the injected random for jitter', async (t) => {
  const site = await startSite(t, { status: 200 });
  let draws = 0;
  // random ~1 means the longest delay: intervalMs * (1 + jitter) = 90ms.
  const h = startProber(t, () => { draws += 1; return 0.9999; });
  h.prober.update([makeSite('cyber1', site.url, { intervalMs: 60, jitter: 0.5 })]);
  await waitFor(() => h.results.length >= 4, 'four probes');
  await h.prober.close();
  const times = h.results.map((r) => r.atMs);
  for (let i = 1; i < times.length; i++) {
    // Timers may fire a millisecond early; the shortest possible gap without jitter would be 60ms.
    t.ok(times[i]! - times[i - 1]! >= 85, `gap ${i} is ${(times[i]! - times[i - 1]!).toFixed(1)}ms`);
  }
  t.ok(draws >= 3, 'random drawn once per re-arm');
});

t.test('probes of a site never overlap', async (t) => {
  const site = await startSite(t, { status: 200, delayMs: 60 });
  const h = startProber(t);
  h.prober.update([makeSite('cyber1', site.url, { intervalMs: 1, jitter: 0 })]);
  // Extra rounds asked for while a probe is in flight queue behind it.
  await Promise.all([h.prober.probeNow(), h.prober.probeNow('cyber1'), h.prober.probeNow()]);
  await waitFor(() => h.results.length >= 4, 'four probes');
  t.equal(site.maxInFlight, 1, 'one probe at a time');
});

t.test('probeNow while a probe is in flight answers with a probe started after the call', async (t) => {
  const site = await startSite(t, { status: 200, delayMs: 80 });
  const h = startProber(t);
  h.prober.update([makeSite('cyber1', site.url)]);
  await waitFor(() => site.inFlight === 1, 'first probe in flight');
  site.set({ status: 503 });
  await h.prober.probeNow('cyber1');
  t.same(h.resultsOf('cyber1').map((r) => r.detail), ['status 200', 'status 503']);
});

t.test('update keeps unchanged loops, restarts changed ones, stops removed ones', async (t) => {
  const site = await startSite(t, { status: 200 });
  const h = startProber(t);
  h.prober.update([makeSite('a', site.url), makeSite('b', site.url, { path: '/b' })]);
  await h.prober.firstRound();
  t.equal(h.results.length, 2, 'first probe of every site runs at once');

  // Same settings in new objects: no extra probe for a; b removed; c new.
  h.prober.update([makeSite('a', site.url), makeSite('c', site.url, { path: '/c' })]);
  await h.prober.firstRound();
  await h.prober.probeNow();
  t.equal(h.resultsOf('a').length, 2, 'a kept its loop: first probe + the extra round only');
  t.equal(h.resultsOf('b').length, 1, 'b reports nothing after removal');
  t.equal(h.resultsOf('c').length, 2, 'c probed at once, then the extra round');
  await h.prober.probeNow('b');
  t.equal(h.resultsOf('b').length, 1, 'probeNow of a removed site does nothing');

  // Changed health settings restart the loop with an immediate probe on the new path.
  h.prober.update([makeSite('a', site.url, { path: '/a2' }), makeSite('c', site.url, { path: '/c' })]);
  await waitFor(() => site.paths.includes('/a2'), 'restarted loop to probe the new path');
  await h.prober.probeNow();
  t.equal(site.paths.filter((p) => p === '/b').length, 1, 'b never probed again');
  t.equal(h.resultsOf('c').length, 3, 'c untouched by a change to a');
});

t.test('many new sites send their first probes a batch per turn, and every one of them reports', async (t) => {
  const site = await startSite(t, { status: 200 });
  const h = startProber(t);
  const sockets = (): number => process.getActiveResourcesInfo().filter((r) => r === 'TCPSocketWrap').length;
  const before = sockets();
  h.prober.update(Array.from({ length: 300 }, (_, i) => makeSite(`s${i}`, site.url, { path: `/s${i}` })));
  const inTheCall = sockets() - before;
  t.ok(inTheCall > 0 && inTheCall <= 64, `at most 64 connections opened in the update call (${inTheCall})`);
  // Asked for by name before its turn: probed now, and only once for its start.
  await h.prober.probeNow('s299');
  t.equal(h.resultsOf('s299').length, 1, 'a site not yet started answers probeNow with its first probe');
  await h.prober.firstRound();
  t.equal(new Set(h.results.map((r) => r.site)).size, 300, 'every site reported');
  t.equal(h.resultsOf('s299').length, 1, 'its start did not probe it again');
  // Removed before their turn: never probed.
  h.prober.update(Array.from({ length: 300 }, (_, i) => makeSite(`n${i}`, site.url, { path: `/n${i}` })));
  h.prober.update([makeSite('n0', site.url, { path: '/n0' })]);
  await h.prober.firstRound();
  await new Promise((resolve) => setImmediate(resolve));
  const probedNew = new Set(site.paths.filter((p) => p.startsWith('/n')));
  t.ok(probedNew.size <= 64, `sites removed before their turn were never probed (${probedNew.size} of 300 were)`);
  t.ok(probedNew.has('/n0'), 'the one kept was');
});

t.test('firstRound waits for slow sites and resolves for sites removed before answering', async (t) => {
  const fast = await startSite(t, { status: 200 });
  const slow = await startSite(t, 'hang');
  const h = startProber(t);
  h.prober.update([makeSite('fast', fast.url), makeSite('slow', slow.url, { timeoutMs: 200 })]);
  await h.prober.firstRound();
  t.same(h.results.map((r) => r.site).sort(), ['fast', 'slow'], 'every site has a result');
  t.equal(h.resultsOf('slow')[0]?.detail, 'timeout after 200ms');

  h.prober.update([makeSite('fast', fast.url), makeSite('gone', slow.url, { timeoutMs: 10_000 })]);
  const first = h.prober.firstRound();
  await waitFor(() => slow.inFlight === 1, 'probe of gone in flight');
  h.prober.update([makeSite('fast', fast.url)]);
  await first;
  t.equal(h.resultsOf('gone').length, 0, 'removed before answering: no result, no wait');
});

t.test('close aborts probes in flight and leaves no handles', async (t) => {
  const site = await startSite(t, 'hang');
  const before = countResources();
  const h = startProber(t);
  h.prober.update([makeSite('cyber1', site.url, { timeoutMs: 10_000, intervalMs: 5 })]);
  await waitFor(() => site.inFlight === 1, 'probe in flight');
  await h.prober.close();
  await waitFor(() => site.openSockets === 0, 'probe connection closed by close()');
  await waitFor(() => sameResources(countResources(), before), 'handles back to what they were');
  t.equal(h.results.length, 0, 'an aborted probe reports nothing');
  h.prober.update([makeSite('cyber1', site.url)]);
  await h.prober.probeNow();
  t.equal(site.paths.length, 1, 'a closed prober starts nothing');
});

function countResources(): Map<string, number> {
  const counts = new Map<string, number>();
  for (const r of process.getActiveResourcesInfo()) {
    if (r === 'TCPSocketWrap' || r === 'Timeout') counts.set(r, (counts.get(r) ?? 0) + 1);
  }
  return counts;
}

function sameResources(a: Map<string, number>, b: Map<string, number>): boolean {
  return (a.get('TCPSocketWrap') ?? 0) <= (b.get('TCPSocketWrap') ?? 0) && (a.get('Timeout') ?? 0) <= (b.get('Timeout') ?? 0);
}

t.test('an answer detour could not even send (out of file descriptors) is marked local', async (t) => {
  const { judgeProbe } = await import('../../src/health/prober.js');
  // judgeProbe never sees it in practice (the prober gives no verdict on a local answer), but a local answer is never a pass.
  t.same(judgeProbe(makeSite('a', 'http://127.0.0.1:1').health, { ok: false, error: 'connect EMFILE', local: true }), { passed: false, detail: 'connect EMFILE' });
});
