// What changed in the health routing uses, in words: one event per site whose
// verdict moved to up or down (a site merely not probed yet says nothing).
// Pure, like describeRoute: whoever decides says what happened.
import type { DescribedEvent } from '../model/events.js';
import type { SiteHealth } from './health-state.js';

export function describeHealthChanges(prev: ReadonlyMap<string, SiteHealth>, next: ReadonlyMap<string, SiteHealth>): DescribedEvent[] {
  const out: DescribedEvent[] = [];
  for (const [site, h] of next) {
    const before = prev.get(site);
    if (!before || before.status === h.status || h.status === 'unknown') continue;
    out.push({
      event: { type: h.status === 'up' ? 'siteUp' : 'siteDown', site, message: `site ${site} ${h.status}: ${h.reason}`, reason: h.reason },
      level: h.status === 'down' ? 'warn' : 'info',
    });
  }
  return out;
}
