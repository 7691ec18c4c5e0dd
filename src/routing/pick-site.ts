// Which site a request goes to. Pure: the decision and a random source in, a
// site name out. `weights` spread new requests (a failback ramp is just two
// weights); `eligible` is the ordered list of retry candidates.
import type { RouteDecision } from './route-table.js';

/** A site drawn by weight; null when nothing has a positive weight (the route cannot serve). */
export function pickSite(decision: Pick<RouteDecision, 'weights'>, random: () => number): string | null {
  // Two passes over the weights instead of a filtered copy: this runs for every request.
  let total = 0;
  let only: string | null = null;
  let usable = 0;
  for (const w of decision.weights) {
    if (!isUsable(w.weight)) continue;
    usable++;
    total += w.weight;
    only = w.site;
  }
  if (usable <= 1) return only;
  // Clamp so a random source returning exactly 1 (or garbage) still lands on a site.
  const r = Math.min(Math.max(random(), 0), 1 - Number.EPSILON) * total;
  let acc = 0;
  for (const w of decision.weights) {
    if (!isUsable(w.weight)) continue;
    acc += w.weight;
    if (r < acc) return w.site;
  }
  return only;
}

function isUsable(weight: number): boolean {
  return weight > 0 && Number.isFinite(weight);
}

/** The first eligible site (preference order) this request has not tried yet. */
export function nextSite(decision: Pick<RouteDecision, 'eligible'>, tried: ReadonlySet<string>): string | null {
  return decision.eligible.find((s) => !tried.has(s)) ?? null;
}
