#!/usr/bin/env node
// What a dying primary costs clients behind each proxy. The same proxies as
// `npm run bench` (detour, detour with `workers: auto` when this build has it,
// NGINX, HAProxy; bench/lib/proxies.mjs), each in front of its own primary +
// backup pair of Node sites (separate processes), probes every 250 ms with a
// 500 ms timeout, fall 2 and rise 2 where the proxy has active checks
// (open-source NGINX only has passive ones: max_fails=1 fail_timeout=10s;
// detour's failback hold-down is set to 1 s to match), connect timeout 500 ms,
// response timeout 2 s, one re-send on another server.
//
// A fixed-rate open-loop client (GETs at --rate per second whatever the
// answers, every request recorded) runs through one proxy at a time while its
// primary goes through, in order:
//   kill     SIGKILL of the site's process (connections reset, then refused)
//   hang     SIGSTOP of the process (the kernel still accepts, nothing answers)
//   503      the site answers 503 to everything
// each phase --phase seconds, followed by a recovery phase in which the
// primary is back (restarted on its port, SIGCONT, answering 200 again).
// Per proxy and failure: requests sent, failed (not 200), waited > 200 ms,
// worst latency, time from the failure until the last request that failed,
// waited > 200 ms or came from the primary (after it, all traffic is on the
// backup as far as clients can tell), and on recovery how long
// until the primary serves again (failback) and whether any request failed
// meanwhile. Which site served is read from the body (each site names itself).
//
//   npm run bench:failover [-- --rate 200 --phase 8 --settle 10 --only detour,nginx --json FILE]
//
// Loopback only; every process is killed by PID at the end.
import http from 'node:http';
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import {
  HEALTH, cpuSeconds, detourSupportsWorkers, ensureTools, machine, sleep, startBackend, startDetour, startHaproxy, startNginx, tempDir,
  waitServedBy,
} from './lib/proxies.mjs';

const { values } = parseArgs({
  options: {
    rate: { type: 'string', default: '200' },
    phase: { type: 'string', default: '8' },
    // Load before the first failure: a Node proxy's JIT warms up in seconds on an idle core, far longer on a busy one.
    settle: { type: 'string', default: '10' },
    json: { type: 'string', default: 'failover-report.json' },
    markdown: { type: 'string', default: 'failover-report.md' },
    only: { type: 'string' },
  },
});
const rate = Number(values.rate);
const phaseMs = Number(values.phase) * 1000;
const health = HEALTH.fast;
const SLOW_MS = 200;
const detectionMs = health.fall * (health.intervalMs + health.timeoutMs);

const tools = ensureTools();
const dir = tempDir();
const workersKnown = detourSupportsWorkers(dir);
const catalog = [
  { name: 'detour', label: 'detour, 1 worker', start: (p, b) => startDetour('detour', dir, p, b, '', health) },
  {
    name: 'detour-auto', label: 'detour, workers: auto', na: workersKnown ? undefined : 'n/a (workers not merged)',
    start: (p, b) => startDetour('detour-auto', dir, p, b, 'workers: auto', health),
  },
  { name: 'nginx', label: 'NGINX (passive checks only)', na: tools.nginx ? undefined : 'n/a (nginx not installed)', start: (p, b) => startNginx(tools.nginx, dir, p, b, health) },
  { name: 'haproxy', label: 'HAProxy', na: tools.haproxy ? undefined : 'n/a (haproxy not installed)', start: (p, b) => startHaproxy(tools.haproxy, dir, p, b, health) },
];
const only = values.only ? new Set(values.only.split(',')) : undefined;
const targets = catalog.filter((t) => !only || only.has(t.name));

const FAILURES = {
  kill: { break: async (s) => { await s.primary.kill(); }, heal: async (s) => { s.primary = await startBackend('primary', s.primaryPort); } },
  hang: { break: async (s) => { s.primary.hang(); }, heal: async (s) => { s.primary.resume(); } },
  503: { break: async (s) => { await s.primary.mode('503'); }, heal: async (s) => { await s.primary.mode('ok'); } },
};

const results = [];
for (const t of targets) {
  if (t.na) {
    results.push({ name: t.name, label: t.label, na: t.na });
    continue;
  }
  const primary = await startBackend('primary');
  const backup = await startBackend('backup');
  const sites = { primary, primaryPort: primary.port, backup };
  let proc;
  try {
    proc = await t.start(primary, backup);
  } catch (err) {
    results.push({ name: t.name, label: t.label, na: `n/a (${err.message.split('\n')[0]})` });
    await primary.kill();
    await backup.kill();
    continue;
  }
  // Settle: the proxy serves from the primary (its first probes passed), then the load starts.
  await waitServedBy(proc.url, 'primary');
  const load = openLoop(proc.url, rate);
  await sleep(Number(values.settle) * 1000);
  const phases = [];
  for (const [failure, how] of Object.entries(FAILURES)) {
    const cpuBefore = cpuSeconds(proc.pid);
    const brokeAt = performance.now();
    await how.break(sites);
    await sleep(phaseMs);
    const healedAt = performance.now();
    await how.heal(sites);
    await sleep(phaseMs);
    // The proxy's CPU over the failure and its recovery: on a starved machine, what it could not get shows here.
    const proxyCpuS = cpuSeconds(proc.pid) - cpuBefore;
    phases.push({ failure, brokeAt, healedAt, endAt: performance.now(), proxyCpuS });
    console.error(`bench: ${t.name}: ${failure} done`);
  }
  const records = await load.stop();
  await proc.stop();
  await sites.primary.kill();
  await backup.kill();
  const row = { name: t.name, label: t.label, requests: records.length, failures: {} };
  for (const p of phases) row.failures[p.failure] = { ...summarise(records, p), proxyCpuS: p.proxyCpuS };
  results.push(row);
}

const env = machine();
const fmt = (x, unit = '') => (x === undefined || x === null ? '-' : `${Math.round(x)}${unit}`);
const lines = [
  `Open loop ${rate} req/s (GET), each failure ${phaseMs / 1000} s then ${phaseMs / 1000} s of recovery; probes every ${health.intervalMs} ms, timeout ${health.timeoutMs} ms, fall ${health.fall}, rise ${health.rise} (detection at most about ${detectionMs} ms), detour hold-down ${health.holdDownMs} ms, connect timeout ${health.connectMs} ms, response timeout ${health.responseMs} ms.`,
  `${env.date}, ${env.cpu}, load average ${env.loadAverage} at the end (shared machine), Node ${env.node}.`,
  '',
  '| proxy | failure | sent | failed | waited > 200 ms | worst ms | all on backup after ms | recovery: back on primary after ms | failed during recovery | proxy CPU s |',
  '|---|---|---|---|---|---|---|---|---|---|',
];
for (const r of results) {
  if (r.na) {
    lines.push(`| ${r.label} | ${r.na} | | | | | | | | |`);
    continue;
  }
  for (const [failure, s] of Object.entries(r.failures)) {
    lines.push(`| ${r.label} | ${failure} | ${s.sent} | ${s.failed}${s.failedStatuses ? ` (${s.failedStatuses})` : ''} | ${s.slow} | ${fmt(s.worstMs)} | ${s.allOnBackupMs === null ? 'never' : fmt(s.allOnBackupMs)} | ${s.failbackMs === null ? 'not within the phase' : fmt(s.failbackMs)} | ${s.recoveryFailed} | ${s.proxyCpuS.toFixed(2)} |`);
  }
}
const markdown = lines.join('\n');
console.log(markdown);
writeFileSync(values.markdown, `${markdown}\n`);
writeFileSync(values.json, `${JSON.stringify({ machine: env, rate, phaseMs, health, results }, null, 2)}\n`);
console.error(`bench: table in ${values.markdown}, details in ${values.json}`);
process.exit(0);

/**
 * Requests sent during the failure (from the break until the heal) and the
 * recovery (heal until the phase ends), by when they were sent.
 */
function summarise(records, { brokeAt, healedAt, endAt }) {
  const during = records.filter((r) => r.sentAt >= brokeAt && r.sentAt < healedAt);
  const after = records.filter((r) => r.sentAt >= healedAt && r.sentAt < endAt);
  const failed = during.filter((r) => r.status !== 200);
  const statuses = {};
  for (const r of failed) {
    // A 503 naming a site is that site's, passed through; one without is the proxy's own.
    const key = r.status ? `${r.status}${r.site ? ` ${r.site}` : ' proxy'}` : r.error || 'error';
    statuses[key] = (statuses[key] ?? 0) + 1;
  }
  // From the client's side, traffic is all on the backup once every request is answered 200 by the backup within 200 ms.
  const affected = during.filter((r) => r.status !== 200 || r.site !== 'backup' || r.latencyMs > SLOW_MS);
  const lastAffected = affected.reduce((m, r) => Math.max(m, r.sentAt), -Infinity);
  const firstBackOnPrimary = after.find((r) => r.site === 'primary');
  return {
    sent: during.length,
    failed: failed.length,
    failedStatuses: Object.entries(statuses).map(([k, v]) => `${k}: ${v}`).join(', '),
    slow: during.filter((r) => r.latencyMs > SLOW_MS).length,
    worstMs: during.reduce((m, r) => Math.max(m, r.latencyMs), 0),
    allOnBackupMs: Number.isFinite(lastAffected) ? lastAffected - brokeAt : 0,
    failbackMs: firstBackOnPrimary ? firstBackOnPrimary.sentAt - healedAt : null,
    recoveryFailed: after.filter((r) => r.status !== 200).length,
    recoveryWorstMs: after.reduce((m, r) => Math.max(m, r.latencyMs), 0),
  };
}

/**
 * GETs at a fixed rate, whatever the answers: a slow proxy does not slow the
 * load down (that would hide the very waits we measure). Each request records
 * when it was sent, its latency, status and the site that answered (from the
 * body; `failed-primary` when the primary's failure is what came back).
 */
function openLoop(url, perSecond) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 2048 });
  const records = [];
  const inflight = new Set();
  const intervalMs = 1000 / perSecond;
  const started = performance.now();
  let sent = 0;
  let stopped = false;
  const one = () => {
    const record = { sentAt: performance.now(), latencyMs: 0, status: 0, site: null, error: undefined };
    records.push(record);
    const done = new Promise((resolve) => {
      const req = http.get(url, { agent }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c) => { body += c; });
        res.on('end', () => {
          record.status = res.statusCode;
          record.site = /"site":"(\w+)"/.exec(body)?.[1] ?? null;
          record.latencyMs = performance.now() - record.sentAt;
          resolve();
        });
        res.on('error', () => { record.error = 'reset'; record.latencyMs = performance.now() - record.sentAt; resolve(); });
      });
      // A client gives up after 10 s: a request stuck longer than that is a failure with that latency.
      req.setTimeout(10_000, () => req.destroy(new Error('client timeout')));
      req.on('error', (err) => { record.error = err.code ?? err.message; record.latencyMs = performance.now() - record.sentAt; resolve(); });
    });
    inflight.add(done);
    done.then(() => inflight.delete(done));
  };
  const tick = () => {
    if (stopped) return;
    // Catch up on the schedule: timers fire late on a loaded machine, the rate must not drop.
    const due = Math.floor((performance.now() - started) / intervalMs);
    while (sent < due) {
      sent++;
      one();
    }
    setTimeout(tick, Math.max(1, intervalMs / 2));
  };
  tick();
  return {
    async stop() {
      stopped = true;
      await Promise.all(inflight);
      agent.destroy();
      return records;
    },
  };
}
