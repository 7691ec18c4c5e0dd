// Soak: one gateway (through its CLI) under a steady open-loop load for N
// minutes (default 10), as issue 9 states it:
//   - a FAILOVER every minute: a1, the preferred site of route api, is killed
//     20 s into the minute and healed 20 s later (failover to b1, then the
//     verified, ramped failback);
//   - a policy RELOAD every 30 s: the file is rewritten (atomically, by rename)
//     with a harmless change, a comment with a counter, and the file watch
//     reloads it; every rewrite must show up as a successful reload;
//   - every 10 s: RSS and open file descriptors (from /proc), V8 heap in use, the
//     heap right after the latest full collection and event-loop delay p99 (from
//     /metrics: detour_heap_used_bytes, detour_heap_after_gc_bytes,
//     detour_event_loop_delay_p99_seconds).
// "Flat" means the last minute's mean is at most 10 % above the second
// minute's (the first holds start-up and JIT warm-up), for each of the four
// series: RSS, the heap after a full collection, fds, event-loop p99. A soak
// looks for growth (a leak, a creeping event loop): a series that falls is
// reported as falling, not failed. The heap in use is in the table but not
// judged: it swings with where the scrape lands between collections (19 to 40 MB
// from one sample to the next, x1.10 "growth" from minute 2 to 10 in one soak
// whose floor did not grow), so the live heap after a full collection is.
// The soak fails (exit 1) if a series is not flat, or a must-be-0 column of the
// chaos table is not 0 (failed while a healthy site existed, reached a
// drained/down site, POST run twice, gateway restarts), or a reload was missed.
//
// `--soak --random` keeps the older mode: a random fault (seeded) every 20 s.
import { renameSync, writeFileSync } from 'node:fs';
import { BOUND_MS, Lab } from './lab.mjs';
import { httpGet, sleep } from './processes.mjs';

const FAILOVER_AT_S = 20;  // into each minute
const FAILOVER_FOR_S = 20;
const RELOAD_EVERY_S = 30;
const RELOAD_AT_S = 5;     // into each half minute: never at the same moment as a kill or heal
const SAMPLE_EVERY_MS = 10_000;
const FLAT = 0.1;

export async function runSoak({ minutes, rate, machine, random = false, seed = 42 }) {
  if (random) return runRandomSoak({ minutes, rate, machine, seed });
  const ms = minutes * 60_000;
  console.log(`detour soak: ${minutes} min at ${rate} req/s (20% POST); a1 (preferred site of api) killed ${FAILOVER_AT_S} s into every minute and healed ${FAILOVER_FOR_S} s later; policy rewritten every ${RELOAD_EVERY_S} s; RSS, heap, fds, event-loop p99 every ${SAMPLE_EVERY_MS / 1000} s`);
  console.log(`machine: ${machine}`);
  const lab = await Lab.start({ replicas: 1, rate });
  lab.sampleEveryMs = SAMPLE_EVERY_MS;
  const r = lab.replicas[0];
  const samples = [];
  let rewrites = 0;
  let sampling = true;
  const sampler = (async () => {
    await sleep(SAMPLE_EVERY_MS / 2);
    while (sampling) {
      const s = await sampleGateway(lab, r).catch((err) => ({ atMs: Date.now(), error: err.message }));
      samples.push(s);
      // A fixed pause after each scrape: scrapes are never closer than the gauge's 10 s window.
      await sleep(SAMPLE_EVERY_MS);
    }
  })();
  const actions = [];
  for (let m = 0; m < minutes; m++) {
    actions.push({ atMs: (m * 60 + FAILOVER_AT_S) * 1000, what: 'kill', run: () => lab.fault('a1', 'killed') });
    actions.push({ atMs: (m * 60 + FAILOVER_AT_S + FAILOVER_FOR_S) * 1000, what: 'heal', run: () => lab.heal('a1') });
  }
  for (let t = RELOAD_AT_S; t * 1000 < ms; t += RELOAD_EVERY_S) {
    actions.push({
      atMs: t * 1000, what: 'reload', run: () => {
        rewrites++;
        const tmp = `${lab.file}.tmp`;
        writeFileSync(tmp, `${lab.policy}# soak reload ${rewrites}\n`);
        renameSync(tmp, lab.file);
        lab.note(`policy rewritten (${rewrites})`);
      },
    });
  }
  actions.sort((a, b) => a.atMs - b.atMs);
  try {
    lab.begin();
    for (const a of actions) {
      const wait = lab.startedMs + a.atMs - Date.now();
      if (wait > 0) await sleep(wait);
      await a.run();
      if (a.what === 'heal') {
        const last = samples.at(-1);
        console.log(`  +${((Date.now() - lab.startedMs) / 1000).toFixed(0)} s: a1 healed; ${lab.load.records.length} requests; RSS ${mb(last?.rssKb * 1024)} MB, heap ${mb(last?.heapBytes)} MB, ${last?.fds ?? '?'} fds, loop p99 ${msOf(last?.loopP99Seconds)} ms`);
      }
    }
    const left = lab.startedMs + ms - Date.now();
    if (left > 0) await sleep(left);
    sampling = false;
    await lab.end();
    await sampler;
    // The watch reloads within about a second of the last rewrite.
    const final = await sampleGateway(lab, r).catch(() => null);
    const row = lab.analyse({ name: `soak ${minutes} min`, boundMs: BOUND_MS });
    return report({ lab, row, samples, final, rewrites, minutes, rate, machine });
  } finally {
    sampling = false;
    await lab.end().catch(() => {});
    await lab.close().catch(() => {});
  }
}

async function sampleGateway(lab, r) {
  const proc = r.gateway.sample();
  const res = await httpGet(`${r.admin}/metrics`, { timeoutMs: 5000 });
  const value = (re) => {
    const m = re.exec(res.text);
    return m ? Number(m[1]) : NaN;
  };
  return {
    atMs: Date.now(), rssKb: proc?.rssKb ?? NaN, fds: proc?.fds ?? NaN,
    heapBytes: value(/^detour_heap_used_bytes (\S+)$/m),
    // 0 until the gateway's first full collection: no figure yet.
    heapAfterGcBytes: value(/^detour_heap_after_gc_bytes (\S+)$/m) || NaN,
    loopP99Seconds: value(/^detour_event_loop_delay_p99_seconds (\S+)$/m),
    reloadsOk: value(/^detour_config_reloads_total\{result="success"\} (\S+)$/m),
    reloadsFailed: value(/^detour_config_reloads_total\{result="failure"\} (\S+)$/m),
  };
}

const SERIES = [
  ['rssKb', 'RSS', (v) => `${mb(v * 1024)} MB`],
  ['heapAfterGcBytes', 'heap after full GC', (v) => `${mb(v)} MB`],
  ['fds', 'open fds', (v) => v.toFixed(1)],
  ['loopP99Seconds', 'event-loop p99', (v) => `${msOf(v)} ms`],
];

function report({ lab, row, samples, final, rewrites, minutes, rate, machine }) {
  const good = samples.filter((s) => !s.error);
  const inMinute = (m) => good.filter((s) => s.atMs >= lab.startedMs + m * 60_000 && s.atMs < lab.startedMs + (m + 1) * 60_000);
  const mean = (values) => {
    const xs = values.filter((x) => Number.isFinite(x));
    return xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : NaN;
  };
  const recordsIn = (m) => lab.load.records.filter((x) => x.startMs >= lab.startedMs + m * 60_000 && x.startMs < lab.startedMs + (m + 1) * 60_000);
  const perMinute = [];
  for (let m = 0; m < minutes; m++) {
    const ss = inMinute(m);
    const recs = recordsIn(m);
    perMinute.push({
      minute: m + 1, samples: ss.length, requests: recs.length,
      failed: recs.filter((x) => x.error !== null || x.status === null || x.status >= 500).length,
      rssMb: +mb(mean(ss.map((s) => s.rssKb)) * 1024), heapMb: +mb(mean(ss.map((s) => s.heapBytes))),
      heapAfterGcMb: +mb(mean(ss.map((s) => s.heapAfterGcBytes))),
      fds: +mean(ss.map((s) => s.fds)).toFixed(1), loopP99Ms: +msOf(mean(ss.map((s) => s.loopP99Seconds))),
    });
  }
  const second = Math.min(1, minutes - 1);
  const last = minutes - 1;
  const growth = {};
  for (const [key] of SERIES) {
    const a = mean(inMinute(second).map((s) => s[key]));
    const b = mean(inMinute(last).map((s) => s[key]));
    growth[key] = { secondMinute: a, lastMinute: b, ratio: b / a, flat: Number.isFinite(b / a) && b / a <= 1 + FLAT };
  }
  const reloadsOk = final?.reloadsOk ?? good.at(-1)?.reloadsOk ?? 0;
  const reloadsFailed = final?.reloadsFailed ?? good.at(-1)?.reloadsFailed ?? 0;
  const reloadsMissed = Math.max(0, rewrites - reloadsOk);
  const mustBeZero = {
    failedHealthy: row.failedHealthy, forbiddenArrivals: row.forbiddenArrivals, postsTwice: row.postsTwice, restarts: row.restarts,
    reloadsMissedOrFailed: reloadsMissed + reloadsFailed, sampleErrors: samples.length - good.length,
  };
  const allFlat = SERIES.every(([key]) => growth[key].flat);
  const zeros = Object.values(mustBeZero).every((v) => v === 0);
  const ok = allFlat && zeros;

  console.log('');
  console.log('| minute | requests | failed | RSS MB | heap in use MB | heap after full GC MB | open fds | event-loop p99 ms |');
  console.log('|---:|---:|---:|---:|---:|---:|---:|---:|');
  for (const p of perMinute) console.log(`| ${p.minute} | ${p.requests} | ${p.failed} | ${p.rssMb} | ${p.heapMb} | ${Number.isFinite(p.heapAfterGcMb) ? p.heapAfterGcMb : '-'} | ${p.fds} | ${p.loopP99Ms} |`);
  console.log('');
  console.log(`requests ${row.sent}, failed ${row.failed} (healthy site existed: ${row.failedHealthy}), to drained/down site ${row.forbiddenArrivals}, POST twice ${row.postsTwice}, restarts ${row.restarts}; reloads ${reloadsOk} ok of ${rewrites} rewrites, ${reloadsFailed} failed; worst latency ${row.worstMs} ms (bound ${row.boundMs}, reported, not part of the soak verdict)`);
  if (Object.keys(row.excusedFailures).length) console.log(`excused failures: ${JSON.stringify(row.excusedFailures)}`);
  for (const [key, name, fmt] of SERIES) {
    const g = growth[key];
    console.log(`${name}: minute ${second + 1} ${fmt(g.secondMinute)} -> minute ${last + 1} ${fmt(g.lastMinute)} (x${g.ratio.toFixed(2)}, ${!g.flat ? 'GROWING' : g.ratio < 1 - 0.1 ? 'flat: falling' : 'flat'})`);
  }
  console.log(`soak: ${ok ? 'PASS' : 'FAIL'}${allFlat ? '' : ' (a series is not flat)'}${zeros ? '' : ` (must be 0: ${JSON.stringify(mustBeZero)})`}`);
  return {
    mode: 'soak', machine, date: new Date().toISOString(), minutes, rate,
    schedule: { failoverAtS: FAILOVER_AT_S, failoverForS: FAILOVER_FOR_S, reloadEveryS: RELOAD_EVERY_S, sampleEveryMs: SAMPLE_EVERY_MS },
    row, rewrites, reloadsOk, reloadsFailed, mustBeZero, growth, perMinute, samples, ok,
  };
}

function mb(bytes) { return Number.isFinite(bytes) ? (bytes / 1024 / 1024).toFixed(1) : 'NaN'; }
function msOf(seconds) { return Number.isFinite(seconds) ? (seconds * 1000).toFixed(1) : 'NaN'; }

// ---- --soak --random: a seeded random fault every 20 s ---------------------

const FAULTS = [
  ['a1 killed', (lab) => lab.fault('a1', 'killed'), (lab) => lab.heal('a1')],
  ['a1 hung', (lab) => lab.fault('a1', 'hang'), (lab) => lab.heal('a1')],
  ['a2 5xx storm', (lab) => lab.fault('a2', '5xx'), (lab) => lab.heal('a2')],
  ['b1 flapping', (lab) => lab.fault('b1', 'flapping', { upMs: 2000, downMs: 1000 }), (lab) => lab.heal('b1')],
  ['a1 cuts answers', (lab) => lab.fault('a1', 'cut'), (lab) => lab.heal('a1')],
  ['building A drained', (lab) => lab.drain({ building: 'A' }), (lab) => lab.undrain({ building: 'A' })],
  ['policy garbage', (lab) => { writeFileSync(lab.file, 'sites: {{'); lab.note('policy garbage'); }, (lab) => { writeFileSync(lab.file, lab.policy); lab.note('policy restored'); }],
];

async function runRandomSoak({ minutes, rate, machine, seed }) {
  let state = seed;
  const random = () => { state = (state * 1103515245 + 12345) % 2 ** 31; return state / 2 ** 31; };
  const ms = minutes * 60_000;
  console.log(`detour soak (random): ${minutes} min at ${rate} req/s, a random fault every 20 s (healed after 6 s), seed ${seed}`);
  console.log(`machine: ${machine}`);
  const lab = await Lab.start({ replicas: 1, rate });
  lab.sampleEveryMs = 5000;
  const applied = [];
  try {
    lab.begin();
    while (Date.now() - lab.startedMs < ms - 20_000) {
      await sleep(14_000);
      const [name, apply, heal] = FAULTS[Math.floor(random() * FAULTS.length)];
      applied.push(name);
      await apply(lab);
      await sleep(6000);
      await heal(lab);
      const s = lab.resources.at(-1);
      console.log(`  +${((Date.now() - lab.startedMs) / 1000).toFixed(0)} s: ${name}; RSS ${(s.rssKb / 1024).toFixed(1)} MB, ${s.fds} fds, ${lab.load.records.length} requests`);
    }
    const left = lab.startedMs + ms - Date.now();
    if (left > 0) await sleep(left);
    await lab.end();
    const row = lab.analyse({ name: `soak ${minutes} min`, boundMs: BOUND_MS });
    const minuteMean = (m, k) => {
      const xs = lab.resources.filter((r) => r.atMs >= lab.startedMs + m * 60_000 && r.atMs < lab.startedMs + (m + 1) * 60_000).map((r) => r[k]);
      return xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : NaN;
    };
    const last = Math.max(1, Math.floor((lab.endedMs - lab.startedMs) / 60_000) - 1);
    const growth = (k) => {
      const second = minuteMean(1, k);
      const end = minuteMean(last, k);
      return { secondMinute: second, lastMinute: end, ratio: end / second, flat: Math.abs(end / second - 1) <= FLAT };
    };
    const perMinute = [];
    for (let m = 0; m <= last; m++) perMinute.push({ minute: m + 1, rssMb: +(minuteMean(m, 'rssKb') / 1024).toFixed(1), fds: +minuteMean(m, 'fds').toFixed(1) });
    const report = { mode: 'soak-random', machine, date: new Date().toISOString(), minutes, rate, seed, faults: applied, row, rss: growth('rssKb'), fds: growth('fds'), perMinute, samples: lab.resources, ok: row.verdict === 'PASS' };
    console.log('');
    console.log('| minute | RSS MB | open fds |');
    console.log('|---:|---:|---:|');
    for (const p of perMinute) console.log(`| ${p.minute} | ${p.rssMb} | ${p.fds} |`);
    console.log('');
    console.log(`requests ${row.sent}, failed ${row.failed} (healthy site existed: ${row.failedHealthy}), to drained/down site ${row.forbiddenArrivals}, POST twice ${row.postsTwice}, restarts ${row.restarts}, worst ${row.worstMs} ms / ${row.boundMs}: ${row.verdict}${row.problems.length ? ` (${row.problems.join('; ')})` : ''}`);
    console.log(`RSS: minute 2 ${(report.rss.secondMinute / 1024).toFixed(1)} MB -> minute ${last + 1} ${(report.rss.lastMinute / 1024).toFixed(1)} MB (x${report.rss.ratio.toFixed(2)}, ${report.rss.flat ? 'flat' : 'GROWING'}); fds ${report.fds.secondMinute.toFixed(1)} -> ${report.fds.lastMinute.toFixed(1)} (${report.fds.flat ? 'flat' : 'GROWING'})`);
    return report;
  } finally {
    await lab.end().catch(() => {});
    await lab.close().catch(() => {});
  }
}
