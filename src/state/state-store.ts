// What replicas share: runtime drains, pins, approvals, and each replica's own
// health verdicts (so a quorum can decide). The control plane never awaits the
// store: it hands operations over with apply() and receives whole snapshots
// through onState(). A snapshot already includes this replica's operations that
// the backend has not confirmed yet, so a local drain takes effect at once and
// survives a store outage; it is written when the store comes back.
import type { Approval } from '../routing/route-table.js';

export interface ReplicaVerdict {
  readonly status: 'up' | 'down';
  /** When this replica's verdict last changed. */
  readonly sinceMs: number;
  readonly reason: string;
  /** Down on live-traffic evidence alone (no failed probe yet): routing may still use it as a route's last site. */
  readonly passiveOnly?: boolean;
  /** When this replica last (re)published it. */
  readonly atMs: number;
}

export interface SharedState {
  readonly drainedSites: readonly string[];
  readonly drainedBuildings: readonly string[];
  /** route -> site */
  readonly pins: Readonly<Record<string, string>>;
  readonly failbackApprovals: Readonly<Record<string, Approval>>;
  readonly failoverApprovals: Readonly<Record<string, Approval>>;
  /** site -> replicaId -> verdict, for replicas seen within the liveness window (this one included). */
  readonly health: Readonly<Record<string, Readonly<Record<string, ReplicaVerdict>>>>;
  /** Replica ids seen within the liveness window, this one included. */
  readonly replicas: readonly string[];
}

export type StateOp =
  | { readonly op: 'drain' | 'undrain'; readonly kind: 'site' | 'building'; readonly name: string }
  | { readonly op: 'pin'; readonly route: string; readonly site: string }
  | { readonly op: 'unpin'; readonly route: string }
  | { readonly op: 'approveFailback' | 'approveFailover'; readonly route: string; readonly approval: Approval }
  | { readonly op: 'clearApproval'; readonly kind: 'failback' | 'failover'; readonly route: string };

export interface StateStore {
  readonly kind: 'memory' | 'redis';
  readonly replicaId: string;
  /** Connect and load; resolves even when the backend is unreachable (it keeps trying). */
  start(): Promise<void>;
  /** Apply locally at once (the next snapshot has it) and write it to the backend; never throws. */
  apply(op: StateOp): void;
  /** This replica's verdict on a site; published now and re-published with every heartbeat. */
  publishHealth(site: string, verdict: Omit<ReplicaVerdict, 'atMs'>): void;
  /** Withdraw this replica's verdict on a site (removed by a reload, or moved to a new address). */
  forgetHealth(site: string): void;
  /** Called with a whole new snapshot whenever it may have changed. */
  onState(listener: (state: SharedState) => void): void;
  /** Called when the backend becomes reachable or unreachable. */
  onStatus(listener: (up: boolean) => void): void;
  isUp(): boolean;
  snapshot(): SharedState;
  close(): Promise<void>;
}

/**
 * The entry a name-keyed record holds for `key`, never one inherited from
 * Object.prototype: route and site names such as `constructor` or `toString`
 * are valid, and `pins['constructor']` on a plain object is a function.
 */
export function ownValue<T>(record: Readonly<Record<string, T>>, key: string): T | undefined {
  return Object.hasOwn(record, key) ? record[key] : undefined;
}

/** An empty record with no prototype, for tables keyed by names that come from outside. */
export function emptyRecord<T>(): Record<string, T> {
  return Object.create(null) as Record<string, T>;
}

export const emptySharedState: SharedState = Object.freeze({
  drainedSites: [], drainedBuildings: [], pins: {}, failbackApprovals: {}, failoverApprovals: {}, health: {}, replicas: [],
});

/** Pure: a snapshot with one operation applied (used by both stores, and for unconfirmed local operations). */
export function applyOp(state: SharedState, op: StateOp): SharedState {
  const without = (list: readonly string[], name: string) => list.filter((x) => x !== name);
  const withName = (list: readonly string[], name: string) => (list.includes(name) ? list : [...list, name].sort());
  const omit = <T>(rec: Readonly<Record<string, T>>, key: string): Record<string, T> => {
    const { [key]: _gone, ...rest } = rec;
    return rest;
  };
  switch (op.op) {
    case 'drain':
      return op.kind === 'site'
        ? { ...state, drainedSites: withName(state.drainedSites, op.name) }
        : { ...state, drainedBuildings: withName(state.drainedBuildings, op.name) };
    case 'undrain':
      return op.kind === 'site'
        ? { ...state, drainedSites: without(state.drainedSites, op.name) }
        : { ...state, drainedBuildings: without(state.drainedBuildings, op.name) };
    case 'pin':
      return { ...state, pins: { ...state.pins, [op.route]: op.site } };
    case 'unpin':
      return { ...state, pins: omit(state.pins, op.route) };
    case 'approveFailback':
      return { ...state, failbackApprovals: { ...state.failbackApprovals, [op.route]: op.approval } };
    case 'approveFailover':
      return { ...state, failoverApprovals: { ...state.failoverApprovals, [op.route]: op.approval } };
    case 'clearApproval':
      return op.kind === 'failback'
        ? { ...state, failbackApprovals: omit(state.failbackApprovals, op.route) }
        : { ...state, failoverApprovals: omit(state.failoverApprovals, op.route) };
  }
}
