// The console's pure half (src/admin/console/model.js, the same file the
// browser loads): status in words, buildings, drains, audit, replicas,
// refusals and the traffic rates the page draws.
import t from 'tap';
import type { GatewayEvent, RouteStatus, SiteStatus } from '../../src/admin/admin-control.js';
import {
  auditTrail, chartPoints, createTrafficHistory, describeAuditEntry, describeFields, describeReplicas, describeRoute, describeSite, describeStore,
  drainedSince, formatAge, formatClock, formatErrorShare, formatRate, groupBuildings, newestFirst, rampPercent, refusalText,
  routeActions, routeNotes,
} from '../../src/admin/console/model.js';

const since = '2026-01-01T00:00:00.000Z';

/** A route status; the cast lets newer optional fields (passiveIgnored) in without breaking older types. */
function route(over: Partial<RouteStatus> & { passiveIgnored?: string | null }): RouteStatus {
  return {
    name: 'ceir', priority: 1, sites: ['cyber1', 'serpong'], state: 'preferred', active: 'cyber1',
    weights: [{ site: 'cyber1', weight: 100 }], reason: 'serving from cyber1', since,
    pendingFailover: null, pendingFailback: false, blocked: null, pinnedTo: null, passiveIgnored: null, integrity: null, ...over,
  } as RouteStatus;
}

function site(over: Partial<SiteStatus>): SiteStatus {
  return { name: 'cyber1', building: 'gedung-cyber-1', url: 'http://127.0.0.1:1', health: 'up', reason: '', since, drained: false, drainedBy: [], ...over };
}

function event(type: GatewayEvent['type'], message: string, over: Partial<GatewayEvent> = {}): GatewayEvent {
  return { time: since, type, message, ...over };
}

t.test('route states in words, with a tone and a symbol', async (t) => {
  const cases: Array<{ r: Partial<RouteStatus>; words: string; tone: string }> = [
    { r: { state: 'preferred' }, words: 'on preferred site', tone: 'ok' },
    { r: { state: 'failed-over', active: 'serpong' }, words: 'failed over', tone: 'warn' },
    { r: { state: 'pending-failover' }, words: 'failover awaiting approval', tone: 'act' },
    { r: { state: 'holding-down' }, words: 'holding down before failback', tone: 'warn' },
    { r: { state: 'verifying' }, words: 'verifying', tone: 'warn' },
    { r: { state: 'blocked' }, words: 'failback blocked', tone: 'act' },
    { r: { state: 'awaiting-approval' }, words: 'awaiting approval', tone: 'act' },
    { r: { state: 'ramping', active: 'serpong', weights: [{ site: 'cyber1', weight: 50 }, { site: 'serpong', weight: 50 }] }, words: 'ramping 50%', tone: 'warn' },
    { r: { state: 'ramping', active: 'serpong', weights: [{ site: 'serpong', weight: 100 }] }, words: 'ramping', tone: 'warn' },
    { r: { state: 'pinned', pinnedTo: 'serpong' }, words: 'pinned to serpong', tone: 'warn' },
    { r: { state: 'pinned' }, words: 'pinned', tone: 'warn' },
    { r: { state: 'unavailable', active: null, weights: [] }, words: 'unavailable: no site can serve', tone: 'bad' },
    { r: { state: 'brand-new-state' as RouteStatus['state'] }, words: 'brand new state', tone: 'info' },
  ];
  for (const c of cases) {
    const d = describeRoute(route({ ...c.r, reason: 'why' }));
    t.same({ words: d.words, tone: d.tone, detail: d.detail }, { words: c.words, tone: c.tone, detail: 'why' }, c.r.state!);
    t.type(d.symbol, 'string');
    t.not(d.symbol, '', 'every tone has a symbol beside its colour');
  }
  t.equal(describeRoute({ ...route({}), reason: undefined as unknown as string }).detail, '', 'no reason, no detail');
});

t.test('ramp percent is what the sites other than the one being left get', async (t) => {
  t.equal(rampPercent({ active: 'serpong', weights: [{ site: 'cyber1', weight: 25 }, { site: 'serpong', weight: 75 }] }), 25);
  t.equal(rampPercent({ active: 'a', weights: [{ site: 'a', weight: 33.4 }, { site: 'b', weight: 33.3 }, { site: 'c', weight: 33.3 }] }), 67);
  t.equal(rampPercent({ active: 'serpong', weights: [{ site: 'serpong', weight: 100 }] }), undefined);
  t.equal(rampPercent({ active: null, weights: [{ site: 'a', weight: 50 }, { site: 'b', weight: 50 }] }), undefined);
  t.equal(rampPercent({ active: 'a', weights: undefined as unknown as [] }), undefined);
});

t.test('route notes say what a route waits for', async (t) => {
  t.same(routeNotes(route({})), []);
  t.same(routeNotes(route({
    pendingFailover: { from: 'cyber1', to: 'serpong', since },
    blocked: { code: 'approval', message: 'manual failback' },
    integrity: { ok: true, detail: 'checksum a1f3 (cyber1) == a1f3 (serpong)', since },
    pinnedTo: 'serpong',
  })), [
    'failover cyber1 → serpong waits for an operator\'s approval',
    'failback waits for an operator\'s approval',
    'integrity matches: checksum a1f3 (cyber1) == a1f3 (serpong)',
    'pinned to serpong until unpinned',
  ]);
  t.same(routeNotes(route({
    blocked: { code: 'integrity', message: 'integrity mismatch: checksum a1f3 (cyber1) != 9c2e (serpong)' },
    integrity: { ok: false, detail: 'checksum a1f3 (cyber1) != 9c2e (serpong)', since },
  })), [
    'failback blocked (integrity): integrity mismatch: checksum a1f3 (cyber1) != 9c2e (serpong)',
    'integrity check failing: checksum a1f3 (cyber1) != 9c2e (serpong)',
  ], 'a reason that says something else');
  t.same(routeNotes(route({
    reason: 'integrity mismatch: checksum a1f3 (cyber1) != 9c2e (serpong)',
    blocked: { code: 'integrity', message: 'integrity mismatch: checksum a1f3 (cyber1) != 9c2e (serpong)' },
    integrity: { ok: false, detail: 'checksum a1f3 (cyber1) != 9c2e (serpong)', since },
  })), ['failback blocked by the integrity gate'], 'what the reason says is not repeated');
  t.same(routeNotes({ ...route({ integrity: { ok: true, detail: 'same', since } }), reason: undefined as unknown as string }), ['integrity matches: same']);
  t.same(routeNotes(route({ passiveIgnored: 'cyber1' })),
    ['still served from cyber1 although live traffic marked it down: it is the route\'s last site'], 'passive evidence alone never takes the last site');
});

t.test('route actions offered per state', async (t) => {
  const cases: Array<{ r: Partial<RouteStatus>; want: ReturnType<typeof routeActions> }> = [
    { r: { state: 'preferred' }, want: { pin: true, unpin: false, approveFailback: false, forceFailback: false, approveFailover: false } },
    { r: { state: 'failed-over' }, want: { pin: true, unpin: false, approveFailback: false, forceFailback: false, approveFailover: false } },
    { r: { state: 'awaiting-approval', pendingFailback: true }, want: { pin: true, unpin: false, approveFailback: true, forceFailback: true, approveFailover: false } },
    { r: { state: 'blocked' }, want: { pin: true, unpin: false, approveFailback: true, forceFailback: true, approveFailover: false } },
    { r: { state: 'failed-over', pendingFailback: true }, want: { pin: true, unpin: false, approveFailback: true, forceFailback: true, approveFailover: false } },
    { r: { state: 'pending-failover', pendingFailover: { from: 'a', to: 'b', since } }, want: { pin: true, unpin: false, approveFailback: false, forceFailback: false, approveFailover: true } },
    { r: { state: 'pinned', pinnedTo: 'serpong' }, want: { pin: true, unpin: true, approveFailback: false, forceFailback: false, approveFailover: false } },
  ];
  for (const c of cases) t.same(routeActions(route(c.r)), c.want, `${c.r.state}${c.r.pendingFailback ? ' pending failback' : ''}`);
});

t.test('site health in words', async (t) => {
  t.match(describeSite({ health: 'up' }), { words: 'up', tone: 'ok', symbol: '✓' });
  t.match(describeSite({ health: 'down' }), { words: 'down', tone: 'bad', symbol: '✕' });
  t.match(describeSite({ health: 'unknown' }), { words: 'not probed yet', tone: 'info' });
  t.match(describeSite({ health: 'sideways' as SiteStatus['health'] }), { words: 'sideways', tone: 'info' });
});

t.test('buildings group their sites, dark when every site is down', async (t) => {
  const sites = [
    site({ name: 'cyber1', building: 'gedung-cyber-1', health: 'down' }),
    site({ name: 'serpong-a', building: 'serpong-dc', health: 'up' }),
    site({ name: 'cyber2', building: 'gedung-cyber-1', health: 'down' }),
    site({ name: 'serpong-b', building: 'serpong-dc', health: 'down' }),
    site({ name: 'dr', building: 'surabaya', health: 'unknown' }),
    site({ name: 'solo', building: 'solo-dc', health: 'up', drained: true, drainedBy: ['building'] }),
    site({ name: 'solo2', building: 'solo2-dc', health: 'down', drained: true, drainedBy: ['site', 'building'] }),
    site({ name: 'half', building: 'half-dc', health: 'up', drained: true, drainedBy: ['site'] }),
  ];
  const got = groupBuildings(sites).map((b) => ({ name: b.name, sites: b.sites.map((s) => s.name), words: b.words, tone: b.tone, drained: b.drained }));
  t.same(got, [
    { name: 'gedung-cyber-1', sites: ['cyber1', 'cyber2'], words: 'dark: all 2 sites down', tone: 'bad', drained: false },
    { name: 'serpong-dc', sites: ['serpong-a', 'serpong-b'], words: 'partly down: 1 of 2 sites down', tone: 'warn', drained: false },
    { name: 'surabaya', sites: ['dr'], words: 'not probed yet', tone: 'info', drained: false },
    { name: 'solo-dc', sites: ['solo'], words: 'drained; up', tone: 'warn', drained: true },
    { name: 'solo2-dc', sites: ['solo2'], words: 'drained; dark: its site is down', tone: 'bad', drained: true },
    { name: 'half-dc', sites: ['half'], words: 'up', tone: 'ok', drained: false },
  ]);
  t.same(groupBuildings([]), []);
  t.equal(groupBuildings([{ ...site({}), drainedBy: undefined as unknown as [] }])[0]!.drained, false, 'a site without drainedBy is not drained');
});

t.test('drained since: the newest drain event for that target, unless undrained after it', async (t) => {
  const events = [
    event('drained', 'building gedung-cyber-1 drained: no new requests will reach it', { time: '2026-01-01T00:00:01.000Z', reason: 'building' }),
    event('drained', 'site serpong drained: no new requests will reach it', { time: '2026-01-01T00:00:02.000Z', site: 'serpong', reason: 'site' }),
    event('siteDown', 'site serpong down', { time: '2026-01-01T00:00:03.000Z', site: 'serpong' }),
    event('undrained', 'site serpong undrained', { time: '2026-01-01T00:00:04.000Z', site: 'serpong', reason: 'site' }),
    event('drained', 'site dr drained: no new requests will reach it', { time: '2026-01-01T00:00:05.000Z', reason: 'site' }),
    event('drained', 'building gedung-cyber-10 drained: no new requests will reach it', { time: '2026-01-01T00:00:06.000Z', reason: 'building' }),
  ];
  t.equal(drainedSince('building', 'gedung-cyber-1', events), '2026-01-01T00:00:01.000Z', 'not confused by gedung-cyber-10');
  t.equal(drainedSince('site', 'serpong', events), undefined, 'undrained since');
  t.equal(drainedSince('site', 'dr', events), '2026-01-01T00:00:05.000Z', 'found by the message when the event has no site');
  t.equal(drainedSince('site', 'gedung-cyber-1', events), undefined, 'a building drain is not a site drain');
  t.equal(drainedSince('building', 'policy-drained', events), undefined, 'a drain from the policy file has no event');
  t.equal(drainedSince('site', 'x', [{ ...event('drained', ''), message: undefined as unknown as string }]), undefined);
});

t.test('newest first, bounded', async (t) => {
  t.same(newestFirst([1, 2, 3, 4], 3), [4, 3, 2]);
  t.same(newestFirst([1, 2]), [2, 1]);
  t.same(newestFirst([]), []);
});

t.test('audit trail: the gateway\'s own list when it has one, else operator events', async (t) => {
  const events = [
    event('siteDown', 'site cyber1 down', { time: 't1' }),
    event('drained', 'building gedung-cyber-1 drained', { time: 't2' }),
    event('failedOver', 'route ceir moved', { time: 't3' }),
    event('failbackForced', 'route ceir failback to cyber1 FORCED by an operator', { time: 't4' }),
    event('policyReloaded', 'policy reloaded from x.yaml', { time: 't5' }),
  ];
  t.same(auditTrail({ events }), [
    { time: 't5', text: 'policyReloaded: policy reloaded from x.yaml' },
    { time: 't4', text: 'failbackForced: route ceir failback to cyber1 FORCED by an operator' },
    { time: 't2', text: 'drained: building gedung-cyber-1 drained' },
  ]);
  t.same(auditTrail({ events }, 1), [{ time: 't5', text: 'policyReloaded: policy reloaded from x.yaml' }]);
  t.same(auditTrail({}), []);
  const audit = [
    { time: 'a1', action: 'drain', target: 'building gedung-cyber-1', status: 200, remote: '127.0.0.1' },
    { time: 'a2', action: 'failback', route: 'ceir', force: true, status: 409, detail: { why: 'no failback pending' } },
    { action: 'reload', status: 422 },
  ];
  t.same(auditTrail({ events, audit }), [
    { time: '', text: 'action: reload, status: 422' },
    { time: 'a2', text: 'action: failback, route: ceir, force: true, status: 409, detail: {"why":"no failback pending"}' },
    { time: 'a1', text: 'action: drain, target: building gedung-cyber-1, status: 200, remote: 127.0.0.1' },
  ]);
});

t.test('audit entries of the admin server in words', async (t) => {
  const entry = { time: 't', source: '127.0.0.1', action: 'drain', target: 'building gedung-cyber-1', result: 'ok', status: 200, message: 'building gedung-cyber-1 drained' };
  t.equal(describeAuditEntry(entry), 'drain building gedung-cyber-1: ok (200) building gedung-cyber-1 drained, from 127.0.0.1');
  t.equal(describeAuditEntry({ action: 'reload', result: 'refused', target: '', message: '', source: '' }), 'reload: refused');
  t.equal(describeAuditEntry({ action: 'pin', status: 403 }), 'action: pin, status: 403', 'without a result: as fields');
  t.equal(describeAuditEntry(null), 'null');
  t.same(auditTrail({ audit: [entry] }), [{ time: 't', text: 'drain building gedung-cyber-1: ok (200) building gedung-cyber-1 drained, from 127.0.0.1' }]);
});

t.test('describeFields of unknown shapes', async (t) => {
  t.equal(describeFields({ id: 'r1', heartbeat: 't', epoch: 3, extra: null }), 'id: r1, heartbeat: t, epoch: 3, extra: null');
  t.equal(describeFields('plain'), 'plain');
  t.equal(describeFields(null), 'null');
});

t.test('replicas and the leader appear only when /status has them', async (t) => {
  t.same(describeReplicas({}), []);
  t.same(describeReplicas({ replica: 'r1', leader: null }), ['this replica: r1', 'leader: none (no replica holds the lease)']);
  t.same(describeReplicas({
    replica: 'r1', leader: 'r2',
    replicas: [{ id: 'r1', heartbeat: 'h1', epoch: 4 }, { id: 'r2', heartbeat: 'h2', epoch: 4 }],
  }), ['this replica: r1', 'leader: r2', 'replica id: r1, heartbeat: h1, epoch: 4', 'replica id: r2, heartbeat: h2, epoch: 4 (leader)']);
  t.same(describeReplicas({ replicas: { r1: { epoch: 1 }, r2: 'odd' } }), ['replica id: r1, epoch: 1', 'replica id: r2, value: odd']);
  t.same(describeReplicas({ replicas: 'nonsense' }), []);
});

t.test('state store in words', async (t) => {
  t.same(describeStore({ kind: 'memory', up: true }), { words: 'memory: this replica only', tone: 'ok' });
  t.same(describeStore({ kind: 'redis', up: true }), { words: 'redis: up', tone: 'ok' });
  t.same(describeStore({ kind: 'redis', up: false }), { words: 'redis: DOWN, routing on the last known state and own probes', tone: 'bad' });
  t.same(describeStore(undefined), { words: 'unknown', tone: 'info' });
});

t.test('ages and clocks', async (t) => {
  const base = Date.parse(since);
  const cases: Array<[number, string]> = [
    [0, '0s ago'], [-5000, '0s ago'], [59_999, '59s ago'], [60_000, '1m 0s ago'], [3_599_000, '59m 59s ago'],
    [3_600_000, '1h 0m ago'], [47 * 3_600_000 + 60_000, '47h 1m ago'], [72 * 3_600_000, '3d ago'],
  ];
  for (const [ms, want] of cases) t.equal(formatAge(since, base + ms), want, want);
  t.equal(formatAge('not a time', base), '');
  t.match(formatClock(since), /^\d\d:\d\d:\d\d$/);
  t.equal(formatClock('garbage'), 'garbage');
});

t.test('refusals read as the API words them', async (t) => {
  const cases: Array<{ status: number; body: string; want: string }> = [
    { status: 401, body: '{"error":"missing or malformed Authorization header; expected \\"Bearer <token>\\"","code":"unauthorized"}', want: '401 unauthorized: missing or malformed Authorization header; expected "Bearer <token>"' },
    { status: 403, body: '{"error":"invalid admin token","code":"forbidden"}', want: '403 forbidden: invalid admin token' },
    { status: 404, body: '{"error":"unknown route nope","code":"not_found"}', want: '404 not found: unknown route nope' },
    { status: 409, body: '{"error":"route ceir has no failback pending (preferred: serving from cyber1)","code":"conflict"}', want: '409 conflict: route ceir has no failback pending (preferred: serving from cyber1)' },
    { status: 422, body: '{"ok":false,"error":"policy has 1 problem(s); keeping the last good policy","lines":["x.yaml:3:1 routes: bad"]}', want: '422 invalid policy: policy has 1 problem(s); keeping the last good policy\nx.yaml:3:1 routes: bad' },
    { status: 429, body: '{"message":"slow down"}', want: '429 too many requests: slow down' },
    { status: 418, body: '{}', want: '418' },
    { status: 500, body: 'plain words', want: '500 internal error: plain words' },
    { status: 502, body: '', want: '502 bad gateway' },
    { status: 400, body: 'null', want: '400 bad request' },
  ];
  for (const c of cases) t.equal(refusalText(c.status, c.body), c.want, `${c.status}`);
  t.equal(refusalText(503, undefined as unknown as string), '503 unavailable', 'no body at all');
  t.equal(refusalText(500, 'x'.repeat(1000)).length, '500 internal error: '.length + 300, 'a long plain body is cut');
});

t.test('traffic history: rates between samples, counter resets, a bounded window', async (t) => {
  const h = createTrafficHistory(10_000);
  t.equal(h.windowMs, 10_000);
  t.same(h.routes(), []);
  t.same(h.series('ceir'), [], 'one sample makes no rate');
  const snap = (timeMs: number, routes: Array<[string, number, number]>) => ({ timeMs, routes: routes.map(([route, requests, errors]) => ({ route, requests, errors })) });
  t.ok(h.add(snap(0, [['ceir', 100, 0]])));
  t.ok(h.add(snap(2000, [['ceir', 120, 2], ['visa', 10, 0]])));
  t.notOk(h.add(snap(2000, [['ceir', 999, 0]])), 'a sample not newer than the last is ignored');
  t.notOk(h.add(snap(1000, [['ceir', 999, 0]])));
  t.ok(h.add(snap(4000, [['ceir', 6, 1], ['visa', 20, 10]])), 'the gateway restarted: counters start again');
  t.same(h.routes(), ['ceir', 'visa']);
  t.same(h.series('ceir'), [
    { timeMs: 2000, requestsPerSecond: 10, errorsPerSecond: 1 },
    { timeMs: 4000, requestsPerSecond: 3, errorsPerSecond: 0.5 },
  ]);
  t.same(h.series('visa'), [
    { timeMs: 2000, requestsPerSecond: 5, errorsPerSecond: 0 },
    { timeMs: 4000, requestsPerSecond: 5, errorsPerSecond: 5 },
  ], 'a route appearing later starts from zero');
  t.same(h.series('gone'), [{ timeMs: 2000, requestsPerSecond: 0, errorsPerSecond: 0 }, { timeMs: 4000, requestsPerSecond: 0, errorsPerSecond: 0 }]);
  for (let i = 3; i <= 20; i++) h.add(snap(i * 2000, [['ceir', 6 + i, 1]]));
  const series = h.series('ceir');
  t.ok(series.length <= 6, `only the window is kept (${series.length} rates)`);
  t.ok(series[0]!.timeMs >= 40_000 - 10_000, 'the oldest rate is within the window');
  t.same(createTrafficHistory().windowMs, 300_000, 'five minutes by default');
});

t.test('rates and error shares in words', async (t) => {
  t.equal(formatRate(0), '0 req/s');
  t.equal(formatRate(0.25), '0.3 req/s');
  t.equal(formatRate(9.94), '9.9 req/s');
  t.equal(formatRate(12.5), '13 req/s');
  t.equal(formatRate(2, '5xx/s'), '2 5xx/s');
  t.equal(formatErrorShare({ timeMs: 0, requestsPerSecond: 0, errorsPerSecond: 0 }), 'no requests');
  t.equal(formatErrorShare({ timeMs: 0, requestsPerSecond: 0, errorsPerSecond: 1 }), 'errors without requests');
  t.equal(formatErrorShare({ timeMs: 0, requestsPerSecond: 80, errorsPerSecond: 1 }), '1.3% errors');
  t.equal(formatErrorShare({ timeMs: 0, requestsPerSecond: 10, errorsPerSecond: 5 }), '50% errors');
});

t.test('chart points: time on x over the window, value on y from the bottom', async (t) => {
  const points = [
    { timeMs: 5000, requestsPerSecond: 10, errorsPerSecond: 0 },
    { timeMs: 7500, requestsPerSecond: 5, errorsPerSecond: 2.5 },
    { timeMs: 10_000, requestsPerSecond: 20, errorsPerSecond: 0 },
    { timeMs: -5000, requestsPerSecond: 0, errorsPerSecond: 0 },
  ];
  const opts = { width: 100, height: 50, endMs: 10_000, windowMs: 10_000, maxValue: 10 };
  t.equal(chartPoints(points, 'requestsPerSecond', opts), '50,0 75,25 100,0 0,50', 'clamped to the box');
  t.equal(chartPoints(points, 'errorsPerSecond', opts), '50,50 75,37.5 100,50 0,50');
  t.equal(chartPoints(points.slice(0, 1), 'requestsPerSecond', { ...opts, maxValue: 0 }), '50,0', 'a zero maximum does not divide by zero');
  t.equal(chartPoints([], 'requestsPerSecond', opts), '');
});
