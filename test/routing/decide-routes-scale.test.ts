// A decision is linear in routes and sites: eight times the routes may cost
// about eight times as much, never sixty-four (a scan of policy.routes per route
// made 10,000 routes cost minutes and froze every request meanwhile). Measured
// as a ratio of the best of three runs, so a loaded machine slows both sizes alike.
import t from 'tap';
import { Registry } from 'prom-client';
import { decideRoutes } from '../../src/routing/decide-routes.js';
import { ControlPlane } from '../../src/control-plane.js';
import { MemoryStore } from '../../src/state/memory-store.js';
import { createMetrics } from '../../src/metrics/metrics.js';
import { silentLogger } from '../../src/logger.js';
import type { SiteHealth } from '../../src/health/health-state.js';
import type { Overrides, RouteTable } from '../../src/routing/route-table.js';
import { testPolicy } from '../helpers/policy.js';

const SMALL = 1000;
const LARGE = 8000;
/** Linear is 8; quadratic is 64. */
const MAX_RATIO = 24;
/** /status of 1,000 routes takes a millisecond or two, where the collector copying a large document shows: more room, still below 64. */
const MAX_STATUS_RATIO = 48;

function bigPolicy(routes: number) {
  const siteCount = Math.max(2, routes / 10);
  const sites = Array.from({ length: siteCount }, (_, i) => ({ name: `s${i}`, url: `http://127.0.0.1:${1000 + i}`, building: `b${i % 20}` }));
  return testPolicy({
    sites: [{ name: 'hub', url: 'http://127.0.0.1:999' }, ...sites],
    routes: Array.from({ length: routes }, (_, i) => ({
      name: `r${i}`, sites: ['hub', `s${i % siteCount}`], priority: 1 + (i % 3),
      failback: { holdDownMs: 30_000, ramp: [50, 100], stepMs: 1000, maxConcurrent: 5 },
    })),
  });
}

function bestOf(runs: number, fn: () => void): number {
  let best = Infinity;
  for (let i = 0; i < runs; i++) {
    const started = performance.now();
    fn();
    best = Math.min(best, performance.now() - started);
  }
  return best;
}

const none: Overrides = { drainedSites: new Set(), drainedBuildings: new Set(), pins: new Map(), failbackApprovals: new Map(), failoverApprovals: new Map() };

/** A flap through every branch that looks routes up by name: failover, hold-down, wake-ups. */
function flapCost(routes: number): number {
  const policy = bigPolicy(routes);
  const up = (sinceMs: number): SiteHealth => ({ status: 'up', passes: 2, fails: 0, sinceMs, reason: 'ok' });
  const health = new Map(policy.sites.map((s) => [s.name, up(0)]));
  let prev: RouteTable = decideRoutes({ policy, health, overrides: none, integrity: new Map(), prev: undefined, nowMs: 1000 });
  let now = 1000;
  return bestOf(3, () => {
    now += 1000;
    const down = new Map(health).set('hub', { status: 'down', passes: 0, fails: 2, sinceMs: now, reason: 'x' });
    prev = decideRoutes({ policy, health: down, overrides: none, integrity: new Map(), prev, nowMs: now });
    now += 1000;
    const back = new Map(health).set('hub', up(now));
    prev = decideRoutes({ policy, health: back, overrides: none, integrity: new Map(), prev, nowMs: now });
  });
}

/**
 * The ratio of `measure(LARGE)` to `measure(SMALL)`, measured up to three
 * times: a test file running beside another on 2 cores once saw 30x where
 * alone it sees 10 to 17x. Quadratic work is 64x every time, so the best of
 * three still fails it; each attempt is reported.
 */
function bestRatio(measure: (routes: number) => number, limit: number): { readonly ratio: number; readonly tried: string } {
  const tried: string[] = [];
  let best = Infinity;
  for (let attempt = 0; attempt < 3 && best >= limit; attempt++) {
    const small = measure(SMALL);
    const large = measure(LARGE);
    best = Math.min(best, large / small);
    tried.push(`${(large / small).toFixed(1)}x (${large.toFixed(1)} ms vs ${small.toFixed(1)} ms)`);
  }
  return { ratio: best, tried: tried.join(', ') };
}

t.test('decideRoutes: a flap costs linear time in routes', async (t) => {
  flapCost(SMALL); // warm the JIT, as for status below
  const { ratio, tried } = bestRatio(flapCost, MAX_RATIO);
  t.ok(ratio < MAX_RATIO, `${LARGE} routes cost ${ratio.toFixed(1)}x ${SMALL} routes at best: ${tried}`);
});

t.test('ControlPlane.status: linear time in routes', async (t) => {
  const start = (routes: number) => {
    const cp = new ControlPlane({ policy: bigPolicy(routes), logger: silentLogger(), metrics: createMetrics(new Registry()), store: new MemoryStore({ replicaId: 'r1' }) });
    t.teardown(() => cp.close());
    return cp;
  };
  const [smallCp, largeCp] = [start(SMALL), start(LARGE)];
  // Warm both first: a small document measured before the JIT settles looks slow, and the ratio lies.
  for (let i = 0; i < 3; i++) {
    smallCp.status();
    largeCp.status();
  }
  const cps = new Map([[SMALL, smallCp], [LARGE, largeCp]]);
  const { ratio, tried } = bestRatio((routes) => bestOf(7, () => cps.get(routes)!.status()), MAX_STATUS_RATIO);
  t.ok(ratio < MAX_STATUS_RATIO, `${LARGE} routes cost ${ratio.toFixed(1)}x ${SMALL} routes at best: ${tried}`);
});
