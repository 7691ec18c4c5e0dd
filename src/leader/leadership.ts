// Who decides. With several replicas (state.redis) one of them holds a lease
// in Redis and computes route decisions; it publishes each decision with an
// epoch (the fencing token every proxied request carries as x-detour-epoch),
// and the others apply what it published. A single replica without Redis is
// always its own leader (LocalLeadership below).
//
// The control plane only sees this interface: isLeader(), the last published
// decision, publish(), and a hook when the leader changes (the shared event
// stream and leader-only webhooks hang off the same hook).
import type { RouteDecision } from '../routing/route-table.js';

/** One route of a published decision: the decision itself, as the leader made it. */
export type PublishedRoute = RouteDecision;

export interface PublishedDecision {
  /** The fencing epoch this decision routes under. */
  readonly epoch: number;
  /** Replica id of the leader that published it. */
  readonly leader: string;
  /** The leader's clock when it published. */
  readonly atMs: number;
  readonly routes: readonly PublishedRoute[];
}

export interface ReplicaView {
  readonly id: string;
  /** Last heartbeat written to Redis (ms since the Unix epoch); null when never seen. */
  readonly heartbeatMs: number | null;
  readonly redisReachable: boolean;
  /** The epoch of the decision this replica applies; null when unknown. */
  readonly epoch: number | null;
}

export interface LeadershipView {
  /** The replica whose decisions apply (holder of the lease), or null when none is known. */
  readonly leader: string | null;
  readonly replicas: readonly ReplicaView[];
}

export interface LeaderChange {
  readonly leader: string | null;
  readonly isLeader: boolean;
  /** The epoch this replica took the lease with (when it became the leader). */
  readonly epoch: number | null;
}

export interface Leadership {
  readonly kind: 'local' | 'redis';
  readonly replicaId: string;
  /** Start contending for the lease and reading decisions (after the first probe round). */
  start(): Promise<void>;
  /** True while this replica holds the lease (a leader that cannot renew steps down before it expires). */
  isLeader(): boolean;
  /** Shared decisions can be read (Redis reachable); a local leadership always can. */
  isUp(): boolean;
  /** The newest decision read from the leader (undefined before the first). */
  published(): PublishedDecision | undefined;
  /**
   * Leader only: publish this decision; returns the epoch it routes under, at
   * once (the write happens in the background). `movesTraffic` says whether it
   * sends requests elsewhere than the last published one: only then does the
   * epoch increase.
   */
  publish(routes: readonly RouteDecision[], movesTraffic: boolean): number;
  /** The epoch this replica routes under now (reported in its heartbeat). */
  noteApplied(epoch: number): void;
  view(): LeadershipView;
  onLeaderChange(listener: (change: LeaderChange) => void): () => void;
  onPublished(listener: (decision: PublishedDecision) => void): () => void;
  close(): Promise<void>;
}

/**
 * The next epoch: one more than the last, and never behind the wall clock in
 * milliseconds. The clock floor keeps epochs increasing across a restart of a
 * lone gateway and across a Redis that lost its data (a bare counter would
 * start again at 1, and every site that remembers a higher epoch would refuse
 * everything).
 */
export function nextEpoch(last: number, nowMs: number): number {
  return Math.max(last + 1, Math.floor(nowMs));
}

/** No Redis: this replica is the only one, always the leader, with a local epoch. */
export class LocalLeadership implements Leadership {
  readonly kind = 'local' as const;
  readonly replicaId: string;
  readonly #now: () => number;
  #epoch: number;

  constructor(replicaId: string, now: () => number = Date.now) {
    this.replicaId = replicaId;
    this.#now = now;
    this.#epoch = nextEpoch(0, now());
  }

  async start(): Promise<void> {}
  isLeader(): boolean { return true; }
  isUp(): boolean { return true; }
  published(): PublishedDecision | undefined { return undefined; }

  publish(_routes: readonly RouteDecision[], movesTraffic: boolean): number {
    if (movesTraffic) this.#epoch = nextEpoch(this.#epoch, this.#now());
    return this.#epoch;
  }

  noteApplied(): void {}

  view(): LeadershipView {
    return { leader: this.replicaId, replicas: [{ id: this.replicaId, heartbeatMs: null, redisReachable: false, epoch: this.#epoch }] };
  }

  onLeaderChange(): () => void { return () => {}; }
  onPublished(): () => void { return () => {}; }
  async close(): Promise<void> {}
}
