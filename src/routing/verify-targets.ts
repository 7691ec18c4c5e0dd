// Which routes' data the integrity verifier must compare, and between which two
// sites: derived from the route table alone (pure).
import { indexPolicy, type SitePolicy, type VerifyPolicy } from '../config/policy.js';
import type { RouteDecision, RouteTable } from './route-table.js';

export interface VerifyTarget {
  readonly route: string;
  readonly verify: VerifyPolicy;
  readonly preferred: SitePolicy;
  readonly serving: SitePolicy;
}

/**
 * Routes whose data must be compared before they may fail back: every route with
 * failback.verify that is not fully on its first undrained site. The check runs
 * the whole time a route is failed over, so divergence shows before failback.
 */
export function verifyTargets(
  table: RouteTable, drains: { readonly sites: ReadonlySet<string>; readonly buildings: ReadonlySet<string> },
): VerifyTarget[] {
  const index = indexPolicy(table.policy);
  const site = (name: string) => index.sites.get(name)!;
  const drained = (name: string) => drains.sites.has(name) || drains.buildings.has(site(name).building);
  return table.routes.flatMap((d: RouteDecision) => {
    const route = index.routes.get(d.name)!;
    const verify = route.failback.verify;
    if (!verify || d.active === null || d.state === 'pinned') return [];
    // Compare the site failback would go to (the ramp's target, or the most
    // preferred site that is up); with none up yet, the first undrained site, so
    // divergence shows while the route is still failed over.
    const rank = (site: string) => route.sites.indexOf(site);
    const target = d.ramp?.to ?? (d.preferred !== null && rank(d.preferred) < rank(d.active) ? d.preferred : undefined);
    const home = target ?? route.sites.find((s) => !drained(s));
    if (home === undefined || home === d.active || rank(home) > rank(d.active)) return [];
    return [{ route: route.name, verify, preferred: site(home), serving: site(d.active) }];
  });
}
