// The worker pool driven from the test process: startGateway with
// `workers: 2` forks real worker processes (the TypeScript worker-main, under
// tap's loader, so its coverage is counted). What the CLI test
// (integration/workers.test.ts) cannot reach from outside: an acknowledgement
// that never comes (a stopped worker), a reload that changes `workers`, one
// access log file written by two processes and reopened after rotation.
import t, { type Test } from 'tap';
import { readFile, rename } from 'node:fs/promises';
import { existsSync, readFileSync } from 'node:fs';
import https from 'node:https';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Registry } from 'prom-client';
import { startGateway, type Gateway } from '../../src/gateway.js';
import { silentLogger } from '../../src/logger.js';
import type { Policy } from '../../src/config/policy.js';
import { testPolicy } from '../helpers/policy.js';
import { startFakeSite, type FakeSite } from '../helpers/fake-site.js';
import { request, type Outcome } from '../helpers/load.js';
import { waitFor } from '../helpers/wait.js';
import { makeCa } from '../helpers/tls.js';

const TOKEN = 'pool-token';
// Workers run the built program: under the TypeScript loader a worker takes
// many seconds to boot on a loaded machine. Node options are left empty (the
// loader is not needed); NODE_OPTIONS still carries tap's process tracking.
const workerExec = fileURLToPath(new URL('../../dist/workers/worker-main.js', import.meta.url));
if (!existsSync(workerExec)) throw new Error(`${workerExec} is missing: run \`npm run build\` first`);
const workerProgram = { exec: workerExec, execArgv: [] };
const health = { intervalMs: 200, timeoutMs: 1000, rise: 1, fall: 1, jitter: 0 };

async function rig(t: Test, extra: Partial<Policy> = {}): Promise<{ gateway: Gateway; primary: FakeSite; backup: FakeSite; policy: Policy }> {
  const primary = await startFakeSite({ name: 'primary' });
  const backup = await startFakeSite({ name: 'backup' });
  t.teardown(() => primary.close());
  t.teardown(() => backup.close());
  const base = testPolicy({
    admin: { token: TOKEN },
    sites: [
      { name: 'primary', url: primary.url, building: 'tower-a', health },
      { name: 'backup', url: backup.url, building: 'tower-b', health },
    ],
    routes: [{ name: 'api', sites: ['primary', 'backup'] }],
    shutdown: { graceMs: 3000 },
  });
  const policy: Policy = { ...base, workers: 2, ...extra };
  const gateway = await startGateway({ policy, logger: silentLogger(), registry: new Registry(), workerAckTimeoutMs: 800, workerProgram });
  t.teardown(() => gateway.close());
  await waitFor(() => gateway.table().byName.get('api')?.active === 'primary', { timeoutMs: 10_000, message: 'route on primary' });
  return { gateway, primary, backup, policy };
}

function admin(gateway: Gateway, method: string, path: string, body?: unknown) {
  return fetch(`${gateway.adminUrl}${path}`, {
    method, headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  }).then(async (res) => ({ status: res.status, json: await res.json() as Record<string, unknown> }));
}

function fresh(url: string): Promise<Outcome> {
  return request(url, undefined, { headers: { connection: 'close' } });
}

t.test('a worker that does not acknowledge makes the admin call answer 503 naming it, not hang', async (t) => {
  const { gateway } = await rig(t);
  const status = gateway.workers();
  t.equal(status.count, 2);
  const stopped = status.workers[0]!;
  process.kill(stopped.pid!, 'SIGSTOP');
  t.teardown(() => { try { process.kill(stopped.pid!, 'SIGCONT'); } catch { /* gone */ } });
  const started = Date.now();
  const res = await admin(gateway, 'POST', '/drain', { building: 'tower-a' });
  t.equal(res.status, 503, JSON.stringify(res.json));
  t.equal(res.json.code, 'not_applied');
  t.match(String(res.json.error), new RegExp(`building tower-a drained, but worker ${stopped.id} did not apply route table \\d+ in time`));
  t.ok(Date.now() - started < 5000, 'answered after the acknowledgement timeout');
  process.kill(stopped.pid!, 'SIGCONT');
  await waitFor(() => {
    const versions = gateway.workers().workers.map((w) => w.tableVersion);
    return versions.every((v) => v === versions[0]) && versions[0]! > stopped.tableVersion;
  }, { timeoutMs: 5000, message: 'the resumed worker to catch up' });
  const undrained = await admin(gateway, 'DELETE', '/drain', { building: 'tower-a' });
  t.equal(undrained.status, 200, 'with every worker answering, the next command is a plain 2xx');
});

t.test('a reload that changes workers keeps the running count and says a restart is needed', async (t) => {
  const { gateway, policy } = await rig(t);
  const result = gateway.applyPolicy({ ...policy, workers: 3 });
  t.ok(result.ok);
  t.match(result.ok && result.message, /workers changes need a restart; kept the running ones/);
  t.equal(gateway.control.policy.workers, 2, 'the policy in force keeps workers: 2');
  t.equal(gateway.workers().workers.length, 2, 'no worker forked');
  const served = await Promise.all(Array.from({ length: 6 }, () => fresh(gateway.proxyUrl)));
  t.same(served.map((o) => o.status), served.map(() => 200), 'traffic flows on the reloaded policy');
});

t.test('two workers write one access log; SIGUSR1 (reopenLogs) moves both to the new file', async (t) => {
  const dir = t.testdir({});
  const path = join(dir, 'access.log');
  const { gateway } = await rig(t, { accessLog: { path, sample: 1 } });
  const K = 20;
  const first = await Promise.all(Array.from({ length: K }, () => fresh(gateway.proxyUrl)));
  t.same(first.filter((o) => o.status !== 200), []);
  const lines = async (file: string) => (existsSync(file) ? (await readFile(file, 'utf8')).split('\n').filter((l) => l !== '') : []);
  await waitFor(async () => (await lines(path)).length >= K, { timeoutMs: 5000, message: 'the first lines' });
  for (const line of await lines(path)) JSON.parse(line); // whole lines, never interleaved
  await rename(path, `${path}.1`);
  gateway.reopenLogs();
  await waitFor(() => existsSync(path), { timeoutMs: 5000, message: 'the file reopened at its path' });
  await new Promise((resolve) => setTimeout(resolve, 200));
  const second = await Promise.all(Array.from({ length: K }, () => fresh(gateway.proxyUrl)));
  t.same(second.filter((o) => o.status !== 200), []);
  await waitFor(async () => (await lines(path)).length >= K, { timeoutMs: 5000, message: 'new lines in the new file' });
  t.equal((await lines(path)).length, K, 'every request after the reopen in the new file');
  t.equal((await lines(`${path}.1`)).length, K, 'and the rotated file keeps the earlier ones');
});

t.test('a site going down reaches every worker; a killed worker is replaced and keeps serving', async (t) => {
  const { gateway, primary } = await rig(t);
  await primary.kill();
  await waitFor(() => gateway.table().byName.get('api')?.active === 'backup', { timeoutMs: 10_000, message: 'failover' });
  const served = await Promise.all(Array.from({ length: 10 }, () => fresh(gateway.proxyUrl)));
  t.same(served.map((o) => o.site), served.map(() => 'backup'), 'both workers route to the backup');
  const victim = gateway.workers().workers[1]!;
  process.kill(victim.pid!, 'SIGKILL');
  await waitFor(() => gateway.workers().restarts === 1 && gateway.workers().count === 2, { timeoutMs: 10_000, message: 'replacement' });
  t.ok(gateway.control.events().some((e) => e.type === 'workerExited' && e.message.includes(`pid ${victim.pid}`)), 'workerExited event');
  const metrics = await (await fetch(`${gateway.adminUrl}/metrics`)).text();
  t.match(metrics, /^detour_worker_restarts_total 1$/m);
  const again = await Promise.all(Array.from({ length: 10 }, () => fresh(gateway.proxyUrl)));
  t.same(again.map((o) => o.status), again.map(() => 200));
});

t.test('TLS with workers: each worker serves the edge certificate and trusts https:// sites as the primary does', async (t) => {
  const dc = makeCa(t, 'dc-ca');
  const edge = makeCa(t, 'edge-ca');
  const site = await startFakeSite({ name: 'cyber1', tls: dc.issue('cyber1', { dns: ['ceir.internal'] }) });
  t.teardown(() => site.close());
  const policy: Policy = {
    ...testPolicy({
      listen: { tls: { ...edge.issue('gw', { dns: ['gw.example'] }), minVersion: 'TLSv1.2' } },
      sites: [{ name: 'cyber1', url: site.url, health, tls: { ca: dc.cert, servername: 'ceir.internal', verify: true } }],
      routes: [{ name: 'ceir', sites: ['cyber1'] }],
    }),
    workers: 2,
  };
  const gateway = await startGateway({ policy, logger: silentLogger(), registry: new Registry(), workerProgram });
  t.teardown(() => gateway.close());
  t.match(gateway.proxyUrl, /^https:\/\//);
  await waitFor(() => gateway.table().byName.get('ceir')?.active === 'cyber1', { timeoutMs: 10_000, message: 'site up over TLS' });
  const ca = readFileSync(edge.cert);
  const answers = await Promise.all(Array.from({ length: 6 }, () => new Promise<number>((resolve, reject) => {
    const req = https.request(`${gateway.proxyUrl}/x`, { ca, servername: 'gw.example', agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    req.end();
  })));
  t.same(answers, answers.map(() => 200), 'HTTPS in, HTTPS out, on both workers');
});

t.test('a hung building: requests waiting on it in every worker are re-sent once it is down, none fails', async (t) => {
  const { gateway, primary } = await rig(t);
  const waiting = Array.from({ length: 6 }, () => fresh(gateway.proxyUrl));
  primary.setAll('hang');
  const more = Array.from({ length: 6 }, () => fresh(gateway.proxyUrl));
  const all = await Promise.all([...waiting, ...more]);
  t.same(all.filter((o) => o.status !== 200), [], 'every request answered 200');
  t.ok(all.filter((o) => o.site === 'backup').length >= 6, 'the ones caught on the hung building moved to the backup');
  t.ok(Math.max(...all.map((o) => o.latencyMs)) < 10_000, `worst ${Math.max(...all.map((o) => o.latencyMs))} ms, not a response timeout`);
});
