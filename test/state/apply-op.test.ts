// applyOp is the one definition of what an operation does to shared state; both
// stores and the unconfirmed-operation overlay rely on it.
import t from 'tap';
import { applyOp, emptySharedState, type SharedState, type StateOp } from '../../src/state/state-store.js';

const approval = { atMs: 1000, force: false };
const forced = { atMs: 2000, force: true };
const base: SharedState = {
  ...emptySharedState,
  drainedSites: ['b-site'],
  drainedBuildings: ['tower'],
  pins: { ceir: 'cyber1' },
  failbackApprovals: { ceir: approval },
  failoverApprovals: { visa: approval },
};

const cases: { name: string; from?: SharedState; ops: StateOp[]; expect: Partial<SharedState> }[] = [
  { name: 'drain a site keeps the list sorted', ops: [{ op: 'drain', kind: 'site', name: 'a-site' }],
    expect: { drainedSites: ['a-site', 'b-site'] } },
  { name: 'draining twice is one drain', ops: [{ op: 'drain', kind: 'site', name: 'b-site' }], expect: { drainedSites: ['b-site'] } },
  { name: 'drain a building', ops: [{ op: 'drain', kind: 'building', name: 'annex' }], expect: { drainedBuildings: ['annex', 'tower'] } },
  { name: 'undrain a site', ops: [{ op: 'undrain', kind: 'site', name: 'b-site' }], expect: { drainedSites: [] } },
  { name: 'undrain what was not drained', ops: [{ op: 'undrain', kind: 'building', name: 'annex' }], expect: { drainedBuildings: ['tower'] } },
  { name: 'site and building drains are separate', ops: [{ op: 'undrain', kind: 'site', name: 'tower' }],
    expect: { drainedSites: ['b-site'], drainedBuildings: ['tower'] } },
  { name: 'pin replaces a pin', ops: [{ op: 'pin', route: 'ceir', site: 'serpong' }], expect: { pins: { ceir: 'serpong' } } },
  { name: 'pin another route', ops: [{ op: 'pin', route: 'visa', site: 'dr' }], expect: { pins: { ceir: 'cyber1', visa: 'dr' } } },
  { name: 'unpin', ops: [{ op: 'unpin', route: 'ceir' }], expect: { pins: {} } },
  { name: 'unpin what was not pinned', ops: [{ op: 'unpin', route: 'visa' }], expect: { pins: { ceir: 'cyber1' } } },
  { name: 'approve failback', ops: [{ op: 'approveFailback', route: 'visa', approval: forced }],
    expect: { failbackApprovals: { ceir: approval, visa: forced }, failoverApprovals: { visa: approval } } },
  { name: 'approve failover replaces', ops: [{ op: 'approveFailover', route: 'visa', approval: forced }],
    expect: { failoverApprovals: { visa: forced } } },
  { name: 'clear a failback approval leaves failover ones', ops: [{ op: 'clearApproval', kind: 'failback', route: 'ceir' }],
    expect: { failbackApprovals: {}, failoverApprovals: { visa: approval } } },
  { name: 'clear a failover approval', ops: [{ op: 'clearApproval', kind: 'failover', route: 'visa' }],
    expect: { failoverApprovals: {}, failbackApprovals: { ceir: approval } } },
  { name: 'operations apply in order', from: emptySharedState,
    ops: [{ op: 'drain', kind: 'site', name: 'x' }, { op: 'undrain', kind: 'site', name: 'x' }, { op: 'drain', kind: 'site', name: 'y' }],
    expect: { drainedSites: ['y'] } },
];

for (const c of cases) {
  t.test(c.name, async (t) => {
    const from = c.from ?? base;
    const before = JSON.stringify(from);
    const after = c.ops.reduce(applyOp, from);
    t.same(after, { ...from, ...c.expect });
    t.equal(JSON.stringify(from), before, 'the input snapshot is not mutated');
  });
}
