#!/usr/bin/env node
// How a primary's death costs clients, for each way buildings die: killed
// (listener closed, connections reset), answering 503 to everything, and hanging
// (accepting, never answering). A steady GET load runs through detour; we count
// failed requests and compare the worst latency with the detection time
// (fall x (interval + timeout)) and with the 2 s upstream timeout that a gateway
// without re-sending would make clients wait out. Loopback only, bounded.
//
//   npm run build && node bench/failover.mjs [--rate 200] [--seconds 4]
import http from 'node:http';
import { parseArgs } from 'node:util';
import { startGateway } from '../dist/gateway.js';
import { parsePolicy } from '../dist/config/parse-policy.js';

const { values } = parseArgs({ options: { rate: { type: 'string', default: '200' }, seconds: { type: 'string', default: '4' } } });
const rate = Number(values.rate);
const seconds = Number(values.seconds);
const probe = { intervalMs: 200, timeoutMs: 200, fall: 2 };
const detectionMs = probe.fall * (probe.intervalMs + probe.timeoutMs);
const responseTimeoutMs = 2000;

function site(name) {
  let mode = 'ok';
  const sockets = new Set();
  const server = http.createServer((req, res) => {
    req.resume();
    if (mode === 'hang') return;
    if (mode === '503') { res.writeHead(503).end(); return; }
    res.writeHead(200, { 'content-type': 'text/plain' }).end(name);
  });
  server.on('connection', (s) => { sockets.add(s); s.on('close', () => sockets.delete(s)); });
  return {
    set(m) { mode = m; },
    async listen() { await new Promise((r) => server.listen(0, '127.0.0.1', r)); return `http://127.0.0.1:${server.address().port}`; },
    kill() { server.close(); for (const s of sockets) s.destroy(); },
    close() { server.close(); for (const s of sockets) s.destroy(); },
  };
}

async function scenario(name, breakPrimary) {
  const primary = site('primary');
  const backup = site('backup');
  const parsed = parsePolicy(`
listen: { host: 127.0.0.1, port: 0 }
admin: { host: 127.0.0.1, port: 0 }
sites:
  primary: { url: "${await primary.listen()}", building: a, timeouts: { connect: 500ms, response: ${responseTimeoutMs}ms },
             health: { interval: ${probe.intervalMs}ms, timeout: ${probe.timeoutMs}ms, fall: ${probe.fall}, jitter: 0 } }
  backup:  { url: "${await backup.listen()}", building: b, timeouts: { connect: 500ms, response: ${responseTimeoutMs}ms },
             health: { interval: ${probe.intervalMs}ms, timeout: ${probe.timeoutMs}ms, fall: ${probe.fall}, jitter: 0 } }
routes:
  - { name: api, sites: [primary, backup] }
`, 'bench.yaml', {});
  if (!parsed.ok) throw new Error(JSON.stringify(parsed.errors));
  const gateway = await startGateway({ policy: parsed.policy });
  const agent = new http.Agent({ keepAlive: true, maxSockets: 512 });
  const results = [];
  const inflight = new Set();
  const one = () => {
    const started = Date.now();
    const p = new Promise((resolve) => {
      const req = http.get(`${gateway.proxyUrl}/x`, { agent }, (res) => {
        res.resume();
        res.on('end', () => { results.push({ started, ms: Date.now() - started, ok: res.statusCode === 200 }); resolve(); });
      });
      req.setTimeout(10_000, () => req.destroy());
      req.on('error', () => { results.push({ started, ms: Date.now() - started, ok: false }); resolve(); });
    });
    inflight.add(p);
    p.then(() => inflight.delete(p));
  };
  // Open loop at a fixed rate, as a real client population would send.
  const total = rate * seconds;
  const brokeAtIndex = Math.floor(total / 4);
  let brokeAt = 0;
  for (let i = 0; i < total; i++) {
    if (i === brokeAtIndex) { brokeAt = Date.now(); breakPrimary(primary); }
    one();
    await new Promise((r) => setTimeout(r, 1000 / rate));
  }
  await Promise.all(inflight);
  await gateway.close();
  agent.destroy();
  primary.close();
  backup.close();
  const after = results.filter((r) => r.started >= brokeAt - 100);
  const worst = Math.max(...after.map((r) => r.ms));
  const slow = after.filter((r) => r.ms >= responseTimeoutMs).length;
  return { name, sent: results.length, failed: results.filter((r) => !r.ok).length, worst, slow };
}

const rows = [];
rows.push(await scenario('killed', (p) => p.kill()));
rows.push(await scenario('503 everything', (p) => p.set('503')));
rows.push(await scenario('hangs', (p) => p.set('hang')));
console.log(`open loop ${rate} req/s for ${seconds}s per scenario; probes every ${probe.intervalMs}ms, timeout ${probe.timeoutMs}ms, fall ${probe.fall}`);
console.log(`detection time ${detectionMs} ms; upstream response timeout ${responseTimeoutMs} ms`);
console.log('scenario         sent  failed  waited>=timeout  worst ms  worst/detection  worst/timeout');
for (const r of rows) {
  console.log(`${r.name.padEnd(15)} ${String(r.sent).padStart(5)} ${String(r.failed).padStart(7)} ${String(r.slow).padStart(16)} ${String(r.worst).padStart(9)} ${(r.worst / detectionMs).toFixed(2).padStart(16)} ${(r.worst / responseTimeoutMs).toFixed(2).padStart(14)}`);
}
