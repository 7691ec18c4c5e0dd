#!/usr/bin/env node
// How far one gateway process goes, in the figures issue 8 asks for:
//   - probing: 1,000 sites probed every second, the gateway's CPU (% of one core); and the same with
//     every site refusing connections (a building down);
//   - route lookup: per-request cost at 10 and 10,000 routes (the lookup the forwarder uses);
//   - connections: RSS with 1,000 concurrent keep-alive client connections;
//   - restart: a reload that changes the probe settings of 1,000 sites (every loop restarts): how long
//     Prober.update holds the event loop, and how long until every site has its first new verdict.
// The gateway runs as a child (`node dist/cli.js start`), read from /proc.
// Loopback only, bounded.
//
//   npm run bench:capacity
//   node bench/capacity.mjs --only probes|probe-floor|probes-refused|lookup|connections|restart   # after npm run build
import http from 'node:http';
import { spawn } from 'node:child_process';
import net from 'node:net';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { freePort, httpGet, sleep, startGateway, waitFor } from './chaos/processes.mjs';
import { parsePolicy } from '../dist/config/parse-policy.js';
import { matchRoute } from '../dist/routing/match-route.js';
import { Prober } from '../dist/health/prober.js';
import { createMetrics } from '../dist/metrics/metrics.js';
import { silentLogger } from '../dist/logger.js';
import { Registry } from 'prom-client';

const { values } = parseArgs({ options: { only: { type: 'string', multiple: true }, json: { type: 'string', default: 'capacity-report.json' } } });
const wanted = (name) => !values.only || values.only.includes(name);
const TICKS = 100; // USER_HZ: /proc/PID/stat counts CPU time in 1/100 s on Linux

function cpuSplit(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return { user: Number(fields[11]) / TICKS, system: Number(fields[12]) / TICKS }; // utime, stime
}

function cpuSeconds(pid) {
  const { user, system } = cpuSplit(pid);
  return user + system;
}

function rssMb(pid) {
  const line = readFileSync(`/proc/${pid}/status`, 'utf8').split('\n').find((l) => l.startsWith('VmRSS:'));
  return Number(line.split(/\s+/)[1]) / 1024;
}

async function fakeServer() {
  const server = http.createServer((req, res) => { req.resume(); res.end('ok'); });
  server.keepAliveTimeout = 60_000;
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${server.address().port}`, close: () => { server.closeAllConnections(); return new Promise((r) => server.close(r)); } };
}

async function withGateway(policyFor, fn) {
  const dir = mkdtempSync(join(tmpdir(), 'detour-capacity-'));
  const servers = [await fakeServer(), await fakeServer()];
  const port = await freePort();
  const adminPort = await freePort();
  const file = join(dir, 'policy.yaml');
  writeFileSync(file, policyFor({ port, adminPort, urls: servers.map((s) => s.url) }));
  const gw = await startGateway({ file, adminUrl: `http://127.0.0.1:${adminPort}` });
  try {
    return await fn({ gw, proxyUrl: `http://127.0.0.1:${port}`, adminUrl: `http://127.0.0.1:${adminPort}` });
  } finally {
    await gw.stop();
    await Promise.all(servers.map((s) => s.close()));
    rmSync(dir, { recursive: true, force: true });
  }
}

async function allUp(adminUrl, sites, health = 'up') {
  await waitFor(async () => {
    const res = await httpGet(`${adminUrl}/status`, { timeoutMs: 10_000 }).catch(() => null);
    if (!res || res.status !== 200) return false;
    const status = res.json();
    const up = status.sites.filter((s) => s.health === health).length;
    if (process.env.DEBUG) console.log(`  ${up} of ${status.sites.length} ${health}: ${status.sites.find((s) => s.health !== health)?.reason}`);
    return up >= sites;
  }, 60_000, `${sites} sites ${health}`);
}

/** refused: every site's port has nothing listening (a building down: each probe is a refused connect). */
async function probes({ refused = false } = {}) {
  const SITES = 1000;
  const closedPort = refused ? await freePort() : 0;
  return withGateway(({ port, adminPort, urls }) => {
    const lines = [`listen: { host: 127.0.0.1, port: ${port} }`, `admin: { host: 127.0.0.1, port: ${adminPort} }`, 'sites:'];
    const siteUrl = (i) => (refused ? `http://127.0.0.1:${closedPort}` : urls[i % 2]);
    for (let i = 0; i < SITES; i++) lines.push(`  s${i}: { url: "${siteUrl(i)}/s${i}", building: b${i % 20}, health: { interval: 1s, timeout: 1s, jitter: 0 } }`);
    lines.push('routes:');
    for (let i = 0; i < SITES; i += 2) lines.push(`  - { name: r${i}, match: { host: r${i}.example }, sites: [s${i}, s${i + 1}] }`);
    return `${lines.join('\n')}\n`;
  }, async ({ gw, adminUrl }) => {
    await allUp(adminUrl, SITES, refused ? 'down' : 'up');
    await sleep(2000); // past the first round's decisions
    const seconds = 20;
    const c0 = cpuSplit(gw.pid);
    const t0 = performance.now();
    await sleep(seconds * 1000);
    const c1 = cpuSplit(gw.pid);
    const cpu = c1.user + c1.system - c0.user - c0.system;
    const wall = (performance.now() - t0) / 1000;
    return {
      sites: SITES, intervalS: 1, seconds: wall, cpuSeconds: cpu, percentOfOneCore: (100 * cpu) / wall,
      systemPercent: (100 * (c1.system - c0.system)) / wall, rssMb: rssMb(gw.pid),
    };
  });
}

/**
 * The floor under the probes row: a bare Node process doing only what a probe
 * must (a new TCP connection, one GET written, the answer read until close) for
 * 1,000 sites a second, with no HTTP parsing, health state, metrics or decisions.
 * Its CPU is what a new connection per probe costs on this machine whatever
 * detour does above it.
 */
async function probeFloor() {
  const server = await fakeServer();
  const { port } = new URL(server.url);
  const seconds = 20;
  const script = `
    const net = require('node:net');
    const request = Buffer.from('GET /s HTTP/1.1\\r\\nHost: 127.0.0.1\\r\\nConnection: close\\r\\n\\r\\n', 'latin1');
    const probe = () => { const s = net.connect(${port}, '127.0.0.1'); s.on('error', () => {}); s.once('connect', () => s.write(request)); s.on('data', () => {}); s.on('end', () => s.destroy()); };
    for (let i = 0; i < 1000; i++) setTimeout(function tick() { probe(); setTimeout(tick, 1000).unref(); }, i).unref();
    setTimeout(() => process.exit(0), ${(seconds + 4) * 1000});
    process.stdout.write('ready\\n');`;
  const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  try {
    await new Promise((resolve, reject) => { child.stdout.once('data', resolve); child.once('exit', reject); });
    await sleep(2000);
    const c0 = cpuSplit(child.pid);
    const t0 = performance.now();
    await sleep(seconds * 1000);
    const c1 = cpuSplit(child.pid);
    const wall = (performance.now() - t0) / 1000;
    const cpu = c1.user + c1.system - c0.user - c0.system;
    return { connectsPerSecond: 1000, seconds: wall, cpuSeconds: cpu, percentOfOneCore: (100 * cpu) / wall, systemPercent: (100 * (c1.system - c0.system)) / wall };
  } finally {
    child.kill();
    await server.close();
  }
}

function lookup() {
  const rows = [];
  for (const routes of [10, 10_000]) {
    const lines = ['listen: { host: 127.0.0.1, port: 0 }', 'admin: { host: 127.0.0.1, port: 0 }', 'sites:', '  a: { url: "http://127.0.0.1:1" }', 'routes:'];
    for (let i = 0; i < routes; i++) lines.push(`  - { name: r${i}, match: { host: r${i}.example, pathPrefix: /p${i % 7} }, sites: [a] }`);
    const parsed = parsePolicy(`${lines.join('\n')}\n`, 'capacity.yaml', {});
    if (!parsed.ok) throw new Error(JSON.stringify(parsed.errors.slice(0, 2)));
    const policy = parsed.policy;
    // The worst case for a scan: the last route; and a host no route has.
    const last = routes - 1;
    const cases = [[`r${last}.example`, `/p${last % 7}/x?q=1`], ['nobody.example', '/x']];
    // Batches of 1,000 lookups for about a second (a linear scan of 10,000 routes is slow).
    const batch = () => {
      let found = 0;
      for (let i = 0; i < 1000; i++) if (matchRoute(policy, cases[i % 2][0], cases[i % 2][1])) found++;
      if (found !== 500) throw new Error(`lookup found ${found} of 500`);
    };
    for (let i = 0; i < 5; i++) batch(); // warm up
    let n = 0;
    const t0 = process.hrtime.bigint();
    while (Number(process.hrtime.bigint() - t0) < 1e9) { batch(); n += 1000; }
    rows.push({ routes, lookups: n, nsPerLookup: Number(process.hrtime.bigint() - t0) / n });
  }
  return rows;
}

async function connections() {
  const CONNECTIONS = 1000;
  return withGateway(({ port, adminPort, urls }) => `listen: { host: 127.0.0.1, port: ${port} }
admin: { host: 127.0.0.1, port: ${adminPort} }
sites:
  a: { url: "${urls[0]}", building: A }
  b: { url: "${urls[1]}", building: B }
routes:
  - { name: web, match: { pathPrefix: / }, sites: [a, b] }
`, async ({ gw, proxyUrl, adminUrl }) => {
    await allUp(adminUrl, 2);
    const before = rssMb(gw.pid);
    const { port } = new URL(proxyUrl);
    const sockets = [];
    let answered = 0;
    try {
      for (let i = 0; i < CONNECTIONS; i++) {
        const socket = net.connect(Number(port), '127.0.0.1');
        socket.setNoDelay(true);
        socket.on('error', () => {});
        socket.on('data', (chunk) => { if (chunk.toString('latin1').startsWith('HTTP/1.1 200')) answered++; });
        socket.write('GET /x HTTP/1.1\r\nHost: web.example\r\nConnection: keep-alive\r\n\r\n');
        sockets.push(socket);
        if (i % 100 === 99) await sleep(20);
      }
      await waitFor(() => answered >= CONNECTIONS, 30_000, `${CONNECTIONS} answers`);
      await sleep(1000);
      return { connections: CONNECTIONS, answered, rssBeforeMb: before, rssMb: rssMb(gw.pid) };
    } finally {
      for (const s of sockets) s.destroy();
    }
  });
}

async function restart() {
  const SITES = 1000;
  // One site server for all, with a listen backlog for 1,000 connects at once (the default 511 drops SYNs, retried after 1 s).
  const site = http.createServer((req, res) => { req.resume(); res.end('ok'); });
  await new Promise((r) => site.listen({ port: 0, host: '127.0.0.1', backlog: 4096 }, r));
  const server = { url: `http://127.0.0.1:${site.address().port}`, close: () => { site.closeAllConnections(); return new Promise((r) => site.close(r)); } };
  const reported = new Set();
  let failed = 0;
  const prober = new Prober({
    onResult: (name, result) => { reported.add(name); if (!result.passed) failed++; },
    metrics: createMetrics(new Registry()), logger: silentLogger(),
  });
  const sites = (timeoutMs) => Array.from({ length: SITES }, (_, i) => ({
    name: `s${i}`, url: `${server.url}/s${i}`, building: `b${i % 20}`, timeouts: { connectMs: 1000, responseMs: 1000 },
    health: { path: '/healthz', intervalMs: 5000, jitter: 0.1, timeoutMs, rise: 2, fall: 2, expectStatus: [200] },
    passive: { failureThreshold: 3, statuses: [502, 503, 504], ratio: 0.5, minRequests: 20, minClients: 1, windowMs: 10_000 },
  }));
  const rounds = [];
  try {
    // The first round only warms up; each later one changes every site's timeout, so every loop restarts.
    for (const timeoutMs of [1000, 1100, 1200, 1300, 1400]) {
      reported.clear();
      failed = 0;
      const started = performance.now();
      prober.update(sites(timeoutMs));
      const inCallMs = performance.now() - started;
      await waitFor(() => reported.size === SITES, 30_000, `${SITES} first verdicts`);
      rounds.push({ inCallMs, allReportedMs: performance.now() - started, failed });
      await sleep(300);
    }
  } finally {
    await prober.close();
    await server.close();
  }
  return { sites: SITES, rounds: rounds.slice(1) };
}

const machine = `${cpus().length} cores (${cpus()[0]?.model.trim() ?? 'unknown'}), load average ${loadavg().map((x) => x.toFixed(1)).join(' ')}, node ${process.version}`;
console.log(`detour capacity; machine: ${machine}`);
const report = { date: new Date().toISOString(), machine };
if (wanted('probes')) {
  report.probes = await probes();
  const p = report.probes;
  console.log(`probes: ${p.sites} sites every ${p.intervalS} s: ${p.percentOfOneCore.toFixed(1)}% of one core (${p.systemPercent.toFixed(1)}% in the kernel; ${p.cpuSeconds.toFixed(2)} CPU s in ${p.seconds.toFixed(1)} s), RSS ${p.rssMb.toFixed(0)} MB   [node bench/capacity.mjs --only probes]`);
}
if (wanted('probe-floor')) {
  report.probeFloor = await probeFloor();
  const p = report.probeFloor;
  console.log(`probe floor: a bare Node process opening ${p.connectsPerSecond} connections a second (connect, GET, read to close; nothing else): ${p.percentOfOneCore.toFixed(1)}% of one core (${p.systemPercent.toFixed(1)}% in the kernel)   [node bench/capacity.mjs --only probe-floor]`);
}
if (wanted('probes-refused')) {
  report.probesRefused = await probes({ refused: true });
  const p = report.probesRefused;
  console.log(`probes, every site refusing: ${p.sites} sites every ${p.intervalS} s: ${p.percentOfOneCore.toFixed(1)}% of one core (${p.cpuSeconds.toFixed(2)} CPU s in ${p.seconds.toFixed(1)} s), RSS ${p.rssMb.toFixed(0)} MB   [node bench/capacity.mjs --only probes-refused]`);
}
if (wanted('lookup')) {
  report.lookup = lookup();
  const [small, big] = report.lookup;
  console.log(`lookup: ${small.nsPerLookup.toFixed(0)} ns at ${small.routes} routes, ${big.nsPerLookup.toFixed(0)} ns at ${big.routes} routes (x${(big.nsPerLookup / small.nsPerLookup).toFixed(1)})   [node bench/capacity.mjs --only lookup]`);
}
if (wanted('connections')) {
  report.connections = await connections();
  const c = report.connections;
  console.log(`connections: ${c.connections} keep-alive clients (${c.answered} answered): RSS ${c.rssBeforeMb.toFixed(0)} -> ${c.rssMb.toFixed(0)} MB   [node bench/capacity.mjs --only connections]`);
}
if (wanted('restart')) {
  report.restart = await restart();
  const { sites, rounds } = report.restart;
  const range = (xs) => `${Math.min(...xs).toFixed(0)} to ${Math.max(...xs).toFixed(0)} ms`;
  console.log(`restart: every probe loop of ${sites} sites restarted by a reload: ${range(rounds.map((r) => r.inCallMs))} in the update call, every site's first verdict after ${range(rounds.map((r) => r.allReportedMs))}, ${Math.max(...rounds.map((r) => r.failed))} failed (${rounds.length} rounds)   [node bench/capacity.mjs --only restart]`);
}
writeFileSync(values.json, `${JSON.stringify(report, null, 2)}\n`);
