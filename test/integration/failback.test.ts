// Recovery operators can trust, end to end: the integrity gate, ramps, phased
// recovery by priority, a primary failing mid-ramp, and manual approval. Real
// fake sites, a real gateway; we wait on the gateway's own events and state.
import t from 'tap';
import { startRig, type Rig } from '../helpers/gateway.js';
import { request } from '../helpers/load.js';
import { waitFor } from '../helpers/wait.js';
import type { GatewayEvent } from '../../src/admin/admin-control.js';

const sites = [
  { name: 'cyber1', building: 'gedung-cyber-1' },
  { name: 'serpong', building: 'serpong-dc' },
];
const verify = { path: '/_integrity', field: 'checksum', intervalMs: 50, timeoutMs: 200 };

function recordEvents(rig: Rig): GatewayEvent[] {
  const events: GatewayEvent[] = [];
  rig.gateway.control.subscribe({ event: (e) => events.push(e) });
  return events;
}

async function metricLine(rig: Rig, re: RegExp): Promise<string | undefined> {
  return (await rig.admin('GET', '/metrics')).text.split('\n').find((l) => re.test(l));
}

const route = (rig: Rig, name: string) => rig.gateway.table().byName.get(name)!;

t.test('integrity mismatch keeps traffic on the backup until checksums match, then it ramps back', async (t) => {
  const rig = await startRig(t, sites, () => ({
    routes: [{ name: 'ceir', sites: ['cyber1', 'serpong'], failback: { holdDownMs: 300, verify, ramp: [20, 60, 100], stepMs: 150 } }],
  }));
  const events = recordEvents(rig);
  rig.sites.cyber1!.setAll('hang');
  await waitFor(() => route(rig, 'ceir').active === 'serpong', { timeoutMs: 5000, message: 'failover' });

  rig.sites.cyber1!.setIntegrity({ checksum: 'a1f3' });
  rig.sites.serpong!.setIntegrity({ checksum: '9c2e' });
  rig.sites.cyber1!.setAll('ok');
  await waitFor(() => route(rig, 'ceir').blocked?.code === 'integrity', { timeoutMs: 5000, message: 'blocked by integrity' });

  // Well past hold-down: still blocked, still on serpong.
  const blockedSince = Date.now();
  await waitFor(() => Date.now() - blockedSince > 1000, { timeoutMs: 2000 });
  const d = route(rig, 'ceir');
  t.equal(d.state, 'blocked');
  t.equal(d.active, 'serpong');
  t.same(d.weights, [{ site: 'serpong', weight: 100 }]);
  for (let i = 0; i < 10; i++) t.equal((await request(`${rig.gateway.proxyUrl}/x`, undefined)).site, 'serpong', 'served by serpong while blocked');

  const status = (await rig.admin('GET', '/status')).json;
  const rs = status.routes.find((r: any) => r.name === 'ceir');
  t.equal(rs.state, 'blocked');
  t.match(rs.reason, /integrity mismatch: checksum a1f3 \(cyber1\) != 9c2e \(serpong\)/, '/status says why');
  t.ok(rs.since, 'and since when');
  t.equal(await metricLine(rig, /^detour_failback_blocked\{route="ceir",reason="integrity"\}/), 'detour_failback_blocked{route="ceir",reason="integrity"} 1');

  // Reconcile: the gate must hold for the hold-down, then the ramp runs 20 -> 60 -> 100.
  const weightsSeen = new Set<string>();
  const sample = () => {
    const w = route(rig, 'ceir').weights.find((x) => x.site === 'cyber1');
    if (w) weightsSeen.add(String(w.weight));
  };
  const watcher = setInterval(sample, 5);
  t.teardown(() => clearInterval(watcher));
  rig.sites.cyber1!.setIntegrity({ checksum: '9c2e' });
  await waitFor(() => route(rig, 'ceir').state === 'preferred', { timeoutMs: 5000, message: 'failback complete' });
  clearInterval(watcher);
  sample(); // the final 100%
  t.same([...weightsSeen].sort(), ['100', '20', '60'], 'every ramp step was taken');
  t.equal(await metricLine(rig, /^detour_failback_blocked\{route="ceir",reason="integrity"\}/), 'detour_failback_blocked{route="ceir",reason="integrity"} 0');
  t.equal((await request(`${rig.gateway.proxyUrl}/x`, undefined)).site, 'cyber1');
  const types = events.filter((e) => e.route === 'ceir').map((e) => e.type);
  t.ok(types.includes('failbackBlocked') && types.includes('failbackStarted') && types.includes('failedBack'), `events: ${types.join(', ')}`);
});

t.test('a replication lag above its bound blocks failback', async (t) => {
  const rig = await startRig(t, sites, () => ({
    routes: [{
      name: 'visa', sites: ['cyber1', 'serpong'],
      failback: { holdDownMs: 200, verify: { path: '/_integrity', field: 'replication.lagSeconds', max: 5, intervalMs: 50, timeoutMs: 200 } },
    }],
  }));
  rig.sites.cyber1!.setAll('hang');
  await waitFor(() => route(rig, 'visa').active === 'serpong', { timeoutMs: 5000 });
  rig.sites.cyber1!.setIntegrity({ lagSeconds: 42 });
  rig.sites.cyber1!.setAll('ok');
  // While cyber1 hung, the check already failed (timeouts); now it must fail on the lag itself.
  await waitFor(() => /lagSeconds 42/.test(route(rig, 'visa').reason), { timeoutMs: 5000, message: 'blocked by lag' });
  t.equal(route(rig, 'visa').blocked?.code, 'integrity');
  const at = Date.now();
  await waitFor(() => Date.now() - at > 600, { timeoutMs: 1000 });
  t.equal(route(rig, 'visa').active, 'serpong', 'still on serpong well past hold-down');
  rig.sites.cyber1!.setIntegrity({ lagSeconds: 1 });
  await waitFor(() => route(rig, 'visa').active === 'cyber1', { timeoutMs: 5000, message: 'failback once lag is within bound' });
  t.pass('failed back once the lag was within its bound');
});

t.test('three routes at priorities 1, 2, 3 come back strictly in order, weights visible at every step', async (t) => {
  const fb = { holdDownMs: 200, ramp: [50, 100], stepMs: 200 };
  const rig = await startRig(t, sites, () => ({
    routes: [
      { name: 'passport', sites: ['cyber1', 'serpong'], priority: 3, match: { pathPrefix: '/passport' }, failback: fb },
      { name: 'visa', sites: ['cyber1', 'serpong'], priority: 2, match: { pathPrefix: '/visa' }, failback: fb },
      { name: 'border', sites: ['cyber1', 'serpong'], priority: 1, match: { pathPrefix: '/border' }, failback: fb },
    ],
  }));
  const events = recordEvents(rig);
  rig.sites.cyber1!.setAll('hang');
  await waitFor(() => rig.gateway.table().routes.every((d) => d.active === 'serpong'), { timeoutMs: 5000, message: 'all failed over' });

  // Scrape /metrics all through the recovery: every ramp step must show up there.
  const scraped = new Set<string>();
  let scraping = true;
  const scrape = async () => {
    const text = (await rig.admin('GET', '/metrics')).text;
    for (const m of text.matchAll(/^detour_route_site_weight\{route="(\w+)",site="cyber1"\} (\d+)/gm)) scraped.add(`${m[1]}:${m[2]}`);
  };
  const scraper = (async () => {
    while (scraping) {
      await scrape();
      await new Promise((r) => setTimeout(r, 20));
    }
    await scrape(); // the final state, after the last route came back
  })();
  t.teardown(() => { scraping = false; });

  rig.sites.cyber1!.setAll('ok');
  await waitFor(() => rig.gateway.table().routes.every((d) => d.state === 'preferred'), { timeoutMs: 10_000, message: 'all failed back' });
  scraping = false;
  await scraper;

  const order = events.filter((e) => e.type === 'failedBack').map((e) => e.route);
  t.same(order, ['border', 'visa', 'passport'], 'failback completes in priority order');
  const started = events.filter((e) => e.type === 'failbackStarted').map((e) => e.route);
  t.same(started, ['border', 'visa', 'passport'], 'and starts in priority order');
  // Each level starts only after the previous one finished.
  const at = (type: string, r: string) => events.findIndex((e) => e.type === type && e.route === r);
  t.ok(at('failedBack', 'border') < at('failbackStarted', 'visa'), 'visa starts after border finished');
  t.ok(at('failedBack', 'visa') < at('failbackStarted', 'passport'), 'passport starts after visa finished');
  for (const r of ['border', 'visa', 'passport']) {
    t.ok(scraped.has(`${r}:50`), `${r} at 50% seen in /metrics`);
    t.ok(scraped.has(`${r}:100`), `${r} at 100% seen in /metrics`);
  }
  const visaBlocked = events.find((e) => e.route === 'visa' && e.type === 'failbackBlocked');
  t.match(visaBlocked?.message ?? '', /waiting for priority 1 routes/, 'visa said what it waited for');
});

t.test('a primary that fails again mid-ramp gets no more traffic at once', async (t) => {
  const rig = await startRig(t, sites, () => ({
    routes: [{ name: 'ceir', sites: ['cyber1', 'serpong'], failback: { holdDownMs: 200, ramp: [50, 100], stepMs: 60_000 } }],
  }));
  rig.sites.cyber1!.setAll('hang');
  await waitFor(() => route(rig, 'ceir').active === 'serpong', { timeoutMs: 5000 });
  rig.sites.cyber1!.setAll('ok');
  await waitFor(() => route(rig, 'ceir').state === 'ramping', { timeoutMs: 5000, message: 'ramping' });
  const served = new Set<string>();
  for (let i = 0; i < 40; i++) served.add((await request(`${rig.gateway.proxyUrl}/x`, undefined)).site ?? 'none');
  t.same([...served].sort(), ['cyber1', 'serpong'], 'both sites served during the 50% step');

  await rig.sites.cyber1!.kill();
  const killedAt = Date.now();
  // The first request that meets the dead site marks it down (passive) and is retried.
  const outcomes = [];
  for (let i = 0; i < 40; i++) outcomes.push(await request(`${rig.gateway.proxyUrl}/x`, undefined));
  t.ok(outcomes.every((o) => o.status === 200 && o.site === 'serpong'), 'every request answered by serpong');
  t.equal(route(rig, 'ceir').state, 'failed-over');
  t.same(route(rig, 'ceir').weights, [{ site: 'serpong', weight: 100 }]);
  t.ok(Date.now() - killedAt < 3000, 'at once');
});

t.test('manual failback waits for approval, and approval does not bypass a failing gate without force', async (t) => {
  const rig = await startRig(t, sites, () => ({
    routes: [{ name: 'ceir', sites: ['cyber1', 'serpong'], failback: { mode: 'manual', holdDownMs: 200, verify } }],
  }));
  const events = recordEvents(rig);
  rig.sites.cyber1!.setAll('hang');
  await waitFor(() => route(rig, 'ceir').active === 'serpong', { timeoutMs: 5000 });
  rig.sites.cyber1!.setAll('ok');
  await waitFor(() => route(rig, 'ceir').state === 'awaiting-approval', { timeoutMs: 5000, message: 'awaiting approval' });
  const status = (await rig.admin('GET', '/status')).json.routes[0];
  t.equal(status.pendingFailback, true, '/status shows the pending failback');

  // Data diverges before the operator approves.
  rig.sites.cyber1!.setIntegrity({ checksum: 'stale' });
  await waitFor(() => route(rig, 'ceir').blocked?.code === 'integrity', { timeoutMs: 5000, message: 'blocked by integrity' });
  t.equal((await rig.admin('POST', '/routes/ceir/failback', undefined, null)).status, 401, 'approval needs the token');
  const approved = await rig.admin('POST', '/routes/ceir/failback');
  t.equal(approved.status, 200);
  t.equal(route(rig, 'ceir').active, 'serpong', 'approval alone does not pass a failing integrity gate');
  t.equal(route(rig, 'ceir').state, 'blocked');

  const forced = await rig.admin('POST', '/routes/ceir/failback', { force: true });
  t.equal(forced.status, 200);
  t.equal(route(rig, 'ceir').active, 'cyber1', 'force moves it back');
  t.ok(events.some((e) => e.type === 'failbackForced'), 'a forced failback is recorded as such');
  t.equal((await rig.admin('POST', '/routes/ceir/failback')).status, 409, 'nothing left to approve');
});

t.test('manual failover holds the route and raises a pending failover until approved', async (t) => {
  const rig = await startRig(t, sites, () => ({
    routes: [{ name: 'visa', sites: ['cyber1', 'serpong'], failover: { mode: 'manual' } }],
  }));
  rig.sites.cyber1!.setAll('status:503');
  await waitFor(() => route(rig, 'visa').state === 'pending-failover', { timeoutMs: 5000, message: 'pending failover' });
  t.equal(route(rig, 'visa').active, 'cyber1', 'held where it is');
  t.equal(await metricLine(rig, /^detour_route_pending_failover\{route="visa"\}/), 'detour_route_pending_failover{route="visa"} 1');
  const r = await request(`${rig.gateway.proxyUrl}/x`, undefined);
  t.equal(r.site, 'cyber1', 'traffic not moved without an operator');
  t.equal((await rig.admin('POST', '/routes/visa/failover')).status, 200);
  t.equal(route(rig, 'visa').active, 'serpong');
  t.equal((await request(`${rig.gateway.proxyUrl}/x`, undefined)).site, 'serpong');
});
