// The drain safety rule as a table: which drains empty which routes.
import t from 'tap';
import { findEmptiedRoutes, withDrain, type Drains, type SiteServability } from '../../src/routing/drain-safety.js';

const policy = {
  sites: [
    { name: 'cyber1', building: 'gedung-cyber-1' },
    { name: 'cyber2', building: 'gedung-cyber-1' },
    { name: 'serpong', building: 'serpong-dc' },
    { name: 'dr', building: 'surabaya-dc' },
  ],
  routes: [
    { name: 'ceir', sites: ['cyber1', 'serpong'] },
    { name: 'dukcapil', sites: ['cyber2', 'serpong', 'dr'] },
    { name: 'local', sites: ['cyber1', 'cyber2'] },
  ],
} as unknown as Parameters<typeof findEmptiedRoutes>[0];

const none: Drains = { sites: new Set(), buildings: new Set() };
const drains = (sites: string[] = [], buildings: string[] = []): Drains => ({ sites: new Set(sites), buildings: new Set(buildings) });

const cases: Array<{
  name: string; health?: Record<string, SiteServability>; before?: Drains;
  drain: { kind: 'site' | 'building'; name: string }; emptied: string[];
}> = [
  { name: 'draining one building of two leaves the other', drain: { kind: 'building', name: 'serpong-dc' }, emptied: [] },
  { name: 'a building holding every site of a route empties it', drain: { kind: 'building', name: 'gedung-cyber-1' }, emptied: ['local'] },
  { name: 'the last site left by an earlier drain', before: drains(['cyber1']), drain: { kind: 'site', name: 'serpong' }, emptied: ['ceir'] },
  { name: 'the other site is down: draining the live one empties the route',
    health: { serpong: { status: 'down' } }, drain: { kind: 'site', name: 'cyber1' }, emptied: ['ceir'] },
  { name: 'a site down on passive evidence alone still serves as the last resort',
    health: { serpong: { status: 'down', passiveOnly: true } }, drain: { kind: 'site', name: 'cyber1' }, emptied: [] },
  { name: 'a site not probed yet counts as able to serve',
    health: { serpong: { status: 'unknown' } }, drain: { kind: 'site', name: 'cyber1' }, emptied: [] },
  { name: 'a route already without an eligible site is not made worse',
    health: { cyber1: { status: 'down' }, serpong: { status: 'down' } }, drain: { kind: 'site', name: 'cyber1' }, emptied: [] },
  { name: 'several routes at once, in policy order',
    health: { dr: { status: 'down' } }, before: drains([], ['serpong-dc']), drain: { kind: 'building', name: 'gedung-cyber-1' },
    emptied: ['ceir', 'dukcapil', 'local'] },
  { name: 'draining what is already drained changes nothing', before: drains(['cyber1', 'cyber2']), drain: { kind: 'site', name: 'cyber1' }, emptied: [] },
  { name: 'an unknown building touches no route', drain: { kind: 'building', name: 'atlantis' }, emptied: [] },
];

for (const c of cases) {
  t.test(c.name, async (t) => {
    const before = c.before ?? none;
    const health = (site: string) => c.health?.[site];
    t.same(findEmptiedRoutes(policy, health, before, withDrain(before, c.drain)), c.emptied);
  });
}

t.test('nothing newly drained (a reload of a policy without drains): no route is looked at', async (t) => {
  let asked = 0;
  const health = (): SiteServability | undefined => { asked++; return undefined; };
  t.same(findEmptiedRoutes(policy, health, drains(['cyber1']), drains(['cyber1'])), []);
  t.same(findEmptiedRoutes(policy, health, none, none), []);
  t.equal(asked, 0, 'no site health consulted');
  t.same(findEmptiedRoutes(policy, health, none, drains(['dr'])), [], 'one newly drained site: only its routes');
  t.ok(asked > 0 && asked <= 3, `asked about the routes listing dr only (${asked})`);
});
