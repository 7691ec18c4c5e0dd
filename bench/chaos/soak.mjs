// Soak: one gateway under a steady open-loop load for N minutes, with a random
// fault (seeded, so a run can be repeated) every 20 s, healed 6 s later. The
// gateway's RSS and open file descriptors are sampled every 5 s from /proc.
// Reports the same must-be-0 columns as the chaos table, plus growth: the last
// minute's mean against the second minute's (the first holds start-up and JIT
// warm-up). "flat" means within 10 %.
import { writeFileSync } from 'node:fs';
import { BOUND_MS, Lab } from './lab.mjs';
import { sleep } from './processes.mjs';

const FAULTS = [
  ['a1 killed', (lab) => lab.fault('a1', 'killed'), (lab) => lab.heal('a1')],
  ['a1 hung', (lab) => lab.fault('a1', 'hang'), (lab) => lab.heal('a1')],
  ['a2 5xx storm', (lab) => lab.fault('a2', '5xx'), (lab) => lab.heal('a2')],
  ['b1 flapping', (lab) => lab.fault('b1', 'flapping', { upMs: 2000, downMs: 1000 }), (lab) => lab.heal('b1')],
  ['a1 cuts answers', (lab) => lab.fault('a1', 'cut'), (lab) => lab.heal('a1')],
  ['building A drained', (lab) => lab.drain({ building: 'A' }), (lab) => lab.undrain({ building: 'A' })],
  ['policy garbage', (lab) => { writeFileSync(lab.file, 'sites: {{'); lab.note('policy garbage'); }, (lab) => { writeFileSync(lab.file, lab.policy); lab.note('policy restored'); }],
];

export async function runSoak({ minutes, rate, machine, seed = 42 }) {
  let state = seed;
  const random = () => { state = (state * 1103515245 + 12345) % 2 ** 31; return state / 2 ** 31; };
  const ms = minutes * 60_000;
  console.log(`detour soak: ${minutes} min at ${rate} req/s, a random fault every 20 s (healed after 6 s), seed ${seed}`);
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
      return { secondMinute: second, lastMinute: end, ratio: end / second, flat: Math.abs(end / second - 1) <= 0.1 };
    };
    const perMinute = [];
    for (let m = 0; m <= last; m++) perMinute.push({ minute: m + 1, rssMb: +(minuteMean(m, 'rssKb') / 1024).toFixed(1), fds: +minuteMean(m, 'fds').toFixed(1) });
    const report = { mode: 'soak', machine, date: new Date().toISOString(), minutes, rate, seed, faults: applied, row, rss: growth('rssKb'), fds: growth('fds'), perMinute, samples: lab.resources, ok: row.verdict === 'PASS' };
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
