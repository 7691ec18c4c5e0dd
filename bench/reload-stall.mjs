#!/usr/bin/env node
// How long a reload of a large policy holds the event loop: N routes over N/10
// sites, started in this process, then reloaded (the file changed each time)
// several times; the figure is the longest event-loop delay
// (perf_hooks.monitorEventLoopDelay) from the reload call until its first
// decisions are spread out, and how much of that longest delay was garbage
// collection (perf_hooks 'gc' entries inside the late timer's interval, timed
// with a 1 ms interval beside the histogram), and how much of it the main thread
// spent running and how much waiting for a CPU (Linux's /proc/self/task/<pid>/schedstat,
// read at every tick: nanoseconds on a CPU, nanoseconds runnable but waiting). Sites point at a closed loopback port, so probes
// fail at once and nothing answers: the stall is the gateway's own work.
// After each reload the same is measured for as long again with nothing happening
// (no reload, the same process, probes and timers): the floor the machine sets.
// With --before DIR (another checkout, built), the two builds run in turns, each
// in a process of its own, so both see the same machine.
//
//   npm run build && node bench/reload-stall.mjs [--routes 10000] [--reloads 6] [--rounds 3] [--before ../other]
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PerformanceObserver, monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    routes: { type: 'string', default: '10000' }, reloads: { type: 'string', default: '6' },
    rounds: { type: 'string', default: '3' }, before: { type: 'string' }, dist: { type: 'string' },
  },
});
const here = fileURLToPath(new URL('..', import.meta.url));

if (values.dist === undefined) {
  // The driver: each build in a child process of its own, in turns.
  const builds = [['this', here], ...(values.before ? [['before', resolve(values.before)]] : [])];
  // Per build, per kind of window (a reload, then as long again with nothing happening): stalls and longest gaps.
  const runs = new Map(builds.map(([name]) => [name, { reload: { stalls: [], gaps: [] }, idle: { stalls: [], gaps: [] } }]));
  for (let round = 0; round < Number(values.rounds); round++) {
    for (const [name, dir] of builds) {
      const out = execFileSync(process.execPath, [fileURLToPath(import.meta.url), '--dist', join(dir, 'dist'), '--routes', values.routes, '--reloads', values.reloads], { encoding: 'utf8' });
      const { stalls, gaps, idleStalls, idleGaps } = JSON.parse(out);
      const run = runs.get(name);
      run.reload.stalls.push(...stalls);
      run.reload.gaps.push(...gaps);
      run.idle.stalls.push(...idleStalls);
      run.idle.gaps.push(...idleGaps);
    }
  }
  const median = (xs) => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)]; };
  for (const [name, run] of runs) {
    for (const [kind, { stalls: xs, gaps }] of Object.entries(run)) {
      const what = kind === 'reload' ? 'reload stall' : 'idle, as long';
      const gc = gaps.map((g) => g.gcMs);
      console.log(`${(kind === 'reload' ? name : '').padEnd(7)} ${values.routes} routes, ${what}: median ${median(xs).toFixed(0)} ms, min ${Math.min(...xs).toFixed(0)}, max ${Math.max(...xs).toFixed(0)} (${xs.length} windows); `
        + `garbage collection inside each window's longest gap: median ${median(gc).toFixed(1)} ms, max ${Math.max(...gc).toFixed(1)}, none in ${gc.filter((x) => x === 0).length} of ${gc.length}`);
      const parts = gaps.filter((g) => g.runMs !== undefined);
      if (parts.length > 0) {
        const range = (key) => `median ${median(parts.map((g) => g[key])).toFixed(1)} ms, max ${Math.max(...parts.map((g) => g[key])).toFixed(1)}`;
        console.log(`${' '.repeat(8)}longest gap: ${range('gapMs')}; the main thread on a CPU in it ${range('runMs')}, runnable but waiting for a CPU ${range('waitMs')}`);
      }
    }
  }
} else {
  const { loadPolicyFile } = await import(join(values.dist, 'config/load-policy.js'));
  const { startGateway } = await import(join(values.dist, 'gateway.js'));
  const routes = Number(values.routes);
  const sites = Math.max(2, Math.round(routes / 10));
  const url = 'http://127.0.0.1:9';
  const text = (extra) => {
    const lines = ['listen: { host: 127.0.0.1, port: 0 }', 'admin: { host: 127.0.0.1, port: 0 }', 'sites:'];
    for (let i = 0; i < sites; i++) lines.push(`  s${i}: { url: "${url}/s${i}", building: b${i % 50}, health: { interval: 5s, timeout: 1s } }`);
    lines.push(`  extra${extra}: { url: "${url}/extra" }`, 'routes:');
    for (let i = 0; i < routes; i++) lines.push(`  - { name: r${i}, match: { host: r${i}.example }, sites: [s${i % sites}, s${(i + 1) % sites}], priority: ${1 + (i % 3)} }`);
    return `${lines.join('\n')}\n`;
  };
  const dir = await mkdtemp(join(tmpdir(), 'detour-reload-stall-'));
  const file = join(dir, 'policy.yaml');
  const pause = (ms) => new Promise((r) => setTimeout(r, ms));
  // The main thread's [ns on a CPU, ns runnable and waiting], or undefined off Linux.
  const schedFile = `/proc/self/task/${process.pid}/schedstat`;
  const schedstat = () => {
    try { return readFileSync(schedFile, 'utf8').split(' ', 2).map(Number); } catch { return undefined; }
  };
  let gateway;
  const stalls = [];
  const gaps = [];
  const idleStalls = [];
  const idleGaps = [];
  const collections = [];
  const gcObserver = new PerformanceObserver((list) => { for (const e of list.getEntries()) collections.push({ start: e.startTime, duration: e.duration }); });
  gcObserver.observe({ entryTypes: ['gc'] });
  try {
    await writeFile(file, text(0));
    const loaded = await loadPolicyFile(file, {});
    if (!loaded.ok) throw new Error(JSON.stringify(loaded.errors.slice(0, 3)));
    gateway = await startGateway({ policy: loaded.policy });
    // The longest event-loop delay while `during` runs and `after` ms past it, and the longest
    // interval between two ticks of a 1 ms timer, split into collection, running and waiting.
    const measure = async (during, after) => {
      const delay = monitorEventLoopDelay({ resolution: 1 });
      delay.enable();
      const started = performance.now();
      let last = started;
      let lastSched = schedstat();
      let longest = { from: last, to: last, sched: undefined };
      const ticks = setInterval(() => {
        const now = performance.now();
        const sched = schedstat();
        if (now - last > longest.to - longest.from) {
          longest = { from: last, to: now, sched: sched && lastSched ? { runMs: (sched[0] - lastSched[0]) / 1e6, waitMs: (sched[1] - lastSched[1]) / 1e6 } : undefined };
        }
        last = now;
        lastSched = sched;
      }, 1);
      collections.length = 0;
      await during();
      await pause(after);
      clearInterval(ticks);
      delay.disable();
      const windowMs = performance.now() - started;
      // Entries are delivered after the fact: wait a turn for the last ones.
      await pause(10);
      const gcMs = collections.filter((c) => c.start >= longest.from && c.start < longest.to).reduce((sum, c) => sum + c.duration, 0);
      return { stall: delay.max / 1e6, gap: { gapMs: longest.to - longest.from, gcMs, ...longest.sched }, windowMs };
    };
    for (let r = 1; r <= Number(values.reloads); r++) {
      await writeFile(file, text(r));
      await pause(300);
      const reloaded = await measure(async () => {
        const result = await gateway.reload();
        if (!result.ok) throw new Error(`reload failed: ${JSON.stringify(result.errors.slice(0, 3))}`);
      }, 400);
      stalls.push(reloaded.stall);
      gaps.push(reloaded.gap);
      // As long again with nothing happening: what this process, its probes and the machine cost anyway.
      await pause(300);
      const quiet = await measure(() => pause(reloaded.windowMs - 400), 400);
      idleStalls.push(quiet.stall);
      idleGaps.push(quiet.gap);
    }
  } finally {
    await gateway?.close();
    await rm(dir, { recursive: true, force: true });
  }
  gcObserver.disconnect();
  console.log(JSON.stringify({ stalls, gaps, idleStalls, idleGaps }));
}
