// A follower applies the leader's decision, intersected with its own drains;
// routes the leader cannot speak for are decided locally. Tables in, table out.
import t from 'tap';
import { COMPARED_DECISION_KEYS, decisionsDiffer, followDecision, movesTraffic } from '../../src/leader/follow-decision.js';
import { LocalLeadership, nextEpoch, type PublishedDecision } from '../../src/leader/leadership.js';
import { decideRoutes } from '../../src/routing/decide-routes.js';
import { noOverrides, type RouteDecision, type RouteTable } from '../../src/routing/route-table.js';
import type { SiteHealth } from '../../src/health/health-state.js';
import { testPolicy } from '../helpers/policy.js';

const policy = testPolicy({
  sites: [
    { name: 'cyber1', url: 'http://127.0.0.1:1', building: 'gedung-cyber-1' },
    { name: 'serpong', url: 'http://127.0.0.1:2', building: 'serpong-dc' },
    { name: 'dr', url: 'http://127.0.0.1:3', building: 'dr-site' },
  ],
  routes: [
    { name: 'ceir', sites: ['cyber1', 'serpong'], failback: { holdDownMs: 0, ramp: [10, 50, 100], stepMs: 1000 } },
    { name: 'visa', sites: ['serpong', 'cyber1'] },
  ],
});
const up: SiteHealth = { status: 'up', sinceMs: 0, reason: 'ok', fails: 0, passes: 2 } as SiteHealth;
const local = decideRoutes({
  policy, health: new Map([['cyber1', up], ['serpong', up], ['dr', up]]), overrides: noOverrides, integrity: new Map(), prev: undefined, nowMs: 1000,
});
const ramping: RouteDecision = {
  name: 'ceir', state: 'ramping', active: 'serpong', weights: [{ site: 'cyber1', weight: 50 }, { site: 'serpong', weight: 50 }],
  eligible: ['cyber1', 'serpong'], preferred: 'cyber1', reason: 'failing back to cyber1: 50% (step 2 of 3)', sinceMs: 400,
  ramp: { to: 'cyber1', from: 'serpong', step: 1, percent: 50, stepStartedMs: 900 }, holdDownFromMs: 100,
};
const onSerpong: RouteDecision = { ...local.byName.get('ceir')!, state: 'failed-over', active: 'serpong', weights: [{ site: 'serpong', weight: 100 }] };
const published = (routes: RouteDecision[], epoch = 42): PublishedDecision => ({ epoch, leader: 'replica-0', atMs: 1000, routes });
const noDrains = { sites: new Set<string>(), buildings: new Set<string>() };

interface Case {
  readonly name: string;
  readonly routes: RouteDecision[];
  readonly drains?: { sites?: string[]; buildings?: string[] };
  readonly prev?: RouteTable;
  /** route -> whose decision: 'leader' | 'local' */
  readonly expect: Record<string, 'leader' | 'local'>;
}
const cases: Case[] = [
  { name: 'a ramp is applied as published: weights, step and its start', routes: [ramping], expect: { ceir: 'leader', visa: 'local' } },
  { name: 'a route the leader did not publish is decided locally', routes: [], expect: { ceir: 'local', visa: 'local' } },
  { name: 'a drained building in the weights: this replica decides that route', routes: [ramping], drains: { buildings: ['gedung-cyber-1'] }, expect: { ceir: 'local' } },
  { name: 'a drained active site: local', routes: [onSerpong], drains: { sites: ['serpong'] }, expect: { ceir: 'local' } },
  { name: 'a drain elsewhere does not matter', routes: [ramping], drains: { buildings: ['dr-site'] }, expect: { ceir: 'leader' } },
  { name: 'a site the route does not have here (another policy): local', routes: [{ ...onSerpong, active: 'dr', weights: [{ site: 'dr', weight: 100 }] }], expect: { ceir: 'local' } },
  { name: 'a route unknown here is ignored', routes: [{ ...onSerpong, name: 'gone' }], expect: { ceir: 'local', visa: 'local' } },
];

for (const c of cases) {
  t.test(c.name, async (t) => {
    const drains = { sites: new Set(c.drains?.sites ?? []), buildings: new Set(c.drains?.buildings ?? []) };
    const table = followDecision({ published: published(c.routes), local, prev: c.prev ?? local, drains, nowMs: 1000 });
    t.equal(table.epoch, 42, 'routes under the published epoch');
    t.ok(Object.isFrozen(table) && Object.isFrozen(table.routes[0]), 'frozen');
    t.equal(table.version, local.version + 1);
    t.equal(table.policy, policy, 'always this replica\'s own policy');
    for (const [route, whose] of Object.entries(c.expect)) {
      const got = table.byName.get(route)!;
      const want = whose === 'leader' ? c.routes.find((r) => r.name === route)! : local.byName.get(route)!;
      t.same({ ...got, transition: undefined }, { ...want, transition: undefined }, `${route}: ${whose}`);
    }
  });
}

t.test('transitions are worked out against this replica\'s previous table', async (t) => {
  const moved = followDecision({ published: published([onSerpong]), local, prev: local, drains: noDrains, nowMs: 1000 });
  t.same(moved.byName.get('ceir')!.transition, { from: 'cyber1', to: 'serpong', reason: 'site_down' });
  const again = followDecision({ published: published([onSerpong]), local, prev: moved, drains: noDrains, nowMs: 1000 });
  t.equal(again.byName.get('ceir')!.transition, undefined, 'no move, no transition');
  const withReason = followDecision({
    published: published([{ ...onSerpong, transition: { from: 'cyber1', to: 'serpong', reason: 'drain', forced: true } }]),
    local, prev: local, drains: noDrains, nowMs: 1000,
  });
  t.same(withReason.byName.get('ceir')!.transition, { from: 'cyber1', to: 'serpong', reason: 'drain', forced: true }, 'the leader\'s reason when it has one');
  const back = followDecision({ published: published([local.byName.get('ceir')!]), local, prev: followDecision({ published: published([ramping]), local, prev: local, drains: noDrains, nowMs: 1000 }), drains: noDrains, nowMs: 1000 });
  t.same(back.byName.get('ceir')!.transition, { from: 'serpong', to: 'cyber1', reason: 'failback' }, 'a ramp that finished is a failback');
  const pinned = followDecision({ published: published([{ ...onSerpong, state: 'pinned', pinnedTo: 'serpong' }]), local, prev: local, drains: noDrains, nowMs: 1000 });
  t.equal(pinned.byName.get('ceir')!.transition!.reason, 'pin');
});

t.test('movesTraffic: active site or weights changed', async (t) => {
  const table = (routes: RouteDecision[]): RouteTable => ({ ...local, routes, byName: new Map(routes.map((r) => [r.name, r])) });
  const base = table(local.routes as RouteDecision[]);
  t.equal(movesTraffic(undefined, base), true, 'the first decision');
  t.equal(movesTraffic(base, table([...local.routes])), false, 'same decisions');
  t.equal(movesTraffic(base, table([{ ...local.routes[0]!, reason: 'words only' }, local.routes[1]!])), false, 'a reason is not traffic');
  t.equal(movesTraffic(base, table([onSerpong, local.routes[1]!])), true, 'another active site');
  t.equal(movesTraffic(table([ramping, local.routes[1]!]), table([{ ...ramping, weights: [{ site: 'cyber1', weight: 100 }] }, local.routes[1]!])), true, 'a ramp step');
  t.equal(movesTraffic(base, table([local.routes[0]!])), true, 'a route removed');
  t.equal(movesTraffic(base, table([...local.routes, { ...onSerpong, name: 'new' }])), true, 'a route added');
  t.equal(decisionsDiffer([onSerpong], [{ ...onSerpong, transition: { from: 'a', to: 'b', reason: 'pin' } }]), false, 'a transition alone is not news');
  t.equal(decisionsDiffer(local.routes, local.routes), false, 'the same objects');
  t.equal(decisionsDiffer([onSerpong], [{ ...onSerpong, reason: 'other words' }]), true, 'a new reason is published');
  t.equal(decisionsDiffer([onSerpong], []), true);
  // Compared as data, not as text: equal copies, in any key order, are not news; any nested difference is.
  const copy = JSON.parse(JSON.stringify(onSerpong)) as typeof onSerpong;
  const reordered = Object.fromEntries(Object.entries(onSerpong).reverse()) as typeof onSerpong;
  t.equal(decisionsDiffer([onSerpong], [copy]), false, 'an equal copy');
  t.equal(decisionsDiffer([onSerpong], [reordered]), false, 'the same keys in another order');
  t.equal(decisionsDiffer([onSerpong], [{ ...onSerpong, weights: onSerpong.weights.map((w) => ({ ...w, weight: w.weight + 1 })) }]), true, 'a weight');
  t.equal(decisionsDiffer([onSerpong], [{ ...onSerpong, eligible: [...onSerpong.eligible, 'extra'] }]), true, 'one more eligible site');
  t.equal(decisionsDiffer([onSerpong], [{ ...onSerpong, blocked: { code: 'integrity', message: 'x' } }]), true, 'a key only one has');
  t.equal(decisionsDiffer([{ ...onSerpong, holdDownFromMs: undefined }], [onSerpong]), false, 'a key set to undefined is no key (as in JSON)');
  for (const key of COMPARED_DECISION_KEYS) {
    t.equal(decisionsDiffer([onSerpong], [{ ...onSerpong, [key]: key === 'weights' ? [] : key === 'eligible' ? ['x'] : { changed: key } }]), true, `a change of ${key} is news`);
  }
});

t.test('a lone gateway: always the leader, an epoch that moves only with traffic and never behind the clock', async (t) => {
  t.equal(nextEpoch(5, 3), 5 + 1);
  t.equal(nextEpoch(5, 1000.7), 1000, 'the clock floor');
  let now = 1_000_000;
  const l = new LocalLeadership('solo', () => now);
  await l.start();
  t.ok(l.isLeader() && l.isUp());
  t.equal(l.published(), undefined);
  const first = l.publish([], false);
  t.equal(first, 1_000_000);
  t.equal(l.publish([], false), first, 'no traffic moved: same epoch');
  t.equal(l.publish([], true), first + 1, 'traffic moved within the same millisecond: one more');
  now += 5000;
  t.equal(l.publish([], true), 1_005_000);
  l.noteApplied();
  t.same(l.view(), { leader: 'solo', replicas: [{ id: 'solo', heartbeatMs: null, redisReachable: false, epoch: 1_005_000 }] });
  l.onLeaderChange()();
  l.onPublished()();
  await l.close();
});
