// Three replicas as users run them (`node dist/cli.js start`, real child
// processes) sharing one redis-server of this test's own: one leader decides,
// every replica applies its decision, requests reach sites with the epoch of
// the decision that routed them. Then the leader is SIGKILLed mid-ramp and
// Redis is killed mid-ramp, on purpose.
import t, { type Test } from 'tap';
import { spawn, type ChildProcess } from 'node:child_process';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startRedis } from '../helpers/redis.js';
import { startFakeSite, type FakeSite } from '../helpers/fake-site.js';
import { Load, request } from '../helpers/load.js';
import { waitFor } from '../helpers/wait.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
const cli = join(root, 'dist', 'cli.js');
if (!existsSync(cli)) throw new Error(`${cli} is missing: run \`npm run build\` first`);
const TOKEN = 'leader-test-token-0123456789';
const LEASE_MS = 3000;
const STEP_MS = 4000;

interface Replica {
  readonly id: string;
  readonly child: ChildProcess;
  readonly proxyUrl: string;
  readonly adminUrl: string;
  readonly output: () => string;
}

async function startReplica(t: Test, file: string, id: string, redisUrl: string): Promise<Replica> {
  const child = spawn(process.execPath, [cli, 'start', '-c', file, '--replica-id', id, '--no-watch'], {
    cwd: root, env: { ...process.env, REDIS_URL: redisUrl, TOKEN, DETOUR_LOG_LEVEL: 'info' },
  });
  let out = '';
  child.stdout!.on('data', (c) => { out = (out + c).slice(-200_000); });
  child.stderr!.on('data', (c) => { out = (out + c).slice(-200_000); });
  t.teardown(() => { if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL'); });
  await waitFor(() => /serving \d+ routes on (\S+), admin API on (\S+)/.test(out) || child.exitCode !== null, { timeoutMs: 20_000, message: `${id} to listen` });
  const m = /serving \d+ routes on (\S+), admin API on ([^\s"]+)/.exec(out);
  if (!m) throw new Error(`${id} failed to start: ${out}`);
  return { id, child, proxyUrl: m[1]!, adminUrl: m[2]!, output: () => out };
}

interface RouteStatus { name: string; state: string; active: string | null; weights: { site: string; weight: number }[]; ramp?: { step: number; percent: number; stepStarted: string } }
interface Status { replica: string; leader: string | null; epoch: number; routes: RouteStatus[]; replicas: { id: string; leader: boolean; redisReachable: boolean; epoch: number | null; heartbeat: string | null }[] }

async function status(r: Replica): Promise<Status> {
  const res = await fetch(`${r.adminUrl}/status`, { headers: { authorization: `Bearer ${TOKEN}` } });
  return await res.json() as Status;
}
const ceir = (s: Status) => s.routes.find((r) => r.name === 'ceir')!;
async function admin(r: Replica, method: string, path: string, body: unknown): Promise<number> {
  const res = await fetch(`${r.adminUrl}${path}`, {
    method, headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' }, body: JSON.stringify(body),
  });
  await res.text();
  return res.status;
}
const epochsAt = (site: FakeSite, fromIndex = 0) => site.requests.slice(fromIndex).map((r) => Number(r.headers['x-detour-epoch']));
const all = <T>(rs: Replica[], f: (r: Replica) => Promise<T>) => Promise.all(rs.map(f));

/** A webhook receiver on port 0: what the replicas sent, in arrival order. */
async function startReceiver(t: Test): Promise<{ url: string; received: Array<{ type: string; from?: string | null; to?: string | null }> }> {
  const received: Array<{ type: string; from?: string | null; to?: string | null }> = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      received.push(JSON.parse(Buffer.concat(chunks).toString()) as { type: string });
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  t.teardown(() => new Promise<void>((r) => { server.closeAllConnections(); server.close(() => r()); }));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`, received };
}

t.test('three replicas, one leader, one decision, fenced by epoch', async (t) => {
  const redis = await startRedis(t);
  const sites = {
    cyber1: await startFakeSite({ name: 'cyber1' }),
    serpong: await startFakeSite({ name: 'serpong' }),
    dr: await startFakeSite({ name: 'dr' }),
  };
  for (const s of Object.values(sites)) t.teardown(() => s.close());
  const receiver = await startReceiver(t);
  // A route settling onto its first site at start (nowhere -> cyber1) on a loaded machine is not part of this story.
  const moves = (type: string) => receiver.received.filter((e) => e.type === type && (e.from ?? null) !== null).length;
  const file = join(t.testdir({}), 'policy.yaml');
  const health = '{ interval: 100ms, timeout: 1s, rise: 2, fall: 2 }';
  await writeFile(file, `listen: { host: 127.0.0.1, port: 0 }
admin: { host: 127.0.0.1, port: 0, token: \${TOKEN} }
sites:
  cyber1: { url: "${sites.cyber1.url}", building: gedung-cyber-1, health: ${health} }
  serpong: { url: "${sites.serpong.url}", building: serpong-dc, health: ${health} }
  dr: { url: "${sites.dr.url}", building: dr-batam, health: ${health} }
routes:
  - name: ceir
    sites: [cyber1, serpong, dr]
    failback: { holdDown: 1s, ramp: [20, 50, 100], step: ${STEP_MS}ms }
state:
  redis: { url: "\${REDIS_URL}", keyPrefix: "leader${process.pid}:" }
notify:
  webhooks:
    - { url: "${receiver.url}", timeout: 2s, retries: 2 }
`);
  const replicas: Replica[] = [];
  for (let i = 0; i < 3; i++) replicas.push(await startReplica(t, file, `replica-${i}`, redis.url));

  // --- one leader, named the same by all three ---------------------------------
  await waitFor(async () => {
    const docs = await all(replicas, status);
    return docs[0]!.leader !== null && docs.every((d) => d.leader === docs[0]!.leader && d.replicas.length === 3);
  }, { timeoutMs: 10_000, message: 'three replicas agree on one leader' });
  const first = await all(replicas, status);
  const leaderId = first[0]!.leader!;
  t.ok(replicas.some((r) => r.id === leaderId), `leader ${leaderId} is one of them`);
  t.same(first.map((d) => d.replicas.filter((r) => r.leader).map((r) => r.id)), [[leaderId], [leaderId], [leaderId]], 'one leader in every replica table');
  const leaderMetrics = await all(replicas, async (r) => (await (await fetch(`${r.adminUrl}/metrics`, { headers: { authorization: `Bearer ${TOKEN}` } })).text()));
  t.same(leaderMetrics.map((m) => /detour_leader\{replica="[^"]+"\} 1/.test(m)), replicas.map((r) => r.id === leaderId), 'detour_leader is 1 on the leader only');
  t.ok(leaderMetrics.every((m) => /^detour_decision_epoch \d+/m.test(m)), 'every replica exports its epoch');

  // --- requests carry the epoch of the decision that routed them --------------
  await waitFor(async () => new Set((await all(replicas, status)).map((d) => d.epoch)).size === 1, { timeoutMs: 5000, message: 'one epoch' });
  const epoch1 = (await status(replicas[0]!)).epoch;
  for (const r of replicas) t.equal((await request(`${r.proxyUrl}/x`, undefined, { headers: { 'x-detour-epoch': '999999999999999' } })).site, 'cyber1');
  t.same(epochsAt(sites.cyber1), [epoch1, epoch1, epoch1], 'x-detour-epoch at the site: the decision\'s, never what the client sent');

  // --- the primary dies: every replica moves, under a newer epoch -------------
  await sites.cyber1.kill();
  await waitFor(async () => (await all(replicas, status)).every((d) => ceir(d).active === 'serpong'), { timeoutMs: 8000, message: 'every replica moves' });
  await waitFor(async () => new Set((await all(replicas, status)).map((d) => d.epoch)).size === 1, { timeoutMs: 5000, message: 'one epoch again' });
  const epoch2 = (await status(replicas[0]!)).epoch;
  t.ok(epoch2 > epoch1, `failover moved the epoch (${epoch1} -> ${epoch2})`);
  await waitFor(() => moves('failedOver') >= 1, { timeoutMs: 5000, message: 'the failover is notified' });
  for (const r of replicas) await request(`${r.proxyUrl}/x`, undefined);
  t.same(epochsAt(sites.serpong), [epoch2, epoch2, epoch2]);

  // --- the primary returns: all three show the same ramp, step by step --------
  await sites.cyber1.revive();
  const seen = new Map<string, Set<string>>(replicas.map((r) => [r.id, new Set()]));
  let disagreements = 0;
  let samples = 0;
  await waitFor(async () => {
    const docs = await all(replicas, status);
    samples++;
    const ramps = docs.map((d) => ceir(d).ramp ? `${ceir(d).ramp!.step}@${ceir(d).ramp!.stepStarted}:${JSON.stringify(ceir(d).weights)}` : ceir(d).state);
    docs.forEach((d, i) => seen.get(d.replica)!.add(ramps[i]!));
    if (new Set(ramps).size > 1) disagreements++;
    return ceir(docs[0]!).ramp?.step === 0;
  }, { timeoutMs: 10_000, intervalMs: 50, message: 'the failback ramp starts' });
  // The leader dies during the first step; clients keep sending to the survivors.
  const rampBefore = ceir(await status(replicas.find((r) => r.id === leaderId)!)).ramp!;
  const survivors = replicas.filter((r) => r.id !== leaderId);
  const loads = survivors.map((r) => new Load({ url: `${r.proxyUrl}/x`, workers: 2, pauseMs: 20, maxMs: 60_000 }).start());
  const leaderProcess = replicas.find((r) => r.id === leaderId)!.child;
  const killedAt = Date.now();
  leaderProcess.kill('SIGKILL');
  let newLeader: string | null = null;
  await waitFor(async () => {
    const docs = await all(survivors, status);
    const l = docs[0]!.leader;
    if (l !== null && l !== leaderId && docs.every((d) => d.leader === l)) newLeader = l;
    return newLeader !== null;
  }, { timeoutMs: LEASE_MS * 3, intervalMs: 50, message: 'a survivor takes the lease' });
  const takeoverMs = Date.now() - killedAt;
  t.ok(takeoverMs <= LEASE_MS + 500, `another replica (${newLeader}) leads ${takeoverMs} ms after the SIGKILL (lease ${LEASE_MS} ms)`);
  const after = ceir(await status(survivors[0]!));
  t.ok(after.ramp !== undefined && after.ramp.step >= rampBefore.step, `the ramp goes on (step ${after.ramp?.step}, was ${rampBefore.step})`);
  if (after.ramp?.step === rampBefore.step) t.equal(after.ramp.stepStarted, rampBefore.stepStarted, 'from the same step start: not restarted');
  // Sample both survivors through the rest of the ramp.
  await waitFor(async () => {
    const docs = await all(survivors, status);
    samples++;
    const ramps = docs.map((d) => ceir(d).ramp ? `${ceir(d).ramp!.step}@${ceir(d).ramp!.stepStarted}:${JSON.stringify(ceir(d).weights)}` : ceir(d).state);
    docs.forEach((d, i) => seen.get(d.replica)!.add(ramps[i]!));
    if (new Set(ramps).size > 1) disagreements++;
    return docs.every((d) => ceir(d).state === 'preferred');
  }, { timeoutMs: STEP_MS * 4, intervalMs: 50, message: 'the ramp finishes on both survivors' });
  await Promise.all(loads.map((l) => l.stop()));
  const [seenA, seenB] = survivors.map((r) => [...seen.get(r.id)!]);
  t.same(seenA, seenB, 'both survivors went through the very same ramp steps, with the same step starts');
  t.ok(seenA!.some((s) => s.startsWith('1@')), 'the 50% step was seen');
  // Three /status calls are not one instant: a sample may straddle a change (at most a couple per change seen).
  t.ok(disagreements <= 2 * seenA!.length, `replicas disagreed in ${disagreements} of ${samples} samples, across ${seenA!.length} changes (only straddling one)`);
  const failed = loads.flatMap((l) => l.failed);
  t.equal(failed.length, 0, `zero failed client requests on the survivors (${loads.reduce((n, l) => n + l.outcomes.length, 0)} sent): ${JSON.stringify(failed.slice(0, 3))}`);
  const epoch3 = (await status(survivors[0]!)).epoch;
  t.ok(epoch3 > epoch2, `the epoch grew across the leader change (${epoch2} -> ${epoch3})`);
  // Three replicas, one failover and one failback (finished by the new leader): one webhook each.
  await waitFor(() => moves('failedBack') >= 1, { timeoutMs: 5000, message: 'the failback is notified' });
  await new Promise((r) => setTimeout(r, 1000)); // room for a duplicate to arrive, were there one
  t.equal(moves('failedOver'), 1, 'exactly one failedOver webhook for the failover, from three replicas');
  t.equal(moves('failedBack'), 1, 'exactly one failedBack webhook, across the leader change');

  // --- Redis killed mid-ramp: everyone serves, nobody touches a drained building
  await sites.cyber1.kill();
  await waitFor(async () => (await all(survivors, status)).every((d) => ceir(d).active === 'serpong'), { timeoutMs: 8000, message: 'failed over again' });
  await sites.cyber1.revive();
  await waitFor(async () => (await all(survivors, status)).every((d) => ceir(d).state === 'ramping'), { timeoutMs: 8000, message: 'ramping again' });
  t.equal(await admin(survivors[0]!, 'POST', '/drain', { building: 'dr-batam' }), 200);
  await new Promise((r) => setTimeout(r, 500)); // the drain reaches the other replica through Redis
  await redis.stop();
  const drMark = sites.dr.counts.traffic;
  const outage = survivors.map((r) => new Load({ url: `${r.proxyUrl}/x`, workers: 2, pauseMs: 20, maxMs: 60_000 }).start());
  await waitFor(async () => (await all(survivors, status)).every((d) => d.leader === null), { timeoutMs: LEASE_MS * 2, message: 'no leader known without Redis' });
  // The ramp's target dies during the outage: each replica moves on its own probes, never to the drained building.
  await sites.cyber1.kill();
  await waitFor(async () => (await all(survivors, status)).every((d) => ceir(d).active === 'serpong' && ceir(d).weights.length === 1), { timeoutMs: 8000, message: 'back on serpong during the outage' });
  await sites.serpong.kill();
  await new Promise((r) => setTimeout(r, 1500));
  await Promise.all(outage.map((l) => l.stop()));
  t.equal(sites.dr.counts.traffic, drMark, 'no replica sent a request to the drained building during the outage');
  const served = outage.reduce((n, l) => n + l.outcomes.filter((o) => o.status === 200).length, 0);
  t.ok(served > 20, `every replica kept serving while it could (${served} answered)`);

  // --- Redis back (empty): one leader, one epoch, newer than any before --------
  await sites.serpong.revive();
  await sites.cyber1.revive();
  await redis.restart();
  await waitFor(async () => {
    const docs = await all(survivors, status);
    return docs[0]!.leader !== null && docs.every((d) => d.leader === docs[0]!.leader && d.epoch === docs[0]!.epoch);
  }, { timeoutMs: 15_000, message: 'one leader and one epoch after Redis returns' });
  const epoch4 = (await status(survivors[0]!)).epoch;
  t.ok(epoch4 > epoch3, `epoch ${epoch4} > ${epoch3}`);
  const drained = await all(survivors, async (r) => (await (await fetch(`${r.adminUrl}/status`, { headers: { authorization: `Bearer ${TOKEN}` } })).json() as { drains: { buildings: string[] } }).drains.buildings);
  t.same(drained, [['dr-batam'], ['dr-batam']], 'the drain survived Redis losing its data');
  const atSites = [...epochsAt(sites.cyber1), ...epochsAt(sites.serpong)];
  t.ok(atSites.every((e) => Number.isFinite(e) && e > 0), 'every request at a site carried an epoch');
});

t.test('a lone gateway (no state.redis) is its own leader with a local epoch that moves with traffic', async (t) => {
  const { startRig } = await import('../helpers/gateway.js');
  const probe = { timeoutMs: 1000 };
  const rig = await startRig(t, [{ name: 'cyber1', building: 'a', probe }, { name: 'serpong', building: 'b', probe }], () => ({
    routes: [{ name: 'ceir', sites: ['cyber1', 'serpong'] }],
  }));
  await waitFor(() => ['cyber1', 'serpong'].every((s) => rig.gateway.control.health(s)?.status === 'up'), { timeoutMs: 5000, message: 'both up' });
  const doc = (await rig.admin('GET', '/status')).json as Status & { stateStore: { kind: string } };
  t.equal(doc.leader, undefined, 'no leader or replicas in /status without state.redis: the document is as before');
  t.equal((doc as { replicas?: unknown }).replicas, undefined);
  t.equal(doc.stateStore.kind, 'memory');
  t.ok(doc.epoch >= Date.now() - 60_000, 'a local epoch, floored at the clock so a restart never goes back');
  await request(`${rig.gateway.proxyUrl}/x`, undefined);
  await request(`${rig.gateway.proxyUrl}/x`, undefined);
  t.same(epochsAt(rig.sites.cyber1!), [doc.epoch, doc.epoch], 'unchanged while nothing moves');
  await rig.sites.cyber1!.kill();
  await waitFor(() => rig.gateway.table().byName.get('ceir')!.active === 'serpong', { timeoutMs: 5000, message: 'failover' });
  await request(`${rig.gateway.proxyUrl}/x`, undefined);
  const [after] = epochsAt(rig.sites.serpong!);
  t.ok(after! > doc.epoch, `the failover moved the epoch (${doc.epoch} -> ${after})`);
  t.equal(rig.gateway.leadership.isLeader(), true);
});
