// The control plane: owns every input of the routing decision (site health,
// runtime drains, pins, approvals, integrity verdicts), re-runs decideRoutes
// when one changes, and publishes the new frozen table. Data flows one way:
// inputs -> decideRoutes -> table -> listeners (proxy, verifier, events). The
// data plane only reads `table`.
import type { Logger } from './logger.js';
import { indexPolicy, type Policy } from './config/policy.js';
import { initialHealth, stepHealth, type HealthEvent, type SiteHealth } from './health/health-state.js';
import { combineHealth } from './health/quorum.js';
import { describeHealthChanges } from './health/describe-health.js';
import { decideRoutes, decideRoutesInSteps, decisionOrder, ROUTES_PER_STEP } from './routing/decide-routes.js';
import { describeRoute } from './routing/describe-changes.js';
import type {
  Approval, DecisionInputs, IntegrityVerdict, Overrides, RouteDecision, RouteTable,
} from './routing/route-table.js';
import { ownValue, type SharedState, type StateStore } from './state/state-store.js';
import type { Metrics } from './metrics/metrics.js';
import type { ControlResult, DrainTarget, GatewayEvent, StatusDocument } from './admin/admin-control.js';
import { decideCommand, refusalOrUnchanged, type OperatorCommand } from './admin/operator-commands.js';
import { buildStatus } from './admin/status-document.js';
import { LocalLeadership, type Leadership } from './leader/leadership.js';
import { applyLeadership, withEpoch } from './leader/apply-leadership.js';
import { sameWeights } from './leader/follow-decision.js';

/** Integrity verdicts, owned by the verifier: the control plane only reads them. */
export interface IntegritySource {
  verdicts(): ReadonlyMap<string, IntegrityVerdict>;
}

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
  /** Who decides (default: this replica alone, with a local epoch). */
  readonly leadership?: Leadership;
  /** Integrity verdicts (default: none). The owner calls integrityChanged() when they change. */
  readonly integrity?: IntegritySource;
}

const noIntegrity: IntegritySource = { verdicts: () => new Map() };

/**
 * The table before the first decision of a start (version 0: decided tables
 * count from 1): no route decided yet, and never read as such (every reader
 * decides first while it is the table in place).
 */
function undecidedTable(policy: Policy, nowMs: number): RouteTable {
  return Object.freeze({ version: 0, computedAtMs: nowMs, policy, routes: Object.freeze([]), byName: new Map(), nextWakeMs: null, epoch: 0 });
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
  readonly #integrity: IntegritySource;
  readonly #leadership: Leadership;
  /** What this replica last published as leader (to publish only on change). */
  #publishedRoutes: readonly RouteDecision[] | undefined;
  /** Runtime drains, pins and approvals as the store last reported them; policy drains are added on top. */
  #shared: SharedState;
  readonly #events: GatewayEvent[] = [];
  readonly #listeners = new Set<ControlPlaneListener>();
  #wakeTimer: NodeJS.Timeout | undefined;
  #closed = false;
  /** Inside #advance: a reader there gets the table as it is (the loop picks its change up). */
  #recomputing = false;
  /** An input changed since the table was last decided. */
  #dirty = false;
  /** A decision under way, spread over turns of the event loop (see #advance), and the siteDown notices waiting for it. */
  #job: { readonly steps: Generator<void, void, void>; readonly notices: Array<() => void> } | undefined;
  /** The next slice of decisions, at the end of this turn of the event loop. */
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
    this.#integrity = deps.integrity ?? noIntegrity;
    this.#leadership = deps.leadership ?? new LocalLeadership(this.#store.replicaId, this.#now);
    this.#shared = this.#store.snapshot();
    const now = this.#now();
    for (const site of this.#policy.sites) this.#own.set(site.name, initialHealth(now));
    this.#health = this.#combineHealth();
    if (this.#starting) {
      // Decided when the first probe round ends (started()) or when first read:
      // deciding every route here, on sites not probed yet, was 60 ms of a
      // 10,000-route start, and the round's verdicts decided them all again.
      this.#table = undecidedTable(this.#policy, this.#now());
      this.#dirty = true;
    } else {
      const first = decideRoutes(this.#decisionInputs(undefined, false));
      // A lone gateway starts under a fresh local epoch; a replica with Redis under none until it reads or takes one.
      this.#table = withEpoch(first, this.#leadership.isLeader() ? this.#leadership.publish(first.routes, true) : 0);
    }
    this.#scheduleWake();
    this.#leadership.onPublished(() => this.#recompute());
    this.#leadership.onLeaderChange((change) => {
      // A new leader publishes at once, under the epoch it took the lease with.
      this.#publishedRoutes = undefined;
      this.#recompute();
      if (change.isLeader) this.#logger.info({ epoch: change.epoch }, 'this replica now decides for every replica');
    });
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
    // What the round found, decided once and settled (during the round
    // nothing decides unless someone reads the table: 1,002 sites' first
    // verdicts arriving over many turns were as many decisions of every route).
    this.#flush();
    this.#starting = false;
  }

  /** Always current: a change not decided yet is decided now (see #recompute). */
  get table(): RouteTable {
    this.#flush();
    return this.#table;
  }

  /**
   * The table for the request path: the one in force. A change not decided yet
   * starts being decided now, but a decision already spread over turns of the
   * event loop (thousands of routes) is not finished here: requests would
   * otherwise stall on it, the one thing spreading it avoids. Retries read
   * their next site from it and skip the sites they tried.
   */
  get servingTable(): RouteTable {
    // Version 0 is only ever the undecided table of a start: that decision is made whole.
    if (this.#table.version === 0) this.#flush();
    else if (this.#job === undefined) this.#advance(SLICE_MS);
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

  /** The combined verdict the table in force (or the decision under way) was decided from: does not decide (see servingTable). */
  servingHealth(site: string): SiteHealth | undefined {
    return this.#health.get(site);
  }

  integrity(): ReadonlyMap<string, IntegrityVerdict> {
    return this.#integrity.verdicts();
  }

  get leadership(): Leadership {
    return this.#leadership;
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

  /**
   * The verifier's verdict on a route changed (or was withdrawn): decide again.
   * The verifier owns the verdicts; this only says so and reports a flip.
   */
  integrityChanged(route: string, verdict: IntegrityVerdict | undefined, prev: IntegrityVerdict | undefined): void {
    if (verdict && prev?.ok !== verdict.ok) {
      this.#record({
        type: verdict.ok ? 'integrityMatched' : 'integrityMismatched', route,
        message: `route ${route} integrity ${verdict.ok ? 'matches' : 'check failed'}: ${verdict.detail}`,
      }, verdict.ok ? 'info' : 'warn');
    }
    this.#recompute();
  }

  /** undefined when there is no shared store (memory). */
  get stateStoreUp(): boolean | undefined {
    return this.#store.kind === 'memory' ? undefined : this.#store.isUp();
  }

  drain(target: DrainTarget): ControlResult {
    return this.#execute({ command: 'drain', target });
  }

  undrain(target: DrainTarget): ControlResult {
    return this.#execute({ command: 'undrain', target });
  }

  pin(route: string, site: string): ControlResult {
    return this.#execute({ command: 'pin', route, site });
  }

  unpin(route: string): ControlResult {
    return this.#execute({ command: 'unpin', route });
  }

  approveFailback(route: string, force: boolean): ControlResult {
    return this.#execute({ command: 'approveFailback', route, force });
  }

  approveFailover(route: string): ControlResult {
    return this.#execute({ command: 'approveFailover', route });
  }

  /** Swap in a new, already validated policy. Health of unchanged sites survives. */
  replacePolicy(policy: Policy): void {
    const now = this.#now();
    const old = indexPolicy(this.#policy).sites;
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
    return buildStatus({
      version: this.#version, replica: this.#store.replicaId, policy: this.#policy, table: this.#table,
      health: (site) => this.#health.get(site) ?? initialHealth(this.#now()),
      integrity: this.#integrity.verdicts(), drains: this.effectiveDrains(),
      stateStore: { kind: this.#store.kind, up: this.#store.isUp() },
      events: this.#events, leadership: this.#leadership.view(),
    });
  }

  close(): void {
    this.#closed = true;
    this.#job = undefined;
    clearTimeout(this.#wakeTimer);
    clearImmediate(this.#flushTimer);
    this.#flushTimer = undefined;
    this.#listeners.clear();
  }

  // ---- internals ----------------------------------------------------------

  /** A command decided by the pure decideCommand, carried out: event, store, decision, reply. */
  #execute(command: OperatorCommand): ControlResult {
    const cmd = decideCommand({ policy: this.#policy, shared: this.#shared, table: this.table, nowMs: this.#now() }, command);
    if (cmd.kind !== 'apply') return refusalOrUnchanged(cmd);
    this.#record(cmd.event.event, cmd.event.level);
    this.#store.apply(cmd.op);
    return { ok: true, message: cmd.reply(this.table) };
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

  #decisionInputs(prev: RouteTable | undefined, settle: boolean): DecisionInputs {
    // Copies: a decision spread over turns reads them while inputs keep changing.
    return {
      settle,
      policy: this.#policy,
      health: new Map(this.#health),
      overrides: this.#overridesNow(),
      integrity: new Map(this.#integrity.verdicts()),
      prev,
      nowMs: this.#now(),
    };
  }

  /**
   * An input changed: decide again once, at the end of this turn of the event
   * loop, however many inputs change meanwhile (a reload's first probe round, a
   * burst of Redis messages). Whoever reads the table before then (an admin
   * command, /status) gets it decided on the spot, so no such reader ever sees
   * a table older than its inputs.
   */
  #recompute(): void {
    if (this.#closed) return;
    this.#dirty = true;
    // The first probe round is decided when it ends (started()) or when read.
    if (!this.#starting) this.#scheduleSlice();
  }

  #scheduleSlice(): void {
    if (this.#recomputing || this.#flushTimer !== undefined || this.#closed) return;
    this.#flushTimer = setImmediate(() => {
      this.#flushTimer = undefined;
      this.#advance(SLICE_MS);
    });
  }

  /** Every pending decision, now. */
  #flush(): void {
    this.#advance(Infinity);
  }

  /**
   * Decide until nothing is pending or the slice's time is up; the rest goes on
   * at the end of the next turn. A decision of a few routes is done in one
   * go, as before; one of thousands (a building under every route flapping)
   * is spread so that requests on other routes wait a few milliseconds at
   * most, not the whole decision. The table in force meanwhile is the last
   * one decided; the new one replaces it whole.
   */
  #advance(budgetMs: number): void {
    // Inside a decision (a listener reading the table, or a store answering
    // synchronously from apply()), the loop below picks the change up.
    if (this.#recomputing || this.#closed) return;
    if (this.#job === undefined && !this.#dirty) return;
    clearImmediate(this.#flushTimer);
    this.#flushTimer = undefined;
    const until = budgetMs === Infinity ? Infinity : performance.now() + budgetMs;
    const done: Array<() => void> = [];
    this.#recomputing = true;
    try {
      for (;;) {
        let job = this.#job;
        if (job === undefined) {
          if (!this.#dirty || this.#closed) break;
          this.#dirty = false;
          // Notices queued so far are for a site this decision has down.
          job = this.#job = { steps: this.#recomputeSteps(), notices: this.#siteDowns.splice(0) };
        }
        let step = job.steps.next();
        while (step.done !== true && (until === Infinity || performance.now() < until)) step = job.steps.next();
        if (step.done !== true) break;
        this.#job = undefined;
        done.push(...job.notices);
      }
    } catch (err) {
      this.#job = undefined;
      throw err;
    } finally {
      this.#recomputing = false;
    }
    if (this.#job !== undefined || this.#dirty) this.#scheduleSlice();
    for (const notify of done) notify();
  }

  /** One decision, from health to listeners, pausing (yield) where #advance may stop a slice. */
  *#recomputeSteps(): Generator<void, void, void> {
    const prevHealth = this.#health;
    this.#health = this.#combineHealth();
    for (const { event, level } of describeHealthChanges(prevHealth, this.#health)) this.#record(event, level);
    const prev = this.#table;
    const own = yield* decideRoutesInSteps(this.#decisionInputs(prev, this.#starting));
    yield;
    if (this.#closed) return;
    const led = applyLeadership({
      leadership: this.#leadership, prev, own, drains: this.effectiveDrains(), nowMs: this.#now(), published: this.#publishedRoutes,
    });
    this.#publishedRoutes = led.published;
    const next = led.table;
    this.#table = next;
    this.#scheduleWake();
    let changed = next.policy !== prev.policy || next.epoch !== prev.epoch;
    // Report in decision order (priority first), so a level finishing is logged
    // before the next level starting in the same decision. A decision kept as
    // it was is the same object: nothing to compare or report (a flap of one
    // site costs the routes that list it, not the whole policy).
    const moves = new MoveLog();
    const starting = this.#starting;
    let sinceStep = 0;
    const order = decisionOrder(next.policy);
    for (let i = 0; i < order.length; i++) {
      const d = next.byName.get(order[i]!.name)!;
      const before = prev.byName.get(d.name);
      if (before === d) continue;
      if (!before || before.state !== d.state || before.active !== d.active || !sameWeights(before, d)
        || before.reason !== d.reason || !sameSites(before.eligible, d.eligible)) changed = true;
      if (!starting) this.#reportRoute(before, d, moves);
      if (++sinceStep === ROUTES_PER_STEP) {
        sinceStep = 0;
        yield;
        if (this.#closed) return;
      }
    }
    yield;
    if (this.#closed) return;
    moves.write(this.#logger, (event, level) => this.#log(event, level));
    if (!changed) return;
    // Each listener gets its own slice (the verifier's targets and a worker's
    // copy of the table are linear in routes too).
    for (const l of [...this.#listeners]) {
      if (l.tableChanged === undefined) continue;
      yield;
      if (this.#closed) return;
      l.tableChanged(next, prev);
    }
  }

  /** One event and one log line per decision change, with its reason. */
  #reportRoute(before: RouteDecision | undefined, d: RouteDecision, moves: MoveLog): void {
    const route = d.name;
    if (d.transition) {
      const { from, to, reason } = d.transition;
      this.#metrics.failovers.inc({ route, from: from ?? 'none', to: to ?? 'none', reason });
    }
    // What happened, in words, is worked out once by the pure describeRoute.
    const described = describeRoute(before, d);
    if (described) moves.add(this.#record(described.event, described.level, false), described.level);
  }

  #record(event: Omit<GatewayEvent, 'time'>, level: LogLevel = 'info', log = true): GatewayEvent {
    const full = Object.freeze(withTime(this.#isoNow(), event));
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

/** Retry candidates are part of what the data plane reads (worker processes get only notified tables). */
function sameSites(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((s, i) => s === b[i]);
}

/** The event stamped with its time, without its undefined fields (one object: a decision records thousands). */
function withTime(time: string, event: Omit<GatewayEvent, 'time'>): GatewayEvent {
  const out: Record<string, unknown> = { time };
  for (const key in event) {
    const value = (event as Record<string, unknown>)[key];
    if (Object.hasOwn(event, key) && value !== undefined) out[key] = value;
  }
  return out as unknown as GatewayEvent;
}

type LogLevel = 'info' | 'warn' | 'error';

/**
 * How long one slice of a decision may hold the event loop (see #advance):
 * requests on other routes wait at most about this long for a big decision.
 */
const SLICE_MS = 1;

/** A decision moving more routes than this logs one line per kind of move (see MoveLog). */
const LOG_EACH_UP_TO = 20;

/**
 * One log line per route event, as for any event; but a decision that moves
 * many routes at once (a building's site under two thousand routes) logs one
 * line per kind of move, naming every route in it: the events, /status and
 * webhooks still get one entry per route, and the decision does not hold
 * requests up writing thousands of lines. Moves are grouped as they come, so
 * a decision keeps route names, not thousands of events, until it logs.
 */
class MoveLog {
  readonly #first: Array<{ readonly event: GatewayEvent; readonly level: LogLevel }> = [];
  readonly #groups = new Map<string, { readonly event: GatewayEvent; readonly level: LogLevel; readonly routes: string[] }>();
  #count = 0;

  add(event: GatewayEvent, level: LogLevel): void {
    if (++this.#count <= LOG_EACH_UP_TO) this.#first.push({ event, level });
    const key = `${event.type}\u0000${event.from ?? ''}\u0000${event.to ?? ''}\u0000${event.reason ?? ''}`;
    const group = this.#groups.get(key);
    if (group) group.routes.push(event.route!);
    else this.#groups.set(key, { event, level, routes: [event.route!] });
  }

  write(logger: Logger, each: (event: GatewayEvent, level: LogLevel) => void): void {
    if (this.#count <= LOG_EACH_UP_TO) {
      for (const { event, level } of this.#first) each(event, level);
      return;
    }
    for (const { event, level, routes } of this.#groups.values()) {
      const { type, from, to, reason } = event;
      const shown = routes.length > 10 ? `${routes.slice(0, 10).join(', ')} and ${routes.length - 10} more` : routes.join(', ');
      logger[level]({ event: type, from, to, reason, count: routes.length, routes },
        `${routes.length} routes ${type} (${from ?? 'none'} -> ${to ?? 'none'}, ${reason}): ${shown}`);
    }
  }
}
