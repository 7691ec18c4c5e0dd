#!/usr/bin/env node
// What one decision of N routes costs in CPU, without a gateway around it:
// N routes over N/10 sites, every route listing one "hub" site, which goes down
// and comes back 40 times; each step is one decideRoutes of every route (two
// when a failback ramp needs a second). Prints the median, min and max.
//
//   npm run build && node bench/decide-cost.mjs [ROUTES]   (default 2000)
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decideRoutes } from '../dist/routing/decide-routes.js';
import { loadPolicyFile } from '../dist/config/load-policy.js';
const routes = Number(process.argv[2] ?? 2000), sites = routes / 10;
const lines = ['sites:', '  hub: { url: "http://127.0.0.1:1", building: hub-dc }'];
for (let i = 0; i < sites; i++) lines.push(`  s${i}: { url: "http://127.0.0.1:2/s${i}", building: b${i % 50} }`);
lines.push('routes:');
for (let i = 0; i < routes; i++) lines.push(`  - { name: r${i}, match: { host: r${i}.example }, sites: [hub, s${i % sites}], priority: ${1 + (i % 3)}, failback: { holdDown: 0s } }`);
const dir = await mkdtemp(join(tmpdir(), 'db-')); const file = join(dir, 'p.yaml');
await writeFile(file, lines.join('\n') + '\n');
const { policy } = await loadPolicyFile(file, {});
const h = (status, since) => ({ status, sinceMs: since, reason: status, checkedAtMs: since, fails: 0, passes: 0 });
const ov = { drainedSites: new Set(), drainedBuildings: new Set(), pins: new Map(), failbackApprovals: new Map(), failoverApprovals: new Map() };
const health = new Map(policy.sites.map((s) => [s.name, h('up', 0)]));
let now = 1000;
let table = decideRoutes({ policy, health, overrides: ov, integrity: new Map(), prev: undefined, nowMs: now });
const times = [];
for (let k = 0; k < 40; k++) {
  now += 1000;
  health.set('hub', h(k % 2 === 0 ? 'down' : 'up', now));
  const t0 = performance.now();
  table = decideRoutes({ policy, health: new Map(health), overrides: ov, integrity: new Map(), prev: table, nowMs: now });
  // failback needs a second decision (ramp to preferred) when holdDown 0
  if (table.nextWakeMs !== null) table = decideRoutes({ policy, health: new Map(health), overrides: ov, integrity: new Map(), prev: table, nowMs: now });
  times.push(performance.now() - t0);
}
times.sort((a, b) => a - b);
console.log(`routes ${routes}: decision median ${times[20].toFixed(1)} ms, min ${times[0].toFixed(1)}, max ${times[39].toFixed(1)}; per route ${(times[20] / routes * 1000).toFixed(1)} us; state ${table.routes[0].state}`);
await rm(dir, { recursive: true, force: true });
