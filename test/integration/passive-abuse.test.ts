// No client can take a data center down: requests that make the application
// fail (a crashing handler dropping the connection, a 500) are answered with
// their error and take no site out; only failures a probe confirms do, and
// passive evidence alone never takes out a route's last site. Real fake sites
// on port 0, a real gateway, real probes.
import t from 'tap';
import { Load, request } from '../helpers/load.js';
import { startRig, type RigSite } from '../helpers/gateway.js';
import { waitFor } from '../helpers/wait.js';

// Probes are slow here on purpose: only the confirmation probe that passive
// suspicion asks for can run in the time the test takes.
const slowProbes = { intervalMs: 60_000, timeoutMs: 2000 };
const sites = (passive: RigSite['passive'] = {}): RigSite[] => [
  { name: 'cyber1', building: 'gedung-cyber-1', probe: slowProbes, passive },
  { name: 'serpong', building: 'serpong-dc', probe: slowProbes, passive },
];
const oneRoute = () => ({ routes: [{ name: 'ceir', sites: ['cyber1', 'serpong'] }] });

const metricValue = (text: string, series: string): number => {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line ? Number(line.slice(series.length + 1)) : 0;
};

t.test('one client whose requests make the application drop the connection or answer 500 takes no site down', async (t) => {
  const rig = await startRig(t, sites(), oneRoute);
  for (const site of Object.values(rig.sites)) {
    site.setPath('/boom', 'reset');
    site.setPath('/err', 'status:500');
  }
  // Other clients, meanwhile, on a path that works.
  const others = new Load({ url: `${rig.gateway.proxyUrl}/records`, workers: 2, pauseMs: 5 }).start();

  const sequential = [];
  for (let i = 0; i < 10; i++) sequential.push(await request(`${rig.gateway.proxyUrl}/boom/${i}`, undefined));
  t.ok(sequential.every((o) => o.status === 502), 'each dropped request gets its own 502');
  const concurrent = await Promise.all(Array.from({ length: 20 }, (_, i) => request(`${rig.gateway.proxyUrl}/boom/c${i}`, undefined)));
  t.ok(concurrent.every((o) => o.status === 502), '20 at once: each gets its 502');
  const errors = await Promise.all(Array.from({ length: 20 }, () => request(`${rig.gateway.proxyUrl}/err`, undefined)));
  t.ok(errors.every((o) => o.status === 500 && o.site === 'cyber1'), 'a 500 is the application\'s answer, passed through');

  // Enough of their requests overlap the bad ones to be worth checking (the
  // bad ones can be over in a few hundred ms).
  await waitFor(() => others.outcomes.length > 20, { timeoutMs: 5000, message: 'other clients sent 20 requests' });
  await others.stop();
  // Whether the 30 failures crossed the ratio depends on how much other traffic
  // cyber1 had meanwhile; if they did, the probe they asked for passed.
  await waitFor(() => rig.gateway.control.health('cyber1')!.suspect === undefined, { timeoutMs: 5000, message: 'no suspicion left open' });

  t.equal(rig.gateway.control.health('cyber1')!.status, 'up', 'cyber1 still up');
  t.equal(rig.gateway.control.health('serpong')!.status, 'up', 'serpong still up');
  t.equal(rig.gateway.table().byName.get('ceir')!.active, 'cyber1', 'the route stays on the preferred site');
  t.same(others.failed, [], 'other clients saw nothing');
  t.ok(others.outcomes.length > 20, `other clients kept sending (${others.outcomes.length} requests)`);
  t.same(others.bySite(), { cyber1: others.outcomes.length }, 'and were served by cyber1 all along');

  const metrics = (await rig.admin('GET', '/metrics')).text;
  t.equal(metricValue(metrics, 'detour_poison_requests_total{route="ceir"}'), 30, 'every dropped GET failed on both sites: poison');
  t.equal(metricValue(metrics, 'detour_passive_failures_total{site="serpong",kind="request"}'), 0, 'the second site is not blamed');
  t.equal(metricValue(metrics, 'detour_passive_failures_total{site="cyber1",kind="request"}'), 30);
  t.equal(metricValue(metrics, 'detour_failovers_total{route="ceir",from="cyber1",to="serpong",reason="site_down"}'), 0, 'no failover');
  t.equal(metricValue(metrics, 'detour_passive_suspicions_total{site="cyber1",result="confirmed"}'), 0, 'no suspicion confirmed');
});

t.test('a suspicion and its refutation are events', async (t) => {
  const rig = await startRig(t, sites(), oneRoute);
  rig.sites.cyber1!.setPath('/boom', 'reset');
  rig.sites.serpong!.setPath('/boom', 'reset');
  const outcomes = await Promise.all(Array.from({ length: 20 }, (_, i) => request(`${rig.gateway.proxyUrl}/boom/${i}`, undefined)));
  t.ok(outcomes.every((o) => o.status === 502));
  await waitFor(async () => metricValue((await rig.admin('GET', '/metrics')).text,
    'detour_passive_suspicions_total{site="cyber1",result="refuted"}') === 1, { timeoutMs: 5000, message: 'suspicion refuted by a probe' });
  const status = (await rig.admin('GET', '/status')).json;
  t.ok(status.events.some((e: { type: string; message: string }) => e.type === 'siteSuspected'
    && /^site cyber1 suspect: 20 of 20 requests failed in 10s \(last: socket hang up\); probing it now/.test(e.message)), 'the suspicion is an event');
  t.ok(status.events.some((e: { type: string; message: string }) => e.type === 'suspicionRefuted' && /stays up: a probe passed/.test(e.message)), 'and so is its refutation');
  t.equal(rig.gateway.control.health('cyber1')!.status, 'up');
});

t.test('failures from many clients above the ratio: down only when the probe fails too', async (t) => {
  const passive = { minClients: 3, minRequests: 10 };
  // 12 clients on 127.0.0.2 .. 127.0.0.13, each sending two requests.
  const manyClients = (url: string) => Promise.all(Array.from({ length: 24 }, (_, i) =>
    request(url, undefined, { localAddress: `127.0.0.${2 + (i % 12)}` })));

  await t.test('probe passing: it stays up', async (t) => {
    const rig = await startRig(t, sites(passive), oneRoute);
    rig.sites.cyber1!.setPath('/app', 'reset');
    const outcomes = await manyClients(`${rig.gateway.proxyUrl}/app`);
    t.ok(outcomes.every((o) => o.status === 200 && o.site === 'serpong'), 'every GET retried on serpong: no client error');
    await waitFor(async () => metricValue((await rig.admin('GET', '/metrics')).text,
      'detour_passive_suspicions_total{site="cyber1",result="refuted"}') >= 1, { timeoutMs: 5000, message: 'refuted' });
    t.equal(rig.gateway.control.health('cyber1')!.status, 'up');
    t.equal(rig.gateway.table().byName.get('ceir')!.active, 'cyber1');
  });

  await t.test('probe failing too: the site goes down as before, clients see nothing', async (t) => {
    const rig = await startRig(t, sites(passive), oneRoute);
    rig.sites.cyber1!.setPath('/app', 'reset');
    rig.sites.cyber1!.setHealth('status:503');
    const outcomes = await manyClients(`${rig.gateway.proxyUrl}/app`);
    t.ok(outcomes.every((o) => o.status === 200), 'no client error');
    await waitFor(() => rig.gateway.table().byName.get('ceir')!.active === 'serpong', { timeoutMs: 5000, message: 'failover' });
    const h = rig.gateway.control.health('cyber1')!;
    t.equal(h.status, 'down');
    t.match(h.reason, /^live traffic failing \(\d+ of \d+ requests failed in 10s from 3\+ clients \(last: socket hang up\)\) and a probe confirmed it \(status 503\)$/);
    const metrics = (await rig.admin('GET', '/metrics')).text;
    t.equal(metricValue(metrics, 'detour_passive_suspicions_total{site="cyber1",result="confirmed"}'), 1);
  });

  await t.test('the same failures from one client never reach minClients: no suspicion at all', async (t) => {
    const rig = await startRig(t, sites(passive), oneRoute);
    rig.sites.cyber1!.setPath('/app', 'reset');
    rig.sites.cyber1!.setHealth('status:503');
    const outcomes = await Promise.all(Array.from({ length: 24 }, () => request(`${rig.gateway.proxyUrl}/app`, undefined)));
    t.ok(outcomes.every((o) => o.status === 200));
    t.equal(rig.gateway.control.health('cyber1')!.status, 'up', 'one client is not enough with minClients 3');
    t.notOk((await rig.admin('GET', '/status')).json.events.some((e: { type: string }) => e.type === 'siteSuspected'));
  });
});

t.test('passive evidence against the last eligible site is ignored and reported', async (t) => {
  const rig = await startRig(t, sites(), oneRoute);
  t.equal((await rig.admin('POST', '/drain', { site: 'serpong' })).status, 200);
  // A blip: cyber1 refuses connections for a moment (a restart), then is back.
  await rig.sites.cyber1!.kill();
  const during = await request(`${rig.gateway.proxyUrl}/x`, undefined);
  t.equal(during.status, 502, 'the request that met the refusal gets a 502');
  const d = rig.gateway.table().byName.get('ceir')!;
  t.equal(d.active, 'cyber1', 'the route keeps its last site');
  t.equal(d.passiveIgnored, 'cyber1');
  const status = (await rig.admin('GET', '/status')).json;
  const route = status.routes.find((r: { name: string }) => r.name === 'ceir');
  t.match(route.reason, /^passive evidence ignored: it would leave ceir with no site; serving from cyber1 down \(live traffic failed \(connect ECONNREFUSED\)\)/);
  t.equal(route.passiveIgnored, 'cyber1');
  t.equal(status.sites.find((s: { name: string }) => s.name === 'cyber1').health, 'down', 'the site itself is shown down');
  t.equal(metricValue((await rig.admin('GET', '/metrics')).text, 'detour_route_passive_ignored{route="ceir"}'), 1);

  await rig.sites.cyber1!.revive();
  const after = await request(`${rig.gateway.proxyUrl}/x`, undefined);
  t.equal(after.status, 200, 'back at once, not after a probe interval of 503s');
  t.equal(after.site, 'cyber1');

  // Only a probe (or an operator) takes the last site out.
  rig.gateway.control.probeResult('cyber1', false, 'connect ECONNREFUSED');
  t.equal(rig.gateway.table().byName.get('ceir')!.state, 'unavailable', 'a failed probe confirms it: the route is out');
  const none = await request(`${rig.gateway.proxyUrl}/x`, undefined);
  t.equal(none.status, 503);
});
