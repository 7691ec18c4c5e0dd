// A decision of thousands of routes is spread over turns of the event loop
// (ControlPlane.#advance, decideRoutesInSteps): requests on other routes wait a
// slice, not the whole decision. Meanwhile the request path keeps the table in
// force, whoever must see the new one (an admin command, /status) gets it
// finished on the spot, and inputs that change mid-way are decided right after.
import t, { type Test } from 'tap';
import { Registry } from 'prom-client';
import { decideRoutes, decideRoutesInSteps, ROUTES_PER_STEP } from '../../src/routing/decide-routes.js';
import { samePart } from '../../src/config/policy.js';
import { ControlPlane } from '../../src/control-plane.js';
import { MemoryStore } from '../../src/state/memory-store.js';
import { createMetrics } from '../../src/metrics/metrics.js';
import { silentLogger } from '../../src/logger.js';
import type { SiteHealth } from '../../src/health/health-state.js';
import type { Overrides, RouteTable } from '../../src/routing/route-table.js';
import { testPolicy } from '../helpers/policy.js';

function bigPolicy(routes: number) {
  const siteCount = Math.max(2, routes / 10);
  const sites = Array.from({ length: siteCount }, (_, i) => ({ name: `s${i}`, url: `http://127.0.0.1:${1000 + i}`, building: `b${i % 20}` }));
  return testPolicy({
    sites: [{ name: 'hub', url: 'http://127.0.0.1:999', health: { rise: 1, fall: 1 } }, ...sites],
    routes: Array.from({ length: routes }, (_, i) => ({
      name: `r${i}`, sites: ['hub', `s${i % siteCount}`], priority: 1 + (i % 3),
      failback: { holdDownMs: 0 },
    })),
  });
}

const none: Overrides = { drainedSites: new Set(), drainedBuildings: new Set(), pins: new Map(), failbackApprovals: new Map(), failoverApprovals: new Map() };
const up = (sinceMs: number): SiteHealth => ({ status: 'up', passes: 2, fails: 0, sinceMs, reason: 'ok' });

t.test('decideRoutesInSteps: pauses every ROUTES_PER_STEP routes and decides exactly what decideRoutes does', async (t) => {
  const policy = bigPolicy(1000);
  const health = new Map(policy.sites.map((s) => [s.name, up(0)]));
  const first = decideRoutes({ policy, health, overrides: none, integrity: new Map(), prev: undefined, nowMs: 1000 });
  const down = new Map(health).set('hub', { status: 'down', passes: 0, fails: 2, sinceMs: 2000, reason: 'refused' });
  const inputs = { policy, health: down, overrides: none, integrity: new Map(), prev: first, nowMs: 2000 };
  const steps = decideRoutesInSteps(inputs);
  let pauses = 0;
  let step = steps.next();
  while (step.done !== true) {
    pauses++;
    step = steps.next();
  }
  t.ok(pauses >= Math.floor(1000 / ROUTES_PER_STEP), `${pauses} pauses for 1,000 routes`);
  const whole = decideRoutes(inputs);
  t.same(step.value.routes, whole.routes, 'the same decisions');
  t.equal(step.value.routes[0]!.active, 's0', 'every route left the hub');
  t.ok(Object.isFrozen(step.value.routes[0]!.weights), 'weights frozen');
  t.equal(step.value.routes[0]!.weights, step.value.routes[100]!.weights, 'routes on one site share one frozen weights list');
});

function bigControlPlane(t: Test, routes: number) {
  const cp = new ControlPlane({ policy: bigPolicy(routes), logger: silentLogger(), metrics: createMetrics(new Registry()), store: new MemoryStore({ replicaId: 'r1' }) });
  t.teardown(() => cp.close());
  cp.probeResult('hub', true, 'ok');
  return cp;
}

const turn = () => new Promise<void>((resolve) => setImmediate(resolve));

async function turnsUntil(what: () => boolean, limit: number): Promise<number> {
  for (let turns = 1; turns <= limit; turns++) {
    await turn();
    if (what()) return turns;
  }
  throw new Error(`not within ${limit} turns`);
}

t.test('ControlPlane: a decision of 3,000 routes spans turns; the request path keeps the table in force meanwhile', async (t) => {
  const cp = bigControlPlane(t, 3000);
  const before: RouteTable = cp.table;
  t.equal(before.byName.get('r2999')!.active, 'hub');
  cp.probeResult('hub', false, 'refused');
  // The request path starts the decision (one slice) but does not finish it.
  t.equal(cp.servingTable, before, 'the table in force until the new one is whole');
  let timerRan = false;
  setTimeout(() => { timerRan = true; }, 0);
  const turns = await turnsUntil(() => cp.servingTable !== before, 10_000);
  t.ok(turns > 1, `decided over ${turns} turns of the event loop`);
  t.ok(timerRan, 'a timer due meanwhile ran before the decision was done');
  const after = cp.servingTable;
  t.equal(after.byName.get('r0')!.active, 's0');
  t.equal(after.byName.get('r2999')!.active, `s${2999 % 300}`);
  t.ok(after.routes.every((d) => d.active !== 'hub'), 'every route moved at once: one table, never half of one');
});

t.test('ControlPlane: an admin read finishes a decision under way at once', async (t) => {
  const cp = bigControlPlane(t, 3000);
  const before = cp.table;
  cp.probeResult('hub', false, 'refused');
  t.equal(cp.servingTable, before, 'under way');
  const now = cp.table;
  t.not(now, before, 'table finished it on the spot');
  t.ok(now.routes.every((d) => d.active !== 'hub'));
  t.equal(cp.servingTable, now, 'and the request path reads that one');
  t.equal(cp.status().routes.find((r) => r.name === 'r5')!.active, 's5');
});

t.test('ControlPlane: inputs that change while a decision is under way are decided right after it', async (t) => {
  const cp = bigControlPlane(t, 3000);
  const before = cp.table;
  const moved: string[] = [];
  cp.subscribe({ event: (e) => { if (e.type === 'failedOver' && e.route === 'r2999') moved.push(e.to!); } });
  cp.probeResult('hub', false, 'refused');
  t.equal(cp.servingTable, before, 'under way');
  await turn();
  // The hub is back before the first decision is done: the last table must have it.
  cp.probeResult('hub', true, 'ok');
  // Two decisions: the hub down, then back (holdDown 0: straight back).
  await turnsUntil(() => cp.servingTable.version >= before.version + 2 && cp.servingTable.byName.get('r2999')!.active === 'hub', 20_000);
  t.ok(cp.servingTable.routes.every((d) => d.active === 'hub'), 'every route back on the hub');
  t.same(moved, [`s${2999 % 300}`], 'the failover in between was reported');
});

t.test('ControlPlane: siteDown listeners hear of a site only once the decision with it down is in force', async (t) => {
  const cp = bigControlPlane(t, 3000);
  cp.table; // settle
  let seen: RouteTable | undefined;
  cp.subscribe({ siteDown: () => { seen = cp.servingTable; } });
  cp.probeResult('hub', false, 'refused');
  await turnsUntil(() => seen !== undefined, 10_000);
  t.ok(seen!.routes.every((d) => d.active !== 'hub'), 'the table in force when told has every route off the site');
});

t.test('samePart: policy parts compared field by field across a reload', async (t) => {
  const cases: Array<[unknown, unknown, boolean, string]> = [
    [{ a: 1, b: [1, 2] }, { a: 1, b: [1, 2] }, true, 'equal copies'],
    [{ a: 1, b: [1, 2] }, { b: [1, 2], a: 1 }, true, 'key order does not matter'],
    [{ a: 1 }, { a: 2 }, false, 'a value differs'],
    [{ a: 1 }, { a: 1, b: 2 }, false, 'a key more'],
    [{ a: 1, b: 2 }, { a: 1 }, false, 'a key fewer'],
    [{ a: 1, b: 2 }, { a: 1, c: 2 }, false, 'as many keys, other names'],
    [[1, 2], [1, 2, 3], false, 'lists of other lengths'],
    [[1, [2, { x: 'y' }]], [1, [2, { x: 'y' }]], true, 'nested'],
    [[1, [2, { x: 'y' }]], [1, [2, { x: 'z' }]], false, 'nested difference'],
    [{ a: [] }, { a: {} }, false, 'a list is not an object'],
    [{ a: null }, { a: {} }, false, 'null is not an object'],
    [Number.NaN, Number.NaN, true, 'NaN alike'],
    ['1', 1, false, 'text is not a number'],
  ];
  for (const [a, b, same, why] of cases) t.equal(samePart(a, b), same, why);
});

t.test('decideRoutes: routes moving alike share one frozen transition and one reason', async (t) => {
  const policy = bigPolicy(400);
  const health = new Map(policy.sites.map((s) => [s.name, up(0)]));
  const first = decideRoutes({ policy, health, overrides: none, integrity: new Map(), prev: undefined, nowMs: 1000 });
  const down = new Map(health).set('hub', { status: 'down', passes: 0, fails: 2, sinceMs: 2000, reason: 'refused' });
  const next = decideRoutes({ policy, health: down, overrides: none, integrity: new Map(), prev: first, nowMs: 2000 });
  const [a, b, c] = [next.byName.get('r0')!, next.byName.get('r40')!, next.byName.get('r1')!];
  t.same(a.transition, { from: 'hub', to: 's0', reason: 'site_down' });
  t.equal(a.transition, b.transition, 'r0 and r40 both moved hub -> s0: one transition object');
  t.not(a.transition, c.transition, 'r1 moved to s1: its own');
  t.ok(Object.isFrozen(a.transition));
  t.equal(a.reason, 'serving from s0: hub down (refused)');
  t.equal(a.reason, b.reason);
  t.equal(c.reason, 'serving from s1: hub down (refused)');
});
