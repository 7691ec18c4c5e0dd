// The shipped Grafana dashboard and provisioning: provisionable as-is, every
// query valid PromQL over metrics detour really exports, and every exported
// metric shown somewhere.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { parse } from 'yaml';
import { findPromBinaries } from '../helpers/prometheus.js';
import {
  DATASOURCE_UID, REQUESTED_METRICS, grafanaDir, listDashboardExprs, listMetricNames, listPanels,
  readDashboard, readExportedMetrics, resolveMetric, runTool,
} from './shipped-files.js';

const dashboard = readDashboard();
const panels = listPanels(dashboard);
const dataPanels = panels.filter((p) => p.type !== 'row');

t.test('dashboard can be provisioned as-is', async (t) => {
  t.equal(dashboard.uid, 'detour-overview', 'stable uid, so links and provisioning keep working');
  t.equal(dashboard.id, null, 'id null: Grafana assigns it');
  t.notOk('__inputs' in dashboard, 'no __inputs: provisioning does not resolve import-time inputs');
  t.notOk('__requires' in dashboard, 'no __requires');
  t.ok((dashboard.schemaVersion ?? 0) >= 36, `schemaVersion ${dashboard.schemaVersion}`);
  t.equal(dashboard.refresh, '5s');
  t.same(dashboard.time, { from: 'now-30m', to: 'now' });
  t.ok(dashboard.title, 'has a title');
});

t.test('template variables route, site, building: label_values, multi, All', async (t) => {
  const vars = new Map((dashboard.templating?.list ?? []).map((v) => [v.name, v]));
  for (const name of ['route', 'site', 'building']) {
    const v = vars.get(name);
    if (!v) {
      t.fail(`variable ${name} missing`);
      continue;
    }
    t.equal(v.type, 'query', `${name} is a query variable`);
    t.equal(v.datasource?.uid, DATASOURCE_UID, `${name} uses the detour datasource`);
    t.match(v.definition, /^label_values\(detour_[a-z_]+(\{[^}]*\})?, [a-z]+\)$/, `${name} lists label values`);
    t.equal(v.multi, true, `${name} is multi-value`);
    t.equal(v.includeAll, true, `${name} has All`);
  }
});

t.test('panels: unique ids, gridPos inside 24 columns without overlaps, titled and described', async (t) => {
  const ids = panels.map((p) => p.id);
  t.equal(new Set(ids).size, ids.length, 'panel ids are unique');
  t.ok(ids.every((id) => Number.isInteger(id)), 'every panel has an integer id');
  const boxes: Array<{ id: number | undefined; x: number; y: number; w: number; h: number }> = [];
  for (const p of panels) {
    const g = p.gridPos;
    const ok = g !== undefined && [g.x, g.y, g.w, g.h].every((n) => Number.isInteger(n) && n! >= 0) && g.w! > 0 && g.h! > 0;
    t.ok(ok, `panel ${p.id} has a full gridPos`);
    if (!ok) continue;
    t.ok(g.x! + g.w! <= 24, `panel ${p.id} fits in 24 columns`);
    boxes.push({ id: p.id, x: g.x!, y: g.y!, w: g.w!, h: g.h! });
  }
  for (let i = 0; i < boxes.length; i++) {
    for (let j = i + 1; j < boxes.length; j++) {
      const a = boxes[i]!;
      const b = boxes[j]!;
      const overlap = a.x < b.x + b.w && b.x < a.x + a.w && a.y < b.y + b.h && b.y < a.y + a.h;
      t.notOk(overlap, `panels ${a.id} and ${b.id} do not overlap`);
    }
  }
  for (const p of dataPanels) {
    t.ok(p.title && p.title.length > 3, `panel ${p.id} has a title`);
    t.ok(p.description && p.description.length > 40, `panel ${p.id} "${p.title}" tells the operator what it means`);
  }
});

t.test('every data panel and target uses the detour-prometheus datasource', async (t) => {
  t.ok(dataPanels.length >= 15, `${dataPanels.length} data panels`);
  for (const p of dataPanels) {
    t.same(p.datasource, { type: 'prometheus', uid: DATASOURCE_UID }, `panel ${p.id} "${p.title}" datasource`);
    t.ok((p.targets ?? []).length > 0, `panel ${p.id} has queries`);
    const refIds = (p.targets ?? []).map((x) => x.refId);
    t.equal(new Set(refIds).size, refIds.length, `panel ${p.id} refIds are unique`);
    for (const target of p.targets ?? []) {
      t.equal(target.datasource?.uid, DATASOURCE_UID, `panel ${p.id} target ${target.refId} datasource`);
      t.ok(target.expr && target.expr.trim().length > 0, `panel ${p.id} target ${target.refId} has an expr`);
    }
  }
});

t.test('every metric the dashboard queries is exported, and every exported metric is shown', async (t) => {
  const exported = await readExportedMetrics();
  const exprs = [
    ...listDashboardExprs(dashboard),
    ...(dashboard.templating?.list ?? []).map((v) => ({ where: `variable ${v.name}`, expr: v.definition ?? '' })),
  ];
  const shown = new Set<string>();
  for (const { where, expr } of exprs) {
    const names = listMetricNames(expr);
    t.ok(names.length > 0, `${where} queries a detour metric`);
    for (const name of names) {
      const metric = resolveMetric(name, exported);
      if (metric) shown.add(metric);
      else if (REQUESTED_METRICS.has(name)) t.fail(`${where}: ${name} is only requested`, { todo: REQUESTED_METRICS.get(name) });
      else t.fail(`${where}: ${name} is not exported by createMetrics()`);
    }
  }
  for (const metric of exported.keys()) t.ok(shown.has(metric), `${metric} appears on the dashboard`);
});

t.test('every dashboard expression is valid PromQL (checked by promtool)', async (t) => {
  const { promtool } = findPromBinaries();
  const exprs = listDashboardExprs(dashboard);
  // Grafana substitutes these before Prometheus sees the query.
  const substitutions: Record<string, string> = {
    route: '.*', site: '.*', building: '.*', __rate_interval: '1m', __interval: '15s', __range: '30m',
  };
  const rules = exprs.map(({ where, expr }, i) => {
    const unknown = [...expr.matchAll(/\$(\w+)/g)].map((m) => m[1]).filter((v) => !(v! in substitutions));
    t.same(unknown, [], `${where} uses only known variables`);
    const substituted = expr.replace(/\$(\w+)/g, (whole, v: string) => substitutions[v] ?? whole);
    return { record: `dashboard_expr_${i}`, expr: substituted };
  });
  const dir = await mkdtemp(join(tmpdir(), 'detour-dashboard-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const file = join(dir, 'dashboard-exprs.yaml');
  await writeFile(file, JSON.stringify({ groups: [{ name: 'dashboard', rules }] }));
  const res = await runTool(promtool, ['check', 'rules', file]);
  t.equal(res.code, 0, `promtool check rules on ${rules.length} dashboard expressions\n${res.stdout}${res.stderr}`);
});

t.test('provisioning points Grafana at the dashboard and the datasource uid', async (t) => {
  const datasources = parse(readFileSync(join(grafanaDir, 'provisioning', 'datasources', 'prometheus.yaml'), 'utf8')) as {
    datasources?: Array<{ uid?: string; type?: string; url?: string }>;
  };
  const ds = datasources.datasources?.find((d) => d.uid === DATASOURCE_UID);
  t.ok(ds, 'datasource with the dashboard\'s uid');
  t.equal(ds?.type, 'prometheus');
  t.equal(ds?.url, 'http://prometheus:9090');

  const providers = parse(readFileSync(join(grafanaDir, 'provisioning', 'dashboards', 'detour.yaml'), 'utf8')) as {
    providers?: Array<{ type?: string; options?: { path?: string } }>;
  };
  const provider = providers.providers?.[0];
  t.equal(provider?.type, 'file');
  const path = provider?.options?.path ?? '';
  t.match(path, /^\//, 'absolute path inside the Grafana container');
  const readme = readFileSync(join(grafanaDir, 'README.md'), 'utf8');
  t.ok(readme.includes(path), `README documents mounting grafana/dashboards at ${path}`);
});
