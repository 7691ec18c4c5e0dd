// What the gateway asks of its data plane, whether it is a listener in the
// same process (workers: 1) or a pool of worker processes (workers-pool.ts).
// The gateway owns the control plane and hands the data plane every new
// table; the data plane says when a table is in place everywhere it serves.
import type { AddressInfo } from 'node:net';
import type { Policy } from '../config/policy.js';
import type { RouteTable } from '../routing/route-table.js';
import type { PolicyMaterial } from '../tls/policy-material.js';
import type { MetricSnapshot } from './protocol.js';
import type { AckResult } from './version-acks.js';

export interface WorkerStatus {
  /** cluster worker id (0 for the single process). */
  readonly id: number;
  readonly pid: number | undefined;
  readonly state: 'starting' | 'serving' | 'stopping';
  /** Version of the route table this worker routes by (0: none yet). */
  readonly tableVersion: number;
  readonly startedAt: string;
}

/** The `workers` part of GET /status. */
export interface WorkersStatus {
  /** As the policy says (absent = 1). */
  readonly configured: number | 'auto';
  /** Data-plane processes that serve (the single process counts as one). */
  readonly count: number;
  /** Workers replaced after they died. */
  readonly restarts: number;
  readonly workers: readonly WorkerStatus[];
}

export interface DataPlane {
  /** Open the listener, or start the workers and wait until every one serves `table`. */
  start(table: RouteTable): Promise<{ readonly address: AddressInfo; readonly isTls: boolean }>;
  tableChanged(table: RouteTable): void;
  /** A site went down (its new table is already handed over): re-send what waits on it. */
  siteDown(site: string): void;
  /** A reloaded policy (its table follows through tableChanged). */
  applyPolicy(policy: Policy, material: PolicyMaterial): void;
  /** What the probes doubt may have changed (after a probe result or passive evidence). */
  doubtsChanged(): void;
  /**
   * Resolves once every live data-plane process routes by the newest table
   * handed over (tableChanged), or says who lags.
   */
  settled(): Promise<AckResult<number> & { readonly version: number }>;
  reopenLogs(): void;
  /** Drain: stop accepting, finish in-flight within graceMs. */
  close(graceMs: number): Promise<void>;
  /** Stop what started, after a failed start. */
  abort(): Promise<void>;
  /** The primary's own snapshot merged with the data plane's counts. */
  metrics(primary: MetricSnapshot): Promise<MetricSnapshot>;
  status(): WorkersStatus;
}

/** `workers` as a number of processes: auto = one per core. */
export function resolveWorkerCount(setting: number | 'auto' | undefined, cores: number): number {
  if (setting === undefined) return 1;
  return setting === 'auto' ? Math.max(1, cores) : setting;
}
