// Real Prometheus binaries for tests: promtool to check the shipped rules, and
// a throwaway Prometheus server that scrapes a gateway on loopback. The binaries
// come from .ci/install-prometheus.sh; when they are missing the tests fail
// with the command to run, never skip (a skipped check reads as a passed one).
import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { findFreePort } from './free-port.js';

export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const cacheBin = join(repoRoot, '.cache', 'prometheus', 'bin');

export interface PromBinaries {
  readonly promtool: string;
  readonly prometheus: string;
}

/**
 * Finds promtool and prometheus in .cache/prometheus/bin, then on PATH (or in
 * `searchDirs`); throws when either is missing.
 */
export function findPromBinaries(searchDirs?: readonly string[]): PromBinaries {
  const dirs = searchDirs ?? [cacheBin, ...(process.env.PATH ?? '').split(delimiter).filter(Boolean)];
  const find = (name: string): string | undefined => dirs.map((d) => join(d, name)).find(isExecutable);
  const promtool = find('promtool');
  const prometheus = find('prometheus');
  if (!promtool || !prometheus) {
    const missing = [!promtool && 'promtool', !prometheus && 'prometheus'].filter(Boolean).join(' and ');
    const where = searchDirs ? searchDirs.join(', ') : `${cacheBin} or on PATH`;
    throw new Error(`${missing} not found in ${where}: run \`bash .ci/install-prometheus.sh\``);
  }
  return { promtool, prometheus };
}

function isExecutable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

export interface PromSample {
  readonly metric: Readonly<Record<string, string>>;
  readonly value: readonly [number, string];
}

export interface PrometheusServer {
  /** http://127.0.0.1:<port> */
  readonly url: string;
  /** Instant query; resolves with the vector, rejects on a query error or a non-vector result. */
  query(expr: string): Promise<PromSample[]>;
  /** Polls `expr` until `isDone` accepts the vector; rejects with the last result after timeoutMs. */
  waitFor(expr: string, isDone: (samples: PromSample[]) => boolean, timeoutMs?: number): Promise<PromSample[]>;
  close(): Promise<void>;
}

export interface StartPrometheusOptions {
  /** `host:port` or `http://host:port`; scraped at /metrics. */
  readonly scrapeTargets: readonly string[];
  readonly scrapeIntervalMs: number;
  readonly readyTimeoutMs?: number;
}

const STARTUP_ATTEMPTS = 3;

/** Starts a Prometheus child process on a free loopback port with a fresh TSDB in a temp dir. */
export async function startPrometheus(opts: StartPrometheusOptions): Promise<PrometheusServer> {
  const { prometheus } = findPromBinaries();
  const dir = await mkdtemp(join(tmpdir(), 'detour-prometheus-'));
  try {
    const configFile = join(dir, 'prometheus.yaml');
    await writeFile(configFile, renderConfig(opts));
    // The free port can be taken between our probe and Prometheus binding it;
    // a retry with a new port covers that race.
    let lastError: unknown;
    for (let attempt = 0; attempt < STARTUP_ATTEMPTS; attempt++) {
      try {
        return await launch(prometheus, configFile, dir, opts.readyTimeoutMs ?? 20_000);
      } catch (err) {
        lastError = err;
      }
    }
    throw lastError;
  } catch (err) {
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
}

function renderConfig(opts: StartPrometheusOptions): string {
  if (!Number.isInteger(opts.scrapeIntervalMs) || opts.scrapeIntervalMs <= 0) {
    throw new Error(`scrapeIntervalMs must be a positive integer, got ${opts.scrapeIntervalMs}`);
  }
  const targets = opts.scrapeTargets.map(toHostPort);
  const interval = `${opts.scrapeIntervalMs}ms`;
  // JSON is valid YAML, and quoting it keeps odd target strings harmless.
  return JSON.stringify({
    global: { scrape_interval: interval, scrape_timeout: interval, evaluation_interval: interval },
    scrape_configs: [{ job_name: 'detour', metrics_path: '/metrics', static_configs: [{ targets }] }],
  }, null, 2);
}

function toHostPort(target: string): string {
  if (!target.includes('://')) return target;
  const u = new URL(target);
  if (u.protocol !== 'http:' || (u.pathname !== '/' && u.pathname !== '/metrics')) {
    throw new Error(`scrape target must be host:port or http://host:port, got ${target}`);
  }
  return u.host;
}

async function launch(binary: string, configFile: string, dir: string, readyTimeoutMs: number): Promise<PrometheusServer> {
  const port = await findFreePort();
  const url = `http://127.0.0.1:${port}`;
  const child = spawn(binary, [
    `--config.file=${configFile}`,
    `--storage.tsdb.path=${join(dir, 'data')}`,
    `--web.listen-address=127.0.0.1:${port}`,
    '--log.level=warn',
  ], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => { stderr = (stderr + chunk).slice(-4000); });
  let spawnError: Error | undefined;
  const exited = new Promise<void>((res) => {
    child.once('exit', () => res());
    child.once('error', (err) => { spawnError = err; res(); });
  });
  // A test runner that dies must not leave Prometheus behind.
  const killOnExit = (): void => { child.kill('SIGKILL'); };
  process.once('exit', killOnExit);

  const stop = async (): Promise<void> => {
    process.removeListener('exit', killOnExit);
    if (!spawnError && child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      timer.unref();
      await exited;
      clearTimeout(timer);
    }
  };

  try {
    await waitReady(url, () => spawnError?.message ?? exitDescription(child), readyTimeoutMs);
  } catch (err) {
    await stop();
    throw new Error(`prometheus did not become ready: ${(err as Error).message}\n${stderr}`);
  }

  const query = async (expr: string): Promise<PromSample[]> => {
    const res = await fetch(`${url}/api/v1/query`, {
      method: 'POST',
      signal: AbortSignal.timeout(10_000),
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ query: expr }),
    });
    const body = await res.json() as { status: string; error?: string; data?: { resultType: string; result: PromSample[] } };
    if (body.status !== 'success' || !body.data) throw new Error(`query ${expr} failed: ${body.error ?? res.status}`);
    if (body.data.resultType !== 'vector') throw new Error(`query ${expr} returned a ${body.data.resultType}, not a vector`);
    return body.data.result;
  };

  const waitFor = async (expr: string, isDone: (s: PromSample[]) => boolean, timeoutMs = 15_000): Promise<PromSample[]> => {
    const deadline = Date.now() + timeoutMs;
    let last: PromSample[] = [];
    for (;;) {
      last = await query(expr);
      if (isDone(last)) return last;
      if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs}ms waiting on ${expr}; last result ${JSON.stringify(last)}`);
      await delay(100);
    }
  };

  let closing: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closing ??= stop().finally(() => rm(dir, { recursive: true, force: true }));
    return closing;
  };
  return { url, query, waitFor, close };
}

function exitDescription(child: ChildProcess): string | undefined {
  if (child.exitCode !== null) return `exited with code ${child.exitCode}`;
  if (child.signalCode !== null) return `killed by ${child.signalCode}`;
  return undefined;
}

/** Polls /-/ready; `hasFailed` returns why the process can no longer become ready. */
async function waitReady(url: string, hasFailed: () => string | undefined, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const failure = hasFailed();
    if (failure) throw new Error(failure);
    try {
      const res = await fetch(`${url}/-/ready`, { signal: AbortSignal.timeout(2000) });
      if (res.ok) return;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error(`not ready after ${timeoutMs}ms`);
    await delay(100);
  }
}

function delay(ms: number): Promise<void> {
  return new Promise((res) => setTimeout(res, ms));
}
