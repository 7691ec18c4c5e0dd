// `workers: 2` as an operator runs it: `detour start` of the built CLI, a
// primary and two worker processes, fake sites on loopback. Table versions
// acknowledged by every worker, a drain in force on all of them before its
// 2xx, /metrics summing every worker's requests exactly, a SIGKILLed worker
// replaced (event, metric, new pid), failover without a failed request, a
// WebSocket through a worker, and SIGTERM finishing in-flight requests on
// every worker.
import t, { type Test } from 'tap';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startFakeSite, type FakeSite } from '../helpers/fake-site.js';
import { Load, request, type Outcome } from '../helpers/load.js';
import { waitFor } from '../helpers/wait.js';
import { openWs, startWsSite } from '../helpers/websocket.js';
import { once } from '../helpers/wait.js';
import { CRASH_LOOP_MS } from '../../src/workers/worker-pool.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
const cli = join(root, 'dist', 'cli.js');
if (!existsSync(cli)) throw new Error(`${cli} is missing: run \`npm run build\` first (npm ci does it through prepare)`);

const TOKEN = 'workers-token';

interface WorkerInfo { id: number; pid: number; state: string; tableVersion: number; startedAt: string }
interface Status {
  tableVersion: number;
  routes: Array<{ name: string; active: string | null }>;
  events: Array<{ type: string; message: string }>;
  workers: { configured: number | 'auto'; count: number; restarts: number; workers: WorkerInfo[] };
}

interface Detour {
  child: ChildProcess;
  proxyUrl: string;
  adminUrl: string;
  output: () => string;
  status(): Promise<Status>;
  admin(method: string, path: string, body?: unknown): Promise<{ status: number; body: string }>;
  metrics(): Promise<string>;
}

async function startDetour(t: Test, policy: string): Promise<Detour> {
  const file = join(t.testdir({}), 'policy.yaml');
  await writeFile(file, policy);
  const child = spawn(process.execPath, [cli, 'start', '-c', file, '--no-watch'], {
    cwd: root, env: { ...process.env, DETOUR_LOG_LEVEL: 'info' },
  });
  let out = '';
  child.stdout!.on('data', (c) => { out += c; });
  child.stderr!.on('data', (c) => { out += c; });
  t.teardown(async () => {
    if (child.exitCode !== null) return;
    child.kill('SIGTERM');
    await Promise.race([once(child, 'exit', 15_000).catch(() => undefined)]);
    if (child.exitCode === null) child.kill('SIGKILL');
  });
  await waitFor(() => /serving \d+ routes on (\S+), admin API on (\S+?)[ "]/.test(out) || child.exitCode !== null, { timeoutMs: 90_000, message: 'detour start to listen' });
  const m = /serving \d+ routes on (\S+), admin API on (\S+?)[ "]/.exec(out);
  if (!m) throw new Error(`detour start failed: ${out}`);
  const adminUrl = m[2]!;
  const admin = async (method: string, path: string, body?: unknown) => {
    const res = await fetch(`${adminUrl}${path}`, {
      method, headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    return { status: res.status, body: await res.text() };
  };
  return {
    child, proxyUrl: m[1]!, adminUrl, output: () => out, admin,
    status: async () => JSON.parse((await admin('GET', '/status')).body) as Status,
    metrics: async () => (await admin('GET', '/metrics')).body,
  };
}

function policyYaml(sites: Record<string, { url: string; building: string }>, extra = ''): string {
  const siteLines = Object.entries(sites)
    .map(([name, s]) => `  ${name}: { url: "${s.url}", building: ${s.building}, health: { interval: 200ms, timeout: 1s, rise: 1, fall: 1 } }`)
    .join('\n');
  return `listen: { host: 127.0.0.1, port: 0 }
admin: { host: 127.0.0.1, port: 0, token: ${TOKEN} }
workers: 2
shutdown: { grace: 5s }
sites:
${siteLines}
routes:
  - name: api
    sites: [${Object.keys(sites).join(', ')}]
${extra}`;
}

/** One request on a fresh connection: with round-robin, consecutive ones land on different workers. */
function fresh(url: string): Promise<Outcome> {
  return request(url, undefined, { headers: { connection: 'close' } });
}

/** The sum of every sample of a counter (all label sets) in an exposition. */
function sumOf(exposition: string, name: string): number {
  let sum = 0;
  for (const m of exposition.matchAll(new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, 'gm'))) sum += Number(m[1]);
  return sum;
}

async function twoSites(t: Test): Promise<{ primary: FakeSite; backup: FakeSite }> {
  const primary = await startFakeSite({ name: 'primary' });
  const backup = await startFakeSite({ name: 'backup' });
  t.teardown(() => primary.close());
  t.teardown(() => backup.close());
  return { primary, backup };
}

async function servingOn(d: Detour, site: string): Promise<void> {
  await waitFor(async () => (await d.status()).routes[0]?.active === site, { timeoutMs: 15_000, message: `route on ${site}` });
}

t.test('two workers: versions acknowledged, a drain in force before its 2xx, exact request counts, a killed worker replaced', async (t) => {
  const { primary, backup } = await twoSites(t);
  const d = await startDetour(t, policyYaml({ primary: { url: primary.url, building: 'tower-a' }, backup: { url: backup.url, building: 'tower-b' } }));
  await servingOn(d, 'primary');

  const first = await d.status();
  t.equal(first.workers.configured, 2);
  t.equal(first.workers.count, 2, 'two workers serve');
  t.equal(new Set(first.workers.workers.map((w) => w.pid)).size, 2, 'two processes');
  t.ok(first.workers.workers.every((w) => w.pid !== d.child.pid), 'neither is the primary');

  // --- /metrics: every worker's requests, counted exactly once.
  const before = sumOf(await d.metrics(), 'detour_requests_total');
  const K = 40;
  const served = await Promise.all(Array.from({ length: K }, () => fresh(d.proxyUrl)));
  t.same(served.filter((o) => o.status !== 200), [], 'all served');
  await waitFor(async () => sumOf(await d.metrics(), 'detour_requests_total') - before >= K, { timeoutMs: 5000, message: 'counts to arrive' });
  const exposition = await d.metrics();
  t.equal(sumOf(exposition, 'detour_requests_total') - before, K, `detour_requests_total grew by exactly ${K}`);
  t.equal(sumOf(exposition, 'detour_request_duration_seconds_count') - before, K, 'and the duration histogram counted each once');
  t.match(exposition, /^detour_site_up\{site="primary",building="tower-a"\} 1$/m, 'state gauges appear once, from the primary (not summed)');
  t.match(exposition, /^detour_workers\{state="serving"\} 2$/m);

  // --- A drain: applied on every worker before the 2xx.
  const load = new Load({ url: d.proxyUrl, workers: 6, maxMs: 20_000 }).start();
  t.teardown(() => load.stop());
  await waitFor(() => load.outcomes.length > 20, { timeoutMs: 10_000, message: 'load running' });
  const drained = await d.admin('POST', '/drain', { building: 'tower-a' });
  const answeredMs = Date.now();
  t.equal(drained.status, 200, drained.body);
  // Requests sent after the answer, on new connections, on each worker in turn.
  const after = await Promise.all(Array.from({ length: 20 }, () => fresh(d.proxyUrl)));
  t.same(after.map((o) => o.site), after.map(() => 'backup'), 'no request sent after the 2xx reaches the drained building');
  await load.stop();
  const late = load.outcomes.filter((o) => o.startedMs > answeredMs && o.site === 'primary');
  t.same(late, [], 'no keep-alive request started after the 2xx was served by the drained building');
  t.same(load.failed, [], 'and no request failed across the drain');
  const drainedStatus = await d.status();
  const versions = drainedStatus.workers.workers.map((w) => w.tableVersion);
  t.ok(versions.every((v) => v === versions[0] && v > first.workers.workers[0]!.tableVersion), `every worker on the same, newer table (${versions})`);
  // Undrained, the route fails back only after its hold-down: the backup keeps serving meanwhile.
  t.equal((await d.admin('DELETE', '/drain', { building: 'tower-a' })).status, 200);

  // --- A killed worker: replaced at once, an event and a metric; its counts are kept.
  const counted = sumOf(await d.metrics(), 'detour_requests_total');
  const victim = first.workers.workers[0]!;
  // A worker that dies within CRASH_LOOP_MS of starting is replaced only after
  // a pause (a crash loop); on a fast machine everything above can take less.
  await waitFor(() => Date.now() - Date.parse(victim.startedAt) > CRASH_LOOP_MS, { timeoutMs: CRASH_LOOP_MS + 1000, message: 'the victim past its crash-loop window' });
  process.kill(victim.pid, 'SIGKILL');
  await waitFor(async () => {
    const s = await d.status();
    return s.workers.restarts === 1 && s.workers.count === 2;
  }, { timeoutMs: 15_000, message: 'the worker to be replaced' });
  const replaced = await d.status();
  const pids = replaced.workers.workers.map((w) => w.pid);
  t.notOk(pids.includes(victim.pid), 'the dead pid is gone');
  t.equal(pids.length, 2, 'two workers again');
  const exited = replaced.events.find((e) => e.type === 'workerExited');
  t.ok(exited, 'a workerExited event');
  t.match(exited?.message, new RegExp(`pid ${victim.pid}\\) died \\(signal SIGKILL\\); replaced by worker \\d+ \\(pid \\d+\\)`));
  const afterKill = await d.metrics();
  t.match(afterKill, /^detour_worker_restarts_total 1$/m, 'detour_worker_restarts_total counts it');
  t.ok(sumOf(afterKill, 'detour_requests_total') >= counted, 'the dead worker\'s counts stay in the sum (no counter reset)');
  const again = await Promise.all(Array.from({ length: 10 }, () => fresh(d.proxyUrl)));
  t.same(again.filter((o) => o.status !== 200), [], 'the replacement serves');
});

t.test('two workers: the primary site dies under load, no request fails', async (t) => {
  const { primary, backup } = await twoSites(t);
  const d = await startDetour(t, policyYaml({ primary: { url: primary.url, building: 'tower-a' }, backup: { url: backup.url, building: 'tower-b' } }));
  await servingOn(d, 'primary');
  const load = new Load({ url: d.proxyUrl, workers: 8, maxMs: 30_000 }).start();
  t.teardown(() => load.stop());
  await waitFor(() => load.outcomes.filter((o) => o.site === 'primary').length > 40, { timeoutMs: 10_000, message: 'load on the primary' });
  await primary.kill();
  const killedAt = load.outcomes.length;
  await waitFor(() => load.outcomes.slice(killedAt).filter((o) => o.site === 'backup').length > 100, { timeoutMs: 15_000, message: 'load on the backup' });
  await load.stop();
  t.same(load.failed, [], `no failed request out of ${load.outcomes.length}`);
  t.ok((load.bySite().backup ?? 0) > 100, 'traffic moved to the backup');
  await servingOn(d, 'backup');
});

t.test('two workers: a WebSocket through a worker, and SIGTERM finishing in-flight requests on every worker', async (t) => {
  const ws = await startWsSite(t, 'ws-primary');
  const slow = await startFakeSite({ name: 'slow' });
  t.teardown(() => slow.close());
  const health = 'health: { interval: 200ms, timeout: 1s, rise: 1, fall: 1 }';
  const d = await startDetour(t, `listen: { host: 127.0.0.1, port: 0 }
admin: { host: 127.0.0.1, port: 0, token: ${TOKEN} }
workers: 2
shutdown: { grace: 5s }
sites:
  wsprimary: { url: "${ws.url}", building: tower-a, ${health} }
  slowsite: { url: "${slow.url}", building: tower-c, ${health} }
routes:
  - name: slow
    match: { pathPrefix: /slow }
    sites: [slowsite]
  - name: api
    sites: [wsprimary]
`);
  await waitFor(async () => (await d.status()).routes.every((r) => r.active !== null), { timeoutMs: 15_000, message: 'routes up' });

  const { socket, site } = await openWs(t, d.proxyUrl);
  t.equal(site, 'wsprimary', 'upgraded through a worker');
  socket.write('hello');
  const [echo] = (await once(socket, 'data', 5000)) as [Buffer];
  t.equal(echo.toString(), 'ws-primary:hello', 'frames relayed both ways');
  socket.destroy();

  slow.set({ status: 200, body: 'slow done', delayMs: 1500 });
  const inFlight = Array.from({ length: 6 }, () => fresh(`${d.proxyUrl}/slow/x`));
  await waitFor(() => slow.pending >= 6, { timeoutMs: 10_000, message: 'six requests in flight' });
  const pids = (await d.status()).workers.workers.map((w) => w.pid);
  const exited = once(d.child, 'exit', 20_000);
  d.child.kill('SIGTERM');
  const results = await Promise.all(inFlight);
  t.same(results.map((r) => [r.status, r.body]), results.map(() => [200, 'slow done']), 'every in-flight request finished');
  const [code] = (await exited) as [number | null];
  t.equal(code, 0, 'the primary exits cleanly after its workers');
  for (const pid of pids) {
    t.throws(() => process.kill(pid, 0), { code: 'ESRCH' }, `worker ${pid} is gone`);
  }
});
