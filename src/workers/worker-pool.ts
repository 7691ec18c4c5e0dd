// The primary's side of `workers: N`: N worker processes (node:cluster) that
// own only the data plane. The primary keeps everything that must happen once
// (policy, probes, integrity, decisions, admin API, Redis, webhooks) and tells
// the workers what to route by:
//
//  - every route table goes to every worker whole, with its version; a worker
//    acknowledges each version once it is in place, and a drain, pin or
//    failover answers the operator only when every live worker has (settled());
//  - a worker boots, receives the policy and the current table, and only then
//    opens its listener: it never answers without a table;
//  - passive signals come back batched (signal-batch.ts) and are fed to the
//    primary's passive monitor, which alone judges sites;
//  - a worker that dies is replaced at once, from the current table; its death
//    is an event (workerExited) and a count (detour_worker_restarts_total).
//
// The listen port is shared through the cluster module, and each worker
// accepts its own connections from the shared socket (SCHED_NONE), unless
// NODE_CLUSTER_SCHED_POLICY=rr asks otherwise. Node's default round-robin has
// the primary accept and hand each connection to a worker, and a worker killed
// before it took its hand-off leaves that connection open and unread forever
// (the chaos suite's "a worker killed"; bench/chaos/cluster-rr-hang.cjs shows it
// without detour). With SCHED_NONE the kernel spreads connections, less evenly,
// and a connection the dead worker had accepted is reset, not left hanging.
import cluster, { type Worker } from 'node:cluster';
import { extname } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { AddressInfo } from 'node:net';
import type { Policy } from '../config/policy.js';
import type { Logger } from '../logger.js';
import type { PassiveHealth } from '../proxy/exchange.js';
import type { RouteTable } from '../routing/route-table.js';
import type { EventLevel, GatewayEvent } from '../model/events.js';
import type { DataPlane, WorkersStatus, WorkerStatus } from './data-plane.js';
import { CHANNEL, isDetourMessage, type MetricSnapshot, type PrimaryMessage, type WorkerMessage } from './protocol.js';
import { replaySignals, realScheduler } from './signal-batch.js';
import { toWire } from './table-wire.js';
import { VersionAcks, type AckResult } from './version-acks.js';
import { MetricsLedger, mergeSnapshots } from './merge-metrics.js';

export interface WorkerPoolOptions {
  readonly count: number;
  readonly configured: number | 'auto';
  readonly logger: Logger;
  /** The primary's passive monitor: workers' live-traffic signals are replayed into it. */
  readonly passive: PassiveHealth;
  /** What the primary's probes doubt (re-sends off such a site skip the retry budget on every worker). */
  inDoubt(site: string): boolean;
  recordEvent(event: Omit<GatewayEvent, 'time'>, level: EventLevel): void;
  /** A worker died and was replaced. */
  onRestart(): void;
  /** How long an admin call waits for every worker's acknowledgement (default 5 s). */
  readonly ackTimeoutMs?: number;
  /** How long the first workers may take to listen (default 60 s: a loaded host takes seconds to load a Node process). */
  readonly startTimeoutMs?: number;
  /** How long a scrape waits for a worker's counts before using its last ones (default 2 s). */
  readonly metricsTimeoutMs?: number;
  /** The worker program (default worker-main beside this module) and its Node options (default this process's). */
  readonly program?: { readonly exec: string; readonly execArgv?: readonly string[] };
}

interface Member {
  readonly worker: Worker;
  state: 'booting' | 'starting' | 'serving' | 'stopping';
  readonly startedMs: number;
  /** The policy id this worker holds. */
  policyId: number;
}

/** A worker that dies this soon after it started is restarted after a pause, not in a tight loop. */
export const CRASH_LOOP_MS = 1000;
const CRASH_PAUSE_MS = 1000;

export class WorkerPool implements DataPlane {
  readonly #opts: WorkerPoolOptions;
  readonly #log: Logger;
  readonly #members = new Map<number, Member>();
  readonly #acks = new VersionAcks<number>(realScheduler.after);
  readonly #ledger = new MetricsLedger<number>();
  readonly #metricWaiters = new Map<number, (snapshot: MetricSnapshot) => void>();
  #nextMetricsId = 1;
  #table: RouteTable | undefined;
  #policy: Policy | undefined;
  #policyId = 0;
  #doubts: readonly string[] = [];
  #doubtsQueued = false;
  #restarts = 0;
  #closing: Promise<void> | undefined;
  #address: AddressInfo | undefined;
  #started: { resolve: () => void; reject: (err: Error) => void } | undefined;
  #onWorkerExit: ((worker: Worker, code: number | null, signal: string | null) => void) | undefined;

  constructor(opts: WorkerPoolOptions) {
    this.#opts = opts;
    this.#log = opts.logger;
  }

  async start(table: RouteTable): Promise<{ readonly address: AddressInfo; readonly isTls: boolean }> {
    this.#adopt(table);
    const here = fileURLToPath(import.meta.url);
    // Frozen by the first setupPrimary() or fork(): set before either.
    if (process.env.NODE_CLUSTER_SCHED_POLICY !== 'rr') cluster.schedulingPolicy = cluster.SCHED_NONE;
    cluster.setupPrimary({
      exec: this.#opts.program?.exec ?? here.replace(/worker-pool(\.[cm]?[jt]s)$/, `worker-main${extname(here)}`),
      ...(this.#opts.program?.execArgv ? { execArgv: [...this.#opts.program.execArgv] } : {}),
      args: [],
      serialization: 'advanced',
    });
    this.#onWorkerExit = (worker, code, signal) => this.#exited(worker, code, signal);
    cluster.on('exit', this.#onWorkerExit);
    const serving = new Promise<void>((resolve, reject) => { this.#started = { resolve, reject }; });
    for (let i = 0; i < this.#opts.count; i++) this.#fork();
    const timeoutMs = this.#opts.startTimeoutMs ?? 60_000;
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([serving, new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`workers did not start listening within ${timeoutMs} ms`)), timeoutMs);
      })]);
    } finally {
      clearTimeout(timer);
      this.#started = undefined;
    }
    return { address: this.#address!, isTls: this.#table?.policy.listen.tls !== undefined };
  }

  tableChanged(table: RouteTable): void {
    this.#adopt(table);
    for (const m of this.#members.values()) if (m.state !== 'booting') this.#sendTable(m);
    this.doubtsChanged();
  }

  siteDown(site: string): void {
    this.#broadcast({ type: 'siteDown', site });
  }

  applyPolicy(): void {
    // Workers read a new policy's certificates themselves when it arrives with its first table.
  }

  doubtsChanged(): void {
    if (this.#doubtsQueued) return;
    this.#doubtsQueued = true;
    setImmediate(() => {
      this.#doubtsQueued = false;
      const sites = (this.#policy?.sites ?? []).map((s) => s.name).filter((s) => this.#opts.inDoubt(s));
      if (sites.length === this.#doubts.length && sites.every((s, i) => s === this.#doubts[i])) return;
      this.#doubts = sites;
      this.#broadcast({ type: 'doubts', sites });
    });
  }

  async settled(): Promise<AckResult<number> & { readonly version: number }> {
    const version = this.#table?.version ?? 0;
    return { ...await this.#acks.waitFor(version, this.#opts.ackTimeoutMs ?? 5000), version };
  }

  reopenLogs(): void {
    this.#broadcast({ type: 'reopenLogs' });
  }

  async metrics(primary: MetricSnapshot): Promise<MetricSnapshot> {
    const timeoutMs = this.#opts.metricsTimeoutMs ?? 2000;
    const live = [...this.#members.values()].filter((m) => m.state === 'serving' || m.state === 'stopping');
    const snapshots = await Promise.all(live.map((m) => this.#collect(m, timeoutMs)));
    return mergeSnapshots(primary, [...snapshots.filter((s): s is MetricSnapshot => s !== undefined), this.#ledger.retired]);
  }

  status(): WorkersStatus {
    const workers: WorkerStatus[] = [...this.#members.values()].map((m) => ({
      id: m.worker.id,
      pid: m.worker.process.pid,
      state: m.state === 'booting' ? 'starting' : m.state,
      tableVersion: this.#acks.versionOf(m.worker.id) ?? 0,
      startedAt: new Date(m.startedMs).toISOString(),
    }));
    return {
      configured: this.#opts.configured,
      count: workers.filter((w) => w.state === 'serving').length,
      restarts: this.#restarts,
      workers,
    };
  }

  /** Live workers by state, for detour_workers. */
  counts(): { readonly serving: number; readonly starting: number } {
    let serving = 0;
    let starting = 0;
    for (const m of this.#members.values()) {
      if (m.state === 'serving') serving++;
      else if (m.state !== 'stopping') starting++;
    }
    return { serving, starting };
  }

  close(graceMs: number): Promise<void> {
    this.#closing ??= (async () => {
      this.#acks.releaseAll();
      const exits = [...this.#members.values()].map((m) => new Promise<void>((resolve) => {
        if (m.worker.isDead()) { resolve(); return; }
        m.worker.once('exit', () => resolve());
      }));
      for (const m of this.#members.values()) {
        m.state = 'stopping';
        this.#send(m, { type: 'shutdown', graceMs });
      }
      // A worker that does not finish within its grace (plus time to flush and exit) is killed.
      const deadline = setTimeout(() => {
        for (const m of this.#members.values()) if (!m.worker.isDead()) m.worker.process.kill('SIGKILL');
      }, graceMs + 5000);
      await Promise.all(exits);
      clearTimeout(deadline);
      if (this.#onWorkerExit) cluster.off('exit', this.#onWorkerExit);
    })();
    return this.#closing;
  }

  abort(): Promise<void> {
    return this.close(0);
  }

  #adopt(table: RouteTable): void {
    if (table.policy !== this.#policy) {
      this.#policy = table.policy;
      this.#policyId++;
    }
    this.#table = table;
  }

  #fork(): Worker {
    // Workers log at the primary's level (--log-level), to the same stdout.
    const worker = cluster.fork({ DETOUR_WORKER: '1', DETOUR_LOG_LEVEL: this.#log.level });
    const member: Member = { worker, state: 'booting', startedMs: Date.now(), policyId: 0 };
    this.#members.set(worker.id, member);
    worker.on('message', (message: unknown) => {
      if (isDetourMessage(message)) this.#received(member, message[CHANNEL] as WorkerMessage);
    });
    // A worker's channel can fail as it dies; the exit handler replaces it.
    worker.on('error', (err) => this.#log.warn({ err: err.message, worker: worker.id }, 'worker channel error'));
    return worker;
  }

  #received(m: Member, message: WorkerMessage): void {
    switch (message.type) {
      case 'booted':
        m.state = 'starting';
        this.#sendTable(m);
        this.#send(m, { type: 'doubts', sites: this.#doubts });
        return;
      case 'applied':
        this.#acks.applied(m.worker.id, message.version);
        return;
      case 'listening':
        if (m.state === 'starting') m.state = 'serving';
        this.#address ??= { address: message.address, port: message.port, family: message.family };
        this.#log.debug({ worker: m.worker.id, pid: m.worker.process.pid }, 'worker serving');
        if (this.#started && [...this.#members.values()].every((w) => w.state === 'serving')) this.#started.resolve();
        return;
      case 'listenFailed':
        this.#started?.reject(new Error(message.message));
        return;
      case 'signals':
        replaySignals(message.batch, this.#opts.passive);
        this.doubtsChanged();
        return;
      case 'metrics': {
        this.#ledger.record(m.worker.id, message.metrics);
        const waiter = this.#metricWaiters.get(message.id);
        this.#metricWaiters.delete(message.id);
        waiter?.(message.metrics);
        return;
      }
    }
  }

  #sendTable(m: Member): void {
    const table = this.#table;
    if (!table) return;
    if (m.policyId !== this.#policyId) {
      this.#send(m, { type: 'policy', policyId: this.#policyId, policy: table.policy });
      m.policyId = this.#policyId;
    }
    this.#acks.expect(m.worker.id);
    this.#send(m, { type: 'table', table: toWire(table, this.#policyId) });
  }

  #collect(m: Member, timeoutMs: number): Promise<MetricSnapshot | undefined> {
    const id = this.#nextMetricsId++;
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.#metricWaiters.delete(id);
        this.#log.warn({ worker: m.worker.id }, `worker did not send its metrics within ${timeoutMs} ms; using its last counts`);
        resolve(undefined);
      }, timeoutMs);
      this.#metricWaiters.set(id, (snapshot) => { clearTimeout(timer); resolve(snapshot); });
      if (!this.#send(m, { type: 'collectMetrics', id })) {
        clearTimeout(timer);
        this.#metricWaiters.delete(id);
        resolve(undefined);
      }
    });
  }

  #broadcast(message: PrimaryMessage): void {
    for (const m of this.#members.values()) if (m.state !== 'booting') this.#send(m, message);
  }

  #send(m: Member, message: PrimaryMessage): boolean {
    if (!m.worker.isConnected()) return false;
    try {
      m.worker.send({ [CHANNEL]: message });
      return true;
    } catch (err) {
      this.#log.warn({ err: (err as Error).message, worker: m.worker.id }, 'cannot reach a worker');
      return false;
    }
  }

  #exited(worker: Worker, code: number | null, signal: string | null): void {
    const m = this.#members.get(worker.id);
    if (!m) return;
    this.#members.delete(worker.id);
    this.#acks.forget(worker.id);
    this.#ledger.retire(worker.id);
    if (this.#closing) return;
    const how = signal ? `signal ${signal}` : `exit code ${code}`;
    if (this.#started) {
      // The first workers must all come up: one that dies while starting stops the gateway's start.
      this.#started.reject(new Error(`worker ${worker.id} (pid ${worker.process.pid}) exited while starting (${how})`));
      return;
    }
    this.#restarts++;
    this.#opts.onRestart();
    const crashLoop = Date.now() - m.startedMs < CRASH_LOOP_MS;
    const replacement = crashLoop ? undefined : this.#fork();
    if (crashLoop) setTimeout(() => { if (!this.#closing) this.#fork(); }, CRASH_PAUSE_MS).unref();
    this.#opts.recordEvent({
      type: 'workerExited', reason: signal ?? `exit ${code}`,
      message: `worker ${worker.id} (pid ${worker.process.pid}) died (${how}); ${replacement
        ? `replaced by worker ${replacement.id} (pid ${replacement.process.pid})`
        : `replacing it in ${CRASH_PAUSE_MS} ms (it died within ${CRASH_LOOP_MS} ms of starting)`}`,
    }, 'error');
  }
}
