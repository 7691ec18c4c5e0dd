// Health changes in words, as a table: one event per site that moved to up or down.
import t from 'tap';
import { describeHealthChanges } from '../../src/health/describe-health.js';
import type { SiteHealth } from '../../src/health/health-state.js';

const h = (status: SiteHealth['status'], reason = 'r'): SiteHealth => ({ status, sinceMs: 0, reason, fails: 0, passes: 0 } as SiteHealth);
const cases: Array<{ name: string; prev: Record<string, SiteHealth>; next: Record<string, SiteHealth>; expect: unknown[] }> = [
  { name: 'up to down: a warning', prev: { a: h('up') }, next: { a: h('down', '2 failed probes') },
    expect: [{ level: 'warn', event: { type: 'siteDown', site: 'a', message: 'site a down: 2 failed probes', reason: '2 failed probes' } }] },
  { name: 'unknown to up: info', prev: { a: h('unknown') }, next: { a: h('up', 'ok') }, expect: [{ level: 'info', event: { type: 'siteUp', site: 'a' } }] },
  { name: 'no change, a new site, back to unknown: nothing', prev: { a: h('up'), c: h('up') }, next: { a: h('up'), b: h('down'), c: h('unknown') }, expect: [] },
];
for (const c of cases) {
  t.test(c.name, async (t) => {
    t.match(describeHealthChanges(new Map(Object.entries(c.prev)), new Map(Object.entries(c.next))), c.expect);
    if (c.expect.length === 0) t.same(describeHealthChanges(new Map(Object.entries(c.prev)), new Map(Object.entries(c.next))), []);
  });
}
