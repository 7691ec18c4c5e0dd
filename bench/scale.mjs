#!/usr/bin/env node
// What a large policy costs: for N routes over N/10 sites, how long the gateway
// takes to start, to answer GET /status and to reload, and how long a site flap
// (one site under every route goes down and comes back) and a reload stall
// requests on another route. "Stall" is the longest event-loop delay measured
// meanwhile (perf_hooks.monitorEventLoopDelay) and the slowest request of a
// client looping on a route the flap does not touch. The sites and that client
// run in a process of their own (bench/lib/scale-peer.mjs), so only the
// gateway's event loop is measured. Loopback only, bounded.
//
//   npm run bench:scale                 # 2,000 and 10,000 routes
//   node bench/scale.mjs --routes 500   # after npm run build
import { fork, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { loadavg, cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { PerformanceObserver, constants as perfConstants, monitorEventLoopDelay } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { startGateway } from '../dist/gateway.js';
import { loadPolicyFile } from '../dist/config/load-policy.js';

const { values } = parseArgs({ options: { routes: { type: 'string', multiple: true } } });
const sizes = (values.routes ?? ['2000', '10000']).map(Number);
const DEADLINE_MS = 120_000;
const FLAPS = 3;
// Young-generation collections (scavenges) in this process, with their pauses.
const scavenges = [];
new PerformanceObserver((list) => {
  for (const e of list.getEntries()) if (e.detail?.kind === perfConstants.NODE_PERFORMANCE_GC_MINOR) scavenges.push(e.duration);
}).observe({ entryTypes: ['gc'] });
const SETTLE_SCAVENGES = 2;
const SETTLE_MAX_MS = 10_000;

/** The sites and the quiet client, in a process of their own (bench/lib/scale-peer.mjs). */
async function startPeer() {
  const child = fork(fileURLToPath(new URL('./lib/scale-peer.mjs', import.meta.url)), [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const replies = [];
  const waiting = [];
  child.on('message', (m) => (waiting.length > 0 ? waiting.shift()(m) : replies.push(m)));
  const next = () => new Promise((resolve, reject) => {
    if (replies.length > 0) return resolve(replies.shift());
    const timer = setTimeout(() => reject(new Error('scale-peer did not answer')), DEADLINE_MS);
    waiting.push((m) => { clearTimeout(timer); resolve(m); });
  });
  const ask = (m) => { child.send(m); return next(); };
  const { urls } = await next();
  return {
    urls,
    ask,
    async stop() {
      if (child.exitCode !== null) return;
      const exited = new Promise((r) => child.once('exit', r));
      await ask({ cmd: 'stop' }).catch(() => child.kill('SIGKILL'));
      await exited;
    },
  };
}

function policyYaml(routes, sites, urls, extra = '') {
  const fast = 'health: { interval: 100ms, timeout: 500ms, rise: 1, fall: 1, jitter: 0 }';
  const lines = [
    'listen: { host: 127.0.0.1, port: 0 }',
    'admin: { host: 127.0.0.1, port: 0 }',
    'sites:',
    `  hub: { url: "${urls.hub}", building: hub-dc, ${fast} }`,
    `  quiet: { url: "${urls.quiet}", building: quiet-dc, ${fast} }`,
  ];
  // The many sites share two servers, told apart by a base path; probes every 5s.
  for (let i = 0; i < sites; i++) {
    lines.push(`  s${i}: { url: "${urls.pool[i % urls.pool.length]}/s${i}", building: b${i % 50}, health: { interval: 5s, timeout: 1s } }`);
  }
  lines.push('routes:', '  - { name: quiet, match: { host: quiet.example }, sites: [quiet] }');
  for (let i = 0; i < routes; i++) {
    lines.push(`  - { name: r${i}, match: { host: r${i}.example }, sites: [hub, s${i % sites}], priority: ${1 + (i % 3)}, failback: { holdDown: 0s } }`);
  }
  return `${lines.join('\n')}\n${extra}`;
}

async function until(what, predicate) {
  const deadline = Date.now() + DEADLINE_MS;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** `n` processes looping on the CPU until stopped (by PID) or for 60 s at most. */
async function busyCores(n) {
  const kids = Array.from({ length: n }, () => spawn(process.execPath, ['-e', 'const end = Date.now() + 60000; while (Date.now() < end);'], { stdio: 'ignore' }));
  await Promise.all(kids.map((k) => new Promise((r) => k.once('spawn', r))));
  return {
    async stop() {
      await Promise.all(kids.map((k) => (k.exitCode !== null || k.signalCode !== null ? undefined : new Promise((r) => { k.once('exit', r); k.kill('SIGKILL'); }))));
    },
  };
}

async function timeIt(fn) {
  const started = performance.now();
  const result = await fn();
  return { ms: performance.now() - started, result };
}

async function scenario(routes) {
  const sites = Math.max(1, Math.round(routes / 10));
  const peer = await startPeer();
  const { urls } = peer;
  const dir = await mkdtemp(join(tmpdir(), 'detour-scale-'));
  const file = join(dir, 'policy.yaml');
  await writeFile(file, policyYaml(routes, sites, urls));
  const delay = monitorEventLoopDelay({ resolution: 1 });
  delay.enable();
  const row = { routes, sites: sites + 2 };
  let gateway;
  try {
    const started = await timeIt(async () => {
      const loaded = await loadPolicyFile(file, {});
      if (!loaded.ok) throw new Error(JSON.stringify(loaded.errors.slice(0, 3)));
      return startGateway({ policy: loaded.policy });
    });
    gateway = started.result;
    row.startMs = started.ms;
    // The table in force, read as requests read it (gateway.table() would finish a decision spread over turns at once).
    const table = () => gateway.control.servingTable.byName;
    await until('every route on hub', () => table().get('r0')?.active === 'hub');

    const status = await timeIt(async () => {
      const res = await fetch(`${gateway.adminUrl}/status`);
      return (await res.json()).routes.length;
    });
    if (status.result !== routes + 1) throw new Error(`status listed ${status.result} routes`);
    row.statusMs = status.ms;

    await peer.ask({ cmd: 'client', proxyUrl: gateway.proxyUrl });

    // Settle: everything start built is still in the young generation, and the first collections
    // after start copy it out (one to three of 8 to 21 ms at 2,000 routes, whatever runs then). Wait
    // for them under the same client, so the flaps below measure the flap, and say what they cost.
    await peer.ask({ cmd: 'reset' });
    delay.reset();
    const settleFrom = scavenges.length;
    const settled = await timeIt(async () => {
      const deadline = Date.now() + SETTLE_MAX_MS;
      while (scavenges.length - settleFrom < SETTLE_SCAVENGES && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    });
    row.settleMs = settled.ms;
    row.settleStallMs = delay.max / 1e6;
    row.settleWorstRequestMs = (await peer.ask({ cmd: 'read' })).worstMs;
    row.settleScavengeMs = Math.max(0, ...scavenges.slice(settleFrom));

    // Flap: hub goes down (every route fails over), then comes back (every route fails back).
    // Three times: the first also runs the failover code for the first time, the later ones are what a
    // gateway that has run a while pays.
    const flaps = [];
    for (let i = 0; i < FLAPS; i++) {
      await peer.ask({ cmd: 'reset' });
      delay.reset();
      const flap = await timeIt(async () => {
        await peer.ask({ cmd: 'hub', status: 503 });
        await until('failover of every route', () => table().get(`r${routes - 1}`)?.active !== 'hub');
        await peer.ask({ cmd: 'hub', status: 200 });
        await until('failback of every route', () => table().get(`r${routes - 1}`)?.active === 'hub'
          && table().get('r0')?.state === 'preferred');
      });
      flaps.push({ ms: flap.ms, stallMs: delay.max / 1e6, worstRequestMs: (await peer.ask({ cmd: 'read' })).worstMs });
    }
    // The same client for as long as the first flap took, with nothing flapping: what the machine,
    // the probes and the collector cost anyway, to read the flap's figures against.
    await peer.ask({ cmd: 'reset' });
    delay.reset();
    await new Promise((r) => setTimeout(r, flaps[0].ms));
    row.idleStallMs = delay.max / 1e6;
    row.idleWorstRequestMs = (await peer.ask({ cmd: 'read' })).worstMs;
    row.flapMs = flaps[0].ms;
    row.flapStallMs = flaps[0].stallMs;
    row.flapWorstRequestMs = flaps[0].worstRequestMs;
    row.laterFlapStallMs = Math.max(...flaps.slice(1).map((f) => f.stallMs));
    row.laterFlapWorstRequestMs = Math.max(...flaps.slice(1).map((f) => f.worstRequestMs));

    // Reload: the same policy with one more site, read from the file.
    await writeFile(file, policyYaml(routes, sites, urls).replace('routes:', `  extra: { url: "${urls.pool[0]}/extra" }\nroutes:`));
    await peer.ask({ cmd: 'reset' });
    delay.reset();
    const reload = await timeIt(() => gateway.reload());
    if (!reload.result.ok) throw new Error(JSON.stringify(reload.result));
    // Let the first probes of the reloaded policy land before reading the stall.
    await new Promise((r) => setTimeout(r, 500));
    row.reloadMs = reload.ms;
    row.reloadStallMs = delay.max / 1e6;
    const quietClient = await peer.ask({ cmd: 'read' });
    row.reloadWorstRequestMs = quietClient.worstMs;
    row.failedQuietRequests = quietClient.failed;

    // The same reload with every core busy (one looping process per core, nice 0): the policy
    // worker parses below normal priority (src/config/policy-worker.ts), so this is what it costs.
    await writeFile(file, policyYaml(routes, sites, urls).replace('routes:', `  extra2: { url: "${urls.pool[0]}/extra2" }\nroutes:`));
    const busy = await busyCores(cpus().length);
    try {
      const busyReload = await timeIt(() => gateway.reload());
      if (!busyReload.result.ok) throw new Error(JSON.stringify(busyReload.result));
      row.busyReloadMs = busyReload.ms;
    } finally {
      await busy.stop();
    }
  } finally {
    delay.disable();
    await gateway?.close();
    await peer.stop();
    await rm(dir, { recursive: true, force: true });
  }
  return row;
}

const rows = [];
for (const n of sizes) rows.push(await scenario(n));
const f = (ms) => (ms === undefined ? '-' : ms < 10 ? ms.toFixed(1) : ms.toFixed(0)).padStart(8);
console.log('routes  sites   start ms  /status ms  settle: stall  worst req  longest scavenge   flap ms  flap stall  flap worst req  later flaps: stall  worst req  idle: stall  worst req   reload ms  reload stall  reload worst req  failed  busy reload ms');
for (const r of rows) {
  console.log(`${String(r.routes).padStart(6)} ${String(r.sites).padStart(6)} ${f(r.startMs)}   ${f(r.statusMs)}       ${f(r.settleStallMs)}   ${f(r.settleWorstRequestMs)}          ${f(r.settleScavengeMs)}  ${f(r.flapMs)}    ${f(r.flapStallMs)}        ${f(r.flapWorstRequestMs)}            ${f(r.laterFlapStallMs)}   ${f(r.laterFlapWorstRequestMs)}     ${f(r.idleStallMs)}   ${f(r.idleWorstRequestMs)}    ${f(r.reloadMs)}      ${f(r.reloadStallMs)}          ${f(r.reloadWorstRequestMs)}  ${String(r.failedQuietRequests).padStart(6)}  ${f(r.busyReloadMs)}`);
}
console.log(`stall = longest event-loop delay; worst req = slowest request on a route the flap does not touch; settle = from the quiet client's start until ${SETTLE_SCAVENGES} young collections have run (the first after start copy out what start built); flap = the first after that, later flaps = the worst of the next ${FLAPS - 1}; idle = the same client as long as the first flap took, nothing flapping; busy reload = a reload while ${cpus().length} processes keep every core busy`);
// The figures scale with how busy the machine is; this fixed workload lets runs on different machines (or loads) be compared.
const reference = (() => {
  const started = performance.now();
  const m = new Map();
  for (let i = 0; i < 1e6; i++) m.set(`k${i}`, i);
  let sum = 0;
  for (let i = 0; i < 1e6; i++) sum += m.get(`k${i}`);
  return sum > 0 ? performance.now() - started : 0;
})();
console.log(`reference workload (1e6 Map set+get): ${reference.toFixed(0)} ms; load average ${loadavg().map((l) => l.toFixed(1)).join(' ')} on ${cpus().length} cores`);
