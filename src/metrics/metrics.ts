// Every metric detour exports, defined in one place, on a registry the caller
// creates and passes in (never prom-client's global one, so tests and several
// gateways in one process do not collide).
//
// State gauges (site up, active site, weights, blocked, drained, store up) are
// computed in collect() from a snapshot of the current state, so they can never
// drift from what the gateway actually does. Labels stay bounded: route, site,
// building and fixed reason codes only: never a path, a client or a raw text.
import { PerformanceObserver, constants as perfConstants, monitorEventLoopDelay, type PerformanceEntry } from 'node:perf_hooks';
import { getHeapStatistics } from 'node:v8';
import { Counter, Gauge, type Registry } from 'prom-client';
import type { RouteDecision, RouteTable, BlockedReason } from '../routing/route-table.js';
import { HotCounter, HotHistogram } from './hot-metrics.js';

export interface MetricsState {
  readonly table: RouteTable | undefined;
  readonly sites: ReadonlyArray<{ readonly name: string; readonly building: string; readonly up: boolean }>;
  readonly drainedSites: ReadonlySet<string>;
  readonly drainedBuildings: ReadonlySet<string>;
  /** undefined = no state store configured. */
  readonly stateStoreUp: boolean | undefined;
  /** undefined = the policy file is not watched (--no-watch). */
  readonly configWatchUp?: boolean | undefined;
  /** This replica's id and whether it holds the leader lease (a lone gateway always does). */
  readonly leader?: { readonly replica: string; readonly isLeader: boolean };
}

export type MetricsStateSource = () => MetricsState;

export const BLOCKED_REASONS: readonly BlockedReason[] = ['integrity', 'priority', 'concurrency', 'approval', 'holddown'];

export interface Metrics {
  readonly registry: Registry;
  /** Updated by every request: cells instead of prom-client's per-call label handling (see hot-metrics.ts). */
  readonly requests: HotCounter<'route' | 'site' | 'code'>;
  readonly requestDuration: HotHistogram<'route' | 'site'>;
  readonly failovers: Counter<'route' | 'from' | 'to' | 'reason'>;
  /** Every probe of every site (1,000 sites at 1 s are 1,000 a second): cells too. */
  readonly healthChecks: HotCounter<'site' | 'result'>;
  readonly healthCheckDuration: HotHistogram<'site'>;
  readonly retries: Counter<'route' | 'from' | 'to'>;
  readonly retryBudgetExhausted: Counter<'route'>;
  readonly configReloads: Counter<'result'>;
  readonly integrityChecks: Counter<'route' | 'result'>;
  readonly notifications: Counter<'result'>;
  /** Live-traffic failures by site and kind: `site` (before the request was sent) or `request` (after). */
  readonly passiveFailures: Counter<'site' | 'kind'>;
  /** Suspicions raised by the failure ratio, by what the probe said: confirmed (down) or refuted (up). */
  readonly passiveSuspicions: Counter<'site' | 'result'>;
  /** Requests that failed after they were sent on two sites in a row. */
  readonly poisonRequests: Counter<'route'>;
  readonly adminAuthFailures: Counter<'reason'>;
  /** Connect the state gauges to the live gateway; until then they export nothing. */
  bindState(source: MetricsStateSource): void;
  /** Stop sampling the event loop. */
  close(): void;
}

/** The event-loop delay gauge reports windows of at least this long (the soak samples every 10 s). */
export const LOOP_DELAY_WINDOW_MS = 10_000;

export function createMetrics(registry: Registry): Metrics {
  let source: MetricsStateSource | undefined;
  const state = (): MetricsState | undefined => source?.();

  const requests = new HotCounter({
    name: 'detour_requests_total',
    help: 'Proxied requests by route, serving site and response status code (site "none" when no site could serve).',
    labelNames: ['route', 'site', 'code'] as const,
    registers: [registry],
  });
  const requestDuration = new HotHistogram({
    name: 'detour_request_duration_seconds',
    help: 'Time from request received to response headers sent, by route and serving site.',
    labelNames: ['route', 'site'] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [registry],
  });
  new Gauge({
    name: 'detour_site_up',
    help: 'Health verdict of a site: 1 up, 0 down or not yet known.',
    labelNames: ['site', 'building'] as const,
    registers: [registry],
    collect() {
      this.reset();
      for (const s of state()?.sites ?? []) this.set({ site: s.name, building: s.building }, s.up ? 1 : 0);
    },
  });
  // One gauge per (route, site) of the policy, valued from the route's decision.
  const routeSiteGauge = (name: string, help: string, value: (d: RouteDecision | undefined, site: string, rank: number) => number) =>
    new Gauge({
      name, help, labelNames: ['route', 'site'] as const, registers: [registry],
      collect() {
        this.reset();
        const table = state()?.table;
        if (!table) return;
        for (const route of table.policy.routes) {
          const d = table.byName.get(route.name);
          route.sites.forEach((site, i) => this.set({ route: route.name, site }, value(d, site, i + 1)));
        }
      },
    });
  routeSiteGauge('detour_route_active_site', 'Site a route is on: 1 for the active site, 0 for the route\'s other sites.',
    (d, site) => (d?.active === site ? 1 : 0));
  routeSiteGauge('detour_route_site_weight', 'Percent of a route\'s new requests sent to a site (follows failback ramps).',
    (d, site) => d?.weights.find((w) => w.site === site)?.weight ?? 0);
  routeSiteGauge('detour_route_site_preference',
    'Rank of a site in a route\'s list (1 = first choice), so rules can tell a failed-over route from a preferred one.',
    (_d, _site, rank) => rank);
  const failovers = new Counter({
    name: 'detour_failovers_total',
    help: 'Changes of a route\'s active site, by reason (site_down, drain, pin, unpin, failback, manual, recovered).',
    labelNames: ['route', 'from', 'to', 'reason'] as const,
    registers: [registry],
  });
  new Gauge({
    name: 'detour_failback_blocked',
    help: '1 while a route\'s failback is held, by reason (integrity, priority, concurrency, approval, holddown).',
    labelNames: ['route', 'reason'] as const,
    registers: [registry],
    collect() {
      this.reset();
      const table = state()?.table;
      if (!table) return;
      for (const d of table.routes) {
        for (const reason of BLOCKED_REASONS) this.set({ route: d.name, reason }, d.blocked?.code === reason ? 1 : 0);
      }
    },
  });
  new Gauge({
    name: 'detour_route_pending_failover',
    help: '1 while a manual-failover route waits for an operator to approve moving off a failed site.',
    labelNames: ['route'] as const,
    registers: [registry],
    collect() {
      this.reset();
      for (const d of state()?.table?.routes ?? []) this.set({ route: d.name }, d.pendingFailover ? 1 : 0);
    },
  });
  new Gauge({
    name: 'detour_route_available',
    help: '1 while a route has at least one site that can serve it.',
    labelNames: ['route'] as const,
    registers: [registry],
    collect() {
      this.reset();
      for (const d of state()?.table?.routes ?? []) this.set({ route: d.name }, d.state === 'unavailable' ? 0 : 1);
    },
  });
  const healthChecks = new HotCounter({
    name: 'detour_health_checks_total',
    help: 'Active health probes by site and result (pass, fail).',
    labelNames: ['site', 'result'] as const,
    registers: [registry],
  });
  const healthCheckDuration = new HotHistogram({
    name: 'detour_health_check_duration_seconds',
    help: 'Duration of active health probes by site.',
    labelNames: ['site'] as const,
    buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [registry],
  });
  const retries = new Counter({
    name: 'detour_retries_total',
    help: 'Requests re-sent to another site after the first failed before answering.',
    labelNames: ['route', 'from', 'to'] as const,
    registers: [registry],
  });
  const retryBudgetExhausted = new Counter({
    name: 'detour_retry_budget_exhausted_total',
    help: 'Retries not made because the route\'s retry budget for the failing site was spent.',
    labelNames: ['route'] as const,
    registers: [registry],
  });
  new Gauge({
    name: 'detour_drained',
    help: '1 for every drained site or building (kind = site | building).',
    labelNames: ['kind', 'name'] as const,
    registers: [registry],
    collect() {
      this.reset();
      const s = state();
      if (!s) return;
      for (const name of s.drainedSites) this.set({ kind: 'site', name }, 1);
      for (const name of s.drainedBuildings) this.set({ kind: 'building', name }, 1);
    },
  });
  const configReloads = new Counter({
    name: 'detour_config_reloads_total',
    help: 'Policy reloads by result (success, failure).',
    labelNames: ['result'] as const,
    registers: [registry],
  });
  new Gauge({
    name: 'detour_state_store_up',
    help: '1 when the shared state store is reachable or none is configured (in-memory), 0 when it is configured and unreachable.',
    registers: [registry],
    collect() {
      const up = state()?.stateStoreUp;
      this.set(up === false ? 0 : 1);
    },
  });
  new Gauge({
    name: 'detour_config_watch_up',
    help: '1 while the policy file is watched for changes (or watching is off), 0 when the watch failed and edits are noticed only by polling.',
    registers: [registry],
    collect() {
      this.set(state()?.configWatchUp === false ? 0 : 1);
    },
  });
  new Gauge({
    name: 'detour_leader',
    help: '1 on the replica holding the leader lease (whose decisions every replica applies), 0 on the others; a lone gateway is its own leader.',
    labelNames: ['replica'] as const,
    registers: [registry],
    collect() {
      this.reset();
      const leader = state()?.leader;
      if (leader) this.set({ replica: leader.replica }, leader.isLeader ? 1 : 0);
    },
  });
  new Gauge({
    name: 'detour_decision_epoch',
    help: 'Fencing epoch of the decision this replica routes on (sent to sites as x-detour-epoch); increases with every leader change and every change that moves traffic.',
    registers: [registry],
    collect() {
      this.set(state()?.table?.epoch ?? 0);
    },
  });
  const integrityChecks = new Counter({
    name: 'detour_integrity_checks_total',
    help: 'Integrity gate comparisons by route and result (match, mismatch, error).',
    labelNames: ['route', 'result'] as const,
    registers: [registry],
  });
  const notifications = new Counter({
    name: 'detour_notifications_total',
    help: 'Webhook notifications by result (sent, failed).',
    labelNames: ['result'] as const,
    registers: [registry],
  });

  const passiveFailures = new Counter({
    name: 'detour_passive_failures_total',
    help: 'Live-traffic failures by site and kind: site (nothing reached the site: refused, connect timeout) or request (failed after it was sent; counts toward the failure ratio only).',
    labelNames: ['site', 'kind'] as const,
    registers: [registry],
  });
  const passiveSuspicions = new Counter({
    name: 'detour_passive_suspicions_total',
    help: 'Sites made suspect by the live-traffic failure ratio, by the answer of the probe that followed (confirmed: marked down; refuted: stays up).',
    labelNames: ['site', 'result'] as const,
    registers: [registry],
  });
  const poisonRequests = new Counter({
    name: 'detour_poison_requests_total',
    help: 'Requests that failed after being sent on two sites in a row: answered with the error, not held against the second site.',
    labelNames: ['route'] as const,
    registers: [registry],
  });
  new Gauge({
    name: 'detour_route_passive_ignored',
    help: '1 while a route serves from a site that live traffic alone marked down, because it is the route\'s last site (only probes or operators may take the last site out).',
    labelNames: ['route'] as const,
    registers: [registry],
    collect() {
      this.reset();
      const table = state()?.table;
      if (!table) return;
      for (const d of table.routes) this.set({ route: d.name }, d.passiveIgnored !== undefined ? 1 : 0);
    },
  });

  const adminAuthFailures = new Counter({
    name: 'detour_admin_auth_failures_total',
    help: 'Admin API calls refused for authentication, by reason (missing, invalid, disabled = no token configured, limited = address rate-limited).',
    labelNames: ['reason'] as const,
    registers: [registry],
  });

  // The process itself, so a soak (or an operator) can see memory and latency
  // creep without node-exporter: heap in use, and how late the event loop runs.
  new Gauge({
    name: 'detour_heap_used_bytes',
    help: 'V8 heap in use by this gateway process, in bytes.',
    registers: [registry],
    collect() {
      this.set(process.memoryUsage().heapUsed);
    },
  });
  // The heap in use swings with where the scrape lands between collections (19
  // to 40 MB from one sample to the next in a soak); right after a full
  // collection it is the live heap, the figure a leak makes grow.
  let heapAfterGc = 0;
  const gcObserver = new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) {
      if ((entry as PerformanceEntry & { detail?: { kind?: number } }).detail?.kind === perfConstants.NODE_PERFORMANCE_GC_MAJOR) {
        heapAfterGc = getHeapStatistics().used_heap_size;
      }
    }
  });
  gcObserver.observe({ entryTypes: ['gc'] });
  new Gauge({
    name: 'detour_heap_after_gc_bytes',
    help: 'V8 heap in use right after the latest full garbage collection (the live heap), in bytes; 0 until the first one.',
    registers: [registry],
    collect() {
      this.set(heapAfterGc);
    },
  });
  // A window closes at the first scrape at least LOOP_DELAY_WINDOW_MS after it
  // opened; until then the previous window's p99 is reported, so every scraper
  // (Prometheus, a soak, a person with curl) sees the same closed windows
  // instead of each resetting the histogram under the others.
  const loopDelay = monitorEventLoopDelay({ resolution: 10 });
  loopDelay.enable();
  let windowOpenedMs = Date.now();
  let closedP99Seconds: number | undefined;
  const p99Seconds = (): number => (loopDelay.count > 0 ? loopDelay.percentile(99) / 1e9 : 0);
  new Gauge({
    name: 'detour_event_loop_delay_p99_seconds',
    help: 'p99 of how late this process\'s event loop ran (timers, I/O callbacks), over the last closed window of at least 10 s.',
    registers: [registry],
    collect() {
      const nowMs = Date.now();
      if (nowMs - windowOpenedMs >= LOOP_DELAY_WINDOW_MS) {
        closedP99Seconds = p99Seconds();
        loopDelay.reset();
        windowOpenedMs = nowMs;
      }
      this.set(closedP99Seconds ?? p99Seconds());
    },
  });

  // Start result counters at zero, so the first failure is an increase() and not
  // a series appearing out of nowhere.
  for (const result of ['success', 'failure']) configReloads.inc({ result }, 0);
  for (const result of ['sent', 'failed']) notifications.inc({ result }, 0);
  for (const reason of ['missing', 'invalid', 'disabled', 'limited']) adminAuthFailures.inc({ reason }, 0);

  return {
    registry, requests, requestDuration, failovers, healthChecks, healthCheckDuration, retries, retryBudgetExhausted,
    configReloads, integrityChecks, notifications, passiveFailures, passiveSuspicions, poisonRequests, adminAuthFailures,
    bindState(s) { source = s; },
    close() { loopDelay.disable(); gcObserver.disconnect(); },
  };
}
