// Long-lived connections to a site that should no longer get traffic: open
// WebSockets are cut (both sides) when the site is declared down or stops
// being eligible, and connection pools of sites removed by a reload are let go
// without cutting off the requests still running on them.
import t from 'tap';
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { testPolicy } from '../helpers/policy.js';
import { once, waitFor } from '../helpers/wait.js';
import { openWs, startWsSite } from '../helpers/websocket.js';
import { request, startHarness, type Cleanup } from './fixtures/proxy-harness.js';

async function echo(socket: Socket, text: string): Promise<string> {
  socket.write(text);
  const [data] = (await once(socket, 'data')) as [Buffer];
  return data.toString();
}

const closed = (socket: Socket): Promise<unknown> =>
  socket.closed ? Promise.resolve() : once(socket, 'close');

async function setupWs(t: Cleanup) {
  const a = await startWsSite(t, 'a');
  const b = await startWsSite(t, 'b');
  const policy = testPolicy({ sites: [{ name: 'a', url: a.url }, { name: 'b', url: b.url }], routes: [{ name: 'live', sites: ['a', 'b'] }] });
  const h = await startHarness(policy);
  t.teardown(() => h.close());
  const toA = [await openWs(t, `${h.url}/live`), await openWs(t, `${h.url}/live`)];
  h.setDecisions({ live: { active: 'b', weights: [{ site: 'b', weight: 100 }] } });
  const toB = await openWs(t, `${h.url}/live`);
  return { a, b, h, toA, toB };
}

t.test('siteDown(): WebSockets to the downed site are cut on both sides, others keep flowing', async (t) => {
  const { a, b, h, toA, toB } = await setupWs(t);
  t.same(toA.map((c) => c.site), ['a', 'a']);
  t.equal(toB.site, 'b');
  t.equal(await echo(toA[0]!.socket, 'ping'), 'a:ping', 'frames flow before the cut');
  t.equal(a.open.size, 2);
  t.equal(h.forwarder.webSocketsTo('a'), 2);

  h.setDecisions({ live: { active: 'b', weights: [{ site: 'b', weight: 100 }], eligible: ['b'] } });
  h.forwarder.siteDown('a');
  await Promise.all(toA.map((c) => closed(c.socket)));
  await waitFor(() => a.open.size === 0, { message: 'site a sees its connections closed' });
  t.equal(h.forwarder.webSocketsTo('a'), 0);

  t.equal(await echo(toB.socket, 'still'), 'b:still', 'the WebSocket to b is untouched');
  t.equal(b.open.size, 1);
  const again = await openWs(t, `${h.url}/live`);
  t.equal(again.site, 'b', 'a reconnecting client lands on b');
  t.same(h.passive.failed, [], 'cutting the connections is not a passive failure');

  h.forwarder.siteDown('b-never-connected');
  t.equal(b.open.size, 2, 'siteDown of another site closes nothing');
});

t.test('retainSites(): WebSockets to sites no longer usable are cut, the rest stay', async (t) => {
  const { a, b, h, toA, toB } = await setupWs(t);
  const asked: string[] = [];
  h.forwarder.retainSites((site) => { asked.push(site); return site === 'a' || site === 'b'; });
  t.same(asked.sort(), ['a', 'b'], 'asked about the sites with WebSockets open, once each');
  t.equal(await echo(toA[1]!.socket, 'x'), 'a:x', 'both sites usable: nothing closed');
  t.equal(a.open.size, 2);

  // a drained: the control plane leaves it out of every route's eligible sites.
  h.forwarder.retainSites((site) => site === 'b');
  await Promise.all(toA.map((c) => closed(c.socket)));
  await waitFor(() => a.open.size === 0, { message: 'site a sees its connections closed' });
  t.equal(await echo(toB.socket, 'y'), 'b:y');
  t.equal(b.open.size, 1);
  t.same(h.passive.failed, []);

  h.forwarder.retainSites(() => false);
  await closed(toB.socket);
  await waitFor(() => b.open.size === 0, { message: 'site b sees its connection closed' });
});

interface PoolSite {
  readonly url: string;
  /** TCP connections the site has open from detour. */
  readonly connections: Set<Socket>;
  readonly opened: { count: number };
  /** Requests to /hold wait here until released. */
  readonly held: Array<() => void>;
}

async function startPoolSite(t: Cleanup): Promise<PoolSite> {
  const connections = new Set<Socket>();
  const opened = { count: 0 };
  const held: Array<() => void> = [];
  const server = http.createServer((req, res) => {
    if (req.url === '/hold') held.push(() => res.end('held-done'));
    else res.end('ok');
  });
  server.on('connection', (socket: Socket) => {
    opened.count++;
    connections.add(socket);
    socket.on('close', () => connections.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => {
    server.closeAllConnections();
    return new Promise<void>((resolve) => server.close(() => resolve()));
  });
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, connections, opened, held };
}

t.test('retainOrigins(): pools of removed sites drop idle connections, running requests finish', async (t) => {
  const a = await startPoolSite(t);
  const other = await startPoolSite(t);
  const policy = testPolicy({ sites: [{ name: 'a', url: a.url }], routes: [{ name: 'r', sites: ['a'] }] });
  const h = await startHarness(policy);
  t.teardown(() => h.close());

  // Two requests at once leave two idle pooled connections behind.
  const first = [request(h.url, '/hold'), request(h.url, '/hold')];
  await waitFor(() => a.held.length === 2, { message: 'two requests held at a' });
  for (const release of a.held.splice(0)) release();
  t.same((await Promise.all(first)).map((r) => r.text), ['held-done', 'held-done']);
  t.equal(a.connections.size, 2, 'two pooled connections');

  h.forwarder.retainOrigins([a.url, other.url]);
  t.equal((await request(h.url, '/')).text, 'ok');
  t.equal(a.opened.count, 2, 'a kept origin keeps its pool');

  // One pooled connection carries a running request, the other is idle.
  const running = request(h.url, '/hold');
  await waitFor(() => a.held.length === 1, { message: 'request held at a' });
  t.equal(a.opened.count, 2, 'the running request reuses a pooled connection');

  h.forwarder.retainOrigins([other.url]);
  await waitFor(() => a.connections.size === 1, { message: 'the idle connection closed' });
  a.held.shift()?.();
  const res = await running;
  t.equal(res.status, 200);
  t.equal(res.text, 'held-done', 'the running request finished normally');
  await waitFor(() => a.connections.size === 0, { message: 'its connection closed instead of pooled' });
  t.same(h.passive.failed, []);

  // Still routed there (the table is the test's): a new pool, a new connection.
  t.equal((await request(h.url, '/')).text, 'ok');
  t.equal(a.opened.count, 3);
});
