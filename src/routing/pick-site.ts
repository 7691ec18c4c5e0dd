// Which site a request goes to. Pure: the decision and a random source in, a
// site name out. `weights` spread new requests (a failback ramp is just two
// weights); `eligible` is the ordered list of retry candidates.
import type { RouteDecision } from './route-table.js';

/** A site drawn by weight; null when nothing has a positive weight (the route cannot serve). */
export function pickSite(decision: Pick<RouteDecision, 'weights'>, random: () => number): string | null {
  const usable = decision.weights.filter((w) => w.weight > 0 && Number.isFinite(w.weight));
  if (usable.length === 0) return null;
  if (usable.length === 1) return usable[0]!.site;
  const total = usable.reduce((sum, w) => sum + w.weight, 0);
  // Clamp so a random source returning exactly 1 (or garbage) still lands on a site.
  const r = Math.min(Math.max(random(), 0), 1 - Number.EPSILON) * total;
  let acc = 0;
  for (const w of usable) {
    acc += w.weight;
    if (r < acc) return w.site;
  }
  return usable[usable.length - 1]!.site;
}

/** The first eligible site (preference order) this request has not tried yet. */
export function nextSite(decision: Pick<RouteDecision, 'eligible'>, tried: ReadonlySet<string>): string | null {
  return decision.eligible.find((s) => !tried.has(s)) ?? null;
}
