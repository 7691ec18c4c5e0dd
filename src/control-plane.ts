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
import { decideRoutes, decisionOrder } from './routing/decide-routes.js';
import { describeRoute } from './routing/describe-changes.js';
import type {
  Approval, IntegrityVerdict, Overrides, RouteDecision, RouteTable,
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
    this.#integrity = deps.integrity ?? noIntegrity;
    this.#leadership = deps.leadership ?? new LocalLeadership(this.#store.replicaId, this.#now);
    this.#shared = this.#store.snapshot();
    const now = this.#now();
    for (const site of this.#policy.sites) this.#own.set(site.name, initialHealth(now));
    this.#health = this.#combineHealth();
    const first = this.#decide(undefined);
    // A lone gateway starts under a fresh local epoch; a replica with Redis under none until it reads or takes one.
    this.#table = withEpoch(first, this.#leadership.isLeader() ? this.#leadership.publish(first.routes, true) : 0);
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

  #decide(prev: RouteTable | undefined, settle = false): RouteTable {
    return decideRoutes({
      settle,
      policy: this.#policy,
      health: new Map(this.#health),
      overrides: this.#overridesNow(),
      integrity: new Map(this.#integrity.verdicts()),
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
    try {
      do {
        this.#dirty = false;
        this.#recomputeOnce();
      } while (this.#dirty && !this.#closed);
    } finally {
      this.#recomputing = false;
    }
    for (const notify of this.#siteDowns.splice(0)) notify();
  }

  #recomputeOnce(): void {
    const prevHealth = this.#health;
    this.#health = this.#combineHealth();
    for (const { event, level } of describeHealthChanges(prevHealth, this.#health)) this.#record(event, level);
    const prev = this.#table;
    const own = this.#decide(prev, this.#starting);
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
    const moves: Array<{ event: GatewayEvent; level: LogLevel }> = [];
    for (const route of decisionOrder(next.policy)) {
      const d = next.byName.get(route.name)!;
      const before = prev.byName.get(d.name);
      if (before === d) continue;
      if (!before || before.state !== d.state || before.active !== d.active || !sameWeights(before, d)
        || before.reason !== d.reason || !sameSites(before.eligible, d.eligible)) changed = true;
      if (!this.#starting) this.#reportRoute(before, d, moves);
    }
    this.#logMoves(moves);
    if (changed) for (const l of this.#listeners) l.tableChanged?.(next, prev);
  }

  /** One event and one log line per decision change, with its reason. */
  #reportRoute(before: RouteDecision | undefined, d: RouteDecision, moves: Array<{ event: GatewayEvent; level: LogLevel }>): void {
    const route = d.name;
    if (d.transition) {
      const { from, to, reason } = d.transition;
      this.#metrics.failovers.inc({ route, from: from ?? 'none', to: to ?? 'none', reason });
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
