// The control plane: owns every input of the routing decision (site health,
// runtime drains, pins, approvals, integrity verdicts), re-runs decideRoutes
// when one changes, and publishes the new frozen table. Data flows one way:
// inputs -> decideRoutes -> table -> listeners (proxy, verifier, events). The
// data plane only reads `table`.
import type { Logger } from './logger.js';
import type { Policy } from './config/policy.js';
import { initialHealth, stepHealth, type HealthEvent, type SiteHealth } from './health/health-state.js';
import { decideRoutes } from './routing/decide-routes.js';
import type {
  Approval, IntegrityVerdict, Overrides, RouteDecision, RouteTable,
} from './routing/route-table.js';
import type { Metrics } from './metrics/metrics.js';
import type {
  ControlResult, DrainTarget, GatewayEvent, RouteStatus, SiteStatus, StatusDocument,
} from './admin/admin-control.js';

export interface ControlPlaneListener {
  /** A new table is in place (already readable through `table`). */
  tableChanged?(table: RouteTable, prev: RouteTable): void;
  /** A site's verdict became down (after the new table is in place). */
  siteDown?(site: string): void;
  event?(event: GatewayEvent): void;
}

export interface ControlPlaneDeps {
  readonly policy: Policy;
  readonly logger: Logger;
  readonly metrics: Metrics;
  readonly now?: () => number;
  readonly version?: string;
  /** Most recent events kept for /status. */
  readonly eventLimit?: number;
}

export interface RuntimeOverrides {
  readonly drainedSites: readonly string[];
  readonly drainedBuildings: readonly string[];
  readonly pins: Readonly<Record<string, string>>;
}

export class ControlPlane {
  #policy: Policy;
  #table: RouteTable;
  readonly #logger: Logger;
  readonly #metrics: Metrics;
  readonly #now: () => number;
  readonly #version: string;
  readonly #eventLimit: number;
  readonly #health = new Map<string, SiteHealth>();
  readonly #integrity = new Map<string, IntegrityVerdict>();
  // Runtime overrides (admin API, shared store); policy drains are added on top.
  readonly #drainedSites = new Set<string>();
  readonly #drainedBuildings = new Set<string>();
  readonly #pins = new Map<string, string>();
  readonly #failbackApprovals = new Map<string, Approval>();
  readonly #failoverApprovals = new Map<string, Approval>();
  readonly #events: GatewayEvent[] = [];
  readonly #listeners = new Set<ControlPlaneListener>();
  #wakeTimer: NodeJS.Timeout | undefined;
  #closed = false;
  #stateStoreUp: boolean | undefined;

  constructor(deps: ControlPlaneDeps) {
    this.#policy = deps.policy;
    this.#logger = deps.logger;
    this.#metrics = deps.metrics;
    this.#now = deps.now ?? Date.now;
    this.#version = deps.version ?? '0.0.0';
    this.#eventLimit = deps.eventLimit ?? 100;
    const now = this.#now();
    for (const site of this.#policy.sites) this.#health.set(site.name, initialHealth(now));
    this.#table = this.#decide(undefined);
    this.#scheduleWake();
  }

  get table(): RouteTable {
    return this.#table;
  }

  get policy(): Policy {
    return this.#policy;
  }

  health(site: string): SiteHealth | undefined {
    return this.#health.get(site);
  }

  integrity(): ReadonlyMap<string, IntegrityVerdict> {
    return this.#integrity;
  }

  subscribe(listener: ControlPlaneListener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  // ---- inputs -------------------------------------------------------------

  /** An active probe finished. */
  probeResult(site: string, passed: boolean, detail: string): void {
    this.#stepSite(site, passed ? { kind: 'probePassed', detail } : { kind: 'probeFailed', detail });
  }

  /** Live traffic to a site failed (connection failure, timeout, 5xx burst). */
  passiveFailure(site: string, detail: string): void {
    this.#stepSite(site, { kind: 'passiveFailed', detail });
  }

  /** A verdict from outside (shared store quorum): adopted as is. */
  forceHealth(site: string, status: 'up' | 'down', detail: string): void {
    this.#stepSite(site, { kind: 'forced', status, detail });
  }

  integrityVerdict(route: string, verdict: IntegrityVerdict): void {
    const prev = this.#integrity.get(route);
    this.#integrity.set(route, verdict);
    if (prev?.ok !== verdict.ok) {
      this.#record({
        type: verdict.ok ? 'integrityMatched' : 'integrityMismatched', route,
        message: `route ${route} integrity ${verdict.ok ? 'matches' : 'check failed'}: ${verdict.detail}`,
      }, verdict.ok ? 'info' : 'warn');
    }
    this.#recompute();
  }

  forgetIntegrity(route: string): void {
    if (this.#integrity.delete(route)) this.#recompute();
  }

  setStateStoreUp(up: boolean | undefined): void {
    this.#stateStoreUp = up;
  }

  get stateStoreUp(): boolean | undefined {
    return this.#stateStoreUp;
  }

  drain(target: DrainTarget): ControlResult {
    const known = this.#checkDrainTarget(target);
    if (!known.ok) return known;
    const set = target.kind === 'site' ? this.#drainedSites : this.#drainedBuildings;
    if (set.has(target.name)) return { ok: true, message: `${target.kind} ${target.name} already drained` };
    set.add(target.name);
    this.#record({ type: 'drained', site: target.kind === 'site' ? target.name : undefined,
      message: `${target.kind} ${target.name} drained: no new requests will reach it`, reason: target.kind });
    this.#recompute();
    return { ok: true, message: `${target.kind} ${target.name} drained` };
  }

  undrain(target: DrainTarget): ControlResult {
    const known = this.#checkDrainTarget(target);
    if (!known.ok) return known;
    const set = target.kind === 'site' ? this.#drainedSites : this.#drainedBuildings;
    const inPolicy = target.kind === 'site'
      ? this.#policy.drain.sites.includes(target.name)
      : this.#policy.drain.buildings.includes(target.name);
    if (!set.delete(target.name)) {
      return inPolicy
        ? { ok: false, code: 'conflict', message: `${target.kind} ${target.name} is drained by the policy file; edit drain: in the policy and reload` }
        : { ok: true, message: `${target.kind} ${target.name} was not drained` };
    }
    this.#record({ type: 'undrained', site: target.kind === 'site' ? target.name : undefined,
      message: `${target.kind} ${target.name} undrained`, reason: target.kind });
    this.#recompute();
    const still = inPolicy ? ' (still drained by the policy file)' : '';
    return { ok: true, message: `${target.kind} ${target.name} undrained${still}` };
  }

  pin(route: string, site: string): ControlResult {
    const r = this.#policy.routes.find((x) => x.name === route);
    if (!r) return { ok: false, code: 'not_found', message: `unknown route ${route}` };
    if (!this.#policy.sites.some((s) => s.name === site)) return { ok: false, code: 'not_found', message: `unknown site ${site}` };
    if (!r.sites.includes(site)) {
      return { ok: false, code: 'bad_request', message: `site ${site} is not one of route ${route}'s sites (${r.sites.join(', ')})` };
    }
    this.#pins.set(route, site);
    this.#record({ type: 'pinned', route, site, message: `route ${route} pinned to ${site}` });
    this.#recompute();
    return { ok: true, message: `route ${route} pinned to ${site}` };
  }

  unpin(route: string): ControlResult {
    if (!this.#policy.routes.some((x) => x.name === route)) return { ok: false, code: 'not_found', message: `unknown route ${route}` };
    if (!this.#pins.delete(route)) return { ok: true, message: `route ${route} was not pinned` };
    this.#record({ type: 'unpinned', route, message: `route ${route} unpinned` });
    this.#recompute();
    return { ok: true, message: `route ${route} unpinned` };
  }

  approveFailback(route: string, force: boolean): ControlResult {
    const d = this.#table.byName.get(route);
    if (!d) return { ok: false, code: 'not_found', message: `unknown route ${route}` };
    if (!d.preferred || d.active === d.preferred) {
      return { ok: false, code: 'conflict', message: `route ${route} has no failback pending (${d.state}: ${d.reason})` };
    }
    this.#failbackApprovals.set(route, { atMs: this.#now(), force });
    this.#record({
      type: force ? 'failbackForced' : 'failbackApproved', route,
      message: force
        ? `route ${route} failback to ${d.preferred} FORCED by an operator: hold-down, integrity and priority gates skipped`
        : `route ${route} failback to ${d.preferred} approved by an operator (gates still apply)`,
    }, force ? 'warn' : 'info');
    this.#recompute();
    const now = this.#table.byName.get(route)!;
    return { ok: true, message: `failback of ${route} approved; now ${now.state}: ${now.reason}` };
  }

  approveFailover(route: string): ControlResult {
    const d = this.#table.byName.get(route);
    if (!d) return { ok: false, code: 'not_found', message: `unknown route ${route}` };
    if (!d.pendingFailover) return { ok: false, code: 'conflict', message: `route ${route} has no failover pending (${d.state})` };
    this.#failoverApprovals.set(route, { atMs: this.#now(), force: false });
    this.#record({ type: 'failoverApproved', route, message: `route ${route} failover to ${d.pendingFailover.to} approved by an operator` });
    this.#recompute();
    return { ok: true, message: `route ${route} failed over to ${this.#table.byName.get(route)!.active}` };
  }

  /** Swap in a new, already validated policy. Health of unchanged sites survives. */
  replacePolicy(policy: Policy): void {
    const now = this.#now();
    const old = new Map(this.#policy.sites.map((s) => [s.name, s]));
    for (const site of policy.sites) {
      const before = old.get(site.name);
      // Same address: same building, same verdict. A moved site starts over.
      if (!before || before.url !== site.url) this.#health.set(site.name, initialHealth(now));
    }
    for (const name of old.keys()) if (!policy.sites.some((s) => s.name === name)) this.#health.delete(name);
    const routeNames = new Set(policy.routes.map((r) => r.name));
    const siteNames = new Set(policy.sites.map((s) => s.name));
    for (const m of [this.#pins, this.#failbackApprovals, this.#failoverApprovals, this.#integrity]) {
      for (const route of [...m.keys()]) if (!routeNames.has(route)) m.delete(route);
    }
    for (const [route, site] of [...this.#pins]) if (!siteNames.has(site)) this.#pins.delete(route);
    for (const site of [...this.#drainedSites]) if (!siteNames.has(site)) this.#drainedSites.delete(site);
    this.#policy = policy;
    this.#recompute();
  }

  /** Runtime overrides, for a shared store to persist. */
  overrides(): RuntimeOverrides {
    return {
      drainedSites: [...this.#drainedSites].sort(),
      drainedBuildings: [...this.#drainedBuildings].sort(),
      pins: Object.fromEntries(this.#pins),
    };
  }

  effectiveDrains(): { sites: ReadonlySet<string>; buildings: ReadonlySet<string> } {
    return {
      sites: new Set([...this.#policy.drain.sites, ...this.#drainedSites]),
      buildings: new Set([...this.#policy.drain.buildings, ...this.#drainedBuildings]),
    };
  }

  events(): readonly GatewayEvent[] {
    return this.#events;
  }

  /** Record an event that happened outside the decision (reloads, store outages). */
  recordEvent(event: Omit<GatewayEvent, 'time'>, level: 'info' | 'warn' | 'error' = 'info'): void {
    this.#record(event, level);
  }

  status(): StatusDocument {
    const drains = this.effectiveDrains();
    const iso = (ms: number) => new Date(ms).toISOString();
    const routes: RouteStatus[] = this.#table.routes.map((d) => {
      const r = this.#policy.routes.find((x) => x.name === d.name)!;
      const v = this.#integrity.get(d.name);
      return {
        name: d.name, priority: r.priority, sites: r.sites, state: d.state, active: d.active,
        weights: d.weights, reason: d.reason, since: iso(d.sinceMs),
        pendingFailover: d.pendingFailover
          ? { from: d.pendingFailover.from, to: d.pendingFailover.to, since: iso(d.pendingFailover.sinceMs) }
          : null,
        pendingFailback: d.state === 'awaiting-approval',
        blocked: d.blocked ?? null,
        pinnedTo: d.pinnedTo ?? null,
        integrity: v ? { ok: v.ok, detail: v.detail, since: iso(v.sinceMs) } : null,
      };
    });
    const sites: SiteStatus[] = this.#policy.sites.map((s) => {
      const h = this.#health.get(s.name) ?? initialHealth(this.#now());
      const drainedBy: ('site' | 'building')[] = [];
      if (drains.sites.has(s.name)) drainedBy.push('site');
      if (drains.buildings.has(s.building)) drainedBy.push('building');
      return {
        name: s.name, building: s.building, url: s.url, health: h.status, reason: h.reason,
        since: iso(h.sinceMs), drained: drainedBy.length > 0, drainedBy,
      };
    });
    return {
      version: this.#version,
      policyFile: this.#policy.file,
      tableVersion: this.#table.version,
      routes, sites,
      drains: { sites: [...drains.sites].sort(), buildings: [...drains.buildings].sort() },
      stateStore: { kind: this.#policy.state ? 'redis' : 'memory', up: this.#stateStoreUp !== false },
      events: this.#events,
    };
  }

  close(): void {
    this.#closed = true;
    clearTimeout(this.#wakeTimer);
    this.#listeners.clear();
  }

  // ---- internals ----------------------------------------------------------

  #checkDrainTarget(target: DrainTarget): ControlResult {
    const known = target.kind === 'site'
      ? this.#policy.sites.some((s) => s.name === target.name)
      : this.#policy.sites.some((s) => s.building === target.name);
    return known
      ? { ok: true, message: '' }
      : { ok: false, code: 'not_found', message: `unknown ${target.kind} ${target.name}` };
  }

  #stepSite(site: string, event: HealthEvent): void {
    const prev = this.#health.get(site);
    const policySite = this.#policy.sites.find((s) => s.name === site);
    if (!prev || !policySite) return; // a probe that finished after its site was removed
    const step = stepHealth(prev, event, policySite.health, this.#now());
    this.#health.set(site, step.health);
    if (!step.changed) return;
    const { status, reason } = step.health;
    this.#record({
      type: status === 'up' ? 'siteUp' : 'siteDown', site,
      message: `site ${site} ${status}: ${reason}`, reason,
    }, status === 'down' ? 'warn' : 'info');
    this.#recompute();
    if (status === 'down') for (const l of this.#listeners) l.siteDown?.(site);
  }

  #overridesNow(): Overrides {
    const drains = this.effectiveDrains();
    return {
      drainedSites: drains.sites,
      drainedBuildings: drains.buildings,
      pins: new Map(this.#pins),
      failbackApprovals: new Map(this.#failbackApprovals),
      failoverApprovals: new Map(this.#failoverApprovals),
    };
  }

  #decide(prev: RouteTable | undefined): RouteTable {
    return decideRoutes({
      policy: this.#policy,
      health: new Map(this.#health),
      overrides: this.#overridesNow(),
      integrity: new Map(this.#integrity),
      prev,
      nowMs: this.#now(),
    });
  }

  #recompute(): void {
    if (this.#closed) return;
    const prev = this.#table;
    const next = this.#decide(prev);
    this.#table = next;
    this.#scheduleWake();
    let changed = next.policy !== prev.policy;
    // Report in decision order (priority first), so a level finishing is logged
    // before the next level starting in the same decision.
    const priority = new Map(next.policy.routes.map((r) => [r.name, r.priority]));
    const ordered = [...next.routes].sort((a, b) => priority.get(a.name)! - priority.get(b.name)!);
    for (const d of ordered) {
      const before = prev.byName.get(d.name);
      if (!before || before.state !== d.state || before.active !== d.active || !sameWeights(before, d)
        || before.reason !== d.reason) changed = true;
      this.#reportRoute(before, d);
    }
    if (changed) for (const l of this.#listeners) l.tableChanged?.(next, prev);
  }

  /** One event and one log line per decision change, with its reason. */
  #reportRoute(before: RouteDecision | undefined, d: RouteDecision): void {
    const route = d.name;
    if (d.transition) {
      const { from, to, reason, forced } = d.transition;
      this.#metrics.failovers.inc({ route, from: from ?? 'none', to: to ?? 'none', reason });
      // Approvals are spent once the route has moved.
      this.#failoverApprovals.delete(route);
      if (d.state === 'preferred' || reason !== 'failback') this.#failbackApprovals.delete(route);
      const type = reason === 'failback' ? 'failedBack' : to === null ? 'routeUnavailable' : 'failedOver';
      const words = to === null
        ? `route ${route} unavailable: ${d.reason}`
        : `route ${route} moved ${from ?? 'nowhere'} -> ${to} (${reason}${forced ? ', forced' : ''}): ${d.reason}`;
      this.#record({ type, route, from, to, reason, message: words }, to === null ? 'error' : 'warn');
      return;
    }
    if (!before || (before.state === d.state && before.ramp?.percent === d.ramp?.percent
      && before.blocked?.code === d.blocked?.code)) return;
    const types: Partial<Record<RouteDecision['state'], string>> = {
      ramping: before.state === 'ramping' ? 'rampStepped' : 'failbackStarted',
      blocked: 'failbackBlocked',
      'pending-failover': 'failoverPending',
      'awaiting-approval': 'failbackAwaitingApproval',
      'holding-down': 'failbackHeld',
      verifying: 'failbackHeld',
      pinned: 'routePinned',
      'failed-over': 'failbackStopped',
      preferred: 'routeRestored',
      unavailable: 'routeUnavailable',
    };
    this.#record({
      type: types[d.state] ?? 'routeChanged', route, from: d.active, to: d.ramp?.to ?? d.active,
      reason: d.blocked?.code ?? d.state, message: `route ${route} ${d.state}: ${d.reason}`,
    }, d.state === 'blocked' || d.state === 'pending-failover' ? 'warn' : 'info');
  }

  #record(event: Omit<GatewayEvent, 'time'>, level: 'info' | 'warn' | 'error' = 'info'): void {
    const full: GatewayEvent = Object.freeze({ time: new Date(this.#now()).toISOString(), ...stripUndefined(event) });
    this.#events.push(full);
    if (this.#events.length > this.#eventLimit) this.#events.splice(0, this.#events.length - this.#eventLimit);
    const { message, time: _time, ...fields } = full;
    this.#logger[level]({ event: fields.type, ...fields }, message);
    for (const l of this.#listeners) l.event?.(full);
  }

  #scheduleWake(): void {
    clearTimeout(this.#wakeTimer);
    this.#wakeTimer = undefined;
    const at = this.#table.nextWakeMs;
    if (at === null || this.#closed) return;
    // +1ms: the decision compares with >=, so wake just past the boundary.
    const delay = Math.max(0, at - this.#now()) + 1;
    this.#wakeTimer = setTimeout(() => this.#recompute(), delay);
    this.#wakeTimer.unref();
  }
}

function sameWeights(a: RouteDecision, b: RouteDecision): boolean {
  return a.weights.length === b.weights.length
    && a.weights.every((w, i) => w.site === b.weights[i]!.site && w.weight === b.weights[i]!.weight);
}

function stripUndefined<T extends object>(o: T): T {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;
}
