// `promtool check metrics` on what detour actually exposes, with a sample in
// every metric: naming, units, help text and type conventions.
import t from 'tap';
import { Registry } from 'prom-client';
import type { Policy } from '../../src/config/policy.js';
import { createMetrics } from '../../src/metrics/metrics.js';
import { createWorkerMetrics } from '../../src/workers/worker-metrics.js';
import type { RouteDecision, RouteTable } from '../../src/routing/route-table.js';
import { findPromBinaries } from '../helpers/prometheus.js';
import { defaultPassive } from '../helpers/policy.js';
import { runTool } from './shipped-files.js';

const health = { path: '/healthz', intervalMs: 1000, jitter: 0.1, timeoutMs: 500, rise: 2, fall: 2, expectStatus: [200] };
const site = (name: string, building: string) => ({
  name, url: `http://127.0.0.1:1/${name}`, building, timeouts: { connectMs: 1000, responseMs: 30_000 }, health, passive: { ...defaultPassive, failureThreshold: 0 },
});
const policy: Policy = {
  file: 'inline.yaml',
  listen: { host: '127.0.0.1', port: 0 },
  admin: { host: '127.0.0.1', port: 0, publicRead: true },
  sites: [site('primary', 'b1'), site('backup', 'b2')],
  routes: [{
    name: 'r', match: { pathPrefix: '/' }, sites: ['primary', 'backup'], priority: 1, failover: { mode: 'auto' },
    failback: { mode: 'auto', holdDownMs: 0, ramp: [100], stepMs: 1000 }, retry: { on: [], maxBodyBytes: 0, budget: { percent: 20, minPerSecond: 3 } },
    limits: { bodyBytes: 1024 },
  }],
  drain: { buildings: [], sites: [] },
  unavailable: { status: 503, retryAfterSeconds: 30 },
  notify: { webhooks: [] },
  shutdown: { graceMs: 0 },
  limits: { headerBytes: 16384, headersTimeoutMs: 10_000, requestTimeoutMs: 60_000, bodyBytes: 1024, keepAliveTimeoutMs: 5000, maxConnections: 100 },
  trustedProxies: [],
};
const decision: RouteDecision = {
  name: 'r', state: 'blocked', active: 'backup', weights: [{ site: 'backup', weight: 100 }], eligible: ['primary', 'backup'],
  preferred: 'primary', reason: 'integrity mismatch', sinceMs: 0, blocked: { code: 'integrity', message: 'mismatch' },
};
const table: RouteTable = {
  version: 1, computedAtMs: 0, policy, routes: [decision], byName: new Map([['r', decision]]), nextWakeMs: null,
};

t.test('promtool check metrics finds no problems in the exposition', async (t) => {
  const { promtool } = findPromBinaries();
  const registry = new Registry();
  const m = createMetrics(registry);
  m.bindState(() => ({
    table,
    sites: [{ name: 'primary', building: 'b1', up: false }, { name: 'backup', building: 'b2', up: true }],
    drainedSites: new Set(['primary']),
    drainedBuildings: new Set(['b1']),
    stateStoreUp: true,
  }));
  m.requests.inc({ route: 'r', site: 'backup', code: '200' });
  m.requestDuration.observe({ route: 'r', site: 'backup' }, 0.02);
  m.failovers.inc({ route: 'r', from: 'primary', to: 'backup', reason: 'site_down' });
  m.healthChecks.inc({ site: 'primary', result: 'fail' });
  m.healthCheckDuration.observe({ site: 'primary' }, 0.5);
  m.retries.inc({ route: 'r', from: 'primary', to: 'backup' });
  m.retryBudgetExhausted.inc({ route: 'r' });
  m.configReloads.inc({ result: 'success' });
  m.integrityChecks.inc({ route: 'r', result: 'mismatch' });
  m.notifications.inc({ result: 'sent' });
  m.passiveFailures.inc({ site: 'primary', kind: 'request' });
  m.passiveSuspicions.inc({ site: 'primary', result: 'refuted' });
  m.poisonRequests.inc({ route: 'r' });
  createWorkerMetrics(registry, () => ({ serving: 2, starting: 1 })).restarts.inc();

  const exposition = await registry.metrics();
  const families = [...exposition.matchAll(/^# TYPE (\S+) /gm)].map((x) => x[1]!);
  for (const name of families) {
    t.match(exposition, new RegExp(`^${name}(_bucket|_sum|_count)?(\\{| )`, 'm'), `${name} has a sample`);
  }
  const res = await runTool(promtool, ['check', 'metrics'], exposition);
  t.equal(res.code, 0, `promtool check metrics exit code\n${res.stdout}${res.stderr}`);
  t.equal((res.stdout + res.stderr).trim(), '', 'no lint problems');
});

t.test('promtool check metrics would report a badly named metric', async (t) => {
  // Guards the check above: promtool must actually read stdin and complain.
  const { promtool } = findPromBinaries();
  const bad = '# HELP detour_bad_counter Oops.\n# TYPE detour_bad_counter counter\ndetour_bad_counter 1\n';
  const res = await runTool(promtool, ['check', 'metrics'], bad);
  t.not(res.code, 0);
  t.match(res.stdout + res.stderr, /_total/);
});
