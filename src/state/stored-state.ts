// What a replica last read from the shared store, and the pure step that turns
// it into the snapshot the control plane sees: stored state, then this
// replica's unconfirmed operations on top (so a local drain counts at once and
// through an outage), then this replica's own verdicts (always known locally),
// with replicas outside the liveness window left out. Also the one decision
// taken on every read: did Redis lose its data since the last one?
import { applyOp, emptyRecord, emptySharedState, type ReplicaVerdict, type SharedState, type StateOp } from './state-store.js';

export interface StoredVerdict {
  /** The hash field it is stored under, to delete it once its replica is gone. */
  readonly field: string;
  readonly site: string;
  readonly replicaId: string;
  readonly verdict: ReplicaVerdict;
}

export interface StoredState {
  /** The epoch it was read under; undefined until the first successful read. */
  readonly epoch: string | undefined;
  /** Drains, pins and approvals; `health` and `replicas` are left empty here. */
  readonly shared: SharedState;
  /** Every verdict in the store, live replicas or not. */
  readonly verdicts: readonly StoredVerdict[];
  /** replicaId -> last heartbeat (ms since the epoch, the writer's clock). */
  readonly heartbeats: Readonly<Record<string, number>>;
}

export const emptyStoredState: StoredState = Object.freeze({
  epoch: undefined, shared: emptySharedState, verdicts: [], heartbeats: {},
});

export interface ComposeInput {
  readonly stored: StoredState;
  /** In the order they were applied. */
  readonly pending: readonly StateOp[];
  /** This replica's latest verdict per site. */
  readonly own: ReadonlyMap<string, ReplicaVerdict>;
  readonly replicaId: string;
  readonly nowMs: number;
  readonly livenessMs: number;
}

/** A frozen snapshot with sorted lists and keys, so equal states serialise equally. */
export function composeSnapshot(input: ComposeInput): SharedState {
  const { stored, replicaId } = input;
  let state = stored.shared;
  for (const op of input.pending) state = applyOp(state, op);
  const live = liveReplicas(stored, input.nowMs, input.livenessMs, replicaId);
  const health = emptyRecord<Record<string, ReplicaVerdict>>();
  const put = (site: string, id: string, v: ReplicaVerdict): void => {
    (health[site] ??= emptyRecord())[id] = Object.freeze({ ...v });
  };
  // Our own verdicts come from memory, never from a possibly older stored copy.
  for (const v of stored.verdicts) if (v.replicaId !== replicaId && live.has(v.replicaId)) put(v.site, v.replicaId, v.verdict);
  for (const [site, v] of input.own) put(site, replicaId, v);
  return Object.freeze({
    drainedSites: Object.freeze([...new Set(state.drainedSites)].sort()),
    drainedBuildings: Object.freeze([...new Set(state.drainedBuildings)].sort()),
    pins: sortKeys(state.pins, (v) => v),
    failbackApprovals: sortKeys(state.failbackApprovals, (v) => Object.freeze({ ...v })),
    failoverApprovals: sortKeys(state.failoverApprovals, (v) => Object.freeze({ ...v })),
    health: sortKeys(health, (perReplica) => sortKeys(perReplica, (v) => v)),
    replicas: Object.freeze([...live].sort()),
  });
}

/** Entries of replicas silent for longer than livenessMs (never this replica's): safe to delete. */
export function findStale(
  stored: StoredState, nowMs: number, livenessMs: number, replicaId: string,
): { readonly replicas: readonly string[]; readonly fields: readonly string[] } {
  const live = liveReplicas(stored, nowMs, livenessMs, replicaId);
  return {
    replicas: Object.keys(stored.heartbeats).filter((id) => !live.has(id)).sort(),
    fields: stored.verdicts.filter((v) => !live.has(v.replicaId)).map((v) => v.field).sort(),
  };
}

/** Confirmed writes folded in, so the snapshot does not flicker before the next read. */
export function applyStoredOp(stored: StoredState, op: StateOp): StoredState {
  return { ...stored, shared: applyOp(stored.shared, op) };
}

/**
 * The operations that rebuild `previous` (the last confirmed state) when `read`
 * comes from a Redis that lost its data, or undefined when it did not.
 *
 * An empty read alone cannot tell "an operator undrained everything elsewhere"
 * from "Redis restarted empty"; the epoch can. Same epoch: the read is the
 * truth, another replica's undrain included. Another epoch: everything we had
 * confirmed is gone, and undraining a burning building because Redis restarted
 * is the one outcome we must not allow, so it is written again. Health is left
 * out: every replica re-publishes its own with each heartbeat.
 */
export function findLostOps(previous: StoredState, read: StoredState): readonly StateOp[] | undefined {
  if (previous.epoch === undefined || previous.epoch === read.epoch) return undefined;
  return rebuildOps(previous.shared);
}

/** Idempotent operations (SADD, HSET) that re-create the drains, pins and approvals of `shared`. */
export function rebuildOps(shared: SharedState): StateOp[] {
  const sorted = <T>(rec: Readonly<Record<string, T>>): [string, T][] => Object.entries(rec).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return [
    ...[...shared.drainedSites].sort().map((name): StateOp => ({ op: 'drain', kind: 'site', name })),
    ...[...shared.drainedBuildings].sort().map((name): StateOp => ({ op: 'drain', kind: 'building', name })),
    ...sorted(shared.pins).map(([route, site]): StateOp => ({ op: 'pin', route, site })),
    ...sorted(shared.failbackApprovals).map(([route, approval]): StateOp => ({ op: 'approveFailback', route, approval })),
    ...sorted(shared.failoverApprovals).map(([route, approval]): StateOp => ({ op: 'approveFailover', route, approval })),
  ];
}

function liveReplicas(stored: StoredState, nowMs: number, livenessMs: number, replicaId: string): Set<string> {
  const cutoffMs = nowMs - livenessMs;
  const live = new Set<string>([replicaId]);
  for (const [id, atMs] of Object.entries(stored.heartbeats)) if (atMs >= cutoffMs) live.add(id);
  return live;
}

function sortKeys<T, U>(rec: Readonly<Record<string, T>>, map: (v: T) => U): Readonly<Record<string, U>> {
  const out = emptyRecord<U>();
  for (const key of Object.keys(rec).sort()) out[key] = map(rec[key]!);
  return Object.freeze(out);
}
