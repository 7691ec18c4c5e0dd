// A decision shares eligible-site lists instead of building one per route: a
// site down under thousands of routes used to give each route a new filtered
// array, all of which outlive the decision and had to be copied out of the
// young generation by the collector (about a quarter of what a flap of 2,000
// routes left there). The lists must still be exactly each route's eligible sites.
import t from 'tap';
import { decideRoutes } from '../../src/routing/decide-routes.js';
import type { SiteHealth } from '../../src/health/health-state.js';
import type { Overrides, RouteTable } from '../../src/routing/route-table.js';
import { testPolicy } from '../helpers/policy.js';

const none: Overrides = { drainedSites: new Set(), drainedBuildings: new Set(), pins: new Map(), failbackApprovals: new Map(), failoverApprovals: new Map() };
const up = (sinceMs: number): SiteHealth => ({ status: 'up', passes: 2, fails: 0, sinceMs, reason: 'ok' });
const down = (sinceMs: number): SiteHealth => ({ status: 'down', passes: 0, fails: 2, sinceMs, reason: 'refused' });

const policy = testPolicy({
  sites: ['hub', 'a', 'b', 'c'].map((name, i) => ({ name, url: `http://127.0.0.1:${1000 + i}` })),
  routes: [
    { name: 'r1', sites: ['hub', 'a'] },
    { name: 'r2', sites: ['hub', 'a'] },
    { name: 'r3', sites: ['hub', 'b'] },
    { name: 'r4', sites: ['a', 'hub', 'b'] },
    { name: 'r5', sites: ['hub', 'b'] },
    { name: 'r6', sites: ['c', 'a'] },
  ],
});
const decide = (health: Map<string, SiteHealth>, prev: RouteTable | undefined, nowMs: number) =>
  decideRoutes({ policy, health, overrides: none, integrity: new Map(), prev, nowMs });
const allUp = new Map(policy.sites.map((s) => [s.name, up(0)]));
const eligible = (table: RouteTable, route: string) => table.byName.get(route)!.eligible;

t.test('every site eligible: the policy\'s own list', async (t) => {
  const table = decide(allUp, undefined, 1000);
  for (const route of policy.routes) t.equal(eligible(table, route.name), route.sites, `${route.name} keeps the policy's array`);
});

t.test('a site down: one frozen array per list of sites, shared by the routes that have it', async (t) => {
  const first = decide(allUp, undefined, 1000);
  const hubDown = new Map(allUp).set('hub', down(2000));
  const table = decide(hubDown, first, 2000);
  t.strictSame(eligible(table, 'r1'), ['a']);
  t.strictSame(eligible(table, 'r3'), ['b']);
  t.strictSame(eligible(table, 'r4'), ['a', 'b'], 'order of the route\'s list kept');
  t.equal(eligible(table, 'r1'), eligible(table, 'r2'), 'r1 and r2 share [a]');
  t.equal(eligible(table, 'r3'), eligible(table, 'r5'), 'r3 and r5 share [b]');
  t.not(eligible(table, 'r1'), eligible(table, 'r3'), 'different lists are different arrays');
  t.equal(eligible(table, 'r6'), policy.routes.find((r) => r.name === 'r6')!.sites, 'a route without the down site keeps the policy\'s array');
  t.ok(Object.isFrozen(eligible(table, 'r1')), 'frozen');

  // The next decision re-decides r1 and r4 (site a's health is new, still up) with the same
  // sites eligible: they keep the previous decision's arrays.
  const aLater = new Map(hubDown).set('c', down(3000)).set('a', { ...up(0), reason: 'ok again' });
  const next = decide(aLater, table, 3000);
  t.equal(eligible(next, 'r1'), eligible(table, 'r1'), 'unchanged list: the previous decision\'s array');
  t.equal(eligible(next, 'r4'), eligible(table, 'r4'), 'r4 too');
  t.strictSame(eligible(next, 'r6'), ['a'], 'a changed list is new');

  // Back up: the policy's own lists again.
  const back = decide(new Map(allUp), next, 4000);
  for (const route of policy.routes) t.equal(eligible(back, route.name), route.sites, `${route.name} back on the policy's array`);
});
