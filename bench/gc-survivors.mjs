#!/usr/bin/env node
// What the young-generation collector keeps per collection under load, and
// what that costs: the bare http-proxy-3 proxy (bench/lib/bare-proxy.mjs) as
// is, the same proxy keeping its requests in flight in a Set, and in detour's
// LiveList (src/proxy/live-list.ts), then detour itself (and another build
// with --before), each under `wrk -t1 -c50` with `node --trace-gc-nvp`.
// Rounds are interleaved; figures are medians over rounds (min-max). Per
// scavenge: bytes that survived in the young generation, bytes promoted to
// the old one, and the pause; per run: scavenges, mark-compacts, req/s.
//
//   npm run bench:gc [-- --rounds 3 --seconds 5 --only bare,set,list,detour --before OTHER/dist/cli.js]
//
// Loopback only; every process is killed by PID at the end.
import { spawn } from 'node:child_process';
import { openSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { killPid, machine, root, sleep, startDetour, waitHttp, wrkBenchSetup } from './lib/proxies.mjs';

const { values } = parseArgs({
  options: {
    rounds: { type: 'string', default: '3' },
    seconds: { type: 'string', default: '5' },
    only: { type: 'string' },
    before: { type: 'string' },
  },
});
const rounds = Number(values.rounds);
const seconds = Number(values.seconds);
const { tools, dir, primary, backup } = await wrkBenchSetup();

/** A proxy process started with --trace-gc-nvp, its stdout (where V8 writes the trace) in `log`. */
async function startBareTraced(name, track) {
  const log = join(dir, `${name}.gc.log`);
  const args = ['--trace-gc-nvp', join(root, 'bench/lib/bare-proxy.mjs'), primary.url, ...(track ? [track] : [])];
  const child = spawn(process.execPath, args, { stdio: ['ignore', openSync(log, 'a'), 'inherit'] });
  let port;
  for (let i = 0; i < 200 && port === undefined; i++) {
    await sleep(50);
    port = /"port":(\d+)/.exec(readFileSync(log, 'utf8'))?.[1];
  }
  if (port === undefined) throw new Error(`${name} did not start`);
  const url = `http://127.0.0.1:${port}/`;
  await waitHttp(url);
  return { pid: child.pid, url, log, stop: () => killPid(child.pid) };
}

async function startDetourTraced(name, cli) {
  const log = join(dir, `${name}.gc.log`);
  process.env.DETOUR_BENCH_NODE_ARGS = '--trace-gc-nvp';
  process.env.DETOUR_BENCH_LOG = log;
  const d = await startDetour(name, dir, primary, backup, '', undefined, cli);
  delete process.env.DETOUR_BENCH_NODE_ARGS;
  delete process.env.DETOUR_BENCH_LOG;
  return { ...d, log };
}

const catalog = [
  { name: 'bare', label: 'bare http-proxy-3', start: () => startBareTraced('bare') },
  { name: 'set', label: 'bare + requests in flight in a Set', start: () => startBareTraced('set', 'set') },
  { name: 'list', label: 'bare + requests in flight in a LiveList', start: () => startBareTraced('list', 'list') },
  { name: 'detour', label: 'detour, 1 worker', start: () => startDetourTraced('detour') },
  ...(values.before ? [{ name: 'detour-before', label: `detour before (${values.before})`, start: () => startDetourTraced('detour-before', values.before) }] : []),
];
const only = values.only ? new Set(values.only.split(',')) : undefined;
const targets = catalog.filter((t) => !only || only.has(t.name));
for (const t of targets) t.proc = await t.start();

const runWrk = (url, s) => new Promise((resolve, reject) => {
  const child = spawn(tools.wrk, ['-t1', '-c50', `-d${s}s`, '--latency', url], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.on('data', (c) => { out += c; });
  child.on('close', (code) => (code === 0 ? resolve(out) : reject(new Error(`wrk exited ${code}`))));
});
const field = (line, key) => Number(new RegExp(`\\b${key}=([\\d.]+)`).exec(line)?.[1] ?? NaN);
const traceLines = (log) => readFileSync(log, 'utf8').split('\n');

console.error(`bench: ${targets.map((t) => t.name).join(', ')}; ${rounds} rounds of ${seconds}s, wrk -t1 -c50`);
for (const t of targets) await runWrk(t.proc.url, 2);
const results = Object.fromEntries(targets.map((t) => [t.name, []]));
for (let round = 0; round < rounds; round++) {
  for (let i = 0; i < targets.length; i++) {
    const t = targets[(i + round) % targets.length];
    await sleep(300);
    const from = traceLines(t.proc.log).length;
    const out = await runWrk(t.proc.url, seconds);
    await sleep(300);
    const trace = traceLines(t.proc.log).slice(from - 1);
    const scavenges = trace.filter((l) => /\bgc=s\b/.test(l));
    const mean = (key) => scavenges.reduce((n, l) => n + field(l, key), 0) / scavenges.length;
    const r = {
      rps: Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1] ?? NaN),
      scavenges: scavenges.length,
      markCompacts: trace.filter((l) => /\bgc=(mc|mmc)\b/.test(l)).length,
      survivedKB: mean('new_space_survived') / 1024,
      promotedKB: mean('promoted') / 1024,
      pauseMs: mean('pause'),
    };
    results[t.name].push(r);
    console.error(`  round ${round + 1} ${t.name.padEnd(14)} ${Math.round(r.rps)} req/s, ${r.scavenges} scavenges: ${r.survivedKB.toFixed(0)} KB survived, ${r.promotedKB.toFixed(0)} KB promoted, ${r.pauseMs.toFixed(2)} ms each; ${r.markCompacts} mark-compacts`);
  }
}
const load = machine();
for (const t of targets) await t.proc.stop();
await primary.kill();
await backup.kill();

const stats = (xs) => {
  const s = xs.filter(Number.isFinite).sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length === 0 ? undefined : { median: s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2, min: s[0], max: s[s.length - 1] };
};
const f = (xs, digits = 0) => {
  const s = stats(xs);
  return s ? `${s.median.toFixed(digits)} (${s.min.toFixed(digits)}-${s.max.toFixed(digits)})` : '-';
};
const lines = [
  `wrk -t1 -c50, ${rounds} rounds x ${seconds} s per target, interleaved, node --trace-gc-nvp; medians (min-max over rounds).`,
  `${load.date}, ${load.cpu}, load average ${load.loadAverage} at the end, Node ${load.node}.`,
  '',
  '| target | req/s | scavenges per run | KB survived per scavenge | KB promoted per scavenge | ms per scavenge | mark-compacts per run |',
  '|---|---|---|---|---|---|---|',
  ...targets.map((t) => {
    const rs = results[t.name];
    const col = (key, digits) => f(rs.map((r) => r[key]), digits);
    return `| ${t.label} | ${col('rps', 0)} | ${col('scavenges', 0)} | ${col('survivedKB', 0)} | ${col('promotedKB', 0)} | ${col('pauseMs', 2)} | ${col('markCompacts', 0)} |`;
  }),
];
console.log(lines.join('\n'));
process.exit(0);
