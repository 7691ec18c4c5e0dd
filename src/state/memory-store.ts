// The default store: one replica, state in this process. It answers at once and
// is never down, so the control plane needs no special case for "no Redis".
import { applyOp, emptySharedState, type ReplicaVerdict, type SharedState, type StateOp, type StateStore } from './state-store.js';
import { createReplicaId } from './replica-id.js';
import type { Logger } from '../logger.js';

export interface MemoryStoreOptions {
  readonly replicaId?: string;
  readonly now?: () => number;
  /** Where a throwing listener is reported (apply() itself never throws). */
  readonly logger?: Logger;
}

type SiteVotes = Readonly<Record<string, ReplicaVerdict>>;

/**
 * Every site's votes as an append-only log over a frozen base: publishing a
 * verdict is one push, and a snapshot remembers how far the log went, so it
 * sees exactly the votes of its moment. (Copying a map of 1,000 sites on each
 * of the first probe round's 1,000 verdicts was 40 ms of a 10,000-route start.)
 * The log is never changed below a length a snapshot took; when it grows past
 * the base, a new log starts from the current votes and old snapshots keep the old one.
 */
class VoteLog {
  readonly changes: Array<readonly [site: string, votes: SiteVotes | undefined]> = [];
  constructor(readonly base: ReadonlyMap<string, SiteVotes>) {}

  /** The votes after the first `length` changes, as the snapshot's `health` record. */
  record(length: number): SharedState['health'] {
    const votes = new Map(this.base);
    for (let i = 0; i < length; i++) {
      const [site, v] = this.changes[i]!;
      if (v === undefined) votes.delete(site);
      else votes.set(site, v);
    }
    return Object.freeze(Object.fromEntries(votes));
  }
}

/** A frozen snapshot whose `health` record is made (once) from the vote log up to now, when first read. */
function withHealth(rest: Omit<SharedState, 'health'>, log: VoteLog): SharedState {
  const length = log.changes.length;
  let record: SharedState['health'] | undefined;
  const state = { ...rest } as SharedState;
  Object.defineProperty(state, 'health', { enumerable: true, get: () => (record ??= log.record(length)) });
  return Object.freeze(state);
}

export class MemoryStore implements StateStore {
  readonly kind = 'memory' as const;
  readonly replicaId: string;
  readonly #now: () => number;
  readonly #logger: Logger | undefined;
  readonly #listeners = new Set<(state: SharedState) => void>();
  #state: SharedState;
  /**
   * site -> replica -> verdict as they are now (never shared), and the log
   * snapshots read them from. A snapshot's `health` record is built only when
   * read: building a record of 1,000 sites on each of the first probe round's
   * 1,000 verdicts was a tenth of a second of start.
   */
  readonly #votes = new Map<string, SiteVotes>();
  #log = new VoteLog(new Map());

  constructor(opts: MemoryStoreOptions = {}) {
    this.replicaId = opts.replicaId ?? createReplicaId();
    this.#now = opts.now ?? Date.now;
    this.#logger = opts.logger;
    this.#state = withHealth({ ...emptySharedState, replicas: [this.replicaId] }, this.#log);
  }

  async start(): Promise<void> {}

  apply(op: StateOp): void {
    // Operations never touch health: the votes stay as they are.
    this.#set(applyOp(this.#state, op));
  }

  publishHealth(site: string, verdict: Omit<ReplicaVerdict, 'atMs'>): void {
    const own: ReplicaVerdict = Object.freeze({ ...verdict, atMs: this.#now() });
    this.#record(site, Object.freeze({ ...this.#votes.get(site), [this.replicaId]: own }));
    this.#set(this.#state);
  }

  forgetHealth(site: string): void {
    const votes = this.#votes.get(site);
    if (!votes || !Object.hasOwn(votes, this.replicaId)) return;
    const { [this.replicaId]: _gone, ...others } = votes;
    this.#record(site, Object.keys(others).length > 0 ? Object.freeze(others) : undefined);
    this.#set(this.#state);
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

  /** One site's votes change (undefined: it has none left). */
  #record(site: string, votes: SiteVotes | undefined): void {
    if (votes === undefined) this.#votes.delete(site);
    else this.#votes.set(site, votes);
    if (this.#log.changes.length >= Math.max(64, this.#log.base.size)) this.#log = new VoteLog(new Map(this.#votes));
    else this.#log.changes.push([site, votes]);
  }

  #set(next: Omit<SharedState, 'health'>): void {
    // Field by field: reading `health` here would build the record it defers.
    const { drainedSites, drainedBuildings, pins, failbackApprovals, failoverApprovals, replicas } = next;
    this.#state = withHealth({ drainedSites, drainedBuildings, pins, failbackApprovals, failoverApprovals, replicas }, this.#log);
    for (const listener of this.#listeners) {
      try {
        listener(this.#state);
      } catch (err) {
        this.#logger?.error({ err: err instanceof Error ? err.message : String(err) }, 'state store: state listener threw');
      }
    }
  }
}
