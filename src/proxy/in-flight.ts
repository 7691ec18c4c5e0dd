// Which requests are waiting on which site, so that when a site is declared
// down the ones still waiting can be moved at once instead of running out
// their response timeout.
export class InFlightRegistry<T> {
  private readonly bySite = new Map<string, Set<T>>();

  add(site: string, item: T): void {
    let set = this.bySite.get(site);
    if (!set) {
      set = new Set();
      this.bySite.set(site, set);
    }
    set.add(item);
  }

  remove(site: string, item: T): void {
    const set = this.bySite.get(site);
    if (!set) return;
    set.delete(item);
    if (set.size === 0) this.bySite.delete(site);
  }

  /** A snapshot: callers may add and remove while iterating it. */
  on(site: string): T[] {
    return [...(this.bySite.get(site) ?? [])];
  }
}
