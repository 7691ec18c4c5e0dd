// The safety rule for drains (AWS ARC calls these assertion rules): a drain
// that would leave a route with no site able to serve is almost always a
// mistake (the wrong building typed, or the other building already down), so
// the admin API refuses it unless the operator says force. Pure: the policy,
// the drains and health as routing sees them now, and the drain asked for.
//
// "Able to serve" uses the same rules as decideRoutes' isEligible: not drained
// (as a site or by its building) and not down. A site still `unknown` (no
// probe yet) counts as able, like the decision counts it. A site down on
// passive evidence alone counts too, because the decision keeps serving from
// it as a route's last resort. So a drain that leaves a route with only down
// sites empties it: traffic gets the unavailable page either way, and the
// operator must see that before pressing the button.
//
// Only routes the drain itself empties are named: a route that already had no
// site able to serve is not made worse by draining one of its dead sites.
import type { Policy } from '../config/policy.js';

export interface SiteServability {
  readonly status: 'unknown' | 'up' | 'down';
  readonly passiveOnly?: boolean;
}

export interface Drains {
  readonly sites: ReadonlySet<string>;
  readonly buildings: ReadonlySet<string>;
}

export type DrainTargetRef = { readonly kind: 'site' | 'building'; readonly name: string };

/** Routes that some site could serve before the extra drains and none can after, in policy order. */
export function findEmptiedRoutes(
  policy: Pick<Policy, 'sites' | 'routes'>,
  health: (site: string) => SiteServability | undefined,
  before: Drains,
  after: Drains,
): string[] {
  const building = new Map(policy.sites.map((s) => [s.name, s.building]));
  const canServe = (site: string, drains: Drains): boolean => {
    if (drains.sites.has(site)) return false;
    const b = building.get(site);
    if (b !== undefined && drains.buildings.has(b)) return false;
    const h = health(site);
    return h === undefined || h.status !== 'down' || h.passiveOnly === true;
  };
  // Only a site drained after and not before can take a route's last site
  // away: with none (a reload of a policy without drains), no route is looked at.
  const newlyDrained = new Set<string>();
  for (const site of policy.sites) {
    const drainedAfter = after.sites.has(site.name) || after.buildings.has(site.building);
    const drainedBefore = before.sites.has(site.name) || before.buildings.has(site.building);
    if (drainedAfter && !drainedBefore) newlyDrained.add(site.name);
  }
  if (newlyDrained.size === 0) return [];
  return policy.routes
    .filter((r) => r.sites.some((s) => newlyDrained.has(s))
      && r.sites.some((s) => canServe(s, before)) && !r.sites.some((s) => canServe(s, after)))
    .map((r) => r.name);
}

/** The drains with one more target added. */
export function withDrain(drains: Drains, target: DrainTargetRef): Drains {
  return target.kind === 'site'
    ? { sites: new Set([...drains.sites, target.name]), buildings: drains.buildings }
    : { sites: drains.sites, buildings: new Set([...drains.buildings, target.name]) };
}
