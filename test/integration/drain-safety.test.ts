// The drain safety rule end to end: a drain that would leave a route with no
// eligible site answers 409 naming the route and changes nothing; with
// {"force": true} it is applied, and the audit trail says forced. The policy
// file's own drains are never refused, only warned about.
import t from 'tap';
import { startRig } from '../helpers/gateway.js';
import { testPolicy } from '../helpers/policy.js';
import { waitFor } from '../helpers/wait.js';

const sites = [
  { name: 'cyber1', building: 'gedung-cyber-1' },
  { name: 'serpong', building: 'serpong-dc' },
];
const routes = [
  { name: 'ceir', sites: ['cyber1', 'serpong'] },
  { name: 'dukcapil', sites: ['cyber1', 'serpong'] },
  { name: 'local', sites: ['serpong'] },
];

t.test('a drain that empties a route: 409 naming the routes, applied with force and audited as forced', async (t) => {
  const rig = await startRig(t, sites, () => ({ routes }));
  await waitFor(() => rig.gateway.control.health('serpong')?.status === 'up' && rig.gateway.control.health('cyber1')?.status === 'up',
    { timeoutMs: 5000, message: 'both sites up' });
  t.equal((await rig.admin('POST', '/drain', { building: 'gedung-cyber-1' })).status, 200, 'the other building still serves every route');

  const refused = await rig.admin('POST', '/drain', { site: 'serpong' });
  t.equal(refused.status, 409);
  t.equal(refused.json.code, 'conflict');
  t.match(refused.json.error, /routes ceir, dukcapil, local with no eligible site/);
  t.same(rig.gateway.control.status().drains.sites, [], 'nothing drained');
  t.equal(rig.gateway.table().byName.get('ceir')!.active, 'serpong');

  const forced = await rig.admin('POST', '/drain', { site: 'serpong', force: true });
  t.equal(forced.status, 200);
  t.match(forced.json.message, /FORCED/);
  t.equal(rig.gateway.table().byName.get('ceir')!.active, null, 'applied: the route has nothing left');
  const status = (await rig.admin('GET', '/status')).json;
  const audit = status.audit.map((a: { action: string; target: string; status: number }) => [a.action, a.target, a.status]);
  t.same(audit.slice(-2), [['drain', 'site serpong', 409], ['drain', 'site serpong (forced)', 200]]);
});

t.test('a site down already: draining the live one empties the route', async (t) => {
  const rig = await startRig(t, sites, () => ({ routes: routes.slice(0, 1) }));
  await waitFor(() => rig.gateway.control.health('cyber1')?.status === 'up', { timeoutMs: 5000 });
  rig.sites.serpong!.setAll('status:503');
  await waitFor(() => rig.gateway.control.health('serpong')?.status === 'down', { timeoutMs: 5000, message: 'serpong down' });
  const refused = await rig.admin('POST', '/drain', { building: 'gedung-cyber-1' });
  t.equal(refused.status, 409, 'only a down site would be left');
  t.match(refused.json.error, /route ceir with no eligible site/);
});

t.test('a policy drain that empties a route on reload: applied, with a warning in the log, the events and /status', async (t) => {
  const rig = await startRig(t, sites, () => ({ routes }));
  t.equal((await rig.admin('GET', '/status')).json.warnings, undefined, 'no warnings to begin with');
  const next = testPolicy({ ...rig.policy, drain: { buildings: ['serpong-dc'] } } as never);
  t.ok(rig.gateway.applyPolicy(next).ok, 'the file wins');
  t.same(rig.gateway.control.effectiveDrains().buildings, new Set(['serpong-dc']));
  const status = (await rig.admin('GET', '/status')).json;
  t.same(status.warnings, ["the policy file's drain: leaves route local with no eligible site (applied anyway: the file wins)"]);
  t.match(status.events.filter((e: { type: string }) => e.type === 'policyDrainEmptiesRoute'), [{ route: 'local' }]);
  t.ok(rig.gateway.applyPolicy(testPolicy({ ...rig.policy } as never)).ok);
  t.equal((await rig.admin('GET', '/status')).json.warnings, undefined, 'gone once the file no longer drains it');
});
