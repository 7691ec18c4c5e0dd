#!/usr/bin/env node
// What starting a large policy costs in one process, split in two: reading the
// file (parse, schema, cross-references, freeze) and startGateway (the first
// decision, the first probe round, the decision when it ends). The policy is
// the shape of bench/scale.mjs (N routes over N/10 sites); its sites point at
// a closed loopback port, so every probe is refused at once and the figure is
// the gateway's own work, not the sites' answers.
//
//   node bench/start-cost.mjs [ROUTES] [RUNS]    # after npm run build; default 10000 routes, 3 runs
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
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
} finally {
  await rm(dir, { recursive: true, force: true });
}
