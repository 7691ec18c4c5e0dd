// The keep-alive pool of a plain-HTTP site hands idle connections out itself
// (src/proxy/upstream-agents.ts, ReusingAgent) instead of through Node's
// generic Agent.addRequest. These pin down that it behaves as Node's would:
// the most recent idle connection is reused, a burst opens connections and
// then reuses them, a connection destroyed while idle is never handed out,
// and a request's own timeout still applies to the connection it gets.
import t from 'tap';
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { UpstreamAgents } from '../../src/proxy/upstream-agents.js';

interface Site { url: string; connections: Socket[]; close(): Promise<void> }

async function startSite(t: { teardown(fn: () => unknown): void }): Promise<Site> {
  const connections: Socket[] = [];
  const server = http.createServer((req, res) => {
    req.resume();
    // The connection's index, so the client can tell which one served it.
    req.on('end', () => res.end(String(connections.indexOf(req.socket))));
  });
  server.keepAliveTimeout = 60_000;
  server.on('connection', (s: Socket) => connections.push(s));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const close = (): Promise<void> => new Promise<void>((resolve) => {
    server.closeAllConnections();
    server.close(() => resolve());
  });
  t.teardown(close);
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, connections, close };
}

function get(agent: http.Agent, url: string, timeout?: number): Promise<{ body: string; reused: boolean; socketTimeout: number | undefined }> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { agent, ...(timeout !== undefined ? { timeout } : {}) }, (res) => {
      // While the request has it: once free again the pool sets its own idle timeout.
      const socketTimeout = (req.socket as Socket & { timeout?: number }).timeout;
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => { body += c; });
      res.on('end', () => resolve({ body, reused: req.reusedSocket, socketTimeout }));
    });
    req.on('error', reject);
  });
}

/** Resolves once `agent` has `n` idle connections to `url`'s origin. */
async function idle(agent: http.Agent, n: number): Promise<void> {
  for (let i = 0; i < 200; i++) {
    const free = Object.values(agent.freeSockets).reduce((sum, list) => sum + (list?.length ?? 0), 0);
    if (free === n) return;
    await new Promise((r) => setImmediate(r));
  }
  throw new Error(`the agent never had ${n} idle connections`);
}

/** A site, a pool to it, and one request done, so one idle connection waits in the pool. */
async function pooledOnce(t: { teardown(fn: () => unknown): void }): Promise<{ site: Site; agent: http.Agent }> {
  const site = await startSite(t);
  const agents = new UpstreamAgents();
  t.teardown(() => agents.close());
  const agent = agents.agentFor(site.url);
  await get(agent, site.url);
  await idle(agent, 1);
  return { site, agent };
}

t.test('sequential requests share one connection, marked reused', async (t) => {
  const site = await startSite(t);
  const agents = new UpstreamAgents();
  t.teardown(() => agents.close());
  const agent = agents.agentFor(site.url);
  const first = await get(agent, site.url);
  t.equal(first.reused, false);
  // Node's generic path is not taken for a pooled connection.
  const proto = http.Agent.prototype as unknown as { addRequest: (...args: unknown[]) => void };
  const nodes = proto.addRequest;
  let generic = 0;
  proto.addRequest = function (this: unknown, ...args: unknown[]) { generic++; return nodes.apply(this, args); };
  t.teardown(() => { proto.addRequest = nodes; });
  for (let i = 0; i < 5; i++) {
    await idle(agent, 1);
    const next = await get(agent, site.url);
    t.equal(next.body, '0', 'served on the first connection');
    t.equal(next.reused, true);
  }
  t.equal(site.connections.length, 1);
  t.equal(generic, 0, 'every reuse handled by the pool itself');
});

t.test('a burst opens connections, the next requests reuse them, most recent first', async (t) => {
  const site = await startSite(t);
  const agents = new UpstreamAgents();
  t.teardown(() => agents.close());
  const agent = agents.agentFor(site.url);
  const burst = await Promise.all([get(agent, site.url), get(agent, site.url), get(agent, site.url)]);
  t.same(burst.map((r) => r.body).sort(), ['0', '1', '2'], 'three connections for three concurrent requests');
  await idle(agent, 3);
  const freeNow = Object.values(agent.freeSockets)[0]!;
  const newest = site.connections.findIndex((s) => s.remotePort === freeNow.at(-1)!.localPort);
  const next = await get(agent, site.url);
  t.equal(next.body, String(newest), 'the most recently freed connection (lifo)');
  await idle(agent, 3);
  const again = await Promise.all([get(agent, site.url), get(agent, site.url), get(agent, site.url)]);
  t.ok(again.every((r) => r.reused), 'a second burst goes on the pooled connections');
  t.equal(site.connections.length, 3, 'no new connection opened');
});

t.test('a connection destroyed while idle is not handed out', async (t) => {
  const { site, agent } = await pooledOnce(t);
  // Destroyed, and its 'close' (which takes it out of the pool) not yet run.
  Object.values(agent.freeSockets)[0]![0]!.destroy();
  const next = await get(agent, site.url);
  t.equal(next.reused, false, 'a new connection');
  t.equal(next.body, '1');
});

t.test('a request timeout of its own is applied to the pooled connection it gets', async (t) => {
  const { site, agent } = await pooledOnce(t);
  const next = await get(agent, site.url, 12_345);
  t.equal(next.reused, true);
  t.equal(next.socketTimeout, 12_345);
  const plain = await get(agent, site.url);
  t.equal(plain.socketTimeout, 4000, 'without one, the pool\'s idle timeout stays (as Node does)');
});

t.test('fresh-connection pools are untouched: one connection per request', async (t) => {
  const site = await startSite(t);
  const agents = new UpstreamAgents();
  t.teardown(() => agents.close());
  const agent = agents.freshAgentFor(site.url);
  const a = await get(agent, site.url);
  const b = await get(agent, site.url);
  t.same([a.reused, b.reused], [false, false]);
  t.equal(site.connections.length, 2);
});
