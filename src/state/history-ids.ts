// Which events the leader alone writes to the shared history, and the id that
// makes one transition one entry however many replicas (or leaders, across a
// takeover) compute it. Pure.
//
// A decision event (a route moving, a site's quorum verdict, an integrity
// verdict) is computed by every replica from shared inputs; only the leader
// appends it, and its id is derived from the decision itself (kind, subject,
// and the time the new state began, which a published decision carries to the
// next leader), so a leader that re-derives a transition after a takeover
// writes nothing new. Everything else (operator actions, a replica's own
// reloads, store outages, suspicions from its own traffic) is a fact about
// the replica that saw it: that replica appends it under an id of its own.
import type { GatewayEvent, GatewayEventType } from '../model/events.js';

const SITE_DECISIONS: ReadonlySet<GatewayEventType> = new Set<GatewayEventType>(['siteUp', 'siteDown']);
const INTEGRITY_DECISIONS: ReadonlySet<GatewayEventType> = new Set<GatewayEventType>(['integrityMatched', 'integrityMismatched']);
const ROUTE_DECISIONS: ReadonlySet<GatewayEventType> = new Set<GatewayEventType>([
  'failedOver', 'failedBack', 'routeUnavailable', 'failbackStarted', 'rampStepped', 'failbackBlocked', 'failbackHeld',
  'failbackAwaitingApproval', 'failbackStopped', 'failoverPending', 'routePinned', 'routeRestored',
]);

export type EventSubject = 'route' | 'site' | 'integrity';

/** 'route' / 'site' / 'integrity' for a decision event (leader only), null for a replica's own event. */
export function decisionSubject(event: Pick<GatewayEvent, 'type' | 'route' | 'site'>): EventSubject | null {
  if (ROUTE_DECISIONS.has(event.type) && event.route !== undefined) return 'route';
  if (SITE_DECISIONS.has(event.type) && event.site !== undefined) return 'site';
  if (INTEGRITY_DECISIONS.has(event.type) && event.route !== undefined) return 'integrity';
  return null;
}

/**
 * The id of a decision event: kind, subject, what it moved between, and when
 * the decided state began (sinceMs of the route decision, site verdict or
 * integrity verdict). Two replicas computing the same transition agree on all
 * of these once the decision is shared; a later, different transition of the
 * same route has a later sinceMs.
 */
export function decisionEventId(event: Pick<GatewayEvent, 'type' | 'route' | 'site' | 'from' | 'to'>, sinceMs: number): string {
  const subject = event.route ?? event.site ?? '-';
  return `d:${event.type}:${subject}:${event.from ?? '-'}>${event.to ?? '-'}:${Math.trunc(sinceMs)}`;
}

/** The id of an event only this replica can tell (unique: replica, time, sequence). */
export function ownEventId(replicaId: string, timeMs: number, seq: number): string {
  return `r:${replicaId}:${Math.trunc(timeMs)}:${seq}`;
}
