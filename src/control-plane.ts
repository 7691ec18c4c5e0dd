// The control plane: owns every input of the routing decision (site health,
// runtime drains, pins, approvals, integrity verdicts), re-runs decideRoutes
// when one changes, and publishes the new frozen table. Data flows one way:
// inputs -> decideRoutes -> table -> listeners (proxy, verifier, events). The
// data plane only reads `table`.
import type { Logger } from './logger.js';
import { indexPolicy, type Policy } from './config/policy.js';
import { initialHealth, stepHealth, type HealthEvent, type SiteHealth } from './health/health-state.js';
import { combineHealth } from './health/quorum.js';
import { decideRoutes, decisionOrder } from './routing/decide-routes.js';
import { describeRoute } from './routing/describe-changes.js';
import type {
  Approval, IntegrityVerdict, Overrides, RouteDecision, RouteTable,
} from './routing/route-table.js';
import { ownValue, type SharedState, type StateOp, type StateStore } from './state/state-store.js';
import type { Metrics } from './metrics/metrics.js';
import type {
  ControlResult, DrainTarget, GatewayEvent, RouteStatus, SiteStatus, StatusDocument,
} from './admin/admin-control.js';

export interface ControlPlaneListener {
  /** A new table is in place (already readable through `table`). */
  tableChanged?(table: RouteTable, prev: RouteTable): void;
  /** A site's verdict became down (after the new table is in place). */
  siteDown?(site: string): void;
  /** Live traffic to a site fails above the ratio: probe it now (its answer decides). */
  siteSuspected?(site: string): void;
  event?(event: GatewayEvent): void;
}

export interface ControlPlaneDeps {
  readonly policy: Policy;
  /** Drains, pins, approvals and other replicas' verdicts (memory or Redis). */
  readonly store: StateStore;
  readonly logger: Logger;
  readonly metrics: Metrics;
  readonly now?: () => number;
  readonly version?: string;
  /** Most recent events kept for /status. */
  readonly eventLimit?: number;
  /** Begin in the first-probe-round phase; the owner calls started() when it ends. */
  readonly starting?: boolean;
}

export class ControlPlane {
  #policy: Policy;
  #table: RouteTable;
  readonly #logger: Logger;
  readonly #metrics: Metrics;
  readonly #now: () => number;
  readonly #version: string;
  readonly #eventLimit: number;
  #iso = { ms: Number.NaN, text: '' };
  readonly #store: StateStore;
  /** This replica's own verdicts (probes and live traffic). */
  readonly #own = new Map<string, SiteHealth>();
  /** What routing uses: own verdicts combined with the other replicas' by quorum. */
  #health = new Map<string, SiteHealth>();
  readonly #integrity = new Map<string, IntegrityVerdict>();
  /** Runtime drains, pins and approvals as the store last reported them; policy drains are added on top. */
  #shared: SharedState;
  readonly #events: GatewayEvent[] = [];
  readonly #listeners = new Set<ControlPlaneListener>();
  #wakeTimer: NodeJS.Timeout | undefined;
  #closed = false;
  #recomputing = false;
  /** An input changed since the table was last decided. */
  #dirty = false;
  /** The coalesced recompute at the end of this turn of the event loop. */
  #flushTimer: NodeJS.Immediate | undefined;
  /** siteDown notices waiting for the decision that has their site down. */
  readonly #siteDowns: Array<() => void> = [];
  /** Until started(): sites are still getting their first verdicts; routes settle without counting as failovers. */
  #starting: boolean;

  constructor(deps: ControlPlaneDeps) {
    this.#policy = deps.policy;
    this.#logger = deps.logger;
    this.#metrics = deps.metrics;
    this.#now = deps.now ?? Date.now;
    this.#version = deps.version ?? '0.0.0';
    this.#eventLimit = deps.eventLimit ?? 100;
    this.#store = deps.store;
    this.#starting = deps.starting ?? false;
    this.#shared = this.#store.snapshot();
    const now = this.#now();
    for (const site of this.#policy.sites) this.#own.set(site.name, initialHealth(now));
    this.#health = this.#combineHealth();
    this.#table = this.#decide(undefined);
    this.#scheduleWake();
    this.#store.onState((state) => {
      this.#shared = state;
      this.#recompute();
    });
    this.#store.onStatus((up) => {
      this.#record({
        type: up ? 'stateStoreUp' : 'stateStoreDown',
        message: up
          ? `state store ${this.#store.kind} reachable again: reconciling`
          : `state store ${this.#store.kind} unreachable: routing on the last known shared state and this replica's own probes`,
      }, up ? 'info' : 'error');
      this.#recompute();
    });
  }

  /**
   * The first probe round is over: from now on a change of active site is a
   * failover. Before, a route moving off a site that was merely not probed yet
   * is the gateway finding its feet, not an incident.
   */
  started(): void {
    this.#starting = false;
  }

  /** Always current: a change not decided yet is decided now (see #recompute). */
  get table(): RouteTable {
    this.#flush();
    return this.#table;
  }

  get policy(): Policy {
    return this.#policy;
  }

  /**
   * This replica's probes doubt the site: a probe is deciding on a suspicion,
   * a probe already failed since the last pass, or the site is down. Cheap, for
   * the request path: re-sends off such a site are not held to its retry budget
   * (a request that timed out on a hung site a moment before the second failed
   * probe must still move).
   */
  inDoubt(site: string): boolean {
    const own = this.#own.get(site);
    return own !== undefined && (own.suspect !== undefined || own.fails > 0 || own.status === 'down');
  }

  health(site: string): SiteHealth | undefined {
    this.#flush();
    return this.#health.get(site);
  }

  integrity(): ReadonlyMap<string, IntegrityVerdict> {
    return this.#integrity;
  }

  subscribe(listener: ControlPlaneListener): () => void {
    // siteDown promises the new table is in place: it is delivered right after
    // the coalesced decision that has the site down (a hundred sites failing in
    // one turn is still one decision, then a hundred notices).
    const { siteDown } = listener;
    const wrapped: ControlPlaneListener = {
      ...(listener.tableChanged ? { tableChanged: listener.tableChanged.bind(listener) } : {}),
      ...(listener.event ? { event: listener.event.bind(listener) } : {}),
      ...(listener.siteSuspected ? { siteSuspected: listener.siteSuspected.bind(listener) } : {}),
      ...(siteDown ? {
        siteDown: (site: string) => {
          this.#siteDowns.push(() => siteDown.call(listener, site));
          this.#recompute();
        },
      } : {}),
    };
    this.#listeners.add(wrapped);
    return () => this.#listeners.delete(wrapped);
  }

  // ---- inputs -------------------------------------------------------------

  /** An active probe finished. */
  probeResult(site: string, passed: boolean, detail: string): void {
    this.#stepSite(site, passed ? { kind: 'probePassed', detail } : { kind: 'probeFailed', detail });
  }

  /** Live traffic could not reach a site at all (refused, connect timeout): down at once, on passive evidence. */
  passiveFailure(site: string, detail: string): void {
    this.#stepSite(site, { kind: 'passiveFailed', detail });
  }

  /** Requests to a site fail above the ratio after they were sent: the next probe decides. */
  passiveSuspicion(site: string, detail: string): void {
    this.#stepSite(site, { kind: 'passiveSuspected', detail });
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

  /** undefined when there is no shared store (memory). */
  get stateStoreUp(): boolean | undefined {
    return this.#store.kind === 'memory' ? undefined : this.#store.isUp();
  }

  drain(target: DrainTarget): ControlResult {
    const known = this.#checkDrainTarget(target);
    if (!known.ok) return known;
    if (this.#sharedDrains(target.kind).includes(target.name)) {
      return { ok: true, message: `${target.kind} ${target.name} already drained` };
    }
    this.#record({ type: 'drained', site: target.kind === 'site' ? target.name : undefined,
      message: `${target.kind} ${target.name} drained: no new requests will reach it`, reason: target.kind });
    this.#store.apply({ op: 'drain', kind: target.kind, name: target.name });
    this.#flush();
    return { ok: true, message: `${target.kind} ${target.name} drained` };
  }

  undrain(target: DrainTarget): ControlResult {
    const known = this.#checkDrainTarget(target);
    if (!known.ok) return known;
    const inPolicy = target.kind === 'site'
      ? this.#policy.drain.sites.includes(target.name)
      : this.#policy.drain.buildings.includes(target.name);
    if (!this.#sharedDrains(target.kind).includes(target.name)) {
      return inPolicy
        ? { ok: false, code: 'conflict', message: `${target.kind} ${target.name} is drained by the policy file; edit drain: in the policy and reload` }
        : { ok: true, message: `${target.kind} ${target.name} was not drained` };
    }
    this.#record({ type: 'undrained', site: target.kind === 'site' ? target.name : undefined,
      message: `${target.kind} ${target.name} undrained`, reason: target.kind });
    this.#store.apply({ op: 'undrain', kind: target.kind, name: target.name });
    this.#flush();
    const still = inPolicy ? ' (still drained by the policy file)' : '';
    return { ok: true, message: `${target.kind} ${target.name} undrained${still}` };
  }

  pin(route: string, site: string): ControlResult {
    const index = indexPolicy(this.#policy);
    const r = index.routes.get(route);
    if (!r) return { ok: false, code: 'not_found', message: `unknown route ${route}` };
    if (!index.sites.has(site)) return { ok: false, code: 'not_found', message: `unknown site ${site}` };
    if (!r.sites.includes(site)) {
      return { ok: false, code: 'bad_request', message: `site ${site} is not one of route ${route}'s sites (${r.sites.join(', ')})` };
    }
    this.#record({ type: 'pinned', route, site, message: `route ${route} pinned to ${site}` });
    this.#store.apply({ op: 'pin', route, site });
    this.#flush();
    return { ok: true, message: `route ${route} pinned to ${site}` };
  }

  unpin(route: string): ControlResult {
    if (!indexPolicy(this.#policy).routes.has(route)) return { ok: false, code: 'not_found', message: `unknown route ${route}` };
    if (ownValue(this.#shared.pins, route) === undefined) return { ok: true, message: `route ${route} was not pinned` };
    this.#record({ type: 'unpinned', route, message: `route ${route} unpinned` });
    this.#store.apply({ op: 'unpin', route });
    this.#flush();
    return { ok: true, message: `route ${route} unpinned` };
  }

  approveFailback(route: string, force: boolean): ControlResult {
    const d = this.table.byName.get(route);
    if (!d) return { ok: false, code: 'not_found', message: `unknown route ${route}` };
    if (!d.preferred || d.active === d.preferred) {
      return { ok: false, code: 'conflict', message: `route ${route} has no failback pending (${d.state}: ${d.reason})` };
    }
    this.#record({
      type: force ? 'failbackForced' : 'failbackApproved', route,
      message: force
        ? `route ${route} failback to ${d.preferred} FORCED by an operator: hold-down, integrity and priority gates skipped`
        : `route ${route} failback to ${d.preferred} approved by an operator (gates still apply)`,
    }, force ? 'warn' : 'info');
    const site = d.ramp?.to ?? d.preferred;
    this.#store.apply({ op: 'approveFailback', route, approval: { atMs: this.#now(), force, site } });
    const now = this.table.byName.get(route)!;
    return { ok: true, message: `failback of ${route} approved; now ${now.state}: ${now.reason}` };
  }

  approveFailover(route: string): ControlResult {
    const d = this.table.byName.get(route);
    if (!d) return { ok: false, code: 'not_found', message: `unknown route ${route}` };
    if (!d.pendingFailover) return { ok: false, code: 'conflict', message: `route ${route} has no failover pending (${d.state})` };
    this.#record({ type: 'failoverApproved', route, message: `route ${route} failover to ${d.pendingFailover.to} approved by an operator` });
    this.#store.apply({ op: 'approveFailover', route, approval: { atMs: this.#now(), force: false, site: d.pendingFailover.to } });
    return { ok: true, message: `route ${route} failed over to ${this.table.byName.get(route)!.active}` };
  }

  /** Swap in a new, already validated policy. Health of unchanged sites survives. */
  replacePolicy(policy: Policy): void {
    const now = this.#now();
    const old = new Map(this.#policy.sites.map((s) => [s.name, s]));
    for (const site of policy.sites) {
      const before = old.get(site.name);
      // Same address: same building, same verdict. A moved site starts over.
      if (!before || before.url !== site.url) {
        this.#own.set(site.name, initialHealth(now));
        // A verdict about the old address must not vote on the new one.
        if (before) this.#store.forgetHealth(site.name);
      }
    }
    const kept = indexPolicy(policy).sites;
    for (const name of old.keys()) {
      if (kept.has(name)) continue;
      this.#own.delete(name);
      this.#store.forgetHealth(name);
    }
    // Shared drains and pins naming what this policy lacks stay in the store (other
    // replicas may still run a policy that has them); decideRoutes ignores them.
    const routeNames = new Set(policy.routes.map((r) => r.name));
    for (const route of [...this.#integrity.keys()]) if (!routeNames.has(route)) this.#integrity.delete(route);
    this.#policy = policy;
    this.#recompute();
  }

  /** Runtime drains, pins and approvals as shared by the store. */
  shared(): SharedState {
    return this.#shared;
  }

  effectiveDrains(): { sites: ReadonlySet<string>; buildings: ReadonlySet<string> } {
    return {
      sites: new Set([...this.#policy.drain.sites, ...this.#shared.drainedSites]),
      buildings: new Set([...this.#policy.drain.buildings, ...this.#shared.drainedBuildings]),
    };
  }

  events(): readonly GatewayEvent[] {
    this.#flush();
    return this.#events;
  }

  /** Record an event that happened outside the decision (reloads, store outages). */
  recordEvent(event: Omit<GatewayEvent, 'time'>, level: 'info' | 'warn' | 'error' = 'info'): void {
    this.#record(event, level);
  }

  status(): StatusDocument {
    this.#flush();
    const drains = this.effectiveDrains();
    const iso = (ms: number) => new Date(ms).toISOString();
    const index = indexPolicy(this.#policy);
    const routes: RouteStatus[] = this.#table.routes.map((d) => {
      const r = index.routes.get(d.name)!;
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
        passiveIgnored: d.passiveIgnored ?? null,
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
      replica: this.#store.replicaId,
      policyFile: this.#policy.file,
      tableVersion: this.#table.version,
      routes, sites,
      drains: { sites: [...drains.sites].sort(), buildings: [...drains.buildings].sort() },
      stateStore: { kind: this.#store.kind, up: this.#store.isUp() },
      events: this.#events,
    };
  }

  close(): void {
    this.#closed = true;
    clearTimeout(this.#wakeTimer);
    clearImmediate(this.#flushTimer);
    this.#flushTimer = undefined;
    this.#listeners.clear();
  }

  // ---- internals ----------------------------------------------------------

  #checkDrainTarget(target: DrainTarget): ControlResult {
    const index = indexPolicy(this.#policy);
    const known = target.kind === 'site' ? index.sites.has(target.name) : index.buildings.has(target.name);
    return known
      ? { ok: true, message: '' }
      : { ok: false, code: 'not_found', message: `unknown ${target.kind} ${target.name}` };
  }

  #sharedDrains(kind: 'site' | 'building'): readonly string[] {
    return kind === 'site' ? this.#shared.drainedSites : this.#shared.drainedBuildings;
  }

  #stepSite(site: string, event: HealthEvent): void {
    const prev = this.#own.get(site);
    const policySite = indexPolicy(this.#policy).sites.get(site);
    if (!prev || !policySite) return; // a probe that finished after its site was removed
    const step = stepHealth(prev, event, policySite.health, this.#now());
    this.#own.set(site, step.health);
    this.#noteSuspicion(site, prev, step.health);
    if (!step.changed) return;
    const { status, sinceMs, reason, passiveOnly } = step.health;
    if (status !== 'unknown') this.#store.publishHealth(site, { status, sinceMs, reason, ...(passiveOnly ? { passiveOnly } : {}) });
    this.#recompute();
    // Requests waiting on a site this replica just saw fail are re-sent, whatever
    // the quorum says: this replica's own connections to it are failing.
    if (status === 'down' && prev.status !== 'down') for (const l of this.#listeners) l.siteDown?.(site);
  }

  /** A suspicion raised asks for a probe now; the probe's answer is counted and said once. */
  #noteSuspicion(site: string, prev: SiteHealth, next: SiteHealth): void {
    if (prev.suspect === undefined && next.suspect !== undefined) {
      this.#record({
        type: 'siteSuspected', site, reason: next.suspect,
        message: `site ${site} suspect: ${next.suspect}; probing it now (it goes down only if the probe fails too)`,
      }, 'warn');
      for (const l of this.#listeners) l.siteSuspected?.(site);
      return;
    }
    if (prev.suspect === undefined || next.suspect !== undefined) return;
    const confirmed = next.status === 'down';
    this.#metrics.passiveSuspicions.inc({ site, result: confirmed ? 'confirmed' : 'refuted' });
    if (!confirmed) {
      this.#record({
        type: 'suspicionRefuted', site, reason: prev.suspect,
        message: `site ${site} stays up: a probe passed, so the failing requests (${prev.suspect}) were the requests' own`,
      });
    }
  }

  /** Own verdicts combined with the other live replicas' (ignored while the store is unreachable). */
  #combineHealth(): Map<string, SiteHealth> {
    const now = this.#now();
    const useOthers = this.#store.isUp();
    const combined = new Map<string, SiteHealth>();
    for (const [site, own] of this.#own) {
      const others = useOthers
        ? Object.entries(ownValue(this.#shared.health, site) ?? {}).filter(([replica]) => replica !== this.#store.replicaId).map(([, v]) => v)
        : [];
      combined.set(site, combineHealth(own, others, this.#health.get(site), now));
    }
    return combined;
  }

  /** One event per change of the verdict routing uses. */
  #reportHealth(prev: ReadonlyMap<string, SiteHealth>, next: ReadonlyMap<string, SiteHealth>): void {
    for (const [site, h] of next) {
      const before = prev.get(site);
      if (!before || before.status === h.status || h.status === 'unknown') continue;
      this.#record({
        type: h.status === 'up' ? 'siteUp' : 'siteDown', site,
        message: `site ${site} ${h.status}: ${h.reason}`, reason: h.reason,
      }, h.status === 'down' ? 'warn' : 'info');
    }
  }

  #overridesNow(): Overrides {
    const drains = this.effectiveDrains();
    return {
      drainedSites: drains.sites,
      drainedBuildings: drains.buildings,
      pins: new Map(Object.entries(this.#shared.pins)),
      failbackApprovals: new Map<string, Approval>(Object.entries(this.#shared.failbackApprovals)),
      failoverApprovals: new Map<string, Approval>(Object.entries(this.#shared.failoverApprovals)),
    };
  }

  #decide(prev: RouteTable | undefined, settle = false): RouteTable {
    return decideRoutes({
      settle,
      policy: this.#policy,
      health: new Map(this.#health),
      overrides: this.#overridesNow(),
      integrity: new Map(this.#integrity),
      prev,
      nowMs: this.#now(),
    });
  }

  /**
   * An input changed: decide again once, at the end of this turn of the event
   * loop, however many inputs change meanwhile (a reload's first probe round, a
   * burst of Redis messages). Whoever reads the table before then (a request,
   * an admin command, /status) gets it decided on the spot, so no reader ever
   * sees a table older than its inputs.
   */
  #recompute(): void {
    if (this.#closed) return;
    this.#dirty = true;
    if (this.#recomputing || this.#flushTimer !== undefined) return;
    this.#flushTimer = setImmediate(() => {
      this.#flushTimer = undefined;
      this.#flush();
    });
  }

  #flush(): void {
    // Inside a decision (a listener reading the table, or a store answering
    // synchronously from apply()), the loop below picks the change up.
    if (!this.#dirty || this.#recomputing || this.#closed) return;
    clearImmediate(this.#flushTimer);
    this.#flushTimer = undefined;
    this.#recomputing = true;
    const spent: StateOp[] = [];
    try {
      do {
        this.#dirty = false;
        this.#recomputeOnce(spent);
      } while (this.#dirty && !this.#closed);
    } finally {
      this.#recomputing = false;
    }
    for (const op of spent) this.#store.apply(op);
    for (const notify of this.#siteDowns.splice(0)) notify();
  }

  #recomputeOnce(spent: StateOp[]): void {
    const prevHealth = this.#health;
    this.#health = this.#combineHealth();
    this.#reportHealth(prevHealth, this.#health);
    const prev = this.#table;
    const next = this.#decide(prev, this.#starting);
    this.#table = next;
    this.#scheduleWake();
    let changed = next.policy !== prev.policy;
    // Report in decision order (priority first), so a level finishing is logged
    // before the next level starting in the same decision. A decision kept as
    // it was is the same object: nothing to compare or report (a flap of one
    // site costs the routes that list it, not the whole policy).
    const moves: Array<{ event: GatewayEvent; level: LogLevel }> = [];
    for (const route of decisionOrder(next.policy)) {
      const d = next.byName.get(route.name)!;
      const before = prev.byName.get(d.name);
      if (before === d) continue;
      if (!before || before.state !== d.state || before.active !== d.active || !sameWeights(before, d)
        || before.reason !== d.reason || !sameSites(before.eligible, d.eligible)) changed = true;
      if (!this.#starting) this.#reportRoute(before, d, spent, moves);
    }
    this.#logMoves(moves);
    if (changed) for (const l of this.#listeners) l.tableChanged?.(next, prev);
  }

  /** One event and one log line per decision change, with its reason. */
  #reportRoute(before: RouteDecision | undefined, d: RouteDecision, spent: StateOp[], moves: Array<{ event: GatewayEvent; level: LogLevel }>): void {
    const route = d.name;
    if (d.transition) {
      const { from, to, reason } = d.transition;
      this.#metrics.failovers.inc({ route, from: from ?? 'none', to: to ?? 'none', reason });
      // Approvals are spent once the route has moved.
      if (ownValue(this.#shared.failoverApprovals, route)) spent.push({ op: 'clearApproval', kind: 'failover', route });
      // An approval was for one move; whatever moved, the next move needs its own.
      if (ownValue(this.#shared.failbackApprovals, route)) spent.push({ op: 'clearApproval', kind: 'failback', route });
    }
    // What happened, in words, is worked out once by the pure describeRoute.
    const described = describeRoute(before, d);
    if (described) moves.push({ event: this.#record(described.event, described.level, false), level: described.level });
  }

  /**
   * One log line per route event, as for any event; but a decision that moves
   * many routes at once (a building's site under two thousand routes) logs one
   * line per kind of move, naming every route in it: the events, /status and
   * webhooks still get one entry per route, and the decision does not hold
   * requests up writing thousands of lines.
   */
  #logMoves(moves: ReadonlyArray<{ event: GatewayEvent; level: LogLevel }>): void {
    if (moves.length <= LOG_EACH_UP_TO) {
      for (const { event, level } of moves) this.#log(event, level);
      return;
    }
    const groups = new Map<string, { event: GatewayEvent; level: LogLevel; routes: string[] }>();
    for (const { event, level } of moves) {
      const key = `${event.type}\u0000${event.from ?? ''}\u0000${event.to ?? ''}\u0000${event.reason ?? ''}`;
      const group = groups.get(key);
      if (group) group.routes.push(event.route!);
      else groups.set(key, { event, level, routes: [event.route!] });
    }
    for (const { event, level, routes } of groups.values()) {
      const { type, from, to, reason } = event;
      const shown = routes.length > 10 ? `${routes.slice(0, 10).join(', ')} and ${routes.length - 10} more` : routes.join(', ');
      this.#logger[level]({ event: type, from, to, reason, count: routes.length, routes },
        `${routes.length} routes ${type} (${from ?? 'none'} -> ${to ?? 'none'}, ${reason}): ${shown}`);
    }
  }


  #record(event: Omit<GatewayEvent, 'time'>, level: LogLevel = 'info', log = true): GatewayEvent {
    const full: GatewayEvent = Object.freeze({ time: this.#isoNow(), ...stripUndefined(event) });
    this.#events.push(full);
    if (this.#events.length > this.#eventLimit) this.#events.splice(0, this.#events.length - this.#eventLimit);
    if (log) this.#log(full, level);
    for (const l of this.#listeners) l.event?.(full);
    return full;
  }

  #log(event: GatewayEvent, level: LogLevel): void {
    const { message, time: _time, ...fields } = event;
    this.#logger[level]({ event: fields.type, ...fields }, message);
  }

  /** The clock as ISO text, formatted once per millisecond (a decision stamps thousands of events alike). */
  #isoNow(): string {
    const now = this.#now();
    if (now !== this.#iso.ms) this.#iso = { ms: now, text: new Date(now).toISOString() };
    return this.#iso.text;
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

/** Retry candidates are part of what the data plane reads (worker processes get only notified tables). */
function sameSites(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((s, i) => s === b[i]);
}

function stripUndefined<T extends object>(o: T): T {
  const out: Record<string, unknown> = {};
  for (const key in o) {
    if (Object.hasOwn(o, key) && o[key] !== undefined) out[key] = o[key];
  }
  return out as T;
}

type LogLevel = 'info' | 'warn' | 'error';

/** A decision moving more routes than this logs one line per kind of move (see #logMoves). */
const LOG_EACH_UP_TO = 20;
