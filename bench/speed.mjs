#!/usr/bin/env node
// What detour costs per request, next to what an operator already runs: one
// run, the same Node site behind every proxy (bench/lib/proxies.mjs), a closed
// loop of `wrk -t1 -c50` (wrk in its own process, written in C, so the load
// generator costs little of the shared cores), interleaved: every round runs
// every target once, each round starting one target later, so a busy moment of
// the machine does not land on one target only. Figures are medians over the
// rounds with min-max; ratios are paired per round (target / direct and
// target / bare of the same round) and their medians printed. CPU seconds are
// utime + stime from /proc/PID/stat of each process tree during the target's
// own runs.
//
//   npm run bench [-- --rounds 5 --seconds 5 --connections 50 --pin-wrk 1 --json FILE --only detour,bare --before OTHER/dist/cli.js]
//
// Absolute figures are this machine's; ratios in the same run are the result.
// Loopback only; every process is killed by PID at the end.
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import {
  cpuSeconds, detourSupportsWorkers, machine, sleep, startBare, startDetour, startHaproxy, startNginx, version, wrkBenchSetup,
} from './lib/proxies.mjs';

const { values } = parseArgs({
  options: {
    rounds: { type: 'string', default: '5' },
    seconds: { type: 'string', default: '5' },
    connections: { type: 'string', default: '50' },
    warmup: { type: 'string', default: '5' },
    // Pin wrk to one CPU (taskset -c N); off by default: on a shared 2-core machine it only moves the contention.
    'pin-wrk': { type: 'string' },
    json: { type: 'string', default: 'speed-report.json' },
    markdown: { type: 'string', default: 'speed-report.md' },
    only: { type: 'string' },
    // Another build's dist/cli.js as an extra target "detour-before" (e.g. main's, to show a change's effect in one run).
    before: { type: 'string' },
  },
});
const rounds = Number(values.rounds);
const seconds = Number(values.seconds);
const connections = Number(values.connections);

const { tools, dir, primary, backup } = await wrkBenchSetup();
const workersKnown = detourSupportsWorkers(dir);

// name -> { start(), note } ; a target that cannot run gets `na` (shown as n/a).
const catalog = [
  { name: 'direct', label: 'direct (Node site)', start: async () => ({ name: 'direct', pid: primary.pid, url: `${primary.url}/`, stop: async () => {} }) },
  { name: 'bare', label: 'bare http-proxy-3 keep-alive', start: () => startBare(primary.url) },
  { name: 'detour', label: 'detour, 1 worker', start: () => startDetour('detour', dir, primary, backup) },
  ...(values.before ? [{
    name: 'detour-before', label: `detour before (${values.before})`,
    start: () => startDetour('detour-before', dir, primary, backup, '', undefined, values.before),
  }] : []),
  {
    name: 'detour-auto', label: 'detour, workers: auto',
    na: workersKnown ? undefined : 'n/a (workers not merged)',
    start: () => startDetour('detour-auto', dir, primary, backup, 'workers: auto'),
  },
  {
    name: 'nginx', label: tools.nginx ? `NGINX ${version(tools.nginx, ['-v']).replace(/^nginx version: nginx\//, '')}, worker_processes auto` : 'NGINX',
    na: tools.nginx ? undefined : 'n/a (nginx not installed)',
    start: () => startNginx(tools.nginx, dir, primary, backup),
  },
  {
    name: 'haproxy', label: tools.haproxy ? `HAProxy ${version(tools.haproxy, ['-v']).split(' ')[2] ?? ''}, nbthread = cores` : 'HAProxy',
    na: tools.haproxy ? undefined : 'n/a (haproxy not installed)',
    start: () => startHaproxy(tools.haproxy, dir, primary, backup),
  },
];
const only = values.only ? new Set(['direct', ...values.only.split(',')]) : undefined;
const targets = catalog.filter((t) => !only || only.has(t.name));
const running = [];
for (const t of targets) {
  if (t.na) continue;
  try {
    t.proc = await t.start();
    running.push(t);
  } catch (err) {
    t.na = `n/a (${err.message.split('\n')[0]})`;
    console.error(`bench: ${t.name}: ${err.message}`);
  }
}

const runWrk = (url, durationS) => new Promise((resolve, reject) => {
  const args = ['-t1', `-c${connections}`, `-d${durationS}s`, '--latency', url];
  const [cmd, argv] = values['pin-wrk'] !== undefined ? ['taskset', ['-c', values['pin-wrk'], tools.wrk, ...args]] : [tools.wrk, args];
  const child = spawn(cmd, argv, { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.on('data', (c) => { out += c; });
  child.on('error', reject);
  child.on('close', (code) => (code === 0 ? resolve(parseWrk(out)) : reject(new Error(`wrk exited ${code}: ${out}`))));
});

console.error(`bench: ${running.map((t) => t.name).join(', ')}; ${rounds} rounds of ${seconds}s, wrk -t1 -c${connections}`);
for (const t of running) await runWrk(t.proc.url, Number(values.warmup));
const results = Object.fromEntries(running.map((t) => [t.name, []]));
for (let round = 0; round < rounds; round++) {
  for (let i = 0; i < running.length; i++) {
    const t = running[(i + round) % running.length];
    // The proxy's own processes, and the site behind it (the primary serves every target).
    const proxyBefore = t.name === 'direct' ? 0 : cpuSeconds(t.proc.pid);
    const siteBefore = cpuSeconds(primary.pid) + cpuSeconds(backup.pid);
    const started = process.cpuUsage();
    const r = await runWrk(t.proc.url, seconds);
    r.proxyCpuS = t.name === 'direct' ? 0 : cpuSeconds(t.proc.pid) - proxyBefore;
    r.siteCpuS = cpuSeconds(primary.pid) + cpuSeconds(backup.pid) - siteBefore;
    r.benchCpuS = sum(Object.values(process.cpuUsage(started))) / 1e6;
    r.round = round;
    results[t.name].push(r);
    console.error(`  round ${round + 1} ${t.name.padEnd(12)} ${Math.round(r.rps).toString().padStart(6)} req/s  p50 ${r.p50Ms.toFixed(2)} ms  p99 ${r.p99Ms.toFixed(2)} ms  errors ${r.errors}`);
    await sleep(300);
  }
}
const load = machine();
for (const t of running) await t.proc.stop();
await primary.kill();
await backup.kill();

// Paired ratios: same round, so they see the same machine.
const pairOf = (name, base, key) => (results[name] ?? []).map((r) => {
  const b = results[base]?.find((x) => x.round === r.round);
  return b ? r[key] / b[key] : NaN;
}).filter(Number.isFinite);
const addedP99 = (name) => (results[name] ?? []).map((r) => {
  const d = results.direct?.find((x) => x.round === r.round);
  return d ? r.p99Ms - d.p99Ms : NaN;
}).filter(Number.isFinite);
const rows = targets.map((t) => {
  const rs = results[t.name];
  if (!rs || rs.length === 0) return { name: t.name, label: t.label, na: t.na ?? 'n/a' };
  const requests = sum(rs.map((r) => r.requests));
  return {
    name: t.name, label: t.label,
    rps: stats(rs.map((r) => r.rps)), p50Ms: stats(rs.map((r) => r.p50Ms)), p99Ms: stats(rs.map((r) => r.p99Ms)),
    p99AddedMs: t.name === 'direct' ? undefined : stats(addedP99(t.name)),
    toDirect: stats(pairOf(t.name, 'direct', 'rps')), toBare: results.bare ? stats(pairOf(t.name, 'bare', 'rps')) : undefined,
    proxyCpuS: stats(rs.map((r) => r.proxyCpuS)), proxyCpuUsPerRequest: t.name === 'direct' ? undefined : (1e6 * sum(rs.map((r) => r.proxyCpuS))) / requests,
    siteCpuS: stats(rs.map((r) => r.siteCpuS)),
    errors: sum(rs.map((r) => r.errors)), requests, runs: rs,
  };
});

const f = (s, digits = 0) => (s === undefined || !Number.isFinite(s.median) ? '-' : `${s.median.toFixed(digits)} (${s.min.toFixed(digits)}-${s.max.toFixed(digits)})`);
const lines = [
  `wrk -t1 -c${connections}, ${rounds} rounds x ${seconds} s per target, interleaved; medians (min-max over rounds); ratios paired per round.`,
  `${load.date}, ${load.cpu}, load average ${load.loadAverage} at the end (shared machine: other work ran meanwhile), Node ${load.node}${values['pin-wrk'] !== undefined ? `, wrk pinned to CPU ${values['pin-wrk']}` : ''}.`,
  '',
  '| target | req/s | p50 ms | p99 ms | p99 added over direct, ms | x direct | x bare | proxy CPU s per run | proxy CPU us/req | site CPU s per run | errors |',
  '|---|---|---|---|---|---|---|---|---|---|---|',
  ...rows.map((r) => (r.na
    ? `| ${r.label} | ${r.na} | | | | | | | | | |`
    : `| ${r.label} | ${f(r.rps)} | ${f(r.p50Ms, 2)} | ${f(r.p99Ms, 1)} | ${r.p99AddedMs ? f(r.p99AddedMs, 1) : '-'} | ${f(r.toDirect, 2)} | ${r.toBare ? f(r.toBare, 2) : '-'} | ${f(r.proxyCpuS, 2)} | ${r.proxyCpuUsPerRequest === undefined ? '-' : Math.round(r.proxyCpuUsPerRequest)} | ${f(r.siteCpuS, 2)} | ${r.errors} |`)),
];
const markdown = lines.join('\n');
console.log(markdown);
writeFileSync(values.markdown, `${markdown}\n`);
writeFileSync(values.json, `${JSON.stringify({ machine: load, connections, rounds, seconds, pinWrk: values['pin-wrk'] ?? null, workersKnown, rows }, null, 2)}\n`);
console.error(`bench: table in ${values.markdown}, every run in ${values.json}`);
process.exit(0);

function parseWrk(out) {
  const num = (re) => { const m = re.exec(out); return m ? Number(m[1]) : 0; };
  const latency = (label) => {
    const m = new RegExp(`^\\s*${label}%\\s+([\\d.]+)(us|ms|s)\\s*$`, 'm').exec(out);
    if (!m) return NaN;
    return Number(m[1]) * ({ us: 0.001, ms: 1, s: 1000 })[m[2]];
  };
  const socket = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  const socketErrors = socket ? socket.slice(1).reduce((n, x) => n + Number(x), 0) : 0;
  return {
    rps: num(/Requests\/sec:\s+([\d.]+)/), requests: num(/(\d+) requests in/),
    p50Ms: latency('50'), p99Ms: latency('99'), errors: num(/Non-2xx or 3xx responses: (\d+)/) + socketErrors,
  };
}

function stats(xs) {
  const s = xs.filter(Number.isFinite).sort((a, b) => a - b);
  if (s.length === 0) return { median: NaN, min: NaN, max: NaN };
  const mid = Math.floor(s.length / 2);
  return { median: s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2, min: s[0], max: s[s.length - 1] };
}

function sum(xs) {
  return xs.reduce((a, b) => a + b, 0);
}
