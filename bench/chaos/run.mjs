#!/usr/bin/env node
// The chaos suite: every scenario against real processes on loopback (the
// gateway through `node dist/cli.js start`, fake sites, redis-server), under an
// open-loop load; one table per run, JSON beside it, exit 1 when a must-be-0
// column is not 0 or a scenario's own check fails.
//
//   npm run chaos                      short: every scenario once, 6 s of load at 40 req/s (a scenario's shortMs if it has one)
//   npm run chaos -- --full            3 repetitions, 15 s each at 80 req/s
//   npm run soak [-- minutes]          10 min: a failover every minute, a reload every 30 s; RSS, heap, fds, loop p99 flat
//   npm run soak -- --random           the older soak: a seeded random fault every 20 s
//   npm run chaos -- --only "site hung" --rate 60 --seconds 8 --repeat 2 --json FILE
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { cpus, loadavg } from 'node:os';
import { BOUND_MS, DETECTION_MS, Lab, TIMING } from './lab.mjs';
import { scenarios } from './scenarios.mjs';
import { runSoak } from './soak.mjs';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    full: { type: 'boolean', default: false },
    soak: { type: 'boolean', default: false },
    random: { type: 'boolean', default: false },
    only: { type: 'string', multiple: true },
    rate: { type: 'string' },
    seconds: { type: 'string' },
    repeat: { type: 'string' },
    json: { type: 'string', default: 'chaos-report.json' },
  },
});

const mode = values.soak ? 'soak' : values.full ? 'full' : 'short';
const rate = Number(values.rate ?? (mode === 'full' ? 80 : 40));
const seconds = Number(values.seconds ?? (mode === 'full' ? 15 : 6));
const repeat = Number(values.repeat ?? (mode === 'full' ? 3 : 1));
const machine = `${cpus().length} cores (${cpus()[0]?.model.trim() ?? 'unknown'}), load average ${loadavg().map((x) => x.toFixed(1)).join(' ')}, node ${process.version}`;

if (mode === 'soak') {
  const minutes = Number(positionals[0] ?? 10);
  const report = await runSoak({ minutes, rate: Number(values.rate ?? 50), machine, random: values.random });
  writeFileSync(values.json === 'chaos-report.json' ? 'soak-report.json' : values.json, `${JSON.stringify(report, null, 2)}\n`);
  process.exitCode = report.ok ? 0 : 1;
} else {
  const chosen = values.only ? scenarios.filter((s) => values.only.includes(s.name)) : scenarios;
  if (chosen.length === 0) throw new Error(`no scenario named ${values.only}; known: ${scenarios.map((s) => s.name).join(', ')}`);
  console.log(`detour chaos (${mode}): ${chosen.length} scenarios x ${repeat}, ${seconds} s each at ${rate} req/s (20% POST)`);
  console.log(`machine: ${machine}`);
  console.log(`probes every ${TIMING.intervalMs} ms, timeout ${TIMING.probeTimeoutMs} ms, fall ${TIMING.fall} (detection ${DETECTION_MS} ms); upstream response timeout ${TIMING.responseMs} ms; decision allowance ${TIMING.decisionAllowanceMs} ms`);
  const rows = [];
  const started = Date.now();
  for (let rep = 0; rep < repeat; rep++) {
    for (const s of chosen) {
      const t0 = Date.now();
      // shortMs: a scenario's own length in the short run (its lab starts slower: worker processes).
      const ms = mode === 'short' && values.seconds === undefined && s.shortMs ? s.shortMs : seconds * 1000;
      const row = await runScenario(s, { rate, ms: Math.max(ms, s.minMs ?? 0) });
      row.repetition = rep + 1;
      row.seconds = (Date.now() - t0) / 1000;
      rows.push(row);
      process.stdout.write(`  ${row.verdict.padEnd(5)} ${s.name}${repeat > 1 ? ` #${rep + 1}` : ''} (${row.seconds.toFixed(1)} s)${row.problems.length ? `: ${row.problems.join('; ')}` : ''}\n`);
    }
  }
  printTable(rows);
  const failed = rows.filter((r) => r.verdict === 'FAIL');
  const report = {
    mode, machine, date: new Date().toISOString(), rate, seconds, repeat, timing: TIMING, detectionMs: DETECTION_MS,
    totalSeconds: (Date.now() - started) / 1000, passed: rows.length - failed.length, failed: failed.length, rows,
  };
  writeFileSync(values.json, `${JSON.stringify(report, null, 2)}\n`);
  console.log(`chaos: ${report.passed} passed, ${report.failed} failed in ${report.totalSeconds.toFixed(0)} s (details in ${values.json})`);
  process.exitCode = failed.length === 0 ? 0 : 1;
}

async function runScenario(s, { rate, ms }) {
  let lab;
  try {
    lab = await Lab.start({ replicas: s.replicas ?? 1, fdLimit: s.fdLimit, rate, workers: s.workers });
    lab.begin();
    const done = Promise.resolve(s.run(lab, ms));
    await done;
    const left = lab.startedMs + ms - Date.now();
    if (left > 0) await new Promise((r) => setTimeout(r, left));
    await lab.end();
    return lab.analyse({ name: s.name, boundMs: s.boundMs ?? BOUND_MS, expectedFail: s.expectedFail });
  } catch (err) {
    // A scenario that cannot run is a failure, never a silent pass.
    return {
      scenario: s.name, verdict: s.expectedFail ? 'XFAIL' : 'FAIL', problems: [`harness error: ${err instanceof Error ? err.message : String(err)}`],
      sent: lab?.load.records.length ?? 0, failed: 0, failedHealthy: 0, forbiddenArrivals: 0, worstMs: 0, boundMs: s.boundMs ?? BOUND_MS,
      postsTwice: 0, restarts: lab ? lab.gateways.filter((g) => g.exit && !g.expectedExit).length : 0,
      gatewayLogTail: lab?.gateways.map((g) => `${g.name}: ${g.log.slice(-1500)}`),
    };
  } finally {
    await lab?.end().catch(() => {});
    await lab?.close().catch(() => {});
  }
}

function printTable(rows) {
  const head = ['scenario', 'sent', 'failed', 'failed, healthy site existed (0)', 'to drained/down site after decision (0)', 'worst ms / bound', 'POST run twice (0)', 'gateway restarts (0)', 'verdict'];
  const body = rows.map((r) => [
    `${r.scenario}${r.repetition > 1 || repeat > 1 ? ` #${r.repetition}` : ''}`, r.sent, r.failed, r.failedHealthy, r.forbiddenArrivals,
    `${r.worstMs} / ${r.boundMs}`, r.postsTwice, r.restarts, r.verdict,
  ].map(String));
  console.log('');
  console.log(`| ${head.join(' | ')} |`);
  console.log(`|${head.map((h, i) => (i === 0 ? '---' : '---:')).join('|')}|`);
  for (const b of body) console.log(`| ${b.join(' | ')} |`);
  console.log('');
}
