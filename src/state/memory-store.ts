// The default store: one replica, state in this process. It answers at once and
// is never down, so the control plane needs no special case for "no Redis".
import { applyOp, emptySharedState, ownValue, type ReplicaVerdict, type SharedState, type StateOp, type StateStore } from './state-store.js';
import { createReplicaId } from './replica-id.js';
import type { Logger } from '../logger.js';

export interface MemoryStoreOptions {
  readonly replicaId?: string;
  readonly now?: () => number;
  /** Where a throwing listener is reported (apply() itself never throws). */
  readonly logger?: Logger;
}

export class MemoryStore implements StateStore {
  readonly kind = 'memory' as const;
  readonly replicaId: string;
  readonly #now: () => number;
  readonly #logger: Logger | undefined;
  readonly #listeners = new Set<(state: SharedState) => void>();
  #state: SharedState;

  constructor(opts: MemoryStoreOptions = {}) {
    this.replicaId = opts.replicaId ?? createReplicaId();
    this.#now = opts.now ?? Date.now;
    this.#logger = opts.logger;
    this.#state = Object.freeze({ ...emptySharedState, replicas: [this.replicaId] });
  }

  async start(): Promise<void> {}

  apply(op: StateOp): void {
    this.#set(applyOp(this.#state, op));
  }

  publishHealth(site: string, verdict: Omit<ReplicaVerdict, 'atMs'>): void {
    const own: ReplicaVerdict = { ...verdict, atMs: this.#now() };
    const health = { ...this.#state.health, [site]: { ...ownValue(this.#state.health, site), [this.replicaId]: own } };
    this.#set({ ...this.#state, health });
  }

  forgetHealth(site: string): void {
    const votes = ownValue(this.#state.health, site);
    if (!votes || !Object.hasOwn(votes, this.replicaId)) return;
    const { [this.replicaId]: _gone, ...others } = votes;
    const { [site]: _site, ...health } = this.#state.health;
    this.#set({ ...this.#state, health: Object.keys(others).length > 0 ? { ...health, [site]: others } : health });
  }

  onState(listener: (state: SharedState) => void): void {
    this.#listeners.add(listener);
  }

  // Never reachable or unreachable: there is nothing to lose.
  onStatus(_listener: (up: boolean) => void): void {}

  isUp(): boolean {
    return true;
  }

  snapshot(): SharedState {
    return this.#state;
  }

  async close(): Promise<void> {
    this.#listeners.clear();
  }

  #set(next: SharedState): void {
    this.#state = Object.freeze(next);
    for (const listener of this.#listeners) {
      try {
        listener(this.#state);
      } catch (err) {
        this.#logger?.error({ err: err instanceof Error ? err.message : String(err) }, 'state store: state listener threw');
      }
    }
  }
}
