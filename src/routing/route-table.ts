// Types of the routing decision. The route table is the only thing the data
// plane reads: a frozen value, replaced whole by reference whenever an input
// changes. It carries the policy it was computed from, so a request never sees
// routes from one policy and decisions from another.
import type { Policy } from '../config/policy.js';
import type { SiteHealth } from '../health/health-state.js';

export type RouteState =
  | 'preferred'          // serving from the first site in its list
  | 'failed-over'        // serving from a less preferred site; the preferred one is down or drained
  | 'pending-failover'   // failover.mode manual: current site is gone, waiting for an operator
  | 'holding-down'       // preferred site is back; waiting for holdDown
  | 'verifying'          // hold-down running, integrity gate not yet passed
  | 'blocked'            // failback blocked (integrity mismatch, lower priority level still recovering, ramp slots)
  | 'awaiting-approval'  // failback.mode manual: gate passed, waiting for POST /routes/NAME/failback
  | 'ramping'            // shifting traffic back along failback.ramp
  | 'pinned'             // an operator pinned the route to a site
  | 'unavailable';       // no site can serve

export type BlockedReason = 'integrity' | 'priority' | 'concurrency' | 'approval' | 'holddown';

/** Why a route's active site changed (the `reason` label of detour_failovers_total). */
export type FailoverReason = 'site_down' | 'drain' | 'pin' | 'unpin' | 'failback' | 'manual' | 'recovered';

export interface Transition {
  readonly from: string | null;
  readonly to: string | null;
  readonly reason: FailoverReason;
  /** Set when an operator forced it (failback with force). */
  readonly forced?: boolean;
}

export interface WeightedSite {
  readonly site: string;
  /** Percent of new requests, 0..100; the weights of a route sum to 100. */
  readonly weight: number;
}

export interface RampProgress {
  /** Site traffic is shifting back to. */
  readonly to: string;
  /** Site traffic is shifting away from. */
  readonly from: string;
  /** Index into failback.ramp. */
  readonly step: number;
  readonly percent: number;
  readonly stepStartedMs: number;
}

export interface RouteDecision {
  readonly name: string;
  readonly state: RouteState;
  /** Site the route is on (during a ramp: the site being left); null when unavailable. */
  readonly active: string | null;
  /** How new requests are spread; empty when unavailable. */
  readonly weights: readonly WeightedSite[];
  /** Every eligible site (up or unknown, not drained) in preference order: retry candidates. */
  readonly eligible: readonly string[];
  /** Failback target: first site in policy order that is up and not drained. */
  readonly preferred: string | null;
  /** The state in words, e.g. `integrity mismatch: checksum a1f3 (cyber1) != 9c2e (serpong)`. */
  readonly reason: string;
  /** When `state` last changed. */
  readonly sinceMs: number;
  readonly blocked?: { readonly code: BlockedReason; readonly message: string };
  readonly pendingFailover?: { readonly from: string; readonly to: string; readonly sinceMs: number };
  readonly ramp?: RampProgress;
  /** When the preferred site started counting hold-down (it became up, or the ramp was aborted). */
  readonly holdDownFromMs?: number;
  readonly pinnedTo?: string;
  /**
   * Set when the route serves from a site that live traffic alone marked down,
   * because every other site is gone: passive evidence never takes out a
   * route's last site (a failed probe or an operator may).
   */
  readonly passiveIgnored?: string;
  /** Present only in the table where `active` changed: what moved and why. */
  readonly transition?: Transition;
}

export interface RouteTable {
  /** Increases by one with every new table. */
  readonly version: number;
  readonly computedAtMs: number;
  readonly policy: Policy;
  readonly routes: readonly RouteDecision[];
  readonly byName: ReadonlyMap<string, RouteDecision>;
  /** Next time the decision may change with no new input (hold-down end, ramp step); null = none. */
  readonly nextWakeMs: number | null;
}

/** Integrity gate verdict for one route, produced by the verifier (I/O) and fed to the decision. */
export interface IntegrityVerdict {
  readonly ok: boolean;
  /** When `ok` last changed: the gate has passed for nowMs - sinceMs when ok. */
  readonly sinceMs: number;
  /** In words: `checksum a1f3 (cyber1) == a1f3 (serpong)` or why it failed. */
  readonly detail: string;
}

export interface Approval {
  readonly atMs: number;
  /**
   * The site the approval was for (failback target, or failover destination).
   * An approval for another site does not count: an operator who approved a
   * failback to the backup building has not approved one to the primary.
   */
  readonly site?: string;
  /** Skip the integrity gate (logged as such). */
  readonly force: boolean;
}

/** Operator and shared-store inputs: drains, pins, approvals. */
export interface Overrides {
  /** Union of policy drains and runtime drains. */
  readonly drainedSites: ReadonlySet<string>;
  readonly drainedBuildings: ReadonlySet<string>;
  /** route -> site */
  readonly pins: ReadonlyMap<string, string>;
  /** route -> approval of a pending manual failback */
  readonly failbackApprovals: ReadonlyMap<string, Approval>;
  /** route -> approval of a pending manual failover */
  readonly failoverApprovals: ReadonlyMap<string, Approval>;
}

export interface DecisionInputs {
  readonly policy: Policy;
  readonly health: ReadonlyMap<string, SiteHealth>;
  readonly overrides: Overrides;
  readonly integrity: ReadonlyMap<string, IntegrityVerdict>;
  readonly prev: RouteTable | undefined;
  readonly nowMs: number;
  /**
   * The first probe round: each route decided again is decided as if it had no
   * previous decision (no hold-down, no transition: routes settle, nothing
   * fails over); `prev` only lets routes whose inputs did not change keep theirs.
   */
  readonly settle?: boolean;
}

export const noOverrides: Overrides = Object.freeze({
  drainedSites: new Set<string>(),
  drainedBuildings: new Set<string>(),
  pins: new Map<string, string>(),
  failbackApprovals: new Map<string, Approval>(),
  failoverApprovals: new Map<string, Approval>(),
});
