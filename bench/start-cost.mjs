#!/usr/bin/env node
// What starting a large policy costs in one process, split in two: reading the
// file (parse, schema, cross-references, freeze) and startGateway (the first
// decision, the first probe round, the decision when it ends); then the same
// policy started as an operator starts it, `detour start` in a new process,
// timed to its listening log line. The policy is
// the shape of bench/scale.mjs (N routes over N/10 sites); its sites point at
// a closed loopback port, so every probe is refused at once and the figure is
// the gateway's own work, not the sites' answers.
//
//   node bench/start-cost.mjs [ROUTES] [RUNS]    # after npm run build; default 10000 routes, 3 runs
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadPolicyFile } from '../dist/config/load-policy.js';
import { startGateway } from '../dist/gateway.js';

const routes = Number(process.argv[2] ?? 10_000);
const runs = Number(process.argv[3] ?? 3);
const sites = Math.max(1, Math.round(routes / 10));
// Port 9 (discard) on loopback: nothing listens there, connects are refused.
const url = 'http://127.0.0.1:9';
const fast = 'health: { interval: 100ms, timeout: 500ms, rise: 1, fall: 1, jitter: 0 }';
const lines = ['listen: { host: 127.0.0.1, port: 0 }', 'admin: { host: 127.0.0.1, port: 0 }', 'sites:',
  `  hub: { url: "${url}", building: hub-dc, ${fast} }`, `  quiet: { url: "${url}", building: quiet-dc, ${fast} }`];
for (let i = 0; i < sites; i++) lines.push(`  s${i}: { url: "${url}/s${i}", building: b${i % 50}, health: { interval: 5s, timeout: 1s } }`);
lines.push('routes:', '  - { name: quiet, match: { host: quiet.example }, sites: [quiet] }');
for (let i = 0; i < routes; i++) {
  lines.push(`  - { name: r${i}, match: { host: r${i}.example }, sites: [hub, s${i % sites}], priority: ${1 + (i % 3)}, failback: { holdDown: 0s } }`);
}
/** `node dist/cli.js start` on the policy: ms until it logs its listening address; then SIGTERM, by its PID. */
async function cliStartMs() {
  const started = performance.now();
  const child = spawn(process.execPath, [fileURLToPath(new URL('../dist/cli.js', import.meta.url)), 'start', '-c', file, '--no-watch'], { stdio: ['ignore', 'pipe', 'inherit'] });
  const exited = new Promise((resolve) => child.once('exit', resolve));
  try {
    await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('detour start did not listen within 60 s')), 60_000);
      let seen = '';
      child.stdout.on('data', (chunk) => {
        seen += chunk;
        if (seen.includes('"listen":')) { clearTimeout(timer); resolve(); }
      });
      child.once('exit', (code) => { clearTimeout(timer); reject(new Error(`detour start exited (${code}) before listening`)); });
    });
    return performance.now() - started;
  } finally {
    child.kill('SIGTERM');
    await exited;
  }
}

const dir = await mkdtemp(join(tmpdir(), 'detour-start-cost-'));
const file = join(dir, 'policy.yaml');
await writeFile(file, `${lines.join('\n')}\n`);
try {
  for (let run = 1; run <= runs; run++) {
    const t0 = performance.now();
    const loaded = await loadPolicyFile(file, {});
    if (!loaded.ok) throw new Error(JSON.stringify(loaded.errors.slice(0, 3)));
    const t1 = performance.now();
    const gateway = await startGateway({ policy: loaded.policy });
    const t2 = performance.now();
    await gateway.close();
    console.log(`${routes} routes, ${sites + 2} sites, run ${run}: loadPolicyFile ${(t1 - t0).toFixed(0)} ms, startGateway ${(t2 - t1).toFixed(0)} ms, together ${(t2 - t0).toFixed(0)} ms`);
  }
  // As an operator sees it: a new process, from spawn to the log line that says where it listens
  // (Node's own start and loading every module included, which the runs above had done already).
  for (let run = 1; run <= runs; run++) {
    console.log(`${routes} routes, ${sites + 2} sites, run ${run}: detour start to listening ${(await cliStartMs()).toFixed(0)} ms`);
  }
} finally {
  await rm(dir, { recursive: true, force: true });
}
