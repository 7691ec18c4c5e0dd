// Webhooks, end to end: a local receiver gets exactly one JSON event per
// transition (failover, failback, block, drain, pin), and a slow receiver never
// holds up routing.
import t, { type Test } from 'tap';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { startRig } from '../helpers/gateway.js';
import { request } from '../helpers/load.js';
import { waitFor } from '../helpers/wait.js';

interface Received { type: string; route: string | null; from: string | null; to: string | null; reason: string | null; time: string; message: string }

async function startReceiver(t: Test, delayMs = 0) {
  const received: Received[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      received.push(JSON.parse(Buffer.concat(chunks).toString()) as Received);
      setTimeout(() => res.writeHead(204).end(), delayMs);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  t.teardown(() => new Promise<void>((r) => { server.closeAllConnections(); server.close(() => r()); }));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`, received };
}

t.test('one webhook event per transition', async (t) => {
  const receiver = await startReceiver(t);
  const rig = await startRig(t, [
    { name: 'cyber1', building: 'gedung-cyber-1' },
    { name: 'serpong', building: 'serpong-dc' },
  ], () => ({
    routes: [{ name: 'ceir', sites: ['cyber1', 'serpong'], failback: { holdDownMs: 100 } }],
    notify: { webhooks: [{ url: receiver.url, timeoutMs: 1000, retries: 2, headers: {} }] },
  }));
  const count = (type: string) => receiver.received.filter((e) => e.type === type).length;

  rig.sites.cyber1!.setAll('hang');
  await waitFor(() => count('failedOver') === 1, { timeoutMs: 5000, message: 'failover event' });
  const failover = receiver.received.find((e) => e.type === 'failedOver')!;
  t.match(failover, { route: 'ceir', from: 'cyber1', to: 'serpong', reason: 'site_down' });
  t.ok(!Number.isNaN(Date.parse(failover.time)), 'with a time');

  rig.sites.cyber1!.setAll('ok');
  await waitFor(() => count('failedBack') === 1, { timeoutMs: 5000, message: 'failback event' });
  t.match(receiver.received.find((e) => e.type === 'failedBack'), { route: 'ceir', from: 'serpong', to: 'cyber1', reason: 'failback' });

  t.equal((await rig.admin('POST', '/drain', { building: 'gedung-cyber-1' })).status, 200);
  await waitFor(() => count('drained') === 1 && count('failedOver') === 2, { timeoutMs: 3000, message: 'drain events' });
  t.match(receiver.received.filter((e) => e.type === 'failedOver')[1], { from: 'cyber1', to: 'serpong', reason: 'drain' });
  t.equal((await rig.admin('POST', '/routes/ceir/pin', { site: 'serpong' })).status, 200);
  await waitFor(() => count('pinned') === 1, { timeoutMs: 3000, message: 'pin event' });

  // Let anything late arrive, then count: exactly one of each.
  await rig.gateway.close();
  const settled = receiver.received.length;
  await waitFor(async () => { await new Promise((r) => setTimeout(r, 100)); return receiver.received.length === settled; }, { timeoutMs: 2000 });
  t.same(
    receiver.received.map((e) => e.type),
    // ramp [100]: failback is one step, so no separate failbackStarted.
    ['failedOver', 'failedBack', 'drained', 'failedOver', 'pinned'],
    'exactly one event per transition, in order',
  );
});

t.test('a slow webhook receiver never holds up routing', async (t) => {
  const receiver = await startReceiver(t, 3000);
  const rig = await startRig(t, [{ name: 'cyber1' }, { name: 'serpong' }], () => ({
    routes: [{ name: 'ceir', sites: ['cyber1', 'serpong'] }],
    notify: { webhooks: [{ url: receiver.url, timeoutMs: 5000, retries: 0, headers: {} }] },
  }));
  for (let i = 0; i < 5; i++) {
    const started = Date.now();
    t.equal((await rig.admin('POST', '/routes/ceir/pin', { site: i % 2 ? 'cyber1' : 'serpong' })).status, 200);
    t.ok(Date.now() - started < 500, 'admin call answered without waiting for the webhook');
    const res = await request(`${rig.gateway.proxyUrl}/x`, undefined);
    t.equal(res.site, i % 2 ? 'cyber1' : 'serpong');
  }
});

t.test('names that are also object properties: unpinning a never-pinned route named constructor changes nothing', async (t) => {
  const receiver = await startReceiver(t);
  // `fakes` is a plain object keyed by name in the rig; the names here are only in the policy.
  const rig = await startRig(t, [{ name: 'cyber1' }, { name: 'serpong' }], (urls) => ({
    sites: [
      { name: 'toString', url: urls.cyber1!, health: { intervalMs: 100, timeoutMs: 150, rise: 2, fall: 2, jitter: 0 } },
      { name: 'valueOf', url: urls.serpong!, health: { intervalMs: 100, timeoutMs: 150, rise: 2, fall: 2, jitter: 0 } },
    ],
    routes: [
      { name: 'constructor', sites: ['toString', 'valueOf'] },
      { name: 'hasOwnProperty', sites: ['valueOf', 'toString'] },
    ],
    notify: { webhooks: [{ url: receiver.url, timeoutMs: 1000, retries: 0, headers: {} }] },
  }));
  const eventsBefore = (await rig.admin('GET', '/status')).json.events.length;
  for (const route of ['constructor', 'hasOwnProperty']) {
    const res = await rig.admin('DELETE', `/routes/${route}/pin`);
    t.equal(res.status, 200, `${route}: answered`);
    t.match(res.json.message, `route ${route} was not pinned`, `${route}: not pinned`);
  }
  const status = (await rig.admin('GET', '/status')).json;
  t.equal(status.events.length, eventsBefore, 'no event recorded');
  t.same(status.routes.map((r: { pinnedTo: string | null }) => r.pinnedTo), [null, null]);

  // A real pin and unpin of the same route do notify: the receiver is listening.
  t.equal((await rig.admin('POST', '/routes/constructor/pin', { site: 'valueOf' })).status, 200);
  t.match((await rig.admin('DELETE', '/routes/constructor/pin')).json.message, 'route constructor unpinned');
  const pinEvents = () => receiver.received.filter((e) => e.type === 'pinned' || e.type === 'unpinned');
  await waitFor(() => pinEvents().length >= 2, { timeoutMs: 3000, message: 'pin and unpin webhooks' });
  t.same(pinEvents().map((e) => [e.type, e.route]), [['pinned', 'constructor'], ['unpinned', 'constructor']],
    'only the real pin and unpin were sent, never one for the never-pinned routes');
  await waitFor(() => rig.gateway.table().byName.get('constructor')!.active === 'toString', { timeoutMs: 5000, message: 'back on toString' });
  const res = await request(`${rig.gateway.proxyUrl}/x`, undefined);
  t.equal(res.site, 'toString', 'the route named constructor serves from its site named toString');
});
