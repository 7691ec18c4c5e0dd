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
  const stalls = new Map(builds.map(([name]) => [name, []]));
  const longestGaps = new Map(builds.map(([name]) => [name, []]));
  for (let round = 0; round < Number(values.rounds); round++) {
    for (const [name, dir] of builds) {
      const out = execFileSync(process.execPath, [fileURLToPath(import.meta.url), '--dist', join(dir, 'dist'), '--routes', values.routes, '--reloads', values.reloads], { encoding: 'utf8' });
      const { stalls: xs, gaps } = JSON.parse(out);
      stalls.get(name).push(...xs);
      longestGaps.get(name).push(...gaps);
    }
  }
  const median = (xs) => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)]; };
  for (const [name, xs] of stalls) {
    const gc = longestGaps.get(name).map((g) => g.gcMs);
    console.log(`${name.padEnd(7)} ${values.routes} routes: reload stall median ${median(xs).toFixed(0)} ms, min ${Math.min(...xs).toFixed(0)}, max ${Math.max(...xs).toFixed(0)} (${xs.length} reloads); `
      + `garbage collection inside each reload's longest gap: median ${median(gc).toFixed(1)} ms, max ${Math.max(...gc).toFixed(1)}, none in ${gc.filter((x) => x === 0).length} of ${gc.length}`);
    const parts = longestGaps.get(name).filter((g) => g.runMs !== undefined);
    if (parts.length > 0) {
      const range = (key) => `median ${median(parts.map((g) => g[key])).toFixed(1)} ms, max ${Math.max(...parts.map((g) => g[key])).toFixed(1)}`;
      console.log(`${' '.repeat(8)}longest gap: ${range('gapMs')}; the main thread on a CPU in it ${range('runMs')}, runnable but waiting for a CPU ${range('waitMs')}`);
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
  const collections = [];
  const gcObserver = new PerformanceObserver((list) => { for (const e of list.getEntries()) collections.push({ start: e.startTime, duration: e.duration }); });
  gcObserver.observe({ entryTypes: ['gc'] });
  try {
    await writeFile(file, text(0));
    const loaded = await loadPolicyFile(file, {});
    if (!loaded.ok) throw new Error(JSON.stringify(loaded.errors.slice(0, 3)));
    gateway = await startGateway({ policy: loaded.policy });
    for (let r = 1; r <= Number(values.reloads); r++) {
      await writeFile(file, text(r));
      await pause(300);
      const delay = monitorEventLoopDelay({ resolution: 1 });
      delay.enable();
      // The longest interval between two ticks of a 1 ms timer, and when it was.
      let last = performance.now();
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
      const result = await gateway.reload();
      if (!result.ok) throw new Error(`reload failed: ${JSON.stringify(result.errors.slice(0, 3))}`);
      await pause(400);
      clearInterval(ticks);
      delay.disable();
      stalls.push(delay.max / 1e6);
      // Entries are delivered after the fact: wait a turn for the last ones.
      await pause(10);
      const gcMs = collections.filter((c) => c.start >= longest.from && c.start < longest.to).reduce((sum, c) => sum + c.duration, 0);
      gaps.push({ gapMs: longest.to - longest.from, gcMs, ...longest.sched });
    }
  } finally {
    await gateway?.close();
    await rm(dir, { recursive: true, force: true });
  }
  gcObserver.disconnect();
  console.log(JSON.stringify({ stalls, gaps }));
}
