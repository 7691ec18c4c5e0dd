// The names of everything that happens in detour, in one closed union: the
// event history, the log's `event` field and the webhooks all use these
// words, so a misspelt or invented name is a compile error, not a silent gap
// in an operator's alerting. Webhook `type` names are contract: extend this
// list, never rename an entry.

/** Route decisions (computed by describeChanges from two route tables). */
export type RouteEventType =
  | 'failedOver'               // the active site changed (not a failback)
  | 'failedBack'               // a failback ramp finished: the route is on its more preferred site
  | 'routeUnavailable'         // no site can serve the route
  | 'failbackStarted'          // a ramp towards a more preferred site began
  | 'rampStepped'              // the ramp moved one step
  | 'failbackBlocked'          // integrity, priority or ramp slots hold the failback
  | 'failbackHeld'             // hold-down or integrity window still running
  | 'failbackAwaitingApproval' // failback.mode manual: gates passed, waiting for an operator
  | 'failbackStopped'          // a ramp was abandoned: all traffic back on the site being left
  | 'failoverPending'          // failover.mode manual: the site is gone, waiting for an operator
  | 'routePinned'              // the decision now follows a pin
  | 'routeRestored';           // back on the first choice without a failback (e.g. after a pin)

/** Site health, as routing sees it. */
export type SiteEventType =
  | 'siteUp'
  | 'siteDown'
  | 'siteSuspected'            // live traffic fails above the ratio: probing now
  | 'suspicionRefuted';        // the probe passed: the failures were the requests' own

/** Operator actions (admin API, CLI, console). */
export type OperatorEventType =
  | 'drained'
  | 'undrained'
  | 'pinned'
  | 'unpinned'
  | 'failbackApproved'
  | 'failbackForced'
  | 'failoverApproved';

/** The gateway itself: policy, shared state, integrity gate. */
export type GatewayOwnEventType =
  | 'policyReloaded'
  | 'policyReloadFailed'
  | 'configWatchUp'            // the policy file is watched (again)
  | 'configWatchDown'          // the watch is lost: only the poll sees edits
  | 'stateStoreUp'
  | 'stateStoreDown'
  | 'integrityMatched'
  | 'integrityMismatched'
  | 'workerExited'             // a data-plane worker process died; it is replaced from the current table
  | 'policyDrainEmptiesRoute'; // the policy file's drain: leaves a route with no eligible site (applied: the file wins)

export type GatewayEventType = RouteEventType | SiteEventType | OperatorEventType | GatewayOwnEventType;

export interface GatewayEvent {
  readonly time: string;
  readonly type: GatewayEventType;
  readonly message: string;
  readonly route?: string;
  readonly site?: string;
  readonly from?: string | null;
  readonly to?: string | null;
  readonly reason?: string;
}

export type EventLevel = 'info' | 'warn' | 'error';

/** An event before it is stamped with its time, and how loudly to log it. */
export interface DescribedEvent {
  readonly event: Omit<GatewayEvent, 'time'>;
  readonly level: EventLevel;
}

/** Events operators want pushed to them (webhooks): one per transition. */
export const NOTIFY_EVENTS: ReadonlySet<GatewayEventType> = new Set<GatewayEventType>([
  'failedOver', 'failedBack', 'routeUnavailable', 'failbackBlocked', 'failoverPending', 'failbackStarted',
  'failbackForced', 'drained', 'undrained', 'pinned', 'unpinned',
]);
