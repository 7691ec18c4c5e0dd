// The control plane under a scripted Leadership: as leader it publishes each
// decision once (a new epoch only when traffic moves, and again under the
// epoch it took the lease with); as follower it applies the published decision
// (its own drains first); without Redis it routes on its own decision, made
// from the last table it applied, under the last epoch it knew.
import t from 'tap';
import { Registry } from 'prom-client';
import { ControlPlane } from '../../src/control-plane.js';
import { MemoryStore } from '../../src/state/memory-store.js';
import type { StateStore } from '../../src/state/state-store.js';
import { createMetrics } from '../../src/metrics/metrics.js';
import { silentLogger } from '../../src/logger.js';
import { testPolicy } from '../helpers/policy.js';
import type { LeaderChange, Leadership, LeadershipView, PublishedDecision } from '../../src/leader/leadership.js';
import type { RouteDecision } from '../../src/routing/route-table.js';

class ScriptedLeadership implements Leadership {
  readonly kind = 'redis' as const;
  readonly replicaId = 'r1';
  leader = false;
  up = true;
  epoch = 100;
  decision: PublishedDecision | undefined;
  readonly publishes: { routes: readonly RouteDecision[]; moves: boolean; epoch: number }[] = [];
  applied: number | undefined;
  readonly #leaderListeners: ((c: LeaderChange) => void)[] = [];
  readonly #publishedListeners: ((d: PublishedDecision) => void)[] = [];
  async start() {}
  isLeader() { return this.leader; }
  isUp() { return this.up; }
  published() { return this.decision; }
  publish(routes: readonly RouteDecision[], moves: boolean) {
    if (moves) this.epoch++;
    this.publishes.push({ routes, moves, epoch: this.epoch });
    return this.epoch;
  }
  noteApplied(epoch: number) { this.applied = epoch; }
  view(): LeadershipView { return { leader: this.leader ? 'r1' : 'r0', replicas: [] }; }
  onLeaderChange(l: (c: LeaderChange) => void) { this.#leaderListeners.push(l); return () => {}; }
  onPublished(l: (d: PublishedDecision) => void) { this.#publishedListeners.push(l); return () => {}; }
  async close() {}
  becomeLeader(epoch: number) {
    this.leader = true;
    this.epoch = epoch;
    for (const l of this.#leaderListeners) l({ leader: 'r1', isLeader: true, epoch });
  }
  receive(d: PublishedDecision) {
    this.decision = d;
    for (const l of this.#publishedListeners) l(d);
  }
}

/** A memory store that says it is Redis, so /status shows leader and replicas. */
function redisLike(store: MemoryStore): StateStore {
  return new Proxy(store, {
    get: (target, key) => {
      if (key === 'kind') return 'redis';
      const value: unknown = Reflect.get(target, key, target);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  }) as unknown as StateStore;
}

const sites = [
  { name: 'cyber1', url: 'http://127.0.0.1:1', building: 'gedung-cyber-1' },
  { name: 'serpong', url: 'http://127.0.0.1:2', building: 'serpong-dc' },
];

function setup() {
  const leadership = new ScriptedLeadership();
  const policy = testPolicy({ sites, routes: [{ name: 'ceir', sites: ['cyber1', 'serpong'] }] });
  const cp = new ControlPlane({
    policy, logger: silentLogger(), metrics: createMetrics(new Registry()), store: redisLike(new MemoryStore({ replicaId: 'r1' })), leadership,
  });
  t.teardown(() => cp.close());
  const upAll = () => { for (const s of sites) cp.probeResult(s.name, true, 'status 200'); };
  return { cp, leadership, upAll };
}

const onSerpong = (epoch: number): PublishedDecision => ({
  epoch, leader: 'r0', atMs: 1, routes: [{
    name: 'ceir', state: 'failed-over', active: 'serpong', weights: [{ site: 'serpong', weight: 100 }], eligible: ['serpong'],
    preferred: 'serpong', reason: 'serving from serpong: cyber1 down (as the leader sees it)', sinceMs: 1,
  }],
});

t.test('a follower applies the published decision and its epoch; its own drains come first', async (t) => {
  const { cp, leadership, upAll } = setup();
  upAll();
  t.equal(cp.table.byName.get('ceir')!.active, 'cyber1', 'nothing published yet: its own decision');
  leadership.receive(onSerpong(200));
  t.equal(cp.table.byName.get('ceir')!.active, 'serpong', 'the leader\'s decision, although this replica sees cyber1 up');
  t.equal(cp.table.epoch, 200);
  t.equal(leadership.applied, 200, 'the applied epoch is reported');
  t.same(leadership.publishes.length, 0, 'a follower publishes nothing');
  t.match(cp.status(), { leader: 'r0', epoch: 200 });
  cp.drain({ kind: 'building', name: 'serpong-dc' });
  t.equal(cp.table.byName.get('ceir')!.active, 'cyber1', 'a drain known here beats the published decision at once');
  t.equal(cp.table.epoch, 200);
});

t.test('without Redis a follower routes on its own decision under the last epoch it knew', async (t) => {
  const { cp, leadership, upAll } = setup();
  upAll();
  leadership.receive(onSerpong(300));
  t.equal(cp.table.byName.get('ceir')!.active, 'serpong');
  leadership.up = false;
  cp.probeResult('serpong', false, 'refused');
  cp.probeResult('serpong', false, 'refused');
  t.equal(cp.table.byName.get('ceir')!.active, 'cyber1', 'its own probes move it');
  t.equal(cp.table.epoch, 300, 'no epoch invented while cut off');
});

t.test('a leader publishes each decision once, a new epoch only when traffic moves', async (t) => {
  const { cp, leadership, upAll } = setup();
  upAll();
  leadership.becomeLeader(500);
  t.equal(cp.table.epoch, 500, 'the epoch it took the lease with');
  const published = leadership.publishes.length;
  t.ok(published >= 1, 'a new leader publishes at once');
  t.equal(leadership.publishes.at(-1)!.routes[0]!.active, 'cyber1');
  cp.probeResult('cyber1', true, 'status 200');
  t.equal(cp.table.epoch, 500);
  t.equal(leadership.publishes.length, published, 'an unchanged decision is not published again');
  cp.probeResult('cyber1', false, 'refused');
  cp.probeResult('cyber1', false, 'refused');
  t.equal(cp.table.byName.get('ceir')!.active, 'serpong');
  t.equal(cp.table.epoch, 501, 'a failover moves the epoch');
  t.match(leadership.publishes.at(-1), { moves: true, epoch: 501 });
  t.equal(cp.leadership, leadership, 'the hook others use (webhooks, history)');
});
