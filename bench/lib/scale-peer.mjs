#!/usr/bin/env node
// The other side of bench/scale.mjs, in its own process so that only the
// gateway's own event loop is measured: the sites (hub, quiet and a pool the
// many sites share) and a client looping on the quiet route. Driven over IPC:
//   { cmd: 'client', proxyUrl }  start the quiet client (answers once it has had an answer)
//   { cmd: 'hub', status }       the hub answers every request (probes too) with that status
//   { cmd: 'reset' }             forget the slowest request so far
//   { cmd: 'read' }              answers { worstMs, failed, requests }
//   { cmd: 'stop' }              stop the client, close the sites, exit
// On start it sends { urls: { hub, quiet, pool: [..] } }. Loopback only.
import http from 'node:http';

async function fakeSite() {
  let status = 200;
  const server = http.createServer((req, res) => {
    req.resume();
    res.writeHead(status, { 'content-type': 'text/plain' }).end('ok');
  });
  server.keepAliveTimeout = 60_000;
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${server.address().port}`,
    set(s) { status = s; },
    close() { server.closeAllConnections(); return new Promise((r) => server.close(r)); },
  };
}

const hub = await fakeSite();
const quiet = await fakeSite();
const pool = [await fakeSite(), await fakeSite()];
let client;

function quietClient(proxyUrl) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  let running = true;
  let worstMs = 0;
  let failed = 0;
  let requests = 0;
  const loop = (async () => {
    while (running) {
      const started = performance.now();
      await new Promise((resolve) => {
        const req = http.get(`${proxyUrl}/x`, { agent, headers: { host: 'quiet.example' } }, (res) => {
          if (res.statusCode !== 200) failed++;
          res.resume();
          res.on('end', resolve);
        });
        req.setTimeout(10_000, () => req.destroy());
        req.on('error', () => { failed++; resolve(); });
      });
      requests++;
      worstMs = Math.max(worstMs, performance.now() - started);
      await new Promise((r) => setTimeout(r, 2));
    }
  })();
  return {
    reset() { worstMs = 0; },
    read: () => ({ worstMs, failed, requests }),
    async stop() { running = false; await loop; agent.destroy(); },
  };
}

process.on('message', async (m) => {
  if (m.cmd === 'client') {
    client = quietClient(m.proxyUrl);
    while (client.read().requests === 0) await new Promise((r) => setTimeout(r, 5));
    process.send({ started: true });
  } else if (m.cmd === 'hub') {
    hub.set(m.status);
    process.send({ ok: true });
  } else if (m.cmd === 'reset') {
    client?.reset();
    process.send({ ok: true });
  } else if (m.cmd === 'read') {
    process.send(client?.read() ?? { worstMs: 0, failed: 0, requests: 0 });
  } else if (m.cmd === 'stop') {
    await client?.stop();
    await Promise.all([hub.close(), quiet.close(), ...pool.map((p) => p.close())]);
    process.send({ ok: true }, () => process.exit(0));
  }
});
// The parent gone (killed, crashed): nothing of this may outlive it.
process.on('disconnect', () => process.exit(0));
process.send({ urls: { hub: hub.url, quiet: quiet.url, pool: pool.map((p) => p.url) } });
