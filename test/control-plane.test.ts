// The control plane with a fake clock: inputs in, tables and events out. No
// servers: probes and verdicts are fed by hand.
import t from 'tap';
import { Registry } from 'prom-client';
import { pino } from 'pino';
import { ControlPlane } from '../src/control-plane.js';
import { MemoryStore } from '../src/state/memory-store.js';
import { applyOp, emptySharedState, type ReplicaVerdict, type SharedState, type StateOp, type StateStore } from '../src/state/state-store.js';
import { createMetrics } from '../src/metrics/metrics.js';
import { silentLogger } from '../src/logger.js';
import { testPolicy, type TestPolicyInput } from './helpers/policy.js';
import type { GatewayEvent } from '../src/admin/admin-control.js';

const sites = [
  { name: 'cyber1', url: 'http://127.0.0.1:1', building: 'gedung-cyber-1' },
  { name: 'serpong', url: 'http://127.0.0.1:2', building: 'serpong-dc' },
];

function setup(extra: Partial<TestPolicyInput> = {}) {
  let now = 1_000_000;
  const policy = testPolicy({ sites, routes: [{ name: 'ceir', sites: ['cyber1', 'serpong'] }], ...extra });
  const cp = new ControlPlane({ policy, logger: silentLogger(), metrics: createMetrics(new Registry()), now: () => now, store: new MemoryStore({ replicaId: 'r1' }) });
  const events: GatewayEvent[] = [];
  const downs: string[] = [];
  let tables = 0;
  cp.subscribe({ event: (e) => events.push(e), siteDown: (s) => downs.push(s), tableChanged: () => { tables++; } });
  const upAll = () => { for (const s of cp.policy.sites) cp.probeResult(s.name, true, 'status 200'); };
  return { cp, events, downs, tick: (ms: number) => { now += ms; }, upAll, tables: () => tables, policy };
}

t.test('probe results drive health; changes are reported once, with reasons', async (t) => {
  const { cp, events, downs, upAll } = setup();
  t.teardown(() => cp.close());
  upAll();
  t.equal(cp.table.byName.get('ceir')!.active, 'cyber1');
  cp.probeResult('cyber1', false, 'connect ECONNREFUSED');
  t.equal(cp.health('cyber1')!.status, 'up', 'one failure is not enough (fall 2)');
  cp.probeResult('cyber1', false, 'connect ECONNREFUSED');
  t.equal(cp.health('cyber1')!.status, 'down');
  t.same(downs, ['cyber1'], 'listeners told the site is down, once');
  t.equal(cp.table.byName.get('ceir')!.active, 'serpong');
  const down = events.find((e) => e.type === 'siteDown')!;
  t.equal(down.message, 'site cyber1 down: 2 failed probes (connect ECONNREFUSED)');
  t.ok(events.some((e) => e.type === 'failedOver' && e.from === 'cyber1' && e.to === 'serpong'));
  cp.probeResult('nowhere', false, 'x');
  t.pass('a probe for an unknown site is ignored');
});

t.test('a reload keeps the health of unchanged sites and starts moved ones over', async (t) => {
  const { cp, upAll, policy } = setup();
  t.teardown(() => cp.close());
  upAll();
  cp.passiveFailure('serpong', 'ECONNRESET');
  t.equal(cp.health('serpong')!.status, 'down');
  const next = testPolicy({
    sites: [sites[0]!, { ...sites[1]!, url: 'http://127.0.0.1:3' }, { name: 'dr', url: 'http://127.0.0.1:4', building: 'dr' }],
    routes: [{ name: 'ceir', sites: ['cyber1', 'serpong', 'dr'] }],
  });
  t.not(next, policy);
  cp.replacePolicy(next);
  t.equal(cp.health('cyber1')!.status, 'up', 'unchanged site keeps its verdict');
  t.equal(cp.health('serpong')!.status, 'unknown', 'a site with a new address starts over');
  t.equal(cp.health('dr')!.status, 'unknown', 'a new site starts unknown');
  t.equal(cp.table.policy, next, 'the table carries the new policy');
});

t.test('drains: unknown names, repeats, policy drains and undrain', async (t) => {
  const { cp, upAll } = setup({ drain: { sites: [], buildings: ['serpong-dc'] } });
  t.teardown(() => cp.close());
  upAll();
  t.match(cp.drain({ kind: 'building', name: 'nope' }), { ok: false, code: 'not_found' });
  t.match(cp.drain({ kind: 'site', name: 'nope' }), { ok: false, code: 'not_found' });
  t.match(cp.drain({ kind: 'site', name: 'cyber1' }), { ok: true });
  t.match(cp.drain({ kind: 'site', name: 'cyber1' }), { ok: true, message: /already drained/ });
  t.equal(cp.table.byName.get('ceir')!.state, 'unavailable', 'both sites drained (one by policy)');
  t.match(cp.undrain({ kind: 'building', name: 'serpong-dc' }), { ok: false, code: 'conflict', message: /policy file/ });
  t.match(cp.undrain({ kind: 'site', name: 'serpong' }), { ok: true, message: /was not drained/ });
  t.match(cp.undrain({ kind: 'site', name: 'cyber1' }), { ok: true });
  t.equal(cp.table.byName.get('ceir')!.active, 'cyber1');
  t.same(cp.status().drains, { sites: [], buildings: ['serpong-dc'] });
  t.match(cp.shared(), { drainedSites: [], drainedBuildings: [], pins: {} });
});

t.test('pins and approvals validate their arguments', async (t) => {
  const { cp, upAll } = setup({ sites: [...sites, { name: 'other', url: 'http://127.0.0.1:5' }] });
  t.teardown(() => cp.close());
  upAll();
  t.match(cp.pin('nope', 'cyber1'), { ok: false, code: 'not_found' });
  t.match(cp.pin('ceir', 'nope'), { ok: false, code: 'not_found' });
  t.match(cp.pin('ceir', 'other'), { ok: false, code: 'bad_request', message: /not one of route ceir's sites/ });
  t.match(cp.unpin('ceir'), { ok: true, message: /was not pinned/ });
  t.match(cp.unpin('nope'), { ok: false, code: 'not_found' });
  t.match(cp.approveFailback('nope', false), { ok: false, code: 'not_found' });
  t.match(cp.approveFailback('ceir', false), { ok: false, code: 'conflict' });
  t.match(cp.approveFailover('nope'), { ok: false, code: 'not_found' });
  t.match(cp.approveFailover('ceir'), { ok: false, code: 'conflict' });
  t.match(cp.pin('ceir', 'serpong'), { ok: true });
  t.same(cp.shared().pins, { ceir: 'serpong' });
  t.equal(cp.status().routes[0]!.pinnedTo, 'serpong');
});

t.test('hold-down ends by itself: the wake timer re-decides at nextWakeMs', async (t) => {
  let now = 0;
  const policy = testPolicy({ sites, routes: [{ name: 'ceir', sites: ['cyber1', 'serpong'], failback: { holdDownMs: 50 } }] });
  const cp = new ControlPlane({ policy, logger: silentLogger(), metrics: createMetrics(new Registry()), now: () => now, store: new MemoryStore({ replicaId: 'r1' }) });
  t.teardown(() => cp.close());
  cp.probeResult('cyber1', false, 'down');
  cp.probeResult('serpong', true, 'ok');
  t.equal(cp.table.byName.get('ceir')!.active, 'serpong');
  cp.probeResult('cyber1', true, 'ok');
  cp.probeResult('cyber1', true, 'ok');
  t.equal(cp.table.byName.get('ceir')!.state, 'holding-down');
  t.equal(cp.table.nextWakeMs, 50);
  const failedBack = new Promise<void>((resolve) => cp.subscribe({ event: (e) => { if (e.type === 'failedBack') resolve(); } }));
  now = 60; // the fake clock passes the hold-down; the real (unref'd) timer fires the re-decision
  const keepAlive = setTimeout(() => {}, 5000); // the wake timer is unref'd: hold the process open meanwhile
  await failedBack;
  clearTimeout(keepAlive);
  t.equal(cp.table.byName.get('ceir')!.active, 'cyber1');
});

t.test('status: events are bounded, newest last', async (t) => {
  let now = 0;
  const policy = testPolicy({ sites, routes: [{ name: 'ceir', sites: ['cyber1', 'serpong'] }] });
  const cp = new ControlPlane({ policy, logger: silentLogger(), metrics: createMetrics(new Registry()), now: () => now, store: new MemoryStore({ replicaId: 'r1' }), eventLimit: 5 });
  t.teardown(() => cp.close());
  for (let i = 0; i < 10; i++) {
    now += 1000;
    cp.recordEvent({ type: 'policyReloaded', message: `event ${i}` });
  }
  const status = cp.status();
  t.equal(status.events.length, 5);
  t.equal(status.events.at(-1)!.message, 'event 9');
  t.equal(status.stateStore.kind, 'memory');
  t.equal(status.sites[0]!.health, 'unknown');
});

/** A shared store scripted by the test: other replicas' verdicts and reachability. */
class ScriptedStore implements StateStore {
  readonly kind = 'memory' as const;
  readonly replicaId = 'r1';
  up = true;
  #state: SharedState = { ...emptySharedState, replicas: ['r1', 'r2', 'r3'] };
  readonly #stateListeners: Array<(s: SharedState) => void> = [];
  readonly #statusListeners: Array<(up: boolean) => void> = [];
  async start(): Promise<void> {}
  async close(): Promise<void> {}
  isUp(): boolean { return this.up; }
  snapshot(): SharedState { return this.#state; }
  onState(l: (s: SharedState) => void): void { this.#stateListeners.push(l); }
  onStatus(l: (up: boolean) => void): void { this.#statusListeners.push(l); }
  apply(op: StateOp): void { this.#set(applyOp(this.#state, op)); }
  publishHealth(site: string, v: Omit<ReplicaVerdict, 'atMs'>): void { this.#setVotes(site, { r1: { ...v, atMs: 0 } }); }
  readonly forgotten: string[] = [];
  forgetHealth(site: string): void { this.forgotten.push(site); }
  /** Other replicas' verdicts on a site, as a Redis re-read would bring them. */
  vote(site: string, votes: Record<string, 'up' | 'down'>): void {
    this.#setVotes(site, Object.fromEntries(Object.entries(votes).map(([r, status]) => [r, { status, sinceMs: 0, reason: `${r} says ${status}`, atMs: 0 }])));
  }
  setUp(up: boolean): void {
    this.up = up;
    for (const l of this.#statusListeners) l(up);
  }
  #setVotes(site: string, votes: Record<string, ReplicaVerdict>): void {
    this.#set({ ...this.#state, health: { ...this.#state.health, [site]: { ...this.#state.health[site], ...votes } } });
  }
  #set(s: SharedState): void {
    this.#state = s;
    for (const l of this.#stateListeners) l(s);
  }
}

t.test('quorum: one replica seeing a site down does not fail the route over; the store going away falls back to own probes', async (t) => {
  const store = new ScriptedStore();
  const policy = testPolicy({ sites, routes: [{ name: 'ceir', sites: ['cyber1', 'serpong'] }] });
  const cp = new ControlPlane({ policy, logger: silentLogger(), metrics: createMetrics(new Registry()), store });
  t.teardown(() => cp.close());
  cp.probeResult('cyber1', true, 'ok');
  cp.probeResult('serpong', true, 'ok');
  store.vote('cyber1', { r2: 'up', r3: 'up' });

  cp.probeResult('cyber1', false, 'connect ETIMEDOUT');
  cp.probeResult('cyber1', false, 'connect ETIMEDOUT');
  t.equal(cp.health('cyber1')!.status, 'up', 'outvoted: 1 of 3 replicas see it down');
  t.match(cp.health('cyber1')!.reason, /quorum: 1 of 3 replicas see it down/);
  t.equal(cp.table.byName.get('ceir')!.active, 'cyber1', 'no failover on one replica\'s word');

  store.vote('cyber1', { r2: 'down', r3: 'up' });
  t.equal(cp.health('cyber1')!.status, 'down', 'two of three: down');
  t.equal(cp.table.byName.get('ceir')!.active, 'serpong');

  store.vote('cyber1', { r2: 'up', r3: 'up' });
  t.equal(cp.table.byName.get('ceir')!.state, 'holding-down', 'back up by quorum: failback through hold-down');
  store.setUp(false);
  t.equal(cp.health('cyber1')!.status, 'down', 'store unreachable: own probes only');
  t.ok(cp.events().some((e) => e.type === 'stateStoreDown'), 'the outage is an event');
  store.setUp(true);
  t.equal(cp.health('cyber1')!.status, 'up', 'store back: quorum again');
});

t.test('the first probe round settles routes without counting failovers', async (t) => {
  const policy = testPolicy({ sites, routes: [{ name: 'ceir', sites: ['cyber1', 'serpong'] }] });
  const metrics = createMetrics(new Registry());
  const cp = new ControlPlane({ policy, logger: silentLogger(), metrics, store: new MemoryStore({ replicaId: 'r1' }), starting: true });
  t.teardown(() => cp.close());
  t.equal(cp.table.byName.get('ceir')!.active, 'cyber1', 'not probed yet: first site');
  cp.probeResult('cyber1', false, 'connect ECONNREFUSED');
  cp.probeResult('serpong', true, 'status 200');
  t.equal(cp.table.byName.get('ceir')!.active, 'serpong');
  t.equal(cp.table.byName.get('ceir')!.transition, undefined, 'no transition while starting');
  t.notOk(cp.events().some((e) => e.type === 'failedOver'), 'no failover event while starting');
  t.ok(cp.events().some((e) => e.type === 'siteDown'), 'site verdicts are still events');
  t.equal((await metrics.failovers.get()).values.length, 0, 'no failover counted');
  cp.started();
  cp.passiveFailure('serpong', 'connect ECONNREFUSED');
  t.equal(cp.table.byName.get('ceir')!.passiveIgnored, 'serpong', 'passive evidence alone never takes out the last site');
  t.match(cp.status().routes[0]!.reason, /passive evidence ignored: it would leave ceir with no site/);
  t.equal(cp.status().routes[0]!.passiveIgnored, 'serpong');
  cp.probeResult('serpong', false, 'connect ECONNREFUSED');
  t.equal(cp.table.byName.get('ceir')!.state, 'unavailable', 'a failed probe confirms it');
  t.ok(cp.events().some((e) => e.type === 'routeUnavailable'), 'after start, changes count');
});

t.test('a start decides once, when its first probe round ends, and every reader before then gets a decided table', async (t) => {
  const policy = testPolicy({ sites, routes: [{ name: 'ceir', sites: ['cyber1', 'serpong'] }, { name: 'dukcapil', sites: ['serpong'] }] });
  const starting = () => new ControlPlane({ policy, logger: silentLogger(), metrics: createMetrics(new Registry()), store: new MemoryStore({ replicaId: 'r1' }), starting: true });
  const quiet = starting();
  t.teardown(() => quiet.close());
  quiet.probeResult('cyber1', true, 'status 200');
  quiet.probeResult('serpong', true, 'status 200');
  quiet.started();
  // Deciding at construction, on sites nobody had probed, made the start's table the second.
  t.equal(quiet.table.version, 1, 'the round\'s verdicts are the first decision');
  t.equal(quiet.table.byName.get('ceir')!.active, 'cyber1');
  t.ok(quiet.table.epoch! > 0, 'a lone gateway routes under a fresh epoch');

  const read = starting();
  t.teardown(() => read.close());
  t.same(read.servingTable.routes.map((r) => [r.name, r.active]), [['ceir', 'cyber1'], ['dukcapil', 'serpong']], 'the request path, before any verdict');
  t.equal(read.status().routes.length, 2, '/status, before any verdict');
  read.probeResult('cyber1', false, 'connect ECONNREFUSED');
  t.equal(read.servingTable.byName.get('ceir')!.active, 'serpong', 'a verdict during the round, read on the request path');
});

t.test('a reload withdraws this replica\'s verdicts on removed and moved sites from the shared store', async (t) => {
  const store = new ScriptedStore();
  const policy = testPolicy({ sites, routes: [{ name: 'ceir', sites: ['cyber1', 'serpong'] }] });
  const cp = new ControlPlane({ policy, logger: silentLogger(), metrics: createMetrics(new Registry()), store });
  t.teardown(() => cp.close());
  cp.replacePolicy(testPolicy({
    sites: [{ ...sites[0]!, url: 'http://127.0.0.1:9' }, { name: 'dr', url: 'http://127.0.0.1:8' }],
    routes: [{ name: 'ceir', sites: ['cyber1', 'dr'] }],
  }));
  t.same(store.forgotten.sort(), ['cyber1', 'serpong'], 'cyber1 moved, serpong removed; dr is new');
});

t.test('recomputes are coalesced: many inputs in one turn of the event loop, one decision', async (t) => {
  const many = Array.from({ length: 50 }, (_, i) => ({ name: `s${i}`, url: `http://127.0.0.1:${10 + i}` }));
  const { cp, tables, downs } = setup({
    sites: many,
    routes: many.map((s, i) => ({ name: `r${i}`, sites: [s.name, many[(i + 1) % many.length]!.name] })),
  });
  t.teardown(() => cp.close());
  const v0 = cp.table.version;
  const changes = tables();
  for (const s of many) for (let i = 0; i < 2; i++) cp.probeResult(s.name, false, 'connect ECONNREFUSED');
  t.equal(tables(), changes, 'nothing decided yet: the changes are pending');
  t.same(downs, [], 'siteDown waits for the decision');
  await new Promise((r) => setImmediate(r));
  t.equal(cp.table.version, v0 + 1, 'one decision for fifty sites going down');
  t.equal(tables(), changes + 1);
  t.equal(downs.length, 50, 'then every siteDown notice');
  t.equal(cp.table.byName.get('r0')!.state, 'unavailable');

  // A reader never sees a stale table: reading decides at once.
  for (let i = 0; i < 2; i++) cp.probeResult('s1', true, 'status 200');
  t.equal(cp.table.byName.get('r0')!.active, 's1', 'read right after the inputs: already decided');
  t.equal(cp.table.version, v0 + 2);
  await new Promise((r) => setImmediate(r));
  t.equal(cp.table.version, v0 + 2, 'and not decided twice');

  // Admin commands answer with their effect already in the table.
  const changesBeforePin = tables();
  t.match(cp.pin('r0', 's1'), { ok: true });
  t.equal(tables(), changesBeforePin + 1, 'the pin was decided before pin() returned');
});

t.test('siteDown listeners run after the new table is in place', async (t) => {
  const { cp, upAll } = setup();
  t.teardown(() => cp.close());
  upAll();
  const seen: Array<string | null> = [];
  // A decision runs in 1 ms slices: on a loaded machine it may take more than one turn, so wait for the notice itself.
  const notified = new Promise<void>((resolve) => {
    cp.subscribe({ siteDown: () => { seen.push(cp.table.byName.get('ceir')!.active); resolve(); } });
  });
  cp.passiveFailure('cyber1', 'connect ECONNREFUSED');
  await notified;
  t.same(seen, ['serpong'], 'the listener read a table that already has cyber1 down');
});

t.test('inDoubt: suspect, a failed probe since the last pass, or down (re-sends off such a site skip the retry budget)', async (t) => {
  const { cp, upAll } = setup();
  t.teardown(() => cp.close());
  t.equal(cp.inDoubt('cyber1'), false, 'unknown, never failed: no doubt');
  upAll();
  t.equal(cp.inDoubt('cyber1'), false, 'up');
  cp.probeResult('cyber1', false, 'timeout after 1000ms');
  t.equal(cp.health('cyber1')!.status, 'up', 'one failed probe: still up (fall 2)');
  t.equal(cp.inDoubt('cyber1'), true, 'but in doubt');
  cp.probeResult('cyber1', true, 'status 200');
  t.equal(cp.inDoubt('cyber1'), false, 'a pass clears it');
  cp.probeResult('cyber1', false, 'timeout after 1000ms');
  cp.probeResult('cyber1', false, 'timeout after 1000ms');
  t.equal(cp.health('cyber1')!.status, 'down');
  t.equal(cp.inDoubt('cyber1'), true, 'down');
  t.equal(cp.inDoubt('serpong'), false, 'the other site is not');
  cp.passiveSuspicion('serpong', '12 of 20 requests failed');
  t.equal(cp.health('serpong')!.status, 'up', 'a suspicion alone takes nothing down');
  t.equal(cp.inDoubt('serpong'), true, 'a suspect site is in doubt until its probe answers');
  cp.probeResult('serpong', true, 'status 200');
  t.equal(cp.inDoubt('serpong'), false, 'a passing probe refutes it');
  t.equal(cp.inDoubt('nowhere'), false, 'an unknown name is not');
});

t.test('a decision moving many routes logs one line per kind of move; events stay one per route', async (t) => {
  const lines: Array<Record<string, unknown>> = [];
  const logger = pino({ level: 'info' }, { write: (line: string) => { lines.push(JSON.parse(line) as Record<string, unknown>); } });
  const many = (n: number) => {
    let now = 1_000_000;
    const policy = testPolicy({ sites, routes: Array.from({ length: n }, (_, i) => ({ name: `r${i}`, sites: ['cyber1', 'serpong'] })) });
    const cp = new ControlPlane({ policy, logger, metrics: createMetrics(new Registry()), now: () => now, store: new MemoryStore({ replicaId: 'r1' }), eventLimit: 1000 });
    for (const s of ['cyber1', 'serpong']) cp.probeResult(s, true, 'status 200');
    void cp.table;
    cp.started();
    lines.length = 0;
    now += 1000;
    cp.probeResult('cyber1', false, 'connect ECONNREFUSED');
    cp.probeResult('cyber1', false, 'connect ECONNREFUSED');
    void cp.table;
    return cp;
  };
  const big = many(30);
  t.teardown(() => big.close());
  t.equal(big.events().filter((e) => e.type === 'failedOver').length, 30, 'one event per route');
  const moved = lines.filter((l) => l.event === 'failedOver');
  t.equal(moved.length, 1, 'one log line for the 30 moves');
  t.match(moved[0], { count: 30, from: 'cyber1', to: 'serpong', reason: 'site_down', msg: /^30 routes failedOver \(cyber1 -> serpong, site_down\): r0, r1, .* and 20 more$/ });
  t.same((moved[0]!.routes as string[]).length, 30, 'naming every route');
  t.equal(lines.filter((l) => l.event === 'siteDown').length, 1, 'the site event is logged as before');

  const small = many(3);
  t.teardown(() => small.close());
  t.same(lines.filter((l) => l.event === 'failedOver').map((l) => l.route), ['r0', 'r1', 'r2'], 'a few moves: a line each, as before');
});

t.test('a change of retry candidates alone is a table change (worker processes see only notified tables)', async (t) => {
  const { cp, upAll, tables } = setup();
  t.teardown(() => cp.close());
  upAll();
  t.same(cp.table.byName.get('ceir')!.eligible, ['cyber1', 'serpong']);
  const before = tables();
  cp.drain({ kind: 'site', name: 'serpong' });
  const d = cp.table.byName.get('ceir')!;
  t.equal(d.active, 'cyber1', 'the route stays where it is');
  t.same(d.eligible, ['cyber1'], 'but the drained site is no longer a retry candidate');
  t.ok(tables() > before, 'and listeners hear of it');
});
