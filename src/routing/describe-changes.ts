// What happened between two route tables, in words: the events a decision
// produced, computed once by whoever made the decision (so a replica that
// only applies a table never re-derives, and never double-reports, them).
// Pure: two frozen tables in, events out, in priority order so that a level
// finishing its failback is told before the next level starting in the same
// decision.
import type { DescribedEvent, RouteEventType } from '../model/events.js';
import type { RouteDecision, RouteState, RouteTable } from './route-table.js';

const EVENT_OF_STATE: Readonly<Record<RouteState, RouteEventType>> = {
  ramping: 'failbackStarted',
  blocked: 'failbackBlocked',
  'pending-failover': 'failoverPending',
  'awaiting-approval': 'failbackAwaitingApproval',
  'holding-down': 'failbackHeld',
  verifying: 'failbackHeld',
  pinned: 'routePinned',
  'failed-over': 'failbackStopped',
  preferred: 'routeRestored',
  unavailable: 'routeUnavailable',
};

export function describeChanges(prev: RouteTable, next: RouteTable): DescribedEvent[] {
  const priority = new Map(next.policy.routes.map((r) => [r.name, r.priority]));
  const ordered = [...next.routes].sort((a, b) => priority.get(a.name)! - priority.get(b.name)!);
  const out: DescribedEvent[] = [];
  for (const d of ordered) {
    const described = describeRoute(prev.byName.get(d.name), d);
    if (described) out.push(described);
  }
  return out;
}

/** One event per decision change, with its reason; none when nothing an operator cares about moved. */
export function describeRoute(before: RouteDecision | undefined, d: RouteDecision): DescribedEvent | undefined {
  const route = d.name;
  if (d.transition) {
    const { from, to, reason, forced } = d.transition;
    const type: RouteEventType = reason === 'failback' ? 'failedBack' : to === null ? 'routeUnavailable' : 'failedOver';
    const message = to === null
      ? `route ${route} unavailable: ${d.reason}`
      : `route ${route} moved ${from ?? 'nowhere'} -> ${to} (${reason}${forced ? ', forced' : ''}): ${d.reason}`;
    return { event: { type, route, from, to, reason, message }, level: to === null ? 'error' : 'warn' };
  }
  if (!before || (before.state === d.state && before.ramp?.percent === d.ramp?.percent
    && before.blocked?.code === d.blocked?.code)) return undefined;
  const type: RouteEventType = d.state === 'ramping' && before.state === 'ramping' ? 'rampStepped' : EVENT_OF_STATE[d.state];
  return {
    event: {
      type, route, from: d.active, to: d.ramp?.to ?? d.active,
      reason: d.blocked?.code ?? d.state, message: `route ${route} ${d.state}: ${d.reason}`,
    },
    level: d.state === 'blocked' || d.state === 'pending-failover' ? 'warn' : 'info',
  };
}
