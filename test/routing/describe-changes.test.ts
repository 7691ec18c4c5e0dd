// describeChanges as a table: two route tables in, the events a decision
// produced out, in priority order. Pure: no clock, no listeners.
import t from 'tap';
import { describeChanges } from '../../src/routing/describe-changes.js';
import { tableFor, testPolicy, type TestDecisionInput } from '../helpers/policy.js';

const policy = testPolicy({
  sites: [{ name: 'cyber1', url: 'http://127.0.0.1:1' }, { name: 'serpong', url: 'http://127.0.0.1:2' }],
  routes: [
    { name: 'visa', sites: ['cyber1', 'serpong'], priority: 2 },
    { name: 'border', sites: ['cyber1', 'serpong'], priority: 1 },
  ],
});

const ramp = (percent: number, step: number): TestDecisionInput => ({
  state: 'ramping', active: 'serpong', reason: `failing back to cyber1: ${percent}%`,
  weights: [{ site: 'cyber1', weight: percent }, { site: 'serpong', weight: 100 - percent }],
  ramp: { to: 'cyber1', from: 'serpong', step, percent, stepStartedMs: 0 },
});
const failedOver: TestDecisionInput = { state: 'failed-over', active: 'serpong', reason: 'serving from serpong: cyber1 down', weights: [{ site: 'serpong', weight: 100 }] };

const rows: Array<{
  name: string;
  prev: Record<string, TestDecisionInput>;
  next: Record<string, TestDecisionInput>;
  expect: Array<[string, string, string]>; // [type, route, level]
  message?: RegExp;
}> = [
  { name: 'nothing changed: nothing to say', prev: {}, next: {}, expect: [] },
  {
    name: 'a failover is one event, told as a move',
    prev: {}, next: { border: { ...failedOver, transition: { from: 'cyber1', to: 'serpong', reason: 'site_down' } } },
    expect: [['failedOver', 'border', 'warn']], message: /^route border moved cyber1 -> serpong \(site_down\): serving from serpong/,
  },
  {
    name: 'no site left: routeUnavailable, an error',
    prev: {}, next: { visa: { state: 'unavailable', transition: { from: 'cyber1', to: null, reason: 'site_down' } } },
    expect: [['routeUnavailable', 'visa', 'error']], message: /^route visa unavailable: no site can serve/,
  },
  {
    name: 'the end of a ramp is a failback; a forced one says so',
    prev: { border: ramp(50, 1) }, next: { border: { transition: { from: 'serpong', to: 'cyber1', reason: 'failback', forced: true } } },
    expect: [['failedBack', 'border', 'warn']], message: /\(failback, forced\)/,
  },
  {
    name: 'ramp start, then each step',
    prev: { border: failedOver }, next: { border: ramp(10, 0) },
    expect: [['failbackStarted', 'border', 'info']],
  },
  { name: 'a ramp step', prev: { border: ramp(10, 0) }, next: { border: ramp(50, 1) }, expect: [['rampStepped', 'border', 'info']] },
  {
    name: 'blocked and pending failover are warnings; a change of blocked code is news',
    prev: { border: { ...failedOver, state: 'blocked', blocked: { code: 'holddown', message: 'x' } } },
    next: {
      border: { ...failedOver, state: 'blocked', blocked: { code: 'integrity', message: 'mismatch' }, reason: 'integrity mismatch' },
      visa: { state: 'pending-failover', reason: 'waiting for an operator' },
    },
    expect: [['failbackBlocked', 'border', 'warn'], ['failoverPending', 'visa', 'warn']],
  },
  {
    name: 'priority order: the level finishing is told before the next level starting',
    prev: { border: ramp(50, 1), visa: failedOver },
    next: { visa: ramp(10, 0), border: { transition: { from: 'serpong', to: 'cyber1', reason: 'failback' } } },
    expect: [['failedBack', 'border', 'warn'], ['failbackStarted', 'visa', 'info']],
  },
  {
    name: 'every other state has its word',
    prev: { border: failedOver, visa: { state: 'pinned', active: 'serpong', pinnedTo: 'serpong' } },
    next: { border: { ...failedOver, state: 'awaiting-approval' }, visa: { state: 'preferred' } },
    expect: [['failbackAwaitingApproval', 'border', 'info'], ['routeRestored', 'visa', 'info']],
  },
  {
    name: 'held, stopped and pinned',
    prev: { border: ramp(10, 0), visa: failedOver },
    next: { border: failedOver, visa: { ...failedOver, state: 'holding-down' } },
    expect: [['failbackStopped', 'border', 'info'], ['failbackHeld', 'visa', 'info']],
  },
];

for (const row of rows) {
  t.test(row.name, async (t) => {
    const events = describeChanges(tableFor(policy, row.prev), tableFor(policy, row.next, { version: 2 }));
    t.same(events.map((e) => [e.event.type, e.event.route, e.level]), row.expect);
    if (row.message) t.match(events[0]?.event.message, row.message);
  });
}

t.test('a route new in the table (a reload added it) is not news by itself', async (t) => {
  const small = testPolicy({ sites: [{ name: 'cyber1', url: 'http://127.0.0.1:1' }], routes: [{ name: 'border', sites: ['cyber1'] }] });
  const bigger = testPolicy({
    sites: [{ name: 'cyber1', url: 'http://127.0.0.1:1' }],
    routes: [{ name: 'border', sites: ['cyber1'] }, { name: 'visa', sites: ['cyber1'], priority: 2 }],
  });
  t.same(describeChanges(tableFor(small), tableFor(bigger, { visa: { state: 'pinned' } })), []);
});
