// Property-based tests of decideRoutes: random policies (sites in a few
// buildings, routes over random subsets, priorities, modes, ramps, integrity
// gates) driven through random histories of health changes, drains, pins,
// integrity verdicts and approvals. After every step the table must keep the
// promises the README makes, whatever the history:
//   - weights sum to 100 over sites of the route, or the route is unavailable
//     with no weights, and unavailable only when no site is eligible;
//   - no drained site ever has weight; no down site has weight while an
//     eligible one exists, except where an operator asked for it (a pin) or
//     failover.mode manual holds the route (pending-failover);
//   - a pin on a site that is not drained wins;
//   - a failback starts only when no route with a lower priority number is
//     still recovering (unless an operator forced it);
//   - the same inputs give the same table.
import t from 'tap';
import fc from 'fast-check';
import { decideRoutes } from '../../src/routing/decide-routes.js';
import type { Approval, IntegrityVerdict, Overrides, RouteState, RouteTable } from '../../src/routing/route-table.js';
import type { HealthStatus, SiteHealth } from '../../src/health/health-state.js';
import type { Policy } from '../../src/config/policy.js';
import { testPolicy, type TestRouteInput } from '../helpers/policy.js';

const SEED = 20261201;
const SITES = ['s0', 's1', 's2', 's3'] as const;
const RECOVERING: ReadonlySet<RouteState> = new Set(['holding-down', 'verifying', 'blocked', 'awaiting-approval', 'ramping']);

const routeArb = (i: number): fc.Arbitrary<TestRouteInput> => fc.record({
  sites: fc.shuffledSubarray([...SITES], { minLength: 1, maxLength: 4 }),
  priority: fc.integer({ min: 1, max: 3 }),
  failover: fc.constantFrom('auto', 'manual').map((mode) => ({ mode })),
  failback: fc.record({
    mode: fc.constantFrom('auto', 'manual'),
    holdDownMs: fc.constantFrom(0, 1000, 5000),
    ramp: fc.constantFrom([100], [10, 100], [10, 50, 100]),
    stepMs: fc.constantFrom(0, 1000, 3000),
    verify: fc.option(fc.constant({ path: '/_integrity', field: 'checksum' }), { nil: undefined }),
    maxConcurrent: fc.option(fc.constantFrom(1, 2), { nil: undefined }),
  }).map(({ verify, maxConcurrent, ...rest }) => ({ ...rest, ...(verify ? { verify } : {}), ...(maxConcurrent ? { maxConcurrent } : {}) })),
}).map((r) => ({ name: `r${i}`, ...r }) as TestRouteInput);

const policyArb: fc.Arbitrary<Policy> = fc.record({
  buildings: fc.array(fc.constantFrom('A', 'B', 'C'), { minLength: 4, maxLength: 4 }),
  routes: fc.integer({ min: 1, max: 4 }).chain((n) => fc.tuple(...Array.from({ length: n }, (_, i) => routeArb(i)))),
}).map(({ buildings, routes }) => testPolicy({
  sites: SITES.map((name, i) => ({ name, url: `http://127.0.0.1:${10_000 + i}`, building: buildings[i]! })),
  routes,
}));

type Step =
  | { kind: 'health'; site: string; status: HealthStatus }
  | { kind: 'drainSite' | 'undrainSite'; site: string }
  | { kind: 'drainBuilding' | 'undrainBuilding'; building: string }
  | { kind: 'pin'; route: number; site: string }
  | { kind: 'unpin'; route: number }
  | { kind: 'integrity'; route: number; ok: boolean | null }
  | { kind: 'approveFailback' | 'approveFailover'; route: number; force: boolean; site: string | null }
  | { kind: 'tick' }
  // A reload: an equal policy, or one where one route or one site's settings changed.
  | { kind: 'reload'; route: number; change: 'none' | 'priority' | 'holdDown' | 'siteOrder' | 'building' };

const site = fc.constantFrom(...SITES);
const routeIndex = fc.nat(3);
const stepArb: fc.Arbitrary<{ step: Step; advanceMs: number }> = fc.record({
  step: fc.oneof(
    { weight: 6, arbitrary: fc.record({ kind: fc.constant('health' as const), site, status: fc.constantFrom<HealthStatus>('up', 'down', 'up', 'unknown') }) },
    { weight: 1, arbitrary: fc.record({ kind: fc.constantFrom('drainSite' as const, 'undrainSite' as const), site }) },
    { weight: 1, arbitrary: fc.record({ kind: fc.constantFrom('drainBuilding' as const, 'undrainBuilding' as const), building: fc.constantFrom('A', 'B', 'C') }) },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant('pin' as const), route: routeIndex, site }) },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant('unpin' as const), route: routeIndex }) },
    { weight: 2, arbitrary: fc.record({ kind: fc.constant('integrity' as const), route: routeIndex, ok: fc.constantFrom(true, true, false, null) }) },
    {
      weight: 2,
      arbitrary: fc.record({
        kind: fc.constantFrom('approveFailback' as const, 'approveFailover' as const), route: routeIndex,
        force: fc.boolean(), site: fc.option(site, { nil: null }),
      }),
    },
    { weight: 3, arbitrary: fc.constant({ kind: 'tick' as const }) },
    {
      weight: 1,
      arbitrary: fc.record({
        kind: fc.constant('reload' as const), route: routeIndex,
        change: fc.constantFrom('none' as const, 'none' as const, 'priority' as const, 'holdDown' as const, 'siteOrder' as const, 'building' as const),
      }),
    },
  ),
  advanceMs: fc.constantFrom(0, 1, 500, 1000, 2500, 6000),
});

interface World {
  health: Map<string, SiteHealth>;
  drainedSites: Set<string>;
  drainedBuildings: Set<string>;
  pins: Map<string, string>;
  failbackApprovals: Map<string, Approval>;
  failoverApprovals: Map<string, Approval>;
  integrity: Map<string, IntegrityVerdict>;
  /** Routes an operator forced back at some point (skips the priority gate). */
  forced: Set<string>;
}

function apply(world: World, policy: Policy, step: Step, nowMs: number): void {
  const routeName = (i: number): string | undefined => policy.routes[i % policy.routes.length]?.name;
  switch (step.kind) {
    case 'health': {
      const before = world.health.get(step.site);
      if (before?.status === step.status) return;
      world.health.set(step.site, { status: step.status, passes: 0, fails: 0, sinceMs: nowMs, reason: `fuzz ${step.status}` });
      return;
    }
    case 'drainSite': world.drainedSites.add(step.site); return;
    case 'undrainSite': world.drainedSites.delete(step.site); return;
    case 'drainBuilding': world.drainedBuildings.add(step.building); return;
    case 'undrainBuilding': world.drainedBuildings.delete(step.building); return;
    case 'pin': world.pins.set(routeName(step.route)!, step.site); return;
    case 'unpin': world.pins.delete(routeName(step.route)!); return;
    case 'integrity': {
      const name = routeName(step.route)!;
      if (step.ok === null) { world.integrity.delete(name); return; }
      const before = world.integrity.get(name);
      if (before?.ok === step.ok) return;
      world.integrity.set(name, { ok: step.ok, sinceMs: nowMs, detail: step.ok ? 'checksum same' : 'checksum a != b' });
      return;
    }
    case 'approveFailback':
    case 'approveFailover': {
      const name = routeName(step.route)!;
      const approval: Approval = { atMs: nowMs, force: step.force, ...(step.site ? { site: step.site } : {}) };
      if (step.kind === 'approveFailback') {
        world.failbackApprovals.set(name, approval);
        if (step.force) world.forced.add(name);
      } else {
        world.failoverApprovals.set(name, approval);
      }
      return;
    }
    case 'tick': return;
  }
}

function overridesOf(world: World): Overrides {
  return {
    drainedSites: new Set(world.drainedSites),
    drainedBuildings: new Set(world.drainedBuildings),
    pins: new Map(world.pins),
    failbackApprovals: new Map(world.failbackApprovals),
    failoverApprovals: new Map(world.failoverApprovals),
  };
}

/** Every promise the table must keep; returns the first one broken, in words. */
function brokenPromise(policy: Policy, world: World, table: RouteTable, prev: RouteTable | undefined): string | null {
  const building = new Map(policy.sites.map((s) => [s.name, s.building]));
  const drained = (s: string): boolean => world.drainedSites.has(s) || world.drainedBuildings.has(building.get(s)!);
  const down = (s: string): boolean => world.health.get(s)?.status === 'down';
  const eligible = (s: string): boolean => !drained(s) && !down(s);
  for (const route of policy.routes) {
    const d = table.byName.get(route.name);
    if (!d) return `${route.name}: no decision`;
    const anyEligible = route.sites.some(eligible);
    const pin = world.pins.get(route.name);
    const pinHolds = pin !== undefined && route.sites.includes(pin) && !drained(pin);
    if (d.state === 'unavailable') {
      if (d.weights.length !== 0 || d.active !== null) return `${route.name}: unavailable with weights or an active site`;
      if (anyEligible) return `${route.name}: unavailable while ${route.sites.filter(eligible).join(',')} eligible`;
      if (pinHolds) return `${route.name}: unavailable while pinned to ${pin}`;
      continue;
    }
    const sum = d.weights.reduce((a, w) => a + w.weight, 0);
    if (sum !== 100) return `${route.name}: weights sum to ${sum}`;
    for (const w of d.weights) {
      if (!Number.isInteger(w.weight) || w.weight < 0 || w.weight > 100) return `${route.name}: weight ${w.weight} on ${w.site}`;
      if (!route.sites.includes(w.site)) return `${route.name}: weight on ${w.site}, not one of its sites`;
      if (w.weight > 0 && drained(w.site)) return `${route.name}: weight ${w.weight} on drained ${w.site} (state ${d.state})`;
      const held = d.state === 'pinned' || d.state === 'pending-failover';
      if (w.weight > 0 && down(w.site) && anyEligible && !held) return `${route.name}: weight ${w.weight} on down ${w.site} (state ${d.state})`;
    }
    if (d.state === 'pending-failover' && route.failover.mode !== 'manual') return `${route.name}: pending-failover in auto mode`;
    if (pinHolds && (d.state !== 'pinned' || d.active !== pin || d.weights.length !== 1)) {
      return `${route.name}: pinned to ${pin} (not drained) but ${d.state} on ${d.active}`;
    }
    if (d.state === 'pinned' && !pinHolds) return `${route.name}: pinned with no pin standing`;
    if (!d.eligible.every((s) => route.sites.includes(s))) return `${route.name}: eligible names a foreign site`;
  }
  // Phased recovery: a route starts failing back (ramp begins, or a direct
  // failback) only when no lower priority number is still recovering.
  for (const route of policy.routes) {
    const d = table.byName.get(route.name)!;
    const before = prev?.byName.get(route.name);
    const starts = (d.state === 'ramping' && before?.state !== 'ramping')
      || (d.transition?.reason === 'failback' && before?.state !== 'ramping');
    if (!starts || world.forced.has(route.name)) continue;
    const waiting = policy.routes.filter((r) => r.priority < route.priority && RECOVERING.has(table.byName.get(r.name)!.state));
    if (waiting.length > 0) return `${route.name} (priority ${route.priority}) started failback while ${waiting.map((r) => `${r.name} (priority ${r.priority})`).join(', ')} recovering`;
  }
  return null;
}

/** The policy a reload step leaves in force: a new object every time, as a reload makes. */
function reloaded(policy: Policy, step: Extract<Step, { kind: 'reload' }>): Policy {
  const next = structuredClone(policy) as unknown as { routes: { priority: number; sites: string[]; failback: { holdDownMs: number } }[]; sites: { building: string }[] };
  const route = next.routes[step.route % next.routes.length]!;
  if (step.change === 'priority') route.priority = (route.priority % 3) + 1;
  if (step.change === 'holdDown') route.failback.holdDownMs += 1000;
  if (step.change === 'siteOrder') route.sites = [...route.sites].reverse();
  if (step.change === 'building') {
    const site = next.sites[step.route % next.sites.length]!;
    site.building = site.building === 'A' ? 'B' : 'A';
  }
  const freeze = (v: unknown): unknown => {
    if (v !== null && typeof v === 'object') { for (const x of Object.values(v)) freeze(x); Object.freeze(v); }
    return v;
  };
  return freeze(next) as unknown as Policy;
}

function freshWorld(): World {
  return {
    health: new Map(SITES.map((s) => [s, { status: 'up' as HealthStatus, passes: 2, fails: 0, sinceMs: 0, reason: 'fuzz' }])),
    drainedSites: new Set(), drainedBuildings: new Set(), pins: new Map(),
    failbackApprovals: new Map(), failoverApprovals: new Map(), integrity: new Map(), forced: new Set(),
  };
}

/** A comparable rendering of a table (Maps and frozen objects aside). */
function render(table: RouteTable): string {
  return JSON.stringify({ version: table.version, routes: table.routes, nextWakeMs: table.nextWakeMs });
}

t.test('decideRoutes keeps its promises through random histories', async (t) => {
  let steps = 0;
  let incremental = 0;
  let reloads = 0;
  fc.assert(fc.property(policyArb, fc.array(stepArb, { minLength: 1, maxLength: 40 }), (initial, history) => {
    const world = freshWorld();
    let nowMs = 1_000_000;
    let prev: RouteTable | undefined;
    let policy = initial;
    for (const { step, advanceMs } of history) {
      nowMs += advanceMs;
      if (step.kind === 'reload') {
        policy = reloaded(policy, step);
        reloads++;
      } else {
        apply(world, policy, step, nowMs);
      }
      const inputs = { policy, health: new Map(world.health), overrides: overridesOf(world), integrity: new Map(world.integrity), prev, nowMs };
      const table = decideRoutes(inputs);
      // Deterministic: the same inputs again give the same table.
      const again = decideRoutes({ ...inputs, health: new Map(world.health), overrides: overridesOf(world), integrity: new Map(world.integrity) });
      if (render(table) !== render(again)) throw new Error(`not deterministic at step ${JSON.stringify(step)}`);
      // Incremental: re-deciding only the routes whose inputs changed gives what
      // a full decision gives (a copy of prev is not a table decideRoutes made,
      // so it decides every route).
      if (prev) {
        const full = decideRoutes({ ...inputs, prev: { ...prev } });
        if (render(table) !== render(full)) throw new Error(`incremental differs from full at step ${JSON.stringify(step)}:\n${render(table)}\n${render(full)}`);
        incremental++;
      }
      if (!Object.isFrozen(table) || !Object.isFrozen(table.routes[0])) throw new Error('table not frozen');
      const broken = brokenPromise(policy, world, table, prev);
      if (broken) throw new Error(`${broken}\nafter ${JSON.stringify(step)} at ${nowMs}`);
      // Re-running when nextWakeMs says so is how failbacks proceed; do it like the control plane would.
      if (table.nextWakeMs !== null && table.nextWakeMs <= nowMs) {
        const woken = decideRoutes({ ...inputs, prev: table });
        if (render(woken) !== render(decideRoutes({ ...inputs, prev: { ...table } }))) throw new Error(`incremental differs from full on a wake at ${nowMs}`);
        const b = brokenPromise(policy, world, woken, table);
        if (b) throw new Error(`${b}\non an immediate wake at ${nowMs}`);
        prev = woken;
      } else {
        prev = table;
      }
      steps++;
    }
    return true;
  }), { seed: SEED, numRuns: 300 });
  t.ok(steps > 1000, `${steps} decisions checked`);
  t.ok(incremental > 1000, `${incremental} incremental decisions matched full ones`);
  t.ok(reloads > 100, `${reloads} of them after a reload (an equal policy, or one route or site changed)`);
});

t.test('failback comes back in priority order when every site returns at once', async (t) => {
  // All routes fail over together, then every site returns: each step of time
  // may finish at most the lowest priority level still recovering.
  fc.assert(fc.property(policyArb, (policy) => {
    const world = freshWorld();
    let nowMs = 1_000_000;
    let prev = decideRoutes({ policy, health: new Map(world.health), overrides: overridesOf(world), integrity: new Map(), prev: undefined, nowMs });
    const firsts = new Set(policy.routes.map((r) => r.sites[0]!));
    for (const s of firsts) apply(world, policy, { kind: 'health', site: s, status: 'down' }, nowMs);
    nowMs += 1000;
    prev = decideRoutes({ policy, health: new Map(world.health), overrides: overridesOf(world), integrity: new Map(), prev, nowMs });
    for (const s of firsts) apply(world, policy, { kind: 'health', site: s, status: 'up' }, nowMs);
    for (const r of policy.routes) {
      if (r.failback.verify) apply(world, policy, { kind: 'integrity', route: policy.routes.indexOf(r), ok: true }, nowMs);
      if (r.failback.mode === 'manual') world.failbackApprovals.set(r.name, { atMs: nowMs + 1, force: false });
    }
    for (let i = 0; i < 200; i++) {
      nowMs += 500;
      if (i === 1) for (const r of policy.routes) if (r.failback.mode === 'manual') world.failbackApprovals.set(r.name, { atMs: nowMs, force: false });
      const table = decideRoutes({ policy, health: new Map(world.health), overrides: overridesOf(world), integrity: new Map(world.integrity), prev, nowMs });
      const broken = brokenPromise(policy, world, table, prev);
      if (broken) throw new Error(`${broken} at +${i * 500}ms`);
      prev = table;
    }
    // With every site up and every gate given time, everything is home at the end.
    return policy.routes.every((r) => {
      const d = prev.byName.get(r.name)!;
      return d.state === 'preferred' && d.active === r.sites[0];
    });
  }), { seed: SEED, numRuns: 200 });
  t.pass('200 policies recovered in priority order');
});
