// Which events are decisions (the leader's to write) and the ids that make one
// transition one entry.
import t from 'tap';
import { decisionEventId, decisionSubject, ownEventId } from '../../src/state/history-ids.js';

const cases: Array<{ event: { type: any; route?: string; site?: string }; subject: 'route' | 'site' | 'integrity' | null }> = [
  { event: { type: 'failedOver', route: 'ceir' }, subject: 'route' },
  { event: { type: 'rampStepped', route: 'ceir' }, subject: 'route' },
  { event: { type: 'routeUnavailable', route: 'ceir' }, subject: 'route' },
  { event: { type: 'siteDown', site: 'cyber1' }, subject: 'site' },
  { event: { type: 'siteUp', site: 'cyber1' }, subject: 'site' },
  { event: { type: 'integrityMismatched', route: 'ceir' }, subject: 'integrity' },
  { event: { type: 'drained', site: 'cyber1' }, subject: null },
  { event: { type: 'pinned', route: 'ceir' }, subject: null },
  { event: { type: 'siteSuspected', site: 'cyber1' }, subject: null },
  { event: { type: 'policyReloaded' }, subject: null },
  { event: { type: 'stateStoreDown' }, subject: null },
  { event: { type: 'failedOver' }, subject: null },
];
for (const c of cases) {
  t.equal(decisionSubject(c.event), c.subject, `${c.event.type} ${c.event.route ?? c.event.site ?? ''}`);
}

t.test('decision ids: the same transition, the same id; another transition, another id', async (t) => {
  const failover = { type: 'failedOver' as const, route: 'ceir', from: 'cyber1', to: 'serpong' };
  t.equal(decisionEventId(failover, 1000.7), 'd:failedOver:ceir:cyber1>serpong:1000');
  t.equal(decisionEventId(failover, 1000), decisionEventId({ ...failover }, 1000));
  t.not(decisionEventId(failover, 1000), decisionEventId(failover, 2000), 'the same move later is a new transition');
  t.not(decisionEventId(failover, 1000), decisionEventId({ ...failover, to: 'dr' }, 1000));
  t.equal(decisionEventId({ type: 'siteDown', site: 'cyber1' }, 5), 'd:siteDown:cyber1:->-:5');
  t.equal(ownEventId('replica-1', 42.9, 3), 'r:replica-1:42:3');
});
