// The shipped Prometheus alert rules: valid, unit-tested by promtool, written
// against metrics detour exports, documented, and with unit tests that can fail.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { parse, stringify } from 'yaml';
import { findPromBinaries } from '../helpers/prometheus.js';
import {
  REQUESTED_METRICS, alertTestsFile, alertsFile, grafanaDir, listMetricNames, prometheusConfigFile,
  readAlertRules, readAlertTestCases, readExportedMetrics, resolveMetric, runTool,
} from './shipped-files.js';

const { promtool } = findPromBinaries();
const rules = readAlertRules();
const alerts = rules.filter((r) => r.alert !== undefined);

const REQUIRED_ALERTS = [
  'DetourSiteDown', 'DetourBuildingDown', 'DetourRouteFailedOver', 'DetourFailbackBlockedByIntegrity',
  'DetourManualFailoverPending', 'DetourRouteUnavailable', 'DetourConfigReloadFailed', 'DetourStateStoreDown',
  'DetourHigh5xxRate',
];

t.test('promtool check rules accepts alerts.yaml', async (t) => {
  const res = await runTool(promtool, ['check', 'rules', alertsFile]);
  t.equal(res.code, 0, res.stdout + res.stderr);
  t.match(res.stdout, new RegExp(`SUCCESS: ${rules.length} rules found`));
});

t.test('promtool test rules passes alerts.test.yaml', async (t) => {
  const res = await runTool(promtool, ['test', 'rules', alertTestsFile]);
  t.equal(res.code, 0, res.stdout + res.stderr);
});

t.test('the example Prometheus config is valid and loads the rules', async (t) => {
  const res = await runTool(promtool, ['check', 'config', prometheusConfigFile]);
  t.equal(res.code, 0, res.stdout + res.stderr);
  t.match(res.stdout, /1 rule files found/);
});

t.test('every required alert exists with severity, summary and a runbook', async (t) => {
  const names = alerts.map((a) => a.alert);
  t.equal(new Set(names).size, names.length, 'alert names are unique');
  for (const name of REQUIRED_ALERTS) t.ok(names.includes(name), `${name} is defined`);
  const readme = readFileSync(join(grafanaDir, 'README.md'), 'utf8');
  for (const a of alerts) {
    t.match(a.alert, /^Detour[A-Z][A-Za-z0-9]+$/, `${a.alert} is named Detour*`);
    t.match(a.labels?.severity, /^(critical|warning|info)$/, `${a.alert} has a severity`);
    t.ok((a.annotations?.summary ?? '').length > 10, `${a.alert} has a summary`);
    t.match(a.annotations?.description, /`detour [a-z]+/, `${a.alert} description says which detour command to run`);
    t.ok(readme.includes(a.alert!), `${a.alert} is explained in grafana/README.md`);
  }
});

t.test('every metric an alert uses is exported by createMetrics()', async (t) => {
  const exported = await readExportedMetrics();
  for (const r of rules) {
    const names = listMetricNames(r.expr ?? '');
    for (const name of names) {
      if (resolveMetric(name, exported)) t.pass(`${r.alert}: ${name}`);
      else if (REQUESTED_METRICS.has(name)) t.fail(`${r.alert}: ${name} is only requested`, { todo: REQUESTED_METRICS.get(name) });
      else t.fail(`${r.alert}: ${name} is not exported by createMetrics()`);
    }
  }
});

t.test('every alert has unit tests where it fires and where it must not', async (t) => {
  const cases = readAlertTestCases();
  for (const a of alerts) {
    const mine = cases.filter((c) => c.alertname === a.alert);
    t.ok(mine.some((c) => (c.exp_alerts ?? []).length > 0), `${a.alert} has a firing case`);
    t.ok(mine.some((c) => (c.exp_alerts ?? []).length === 0), `${a.alert} has a not-firing case`);
  }
});

// Mutants of the rules that the unit tests must reject: proof they assert
// thresholds, durations, aggregation and drain handling, not just syntax.
const mutants: Array<{ name: string; alert: string; from: string; to: string }> = [
  { name: '5xx threshold', alert: 'DetourHigh5xxRate', from: ') > 0.05', to: ') > 0.2' },
  { name: '5xx minimum rate', alert: 'DetourHigh5xxRate', from: 'sum by (route) (rate(detour_requests_total[5m])) > 0.2', to: 'sum by (route) (rate(detour_requests_total[5m])) > 0' },
  { name: 'failed-over duration', alert: 'DetourRouteFailedOver', from: 'for: 15m', to: 'for: 5m' },
  { name: 'drained sites still alert', alert: 'DetourSiteDown', from: 'max by (site, building) (detour_site_up) == 0\n          unless on (site)', to: 'max by (site, building) (detour_site_up) == 0\n          and on (site)' },
  { name: 'one replica decides a site is down', alert: 'DetourSiteDown', from: 'max by (site, building) (detour_site_up)', to: 'min by (site, building) (detour_site_up)' },
  { name: 'first reload failure missed', alert: 'DetourConfigReloadFailed', from: '> 0 unless detour_config_reloads_total', to: '> 1 unless detour_config_reloads_total' },
];

/** alerts.test.yaml cut down to the test groups that check `alert` (keeps promtool runs short). */
function selectTests(alert: string): string {
  const doc = parse(readFileSync(alertTestsFile, 'utf8')) as { tests: Array<{ alert_rule_test?: Array<{ alertname?: string }> }> };
  doc.tests = doc.tests.filter((g) => (g.alert_rule_test ?? []).some((c) => c.alertname === alert));
  return stringify(doc);
}

t.test('the unit tests catch broken rules', async (t) => {
  const source = readFileSync(alertsFile, 'utf8');
  await Promise.all(mutants.map(async (m) => {
    t.ok(source.includes(m.from), `${m.name}: mutation point still exists in alerts.yaml`);
    const dir = await mkdtemp(join(tmpdir(), 'detour-alerts-'));
    try {
      await writeFile(join(dir, 'alerts.yaml'), source.replace(m.from, m.to));
      await writeFile(join(dir, 'alerts.test.yaml'), selectTests(m.alert));
      const res = await runTool(promtool, ['test', 'rules', join(dir, 'alerts.test.yaml')]);
      t.not(res.code, 0, `${m.name}: promtool test rules fails on the mutant`);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }));
});
