// Which requests are waiting on which site, so that when a site is declared
// down the ones still waiting can be moved at once instead of running out
// their response timeout. One list per site name, kept once made (site names
// are bounded by the policies loaded); a request holds its entry and removes
// it when its attempt ends (see live-list.ts for why not a Set).
import { LiveList, type LiveEntry } from './live-list.js';

export type InFlightEntry<T> = LiveEntry<T>;

export class InFlightRegistry<T> {
  private readonly bySite = new Map<string, LiveList<T>>();

  add(site: string, item: T): InFlightEntry<T> {
    let list = this.bySite.get(site);
    if (!list) this.bySite.set(site, (list = new LiveList()));
    return list.add(item);
  }

  /** Idempotent: an entry already removed is ignored. */
  remove(entry: InFlightEntry<T> | undefined): void {
    entry?.list?.remove(entry);
  }

  /** A snapshot: callers may add and remove while iterating it. */
  on(site: string): T[] {
    return this.bySite.get(site)?.values() ?? [];
  }
}
