// Wires the parts together and owns their start and close order:
// metrics -> control plane -> probes/passive monitor/verifier -> data plane -> admin.
// Close runs the other way: stop taking requests, let in-flight ones finish
// (up to shutdown.grace), then stop probes and timers.
//
// What this process owns and what the data plane owns: the policy and its
// reloads, probes, integrity checks, decisions, the admin API, the state
// store and webhooks are here, once. The data plane (listener, forwarder,
// access log) is either in this process (workers: 1, workers/local-data-plane.ts)
// or in N worker processes this one feeds with route tables
// (workers/worker-pool.ts); admin calls answer once every one routes by the
// table they produced.
import { stat } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import type { AddressInfo } from 'node:net';
import { Registry } from 'prom-client';
import type { Policy } from './config/policy.js';
import { formatPolicyError, indexPolicy, type PolicyError } from './config/policy.js';
import { OFF_THREAD_MIN_BYTES, closePolicyWorker, loadPolicyFileOffThread, warmPolicyWorker } from './config/load-off-thread.js';
import { PolicyWatcher, type WatchStatus } from './config/watch-policy.js';
import type { ParseResult } from './config/policy.js';
import { verifyTargets } from './routing/verify-targets.js';
import { ControlPlane } from './control-plane.js';
import { createMetrics, type Metrics } from './metrics/metrics.js';
import { Prober } from './health/prober.js';
import { PassiveMonitor } from './health/passive-monitor.js';
import { IntegrityVerifier } from './health/integrity-verifier.js';
import { WebhookNotifier } from './notify/webhook-notifier.js';
import { startAdminServer } from './admin/admin-server.js';
import { AuditLog } from './admin/audit-log.js';
import { drainSafely, policyDrainWarnings } from './admin/drain-guard.js';
import { createStateStore } from './state/create-store.js';
import { RedisLeadership } from './state/redis-leadership.js';
import { LocalLeadership, type Leadership } from './leader/leadership.js';
import type { StateStore } from './state/state-store.js';
import type { AdminControl, ControlResult, GatewayEvent } from './admin/admin-control.js';
import type { RouteTable } from './routing/route-table.js';
import { silentLogger, type Logger } from './logger.js';
import { VERSION } from './version.js';
import { createSharedHistory } from './state/shared-history.js';
import type { WebhookPolicy } from './config/policy.js';
import { loadPolicyMaterial, type PolicyMaterial } from './tls/policy-material.js';
import { resolveWorkerCount, type DataPlane, type WorkersStatus } from './workers/data-plane.js';
import { notApplied } from './errors.js';
import { LocalDataPlane } from './workers/local-data-plane.js';
import { WorkerPool } from './workers/worker-pool.js';
import { createWorkerMetrics } from './workers/worker-metrics.js';
import { renderSnapshot } from './workers/merge-metrics.js';

export interface GatewayOptions {
  readonly policy: Policy;
  readonly logger?: Logger;
  readonly registry?: Registry;
  readonly now?: () => number;
  readonly random?: () => number;
  /** How long to wait for the first probe of every site before listening (default 3s). */
  readonly firstRoundTimeoutMs?: number;
  /** Shared state; default from the policy (state.redis, else in memory). */
  readonly store?: StateStore;
  /** This replica's id in the shared store. */
  readonly replicaId?: string;
  /** How a reload reads the policy file (default: read and parse on a worker thread). */
  readonly loadPolicy?: (file: string) => Promise<ParseResult>;
  /** Reload when the policy file changes (detour start does, unless --no-watch). */
  readonly watch?: boolean | { readonly debounceMs?: number; readonly pollMs?: number };
  /** Leader lease time with state.redis (default 3000 ms; for in-process tests: `detour start` always uses the default). */
  readonly leaseMs?: number;
  /**
   * Whether this replica holds the leader lease: only the leader appends
   * decision events to the shared history and sends webhooks. Default: the
   * leader lease (a lone gateway always leads).
   */
  readonly isLeader?: () => boolean;
  /** Shared history re-read period (default 2000; tests go faster). */
  readonly historyRefreshMs?: number;
  /** With workers > 1: how long an admin call waits for every worker to apply its table (default 5 s). */
  readonly workerAckTimeoutMs?: number;
  /** With workers > 1: the worker program (default: worker-main beside the gateway; tests run the built one). */
  readonly workerProgram?: { readonly exec: string; readonly execArgv?: readonly string[] };
}

export type ReloadResult =
  | { readonly ok: true; readonly message: string }
  | { readonly ok: false; readonly errors: readonly PolicyError[] };

export interface Gateway {
  readonly proxyUrl: string;
  readonly adminUrl: string;
  readonly proxyAddress: AddressInfo;
  readonly adminAddress: AddressInfo;
  readonly control: ControlPlane;
  /** Who decides: isLeader() and onLeaderChange() for whatever only the leader may do (webhooks, history). */
  readonly leadership: Leadership;
  readonly metrics: Metrics;
  table(): RouteTable;
  /** Re-read the policy file: parse, validate, swap; a bad file keeps the last good policy. */
  reload(): Promise<ReloadResult>;
  /** Swap in an already parsed policy. */
  applyPolicy(policy: Policy): ReloadResult;
  /** Stop taking requests, let in-flight ones finish within shutdown.grace, stop everything. */
  close(): Promise<void>;
  /** Reopen the access log file (SIGUSR1, after log rotation), in every data-plane process. */
  reopenLogs(): void;
  /** The data-plane processes (one, or the workers). */
  workers(): WorkersStatus;
}

export async function startGateway(opts: GatewayOptions): Promise<Gateway> {
  const logger = opts.logger ?? silentLogger();
  const registry = opts.registry ?? new Registry();
  const metrics = createMetrics(registry);
  const now = opts.now ?? Date.now;
  let policy = opts.policy;
  // --- TLS and secrets (tls/policy-material.ts): read before anything starts, again on every reload.
  const firstMaterial = loadPolicyMaterial(policy, Date.now());
  if (!firstMaterial.ok) throw new Error(`cannot start: ${firstMaterial.errors.map(formatPolicyError).join('; ')}`);
  let material: PolicyMaterial = firstMaterial.material;
  const clientTls = (siteUrl: string) => material.sites.get(siteUrl);
  const warnUnverified = (p: Policy) => {
    for (const site of p.sites) {
      if (site.tls?.verify === false) logger.warn({ site: site.name }, `TLS certificates of site ${site.name} are NOT verified (tls.verify: false): anyone on the path can impersonate it`);
    }
  };
  warnUnverified(policy);

  // The store first: the first decision must already see shared drains and pins.
  const store = opts.store ?? createStateStore(policy, {
    logger: logger.child({ component: 'state' }), ...(opts.replicaId ? { replicaId: opts.replicaId } : {}),
  });
  await store.start();
  const redis = policy.state?.redis;
  const leadership: Leadership = store.kind === 'redis' && redis
    ? new RedisLeadership({
      url: redis.url, keyPrefix: redis.keyPrefix, replicaId: store.replicaId, logger, now,
      ...(opts.leaseMs !== undefined ? { leaseMs: opts.leaseMs } : {}),
    })
    : new LocalLeadership(store.replicaId, now);
  // The verifier owns integrity verdicts; the control plane reads them and is told when they change.
  const verifier = new IntegrityVerifier({
    logger: logger.child({ component: 'integrity' }), metrics, now,
    onVerdict: (route, verdict, prev) => control.integrityChanged(route, verdict, prev),
    onForget: (route) => control.integrityChanged(route, undefined, undefined), clientTls,
  });
  const control = new ControlPlane({
    policy, logger, metrics, now, version: VERSION, store, starting: true, leadership, integrity: verifier,
  });
  metrics.bindState(() => {
    const drains = control.effectiveDrains();
    return {
      table: control.table,
      sites: control.policy.sites.map((s) => ({ name: s.name, building: s.building, up: control.health(s.name)?.status === 'up' })),
      drainedSites: drains.sites,
      drainedBuildings: drains.buildings,
      stateStoreUp: control.stateStoreUp,
      configWatchUp: configWatch?.up,
      leader: { replica: leadership.replicaId, isLeader: leadership.isLeader() },
    };
  });
  let configWatch: WatchStatus | undefined;

  const notifier = new WebhookNotifier({ logger: logger.child({ component: 'notify' }), metrics });
  notifier.update(policy.notify.webhooks);
  // One history (and one webhook per transition) across replicas with state.redis; local as before without.
  const history = createSharedHistory({
    redis: store.kind === 'redis' ? policy.state?.redis : undefined, replicaId: store.replicaId,
    logger, isLeader: opts.isLeader ?? (() => leadership.isLeader()),
    clock: {
      routeSinceMs: (route) => control.table.byName.get(route)?.sinceMs,
      siteSinceMs: (site) => control.health(site)?.sinceMs,
      integritySinceMs: (route) => control.integrity().get(route)?.sinceMs,
    },
    notify: (event, o) => notifier.notify(event, o), claimTtlMs: () => notificationClaimMs(policy.notify.webhooks),
    local: { events: () => control.events(), audit: () => audit.entries() },
    ...(opts.historyRefreshMs !== undefined ? { refreshMs: opts.historyRefreshMs } : {}),
  });
  await history.start();
  const prober = new Prober({
    logger: logger.child({ component: 'prober' }), metrics, ...(opts.random ? { random: opts.random } : {}),
    onResult: (site, result) => {
      control.probeResult(site, result.passed, result.detail);
      dataPlane.doubtsChanged();
    }, clientTls,
  });
  const passive = new PassiveMonitor({
    metrics, now,
    siteFailed: (site, detail) => control.passiveFailure(site, detail),
    siteSuspected: (site, detail) => control.passiveSuspicion(site, detail),
  });
  passive.update(policy.sites);
  const workerCount = resolveWorkerCount(policy.workers, availableParallelism());
  const pool = workerCount > 1 ? new WorkerPool({
    count: workerCount, configured: policy.workers ?? 1, logger: logger.child({ component: 'workers' }), passive,
    inDoubt: (site) => control.inDoubt(site),
    recordEvent: (event, level) => control.recordEvent(event, level),
    onRestart: () => workerMetrics.restarts.inc(),
    ...(opts.workerAckTimeoutMs !== undefined ? { ackTimeoutMs: opts.workerAckTimeoutMs } : {}),
    ...(opts.workerProgram ? { program: opts.workerProgram } : {}),
  }) : undefined;
  const dataPlane: DataPlane = pool ?? new LocalDataPlane({
    policy, material, currentTable: () => control.servingTable, passive, metrics, logger,
    inDoubt: (site) => control.inDoubt(site), ...(opts.random ? { random: opts.random } : {}),
  });
  if (pool && policy.accessLog?.path === 'stdout') {
    // Each worker writes its own batches; on a pipe, a batch over PIPE_BUF (4 KiB) may interleave with another worker's.
    logger.warn({ workers: workerCount }, 'accessLog.path is stdout with several workers: lines may interleave on a pipe; name a file (appends from every worker stay whole lines)');
  }
  const workerMetrics = createWorkerMetrics(registry, () => pool?.counts() ?? { serving: 1, starting: 0 });

  const updateVerifier = (table: RouteTable) => {
    verifier.update(verifyTargets(table, control.effectiveDrains()));
  };
  // Two listeners: each is linear in routes, and a decision gives each its own slice (see ControlPlane.#advance).
  control.subscribe({ tableChanged: (table) => dataPlane.tableChanged(table) });
  control.subscribe({
    tableChanged: (table) => updateVerifier(table),
    siteDown: (site) => dataPlane.siteDown(site),
    // The failure ratio asks; a probe answers (and only a failed one takes the site down).
    siteSuspected: (site) => { void prober.probeNow(site); dataPlane.doubtsChanged(); },
    event: (event: GatewayEvent) => history.event(event),
  });

  // Know something about every site before taking traffic, but never wait long.
  prober.update(policy.sites);
  await Promise.race([prober.firstRound(), delay(opts.firstRoundTimeoutMs ?? 3000)]);
  control.started();
  // Contend for the lease only now: a decision made before the first probe round is no one's to publish.
  await leadership.start();
  updateVerifier(control.table);

  const stopBackground = async () => {
    await prober.close();
    await closePolicyWorker();
    await verifier.close();
    control.close();
    await history.close();
    await notifier.close(0);
    await leadership.close();
    await store.close();
    metrics.close();
  };
  let proxyAddress: AddressInfo;
  let proxyIsTls: boolean;
  try {
    ({ address: proxyAddress, isTls: proxyIsTls } = await dataPlane.start(control.table));
  } catch (err) {
    // Nothing may outlive a gateway that could not start (probes, Redis connections, workers).
    await stopBackground();
    await dataPlane.abort();
    const message = (err as Error).message;
    throw new Error(message.startsWith('cannot listen') ? message : `cannot listen on ${policy.listen.host}:${policy.listen.port}: ${message}`, { cause: err });
  }

  // The drain safety rule for the file's own drains: warned (log, event, /status), never refused.
  let policyWarnings: readonly string[] = [];
  const checkPolicyDrains = (p: Policy) => {
    // Health as the table in force was decided from: advisory, and a reload must not wait for a whole decision.
    const found = policyDrainWarnings(p, { health: (site) => control.servingHealth(site), shared: () => control.shared() });
    policyWarnings = found.map((w) => w.message);
    for (const w of found) control.recordEvent({ type: 'policyDrainEmptiesRoute', route: w.route, message: w.message }, 'warn');
  };
  checkPolicyDrains(policy);

  const failReload = (errors: readonly PolicyError[]): ReloadResult => {
    metrics.configReloads.inc({ result: 'failure' });
    const lines = errors.map(formatPolicyError);
    control.recordEvent({
      type: 'policyReloadFailed', message: `policy reload failed, keeping the last good policy:\n${lines.join('\n')}`,
    }, 'error');
    return { ok: false, errors };
  };

  const applyPolicy = (next: Policy): ReloadResult => {
    // Certificates, keys and the token file are read first: a broken pair keeps the running one.
    const nextMaterial = loadPolicyMaterial(next, Date.now());
    if (!nextMaterial.ok) return failReload(nextMaterial.errors);
    const kept: string[] = [];
    if (next.listen.host !== policy.listen.host || next.listen.port !== policy.listen.port
      || (next.listen.tls === undefined) !== (policy.listen.tls === undefined)) kept.push('listen');
    if (next.admin.host !== policy.admin.host || next.admin.port !== policy.admin.port
      || (next.admin.tls === undefined) !== (policy.admin.tls === undefined)) kept.push('admin address');
    if (JSON.stringify(next.state) !== JSON.stringify(policy.state)) kept.push('state store');
    // Forking or retiring processes under live traffic on a reload is not worth its
    // failure modes (1 <-> N changes who listens at all): a restart applies it.
    if ((next.workers ?? 1) !== (policy.workers ?? 1)) kept.push('workers');
    // Addresses cannot move under a running listener; everything else swaps.
    const { state: _nextState, ...rest } = next;
    const effective: Policy = kept.length === 0 ? next : {
      ...rest, listen: kept.includes('listen') ? policy.listen : next.listen,
      admin: kept.includes('admin address') ? { ...next.admin, host: policy.admin.host, port: policy.admin.port, ...(policy.admin.tls ? { tls: policy.admin.tls } : {}) } : next.admin,
      ...(policy.state ? { state: policy.state } : {}),
      ...(kept.includes('workers') ? (policy.workers !== undefined ? { workers: policy.workers } : {}) : (next.workers !== undefined ? { workers: next.workers } : {})),
    };
    policy = effective;
    material = nextMaterial.material;
    if (material.admin) admin.setSecureContext(material.admin);
    warnUnverified(effective);
    control.replacePolicy(effective);
    dataPlane.applyPolicy(effective, material);
    prober.update(effective.sites);
    passive.update(effective.sites);
    notifier.update(effective.notify.webhooks);
    // The verifier gets the reloaded policy's targets with the table decided
    // from it (tableChanged): reading control.table here would decide 10,000
    // routes at once instead of in slices.
    metrics.configReloads.inc({ result: 'success' });
    const note = kept.length > 0 ? ` (${kept.join(' and ')} changes need a restart; kept the running ones)` : '';
    control.recordEvent({ type: 'policyReloaded', message: `policy reloaded from ${effective.file}${note}` });
    checkPolicyDrains(effective);
    return { ok: true, message: `policy reloaded: ${effective.routes.length} routes, ${effective.sites.length} sites${note}` };
  };

  const loadPolicy = opts.loadPolicy ?? (async (file: string) => {
    const load = await loadPolicyFileOffThread(file, process.env, { running: policy });
    if (load.workerError !== undefined) logger.warn({ err: load.workerError }, 'policy parsed on the main thread: the worker thread failed');
    return load.result;
  });
  // A policy large enough to be parsed off this thread: start that thread now,
  // so the first reload does not wait for it to load and compile the parser.
  if (opts.loadPolicy === undefined) {
    void stat(policy.file).then((s) => {
      if (s.size >= OFF_THREAD_MIN_BYTES) warmPolicyWorker(policy.file);
    }, () => {});
  }
  const reloadOnce = async (): Promise<ReloadResult> => {
    const result = await loadPolicy(policy.file);
    if (!result.ok) return failReload(result.errors);
    // The policy's last part arrived and was frozen in this turn. The new
    // index (maps of 10,000 routes, 3 to 7 ms) and the swap each get a turn of
    // their own, with a poll for I/O before each, so requests waiting get in
    // between. (One setImmediate ran the swap in the same turn's check phase,
    // right after the index: a 10,000-route reload held requests 15 to 40 ms.)
    await afterPoll();
    indexPolicy(result.policy);
    await afterPoll();
    return applyPolicy(result.policy);
  };
  // Reloads run one at a time, each reading the file when it starts, so the last
  // read wins: a slow parse of an older, larger file can no longer finish after
  // a newer one and put the old policy back. Requests that arrive while one runs
  // share the next reload (its read starts after all of them asked).
  let reloadTail: Promise<unknown> = Promise.resolve();
  let nextReload: Promise<ReloadResult> | undefined;
  const reload = (): Promise<ReloadResult> => {
    if (nextReload !== undefined) return nextReload;
    const run = reloadTail.then(() => {
      nextReload = undefined;
      return reloadOnce();
    });
    nextReload = run;
    reloadTail = run.catch(() => undefined);
    return run;
  };

  // A command's answer waits until every data-plane process routes by the table it produced.
  const settle = async (result: ControlResult): Promise<ControlResult> => {
    if (!result.ok) return result;
    const acked = await dataPlane.settled();
    if (acked.ok) return result;
    const { version } = acked;
    return {
      ok: false, code: 'not_applied',
      message: `${result.message}, but worker${acked.lagging.length === 1 ? '' : 's'} ${acked.lagging.join(', ')} did not apply route table ${version} in time: `
        + 'until they do, requests they serve follow the previous table',
    };
  };
  const audit = new AuditLog(200, (entry) => history.audit(entry));
  const adminControl: AdminControl = {
    status: () => ({
      ...control.status(), events: history.recentEvents(), audit: history.recentAudit(), ...(configWatch ? { configWatch } : {}),
      ...(policyWarnings.length > 0 ? { warnings: policyWarnings } : {}), workers: dataPlane.status(),
    }),
    metrics: async () => (pool
      ? renderSnapshot(await pool.metrics(await registry.getMetricsAsJSON()))
      : { contentType: registry.contentType, body: await registry.metrics() }),
    drain: async (t, o = {}) => settle(drainSafely(control, t, o, logger.child({ component: 'admin' }))),
    undrain: async (t) => settle(control.undrain(t)),
    pin: async (r, s) => settle(control.pin(r, s)),
    unpin: async (r) => settle(control.unpin(r)),
    approveFailback: async (r, force) => settle(control.approveFailback(r, force)),
    approveFailover: async (r) => settle(control.approveFailover(r)),
    reload: async () => {
      const result = await reload();
      if (!result.ok) return result;
      const settled = await settle({ ok: true, message: result.message });
      if (settled.ok) return result;
      throw notApplied(settled.message);
    },
  };
  let admin: Awaited<ReturnType<typeof startAdminServer>>;
  try {
    admin = await startAdminServer({
      host: policy.admin.host, port: policy.admin.port, token: () => material.adminToken, control: adminControl,
      ...(material.admin ? { tls: material.admin } : {}),
      publicRead: () => policy.admin.publicRead, audit, onAuthFailure: (reason) => metrics.adminAuthFailures.inc({ reason }),
      logger: logger.child({ component: 'admin' }),
    });
  } catch (err) {
    await dataPlane.abort();
    await stopBackground();
    throw err;
  }

  const watchOptions = opts.watch === true ? {} : opts.watch || undefined;
  const watcher = watchOptions === undefined ? undefined : new PolicyWatcher({
    file: policy.file,
    ...watchOptions,
    onChange: () => {
      void reload().then((result) => {
        if (result.ok) logger.info({ trigger: 'file change' }, result.message);
        else logger.error({ trigger: 'file change', errors: result.errors.map(formatPolicyError) }, 'policy reload failed; keeping the last good policy');
      }, (err: unknown) => logger.error({ err, trigger: 'file change' }, 'policy reload failed'));
    },
    // A watch that died (its directory replaced, say) would miss every edit
    // without a word; the poll keeps reloads coming, and this says so.
    onStatus: (status) => {
      const first = configWatch === undefined;
      configWatch = status;
      if (first && status.up) return;
      control.recordEvent({
        type: status.up ? 'configWatchUp' : 'configWatchDown',
        message: status.up ? `policy file watch ${status.detail}` : `policy file watch lost: ${status.detail}`,
      }, status.up ? 'info' : 'warn');
    },
  });

  let closing: Promise<void> | undefined;
  const close = () => {
    closing ??= (async () => {
      watcher?.close();
      await dataPlane.close(policy.shutdown.graceMs);
      prober.close();
      verifier.close();
      control.close();
      await history.close();
      await notifier.close(Math.min(2000, policy.shutdown.graceMs));
      await leadership.close();
      await store.close();
      await admin.close();
      metrics.close();
    })();
    return closing;
  };

  const workersNote = pool ? ` with ${workerCount} workers` : '';
  logger.info({ listen: urlOf(proxyAddress, proxyIsTls), admin: urlOf(admin.address, admin.isTls), routes: policy.routes.length, sites: policy.sites.length, workers: workerCount },
    `detour ${VERSION} serving ${policy.routes.length} routes on ${urlOf(proxyAddress, proxyIsTls)}, admin API on ${urlOf(admin.address, admin.isTls)}${workersNote}`);

  return {
    proxyUrl: urlOf(proxyAddress, proxyIsTls),
    adminUrl: urlOf(admin.address, admin.isTls),
    proxyAddress,
    adminAddress: admin.address,
    control,
    leadership,
    metrics,
    table: () => control.table,
    reload,
    applyPolicy,
    close,
    reopenLogs: () => dataPlane.reopenLogs(),
    workers: () => dataPlane.status(),
  };
}

function urlOf(a: AddressInfo, isTls = false): string {
  const host = a.family === 'IPv6' ? `[${a.address}]` : a.address;
  return `${isTls ? 'https' : 'http'}://${host === '0.0.0.0' ? '127.0.0.1' : host}:${a.port}`;
}

/** A claim must outlast a whole delivery: every attempt timing out, with the backoff between (capped at 5 s). */
function notificationClaimMs(webhooks: readonly WebhookPolicy[]): number {
  const longest = Math.max(0, ...webhooks.map((w) => (w.retries + 1) * w.timeoutMs + w.retries * 5000));
  return Math.max(10_000, longest + 5000);
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}

/**
 * Resolves in a later turn of the event loop, after it has polled for I/O once
 * more. An immediate queued from an immediate runs only in the next turn, so
 * two of them put a poll phase (requests, sockets) before what follows.
 */
function afterPoll(): Promise<void> {
  return new Promise<void>((resolve) => setImmediate(() => setImmediate(resolve)));
}
