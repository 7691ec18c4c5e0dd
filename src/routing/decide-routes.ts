// decideRoutes: the one pure function that says where every route sends its
// traffic. Inputs are the policy, site health, operator overrides (drains,
// pins, approvals), integrity verdicts, the previous table and the time; the
// output is a new frozen table. No timers, no I/O: the caller re-runs it when an
// input changes or when `nextWakeMs` arrives.
//
// The life of a route, worked through:
//
//   preferred ──(active site down/drained)──> failed-over        (auto, at once)
//             └─(down, failover.mode manual)─> pending-failover  (held until approved)
//   failed-over ──(a more preferred site is up again)──> holding-down
//       holding-down: the site must stay up for holdDown (restarts if it flaps)
//       verifying:    integrity gate must have matched for the whole holdDown window
//       blocked:      integrity mismatch/error, a lower priority level still
//                     recovering, or maxConcurrent routes already ramping
//       awaiting-approval: failback.mode manual, gates passed, no approval yet
//       ramping:      weights move along failback.ramp, one step per `step`
//   ramping ──(last step)──> preferred
//   ramping ──(target fails)──> failed-over (all traffic back at once; hold-down
//       restarts because the target's health `sinceMs` moves when it comes back)
//
// A drain beats everything (no new request reaches a drained site), a pin beats
// everything else. Routes are decided in priority order so a route can see
// whether any lower-numbered route is still recovering; the table keeps policy
// order.
import { indexPolicy, samePart, type Policy, type PolicyIndex, type RoutePolicy } from '../config/policy.js';
import type { SiteHealth } from '../health/health-state.js';
import type {
  Approval, BlockedReason, DecisionInputs, FailoverReason, IntegrityVerdict, RampProgress, RouteDecision, RouteState,
  RouteTable, Transition, WeightedSite,
} from './route-table.js';

/** States in which a route is on its way back to a more preferred site. */
const RECOVERING: ReadonlySet<RouteState> = new Set<RouteState>([
  'holding-down', 'verifying', 'blocked', 'awaiting-approval', 'ramping',
]);

/**
 * The inputs each table was decided from. The next decision with that table as
 * `prev` re-decides only the routes whose inputs differ (a site of theirs, a
 * drain touching one, their pin, approvals or integrity verdict), plus every
 * route on its way back (hold-down, verify, ramp: those depend on the clock and
 * on other routes). The rest keep their decision object: a flap of one site
 * costs the routes that list it, not the whole policy. A table not made here
 * (or made from another policy) gets a full decision.
 */
const decidedFrom = new WeakMap<RouteTable, DecisionInputs>();

/** Routes in decision order (priority, then policy order), once per policy. */
const orders = new WeakMap<Policy, readonly RoutePolicy[]>();

export function decisionOrder(policy: Policy): readonly RoutePolicy[] {
  let order = orders.get(policy);
  if (order === undefined) {
    // Grouped by priority in policy order, then the (few) levels sorted: linear
    // in routes, where sorting 10,000 routes was a few milliseconds of a reload's turn.
    const levels = new Map<number, RoutePolicy[]>();
    for (const route of policy.routes) {
      const level = levels.get(route.priority);
      if (level) level.push(route);
      else levels.set(route.priority, [route]);
    }
    order = Object.freeze([...levels.keys()].sort((a, b) => a - b).flatMap((priority) => levels.get(priority)!));
    orders.set(policy, order);
  }
  return order;
}

export function decideRoutes(inputs: DecisionInputs): RouteTable {
  const steps = decideRoutesInSteps(inputs);
  let step = steps.next();
  while (step.done !== true) step = steps.next();
  return step.value;
}

/** Routes decided between two pauses of decideRoutesInSteps. */
export const ROUTES_PER_STEP = 32;

/**
 * The same decision, pausing (a bare `yield`) after every ROUTES_PER_STEP
 * routes, so a caller can spread a decision of thousands of routes over turns
 * of the event loop and let requests through meanwhile. The inputs must not
 * change until it returns (the control plane hands it copies).
 */
export function* decideRoutesInSteps(inputs: DecisionInputs): Generator<void, RouteTable, void> {
  const { policy, prev, nowMs } = inputs;
  const index = indexPolicy(policy);
  const before = prev === undefined ? undefined : decidedFrom.get(prev);
  const changed = before === undefined ? null
    : before.policy === policy ? changedRoutes(before, inputs, index)
    : yield* changedAcrossReload(before, inputs, index);
  // Settling (the first probe round): a route decided again is decided afresh,
  // as if it had no previous decision; prev only says which routes to keep.
  const settling = inputs.settle === true;
  const ctx: Context = {
    inputs: settling ? { ...inputs, prev: undefined } : inputs,
    index,
    decided: new Map(),
    recovering: null,
    rampingCount: 0,
    described: new Map(),
    alike: new Map(),
  };
  // Routes that were ramping keep their slot until they finish or stop, so a
  // route decided earlier in this pass cannot steal it.
  for (const route of policy.routes) {
    if (!settling && prev?.byName.get(route.name)?.state === 'ramping') ctx.rampingCount++;
  }

  let sinceStep = 0;
  // Indexed loops: in a generator, for-of allocated an iterator result per route.
  const order = decisionOrder(policy);
  for (let i = 0; i < order.length; i++) {
    const route = order[i]!;
    if (++sinceStep === ROUTES_PER_STEP) {
      sinceStep = 0;
      yield;
    }
    const before = prev?.byName.get(route.name);
    const wasRamping = !settling && before?.state === 'ramping';
    const decision = before !== undefined && changed !== null && !changed.has(route.name)
      && !TIME_BOUND.has(before.state) && !hasBetter(route, before)
      ? settled(before)
      : finish(decideRoute(route, ctx), settling ? undefined : before, nowMs, ctx);
    if (wasRamping && decision.state !== 'ramping') ctx.rampingCount--;
    if (!wasRamping && decision.state === 'ramping') ctx.rampingCount++;
    ctx.decided.set(route.name, decision);
    noteRecovering(route, decision, ctx);
  }

  yield;
  const routes = policy.routes.map((r) => ctx.decided.get(r.name)!);
  const byName = new Map(routes.map((d) => [d.name, d]));
  yield;
  // A ramp slot freed by a route decided later in this pass: decide again at once.
  const slotFreed = routes.some((d) => d.blocked?.code === 'concurrency'
    && ctx.rampingCount < (index.routes.get(d.name)!.failback.maxConcurrent ?? Infinity));
  const wake = nextWake(index, routes, inputs);
  // A ramp that just finished on a second choice while the first is up: its
  // failback to the first starts with the next decision, not with the next input.
  const better = routes.some((d) => d.state === 'failed-over' && hasBetter(index.routes.get(d.name)!, d));
  const table: RouteTable = {
    version: (prev?.version ?? 0) + 1,
    computedAtMs: nowMs,
    policy,
    routes,
    byName,
    nextWakeMs: slotFreed || better ? nowMs : wake,
  };
  // Decisions are frozen as they are made (finish, settled); the table and its list here.
  Object.freeze(routes);
  Object.freeze(table);
  decidedFrom.set(table, snapshot(inputs));
  return table;
}

/**
 * `to` is `from` re-stamped (the control plane sets its epoch) or a follower's
 * table built on it: the next decision compares against what `from` was
 * decided from, so it stays incremental.
 */
export function inheritInputs(from: RouteTable, to: RouteTable): RouteTable {
  const inputs = decidedFrom.get(from);
  if (inputs !== undefined) decidedFrom.set(to, inputs);
  return to;
}

/**
 * What the next decision compares against, copied: callers may reuse and mutate
 * their maps between decisions. Linear in sites plus overrides and verdicts.
 */
function snapshot(inputs: DecisionInputs): DecisionInputs {
  const o = inputs.overrides;
  return {
    policy: inputs.policy,
    health: new Map(inputs.health),
    overrides: {
      drainedSites: new Set(o.drainedSites), drainedBuildings: new Set(o.drainedBuildings), pins: new Map(o.pins),
      failbackApprovals: new Map(o.failbackApprovals), failoverApprovals: new Map(o.failoverApprovals),
    },
    integrity: new Map(inputs.integrity),
    prev: undefined,
    nowMs: inputs.nowMs,
  };
}

/** States that depend on the clock or on other routes: decided again every time. */
const TIME_BOUND: ReadonlySet<RouteState> = RECOVERING;

/**
 * Settled on a site while a more preferred one is up and not drained: only a
 * failback ramp that just finished on its (stable) target leaves a route so,
 * and the next decision starts the failback to the better site.
 */
function hasBetter(route: RoutePolicy, d: RouteDecision): boolean {
  return d.state === 'failed-over' && d.preferred !== null && d.active !== null && rank(route, d.preferred) < rank(route, d.active);
}

/** A decision kept as it was: the same object, less the transition that belongs to the table it was made in. */
function settled(decision: RouteDecision): RouteDecision {
  if (decision.transition === undefined) return decision;
  const { transition: _moved, ...rest } = decision;
  return Object.freeze(rest);
}

/**
 * The routes whose inputs differ between two decisions of the same policy:
 * linear in sites plus the overrides and verdicts that exist, never routes².
 */
function changedRoutes(before: DecisionInputs, now: DecisionInputs, index: PolicyIndex): Set<string> {
  const routes = new Set<string>();
  const sites = new Set<string>();
  for (const site of index.sites.keys()) {
    if (!sameHealth(before.health.get(site), now.health.get(site))) sites.add(site);
  }
  const a = before.overrides;
  const b = now.overrides;
  for (const site of symmetricDifference(a.drainedSites, b.drainedSites)) sites.add(site);
  for (const building of symmetricDifference(a.drainedBuildings, b.drainedBuildings)) {
    for (const site of index.sitesByBuilding.get(building) ?? []) sites.add(site);
  }
  for (const site of sites) {
    for (const route of index.routesBySite.get(site) ?? []) routes.add(route.name);
  }
  for (const name of differingKeys(a.pins, b.pins, (x, y) => x === y)) routes.add(name);
  for (const name of differingKeys(a.failbackApprovals, b.failbackApprovals, sameApproval)) routes.add(name);
  for (const name of differingKeys(a.failoverApprovals, b.failoverApprovals, sameApproval)) routes.add(name);
  for (const name of differingKeys(before.integrity, now.integrity, sameVerdict)) routes.add(name);
  return routes;
}

/**
 * After a reload: the routes whose inputs changed, plus every route whose own
 * settings or any of whose sites' settings differ, plus new ones. The others
 * keep their decisions, so a reload that changes a few routes of 10,000 costs
 * those few (a full decision of 10,000 routes held the event loop ~250 ms).
 * Pauses like the decision itself: comparing 10,000 routes takes a while too.
 */
function* changedAcrossReload(before: DecisionInputs, now: DecisionInputs, index: PolicyIndex): Generator<void, Set<string>, void> {
  const oldIndex = indexPolicy(before.policy);
  const routes = changedRoutes(before, now, index);
  const movedSites = new Set<string>();
  let sinceStep = 0;
  for (const [name, site] of index.sites) {
    const old = oldIndex.sites.get(name);
    if (old === undefined || !samePart(old, site)) movedSites.add(name);
    if (++sinceStep === COMPARED_PER_STEP) {
      sinceStep = 0;
      yield;
    }
  }
  for (const [name, route] of index.routes) {
    const old = oldIndex.routes.get(name);
    if (old === undefined || !samePart(old, route) || route.sites.some((s) => movedSites.has(s))) routes.add(name);
    if (++sinceStep === COMPARED_PER_STEP) {
      sinceStep = 0;
      yield;
    }
  }
  return routes;
}

/** Policy parts compared across a reload between two pauses. */
const COMPARED_PER_STEP = 256;

/** What a decision reads of a site's health (probe counters and check times do not matter to it). */
function sameHealth(a: SiteHealth | undefined, b: SiteHealth | undefined): boolean {
  if (a === b) return true;
  if (a === undefined || b === undefined) return false;
  return a.status === b.status && a.sinceMs === b.sinceMs && a.reason === b.reason && a.passiveOnly === b.passiveOnly;
}

function sameApproval(a: Approval, b: Approval): boolean {
  return a === b || (a.atMs === b.atMs && a.site === b.site && a.force === b.force);
}

function sameVerdict(a: IntegrityVerdict, b: IntegrityVerdict): boolean {
  return a === b || (a.ok === b.ok && a.sinceMs === b.sinceMs && a.detail === b.detail);
}

function* symmetricDifference<T>(a: ReadonlySet<T>, b: ReadonlySet<T>): Iterable<T> {
  for (const x of a) if (!b.has(x)) yield x;
  for (const x of b) if (!a.has(x)) yield x;
}

function* differingKeys<V>(a: ReadonlyMap<string, V>, b: ReadonlyMap<string, V>, same: (x: V, y: V) => boolean): Iterable<string> {
  for (const [k, x] of a) {
    const y = b.get(k);
    if (y === undefined || !same(x, y)) yield k;
  }
  for (const k of b.keys()) if (!a.has(k)) yield k;
}

interface Context {
  readonly inputs: DecisionInputs;
  readonly index: PolicyIndex;
  /** Decisions made so far in this pass (lower priority numbers first). */
  readonly decided: Map<string, RouteDecision>;
  /**
   * The lowest priority level with a route recovering, among those decided so
   * far. Routes are decided in priority order, so this is all a route needs to
   * know about lower levels: kept as we go, it keeps the pass linear.
   */
  recovering: { readonly priority: number; readonly routes: RoutePolicy[] } | null;
  /** Routes ramping right now, across the policy (for failback.maxConcurrent). */
  rampingCount: number;
  /** describeSite's answers in this decision. */
  readonly described: Map<string, string>;
  /**
   * Weights, reasons and transitions alike across routes, made (and frozen)
   * once per decision and shared: two thousand routes moving at once are then
   * two thousand decision objects, not ten thousand objects for the
   * young-generation collector to copy.
   */
  readonly alike: Map<string, Alike>;
}

/** A decision before `sinceMs` and `transition` are worked out against the previous table. */
type Draft = Omit<RouteDecision, 'sinceMs' | 'transition'> & { readonly changeReason?: FailoverReason; readonly forced?: boolean };

/**
 * Passive evidence (live traffic that could not reach a site, not confirmed by
 * a probe) never takes out a route's last site: when it alone would leave the
 * route with nothing, the route keeps serving from such a site and says so.
 * A failed probe or an operator's drain may still take it out.
 */
function decideRoute(route: RoutePolicy, ctx: Context): Draft {
  const eligible = eligibleSites(route, ctx);
  // Among such sites, stay where the route already is (the site that failed
  // first, and longest ago, is the least likely to serve).
  const candidates = eligible.length === 0
    ? route.sites.filter((s) => healthOf(s, ctx)?.passiveOnly === true && drainedBy(s, ctx) === null)
    : [];
  const current = ctx.inputs.prev?.byName.get(route.name)?.active;
  const lastResort = current != null && candidates.includes(current) ? current : candidates[0];
  if (lastResort === undefined) return decideRouteAmong(route, eligible, ctx);
  const draft = decideRouteAmong(route, [lastResort], ctx);
  if (draft.active !== lastResort) return draft;
  return {
    ...draft, passiveIgnored: lastResort,
    reason: `passive evidence ignored: it would leave ${route.name} with no site; serving from ${describeSite(lastResort, ctx)}`,
  };
}

/**
 * The route's eligible sites, without a new array per route where one will do:
 * every site eligible (the usual case) is the policy's own frozen list; the
 * same list as the route's previous decision is that decision's array; any
 * other list is one frozen array per decision for every route with the same
 * sites. A site down under 2,000 routes makes a few hundred arrays instead of
 * 2,000, and those outlive the decision: about a quarter of what the
 * collector had to copy out of the young generation for each flap.
 */
function eligibleSites(route: RoutePolicy, ctx: Context): readonly string[] {
  const sites = route.sites;
  // One pass; a list of its own only from the first site that is not eligible.
  let list: string[] | undefined;
  for (let i = 0; i < sites.length; i++) {
    if (isEligible(sites[i]!, ctx)) list?.push(sites[i]!);
    else list ??= sites.slice(0, i);
  }
  if (list === undefined) {
    if (Object.isFrozen(sites)) return sites;
    list = [...sites];
  }
  const prev = ctx.inputs.prev?.byName.get(route.name)?.eligible;
  if (prev !== undefined && prev.length === list.length && prev.every((s, i) => s === list[i])) return prev;
  return alike(ctx, `eligible\u0000${list.join('\u0000')}`, () => list);
}

function decideRouteAmong(route: RoutePolicy, eligible: readonly string[], ctx: Context): Draft {
  const { inputs } = ctx;
  const { overrides, nowMs } = inputs;
  const prev = inputs.prev?.byName.get(route.name);
  const preferred = route.sites.find((s) => isUp(s, ctx) && !drainedBy(s, ctx)) ?? null;
  const base = { name: route.name, eligible, preferred };

  const pin = overrides.pins.get(route.name);
  if (pin !== undefined && route.sites.includes(pin)) {
    const drain = drainedBy(pin, ctx);
    if (!drain) {
      // A pin holds traffic on exactly that site: retrying elsewhere could write
      // to the very site the operator is steering away from.
      return {
        name: base.name, eligible: [pin], preferred: base.preferred, state: 'pinned', active: pin, weights: whole(pin, ctx),
        reason: `pinned to ${pin} by an operator`, pinnedTo: pin, changeReason: 'pin',
      };
    }
    // Drains win over pins: fall through to normal routing, but say so.
  }

  const current = prev && prev.active !== null && route.sites.includes(prev.active) && prev.state !== 'pinned'
    ? prev.active
    : null;
  const pinDrained = pin !== undefined && drainedBy(pin, ctx) !== null;
  const unpinned = prev?.state === 'pinned' && (pin === undefined || pinDrained);

  if (eligible.length === 0) {
    return {
      name: base.name, eligible: base.eligible, preferred: base.preferred, state: 'unavailable', active: null, weights: [],
      reason: `no site can serve: ${route.sites.map((s) => describeSite(s, ctx)).join('; ')}`,
      changeReason: current !== null && drainedBy(current, ctx) !== null ? 'drain' : 'site_down',
    };
  }

  const first = eligible[0]!;
  const firstReason: FailoverReason = unpinned
    ? (pinDrained ? 'drain' : 'unpin')
    : current === null && prev?.state === 'unavailable' ? 'recovered' : 'site_down';

  // No site to stay on: take the most preferred eligible one. Returning from a
  // total outage or from a pin skips the hold-down: anything beats nothing, and
  // the operator released the pin on purpose.
  if (current === null) return onSite(route, first, base, ctx, firstReason);

  if (!eligible.includes(current)) {
    const drained = drainedBy(current, ctx) !== null;
    if (!drained && route.failover.mode === 'manual') {
      const to = eligible.find((s) => s !== current);
      const since = prev?.pendingFailover?.sinceMs ?? nowMs;
      const approval = overrides.failoverApprovals.get(route.name);
      if (to && approvedSince(approval, since) && (approval!.site === undefined || approval!.site === to)) {
        return onSite(route, to, base, ctx, 'manual');
      }
      return {
        name: base.name, eligible: [current], preferred: base.preferred, state: 'pending-failover', active: current,
        weights: whole(current, ctx),
        reason: `${describeSite(current, ctx)}; failover.mode manual: waiting for an operator`
          + (to ? ` (POST /routes/${route.name}/failover to move to ${to})` : ''),
        ...(to ? { pendingFailover: { from: current, to, sinceMs: since } } : {}),
      };
    }
    return onSite(route, first, base, ctx, drained ? 'drain' : 'site_down');
  }

  // The current site can serve. Is there a more preferred one worth going back to?
  // A ramp under way keeps its target while that target stays up: a first
  // choice that has only just come back (and may flap) must not throw away a
  // failback to a stable second choice; it gets its own turn afterwards.
  const ramping = prev?.state === 'ramping' ? prev.ramp : undefined;
  const target = ramping && ramping.from === current && isUp(ramping.to, ctx) && !drainedBy(ramping.to, ctx)
    ? ramping.to
    : preferred;
  if (target === null || rank(route, target) >= rank(route, current)) {
    return onSite(route, current, base, ctx, 'site_down');
  }
  return decideFailback(route, current, target, base, ctx);
}

function decideFailback(
  route: RoutePolicy, current: string, target: string,
  base: Pick<RouteDecision, 'name' | 'eligible' | 'preferred'>, ctx: Context,
): Draft {
  const { overrides, integrity, nowMs } = ctx.inputs;
  const fb = route.failback;
  const prev = ctx.inputs.prev?.byName.get(route.name);
  const targetHealth = ctx.inputs.health.get(target)!;
  // Hold-down counts from when the target last came up; a flap moves sinceMs, so it restarts.
  const holdDownFromMs = targetHealth.sinceMs;
  const given = overrides.failbackApprovals.get(route.name);
  const approval = given && (given.site === undefined || given.site === target) ? given : undefined;
  const forced = approval?.force === true && approval.atMs >= holdDownFromMs;
  const held = (state: RouteState, code: BlockedReason, message: string): Draft => ({
    name: base.name, eligible: base.eligible, preferred: base.preferred, state, active: current, weights: whole(current, ctx),
    reason: message, blocked: { code, message }, holdDownFromMs,
  });

  const prevRamp = prev?.state === 'ramping' && prev.ramp?.to === target && prev.ramp.from === current ? prev.ramp : undefined;

  const verdict = integrity.get(route.name);
  if (prevRamp && !forced && fb.verify && verdict && !verdict.ok) {
    // Data diverging mid-ramp stops the ramp: everything goes back to the site being left.
    return held('blocked', 'integrity', `integrity mismatch: ${verdict.detail}`);
  }
  if (!prevRamp && !forced) {
    const heldForMs = nowMs - holdDownFromMs;
    if (fb.verify && verdict && !verdict.ok) {
      return held('blocked', 'integrity', `integrity mismatch: ${verdict.detail}`);
    }
    if (heldForMs < fb.holdDownMs) {
      return held(fb.verify ? 'verifying' : 'holding-down', 'holddown',
        `${target} up for ${seconds(heldForMs)} of ${seconds(fb.holdDownMs)} hold-down`);
    }
    if (fb.verify && !verdict) {
      return held('verifying', 'integrity', `waiting for the first integrity check of ${target} against ${current}`);
    }
    if (fb.verify && verdict && nowMs - verdict.sinceMs < fb.holdDownMs) {
      return held('verifying', 'holddown',
        `integrity matching for ${seconds(nowMs - verdict.sinceMs)} of ${seconds(fb.holdDownMs)}: ${verdict.detail}`);
    }
    const waitingOn = lowerPriorityRecovering(route, ctx);
    if (waitingOn.length > 0) {
      return held('blocked', 'priority',
        `waiting for priority ${waitingOn[0]!.priority} routes to finish failback: ${listNames(waitingOn)}`);
    }
    if (fb.maxConcurrent !== undefined && ctx.rampingCount >= fb.maxConcurrent) {
      return held('blocked', 'concurrency', `${ctx.rampingCount} routes already ramping (failback.maxConcurrent ${fb.maxConcurrent})`);
    }
    if (fb.mode === 'manual' && !(approval && approval.atMs >= holdDownFromMs)) {
      return held('awaiting-approval', 'approval',
        `${target} passed every gate; waiting for an operator (POST /routes/${route.name}/failback)`);
    }
  }

  // Ramp: start at step 0, or move one step once `step` has passed.
  let step = 0;
  let stepStartedMs = nowMs;
  if (prevRamp) {
    step = prevRamp.step;
    stepStartedMs = prevRamp.stepStartedMs;
    if (nowMs - prevRamp.stepStartedMs >= fb.stepMs) {
      step++;
      stepStartedMs = nowMs;
    }
  }
  // step 0 means no pause between steps: the ramp completes in this decision.
  if (fb.stepMs === 0) step = fb.ramp.length - 1;
  const percent = fb.ramp[Math.min(step, fb.ramp.length - 1)]!;
  if (percent >= 100) {
    return { ...onSite(route, target, base, ctx, 'failback'), forced };
  }
  const ramp: RampProgress = { to: target, from: current, step, percent, stepStartedMs };
  return {
    name: base.name, eligible: base.eligible, preferred: base.preferred, state: 'ramping', active: current,
    weights: [{ site: target, weight: percent }, { site: current, weight: 100 - percent }],
    reason: `failing back to ${target}: ${percent}% (step ${step + 1} of ${fb.ramp.length})${forced ? ', forced by an operator' : ''}`,
    ramp, holdDownFromMs, forced,
  };
}

/**
 * A route settled on one site. (Drafts name base's fields one by one:
 * spreading `base` took a slow path that cost more than the rest of a route's
 * decision together.)
 */
function onSite(
  route: RoutePolicy, site: string, base: Pick<RouteDecision, 'name' | 'eligible' | 'preferred'>,
  ctx: Context, changeReason: FailoverReason,
): Draft {
  const isFirst = site === route.sites[0];
  const weights = whole(site, ctx);
  if (isFirst) {
    const reason = alike(ctx, `first\u0000${site}`, () => `serving from ${site}, its first choice`);
    return { name: base.name, eligible: base.eligible, preferred: base.preferred, state: 'preferred', active: site, weights, reason, changeReason };
  }
  const passed = route.sites.slice(0, rank(route, site));
  const reason = alike(ctx, `over\u0000${site}\u0000${passed.join('\u0000')}`,
    () => `serving from ${site}: ${passed.map((s) => describeSite(s, ctx)).join('; ')}`);
  return {
    name: base.name, eligible: base.eligible, preferred: base.preferred, state: 'failed-over', active: site, weights,
    reason, changeReason,
  };
}

type Alike = string | Transition | readonly WeightedSite[] | readonly string[];

/** The value for `key` made once in this decision (see Context.alike). */
function alike<T extends Alike>(ctx: Context, key: string, make: () => T): T {
  let value = ctx.alike.get(key) as T | undefined;
  if (value === undefined) {
    value = make();
    if (typeof value === 'object') Object.freeze(value);
    ctx.alike.set(key, value);
  }
  return value;
}

/** A route's whole traffic on one site, as a frozen weights list shared by every route on that site. */
function whole(site: string, ctx: Context): readonly WeightedSite[] {
  return alike(ctx, `whole\u0000${site}`, () => [Object.freeze({ site, weight: 100 })]);
}

/**
 * Fill in sinceMs and transition against the previous decision. The decision
 * is built field by field (the optional ones only when present): rest
 * destructuring and spreads each took a slow path, thousands of times per
 * decision.
 */
function finish(draft: Draft, prev: RouteDecision | undefined, nowMs: number, ctx: Context): RouteDecision {
  const sameState = prev !== undefined && prev.state === draft.state && prev.active === draft.active
    && prev.blocked?.code === draft.blocked?.code;
  const moved = (prev?.active ?? null) !== draft.active && prev !== undefined;
  const d: Mutable<RouteDecision> = {
    name: draft.name, eligible: draft.eligible, preferred: draft.preferred, state: draft.state,
    active: draft.active, weights: draft.weights, reason: draft.reason, sinceMs: sameState ? prev!.sinceMs : nowMs,
  };
  if (draft.blocked !== undefined) d.blocked = draft.blocked;
  if (draft.holdDownFromMs !== undefined) d.holdDownFromMs = draft.holdDownFromMs;
  if (draft.pendingFailover) d.pendingFailover = draft.pendingFailover;
  if (draft.ramp !== undefined) d.ramp = draft.ramp;
  if (draft.pinnedTo !== undefined) d.pinnedTo = draft.pinnedTo;
  if (draft.passiveIgnored !== undefined) d.passiveIgnored = draft.passiveIgnored;
  if (moved) {
    const from = prev!.active;
    const to = draft.active;
    const reason = draft.changeReason ?? 'site_down';
    const forced = draft.forced === true;
    // \u0001 stands for null: no name has it (a site named "null" must not share null's transition).
    d.transition = alike(ctx, `move\u0000${from ?? '\u0001'}\u0000${to ?? '\u0001'}\u0000${reason}\u0000${forced}`,
      (): Transition => ({ from, to, reason, ...(forced ? { forced: true } : {}) }));
  }
  return freezeDecision(d);
}

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

// Every field of a decision is one finish() copies: adding one to RouteDecision
// without copying it here fails to compile.
const FINISH_COPIES = {
  name: true, eligible: true, preferred: true, state: true, active: true, weights: true, reason: true, sinceMs: true,
  blocked: true, holdDownFromMs: true, pendingFailover: true, ramp: true, pinnedTo: true, passiveIgnored: true, transition: true,
} as const satisfies Record<keyof RouteDecision, true>;
void FINISH_COPIES;

/** A decision is frozen to the leaves as it is made: the table need not walk the old ones again. */
function freezeDecision(d: RouteDecision): RouteDecision {
  for (const w of d.weights) Object.freeze(w);
  Object.freeze(d.weights);
  Object.freeze(d.eligible);
  if (d.blocked) Object.freeze(d.blocked);
  if (d.pendingFailover) Object.freeze(d.pendingFailover);
  if (d.ramp) Object.freeze(d.ramp);
  if (d.transition) Object.freeze(d.transition);
  return Object.freeze(d);
}

function lowerPriorityRecovering(route: RoutePolicy, ctx: Context): readonly RoutePolicy[] {
  const lowest = ctx.recovering;
  return lowest !== null && lowest.priority < route.priority ? lowest.routes : [];
}

function noteRecovering(route: RoutePolicy, decision: RouteDecision, ctx: Context): void {
  if (!RECOVERING.has(decision.state)) return;
  if (ctx.recovering === null) ctx.recovering = { priority: route.priority, routes: [route] };
  else if (ctx.recovering.priority === route.priority) ctx.recovering.routes.push(route);
}

/** `a, b, c` for a few names; a level of thousands of routes is named by its first ones and a count. */
function listNames(routes: readonly RoutePolicy[]): string {
  const SHOWN = 10;
  const names = routes.slice(0, SHOWN).map((r) => r.name).join(', ');
  return routes.length > SHOWN ? `${names} and ${routes.length - SHOWN} more` : names;
}

function approvedSince(approval: Approval | undefined, sinceMs: number): boolean {
  return approval !== undefined && approval.atMs >= sinceMs;
}

function nextWake(index: PolicyIndex, routes: readonly RouteDecision[], inputs: DecisionInputs): number | null {
  let next = Infinity;
  const now = inputs.nowMs;
  for (const d of routes) {
    const ramping = d.state === 'ramping' && d.ramp !== undefined;
    const holding = d.blocked?.code === 'holddown' && d.holdDownFromMs !== undefined;
    if (!ramping && !holding) continue;
    const fb = index.routes.get(d.name)!.failback;
    if (ramping) next = Math.min(next, futureOnly(d.ramp!.stepStartedMs + fb.stepMs, now));
    if (holding) {
      next = Math.min(next, futureOnly(d.holdDownFromMs! + fb.holdDownMs, now));
      const verdict = inputs.integrity.get(d.name);
      if (verdict?.ok) next = Math.min(next, futureOnly(verdict.sinceMs + fb.holdDownMs, now));
    }
  }
  return Number.isFinite(next) ? next : null;
}

function futureOnly(atMs: number, nowMs: number): number {
  // A boundary already passed was handled by this very decision; waking for it
  // again would spin.
  return atMs > nowMs ? atMs : Infinity;
}

function rank(route: RoutePolicy, site: string): number {
  return route.sites.indexOf(site);
}

function healthOf(site: string, ctx: Context): SiteHealth | undefined {
  return ctx.inputs.health.get(site);
}

function isUp(site: string, ctx: Context): boolean {
  return healthOf(site, ctx)?.status === 'up';
}

/**
 * Up, or not probed yet (a site just added by a reload is given the benefit of
 * the doubt; passive detection catches it at once if it is dead), and not drained.
 */
function isEligible(site: string, ctx: Context): boolean {
  return healthOf(site, ctx)?.status !== 'down' && drainedBy(site, ctx) === null;
}

function drainedBy(site: string, ctx: Context): string | null {
  const { drainedSites, drainedBuildings } = ctx.inputs.overrides;
  if (drainedSites.has(site)) return 'site drained';
  const building = ctx.index.sites.get(site)?.building;
  if (building !== undefined && drainedBuildings.has(building)) return `building ${building} drained`;
  return null;
}

/** A site in words, worked out once per decision (thousands of routes may name the same site). */
function describeSite(site: string, ctx: Context): string {
  let words = ctx.described.get(site);
  if (words === undefined) {
    words = describeSiteNow(site, ctx);
    ctx.described.set(site, words);
  }
  return words;
}

function describeSiteNow(site: string, ctx: Context): string {
  const drain = drainedBy(site, ctx);
  if (drain) return `${site} ${drain}`;
  const h = healthOf(site, ctx);
  if (!h) return `${site} unknown`;
  return `${site} ${h.status} (${h.reason})`;
}

function seconds(ms: number): string {
  const s = Math.max(0, ms) / 1000;
  return `${Number.isInteger(s) ? s : s.toFixed(1)}s`;
}
