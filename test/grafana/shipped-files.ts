// Readers for what grafana/ ships (dashboard JSON, alert rules) and for what
// detour really exports, so the tests can hold one against the other.
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Registry } from 'prom-client';
import { parse } from 'yaml';
import { createMetrics } from '../../src/metrics/metrics.js';
import { createWorkerMetrics } from '../../src/workers/worker-metrics.js';
import { repoRoot } from '../helpers/prometheus.js';

export const grafanaDir = join(repoRoot, 'grafana');
export const dashboardFile = join(grafanaDir, 'dashboards', 'detour.json');
export const alertsFile = join(grafanaDir, 'prometheus', 'alerts.yaml');
export const alertTestsFile = join(grafanaDir, 'prometheus', 'alerts.test.yaml');
export const prometheusConfigFile = join(grafanaDir, 'prometheus', 'prometheus.yaml');

export const DATASOURCE_UID = 'detour-prometheus';

/**
 * Metrics the shipped rules use that src/metrics/metrics.ts does not export yet,
 * each with why. The tests report them as todo instead of failing, until added.
 */
export const REQUESTED_METRICS: ReadonlyMap<string, string> = new Map([]);

// Loose shapes: the tests check the fields they read.
export interface Target { refId?: string; expr?: string; datasource?: { type?: string; uid?: string } }
export interface Panel {
  id?: number; type?: string; title?: string; description?: string;
  datasource?: { type?: string; uid?: string };
  gridPos?: { h?: number; w?: number; x?: number; y?: number };
  targets?: Target[]; panels?: Panel[];
}
export interface Variable { name?: string; type?: string; multi?: boolean; includeAll?: boolean; definition?: string; query?: unknown; datasource?: { type?: string; uid?: string } }
export interface Dashboard {
  id?: unknown; uid?: string; title?: string; schemaVersion?: number; refresh?: string;
  time?: { from?: string; to?: string };
  panels?: Panel[];
  templating?: { list?: Variable[] };
  annotations?: { list?: Array<{ name?: string; expr?: string; datasource?: { uid?: string } }> };
  [key: string]: unknown;
}

export function readDashboard(): Dashboard {
  return JSON.parse(readFileSync(dashboardFile, 'utf8')) as Dashboard;
}

/** Every panel, rows and the panels nested in collapsed rows included. */
export function listPanels(d: Dashboard): Panel[] {
  const out: Panel[] = [];
  const visit = (ps: Panel[] | undefined): void => {
    for (const p of ps ?? []) {
      out.push(p);
      visit(p.panels);
    }
  };
  visit(d.panels);
  return out;
}

export interface LocatedExpr { readonly where: string; readonly expr: string }

/** PromQL of every panel target and annotation (label_values() variable queries are listed separately). */
export function listDashboardExprs(d: Dashboard): LocatedExpr[] {
  const exprs: LocatedExpr[] = [];
  for (const p of listPanels(d)) {
    for (const t of p.targets ?? []) exprs.push({ where: `panel ${p.id} "${p.title}" ${t.refId}`, expr: t.expr ?? '' });
  }
  for (const a of d.annotations?.list ?? []) {
    if (a.expr !== undefined) exprs.push({ where: `annotation "${a.name}"`, expr: a.expr });
  }
  return exprs;
}

export interface AlertRule {
  alert?: string; record?: string; expr?: string; for?: string;
  labels?: Record<string, string>; annotations?: Record<string, string>;
}

export function readAlertRules(): AlertRule[] {
  const doc = parse(readFileSync(alertsFile, 'utf8')) as { groups?: Array<{ rules?: AlertRule[] }> };
  return (doc.groups ?? []).flatMap((g) => g.rules ?? []);
}

export interface AlertTestCase { alertname?: string; exp_alerts?: unknown[] }

export function readAlertTestCases(): AlertTestCase[] {
  const doc = parse(readFileSync(alertTestsFile, 'utf8')) as { tests?: Array<{ alert_rule_test?: AlertTestCase[] }> };
  return (doc.tests ?? []).flatMap((t) => t.alert_rule_test ?? []);
}

/** detour_* identifiers in a PromQL expression (label values never start with detour_ here). */
export function listMetricNames(expr: string): string[] {
  return [...new Set(expr.match(/\bdetour_[a-zA-Z0-9_]+/g) ?? [])];
}

/** name -> type, from the # TYPE lines of a fresh registry: every metric is listed even without samples. */
export async function readExportedMetrics(): Promise<Map<string, string>> {
  const registry = new Registry();
  createMetrics(registry);
  // The primary's metrics about its worker processes live beside createMetrics (src/workers).
  createWorkerMetrics(registry, () => ({ serving: 1, starting: 0 }));
  const text = await registry.metrics();
  const types = new Map<string, string>();
  for (const m of text.matchAll(/^# TYPE (\S+) (\S+)$/gm)) types.set(m[1]!, m[2]!);
  return types;
}

/** The exported metric a series name belongs to (histogram _bucket/_sum/_count map to their histogram). */
export function resolveMetric(name: string, exported: ReadonlyMap<string, string>): string | undefined {
  if (exported.has(name)) return name;
  const m = /^(.*)_(bucket|sum|count)$/.exec(name);
  if (m && ['histogram', 'summary'].includes(exported.get(m[1]!) ?? '')) return m[1];
  return undefined;
}

export interface RunResult { readonly code: number; readonly stdout: string; readonly stderr: string }

/** Runs a binary to completion; a non-zero exit resolves (the tests assert on it), only a spawn failure rejects. */
export function runTool(file: string, args: readonly string[], stdin?: string): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = execFile(file, args, { timeout: 30_000 }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : -1) : 0;
      if (err && typeof err.code === 'string') return reject(err);
      resolve({ code, stdout, stderr });
    });
    child.stdin?.end(stdin ?? '');
  });
}
