// What the admin API can ask of the gateway. The admin server depends on this
// small interface only, so it can be tested with a scripted fake and the
// gateway stays free of HTTP parsing.
import type { PolicyError } from '../config/policy.js';
import type { RouteState, WeightedSite, BlockedReason } from '../routing/route-table.js';
import type { AuditEntry } from './audit-log.js';
import type { WorkersStatus } from '../workers/data-plane.js';

export interface RouteStatus {
  readonly name: string;
  readonly priority: number;
  readonly sites: readonly string[];
  readonly state: RouteState;
  readonly active: string | null;
  readonly weights: readonly WeightedSite[];
  readonly reason: string;
  /** ISO time the state began. */
  readonly since: string;
  readonly pendingFailover: { readonly from: string; readonly to: string; readonly since: string } | null;
  readonly pendingFailback: boolean;
  readonly blocked: { readonly code: BlockedReason; readonly message: string } | null;
  readonly pinnedTo: string | null;
  /** The site the route keeps serving from although live traffic alone marked it down (it is the route's last). */
  readonly passiveIgnored: string | null;
  readonly integrity: { readonly ok: boolean; readonly detail: string; readonly since: string } | null;
}

export interface SiteStatus {
  readonly name: string;
  readonly building: string;
  readonly url: string;
  readonly health: 'unknown' | 'up' | 'down';
  readonly reason: string;
  readonly since: string;
  readonly drained: boolean;
  /** 'site' | 'building' | both, when drained. */
  readonly drainedBy: readonly ('site' | 'building')[];
}

// Events (names, shape) live in the model: one closed union of event names.
export type { GatewayEvent, GatewayEventType } from '../model/events.js';
import type { GatewayEvent } from '../model/events.js';

export interface StatusDocument {
  readonly version: string;
  /** This replica's id in the shared state (`--replica-id`, DETOUR_REPLICA_ID, or host-pid-random). */
  readonly replica?: string;
  readonly policyFile: string;
  readonly tableVersion: number;
  readonly routes: readonly RouteStatus[];
  readonly sites: readonly SiteStatus[];
  readonly drains: { readonly sites: readonly string[]; readonly buildings: readonly string[] };
  readonly stateStore: { readonly kind: 'memory' | 'redis'; readonly up: boolean };
  /** The policy file watch: up = a directory watch is armed; down = only a poll notices edits. Absent without watching. */
  readonly configWatch?: { readonly up: boolean; readonly detail: string };
  /** Things an operator should fix, e.g. a policy drain that leaves a route with no eligible site. Absent when none. */
  readonly warnings?: readonly string[];
  /** Newest last. */
  readonly events: readonly GatewayEvent[];
  /** Admin mutations and refused attempts, newest last (added by the admin server). */
  readonly audit?: readonly AuditEntry[];
  /** The data-plane processes: the gateway itself (workers: 1) or its worker processes, each with the table version it routes by. */
  readonly workers?: WorkersStatus;
}

/** Result of a mutating call: ok, or an error the admin server maps to an HTTP status. */
export type ControlResult =
  | { readonly ok: true; readonly message: string }
  | { readonly ok: false; readonly code: 'not_found' | 'bad_request' | 'conflict' | 'not_applied'; readonly message: string };

export type DrainTarget = { readonly kind: 'site' | 'building'; readonly name: string };

export interface DrainOptions {
  readonly force?: boolean;
}

export interface AdminControl {
  status(): StatusDocument;
  /** Prometheus text exposition and its content type. */
  metrics(): Promise<{ readonly contentType: string; readonly body: string }>;
  /** force: apply even when the drain leaves a route with no eligible site (otherwise a conflict naming the routes). */
  drain(target: DrainTarget, opts?: DrainOptions): Promise<ControlResult>;
  undrain(target: DrainTarget): Promise<ControlResult>;
  pin(route: string, site: string): Promise<ControlResult>;
  unpin(route: string): Promise<ControlResult>;
  approveFailback(route: string, force: boolean): Promise<ControlResult>;
  approveFailover(route: string): Promise<ControlResult>;
  reload(): Promise<{ readonly ok: true; readonly message: string } | { readonly ok: false; readonly errors: readonly PolicyError[] }>;
}
