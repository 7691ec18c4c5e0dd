// Reload parsing on a worker thread: the same answer as parsing here, frozen
// like a parsed policy, and parsed here after all when the worker fails.
import t from 'tap';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadPolicyFile } from '../../src/config/load-policy.js';
import { closePolicyWorker, ITEMS_PER_PART, loadPolicyFileOffThread, shareEqualSettings, warmPolicyWorker } from '../../src/config/load-off-thread.js';

const good = 'sites:\n  a: { url: "http://127.0.0.1:1", building: ${B} }\nroutes:\n  - { name: r, sites: [a] }\n';
const bad = 'sites:\n  a: { url: "http://127.0.0.1:1" }\nroutes:\n  - { name: r, sites: [b] }\n';

t.test('a valid file: the worker answers what loadPolicyFile answers, deep-frozen', async (t) => {
  const dir = t.testdir({ 'ok.yaml': good });
  const file = join(dir, 'ok.yaml');
  const load = await loadPolicyFileOffThread(file, { B: 'tower' }, { minBytes: 0 });
  t.equal(load.offThread, true, 'parsed on the worker');
  t.same(load.result, await loadPolicyFile(file, { B: 'tower' }));
  if (!load.result.ok) throw new Error('expected a policy');
  t.equal(load.result.policy.sites[0]!.building, 'tower', 'env comes from the caller');
  t.ok(Object.isFrozen(load.result.policy), 'policy frozen');
  t.ok(Object.isFrozen(load.result.policy.routes[0]!.sites), 'deeply');
});

t.test('an invalid or missing file: the same errors', async (t) => {
  const dir = t.testdir({ 'bad.yaml': bad });
  for (const file of [join(dir, 'bad.yaml'), join(dir, 'missing.yaml')]) {
    const load = await loadPolicyFileOffThread(file, {}, { minBytes: 0 });
    t.equal(load.offThread, file.endsWith('missing.yaml') ? false : true, 'a missing file is not worth a worker');
    t.same(load.result, await loadPolicyFile(file, {}), file);
    t.equal(load.result.ok, false);
  }
});

t.test('a worker that cannot run: parsed on this thread, with the reason', async (t) => {
  const dir = t.testdir({ 'ok.yaml': good, 'broken.mjs': 'throw new Error("worker broke");\n', 'silent.mjs': 'process.exit(3);\n' });
  const file = join(dir, 'ok.yaml');
  const broken = await loadPolicyFileOffThread(file, { B: 'x' }, { minBytes: 0, entry: new URL(`file://${join(dir, 'broken.mjs')}`) });
  t.equal(broken.offThread, false);
  t.match(broken.workerError, /worker broke/);
  t.same(broken.result, await loadPolicyFile(file, { B: 'x' }));
  const silent = await loadPolicyFileOffThread(file, { B: 'x' }, { minBytes: 0, entry: new URL(`file://${join(dir, 'silent.mjs')}`) });
  t.equal(silent.offThread, false);
  t.match(silent.workerError, /exited with code 3 before answering/);
  t.equal(silent.result.ok, true);
});

t.test('a small file is parsed on this thread: a worker would take longer to start', async (t) => {
  const dir = t.testdir({ 'ok.yaml': good });
  const file = join(dir, 'ok.yaml');
  const load = await loadPolicyFileOffThread(file, { B: 'here' });
  t.equal(load.offThread, false);
  t.equal(load.workerError, undefined, 'not a failure');
  t.same(load.result, await loadPolicyFile(file, { B: 'here' }));
});

t.test('one worker for every reload: warmed at start, replaced once it is gone', async (t) => {
  t.teardown(closePolicyWorker);
  const dir = t.testdir({ 'ok.yaml': good });
  const file = join(dir, 'ok.yaml');
  warmPolicyWorker(file, { B: 'warm' });
  const first = await loadPolicyFileOffThread(file, { B: 'one' }, { minBytes: 0 });
  const second = await loadPolicyFileOffThread(file, { B: 'two' }, { minBytes: 0 });
  t.equal(first.offThread && second.offThread, true, 'both parsed on the worker');
  t.same([first.result, second.result].map((r) => r.ok && r.policy.sites[0]!.building), ['one', 'two'], 'each with its own env');
  // A worker closed with a job (the warm-up) in flight: that job is dropped, and the next reload gets a new worker.
  warmPolicyWorker(file, { B: 'dropped' });
  await closePolicyWorker();
  const fourth = await loadPolicyFileOffThread(file, { B: 'four' }, { minBytes: 0 });
  t.equal(fourth.offThread, true, 'a new worker');
  t.equal(fourth.result.ok && fourth.result.policy.sites[0]!.building, 'four');
});

/** Each thread of this process and its nice value, from /proc (Linux). */
function threadNices(): Map<number, number> {
  const nices = new Map<number, number>();
  for (const tid of readdirSync('/proc/self/task')) {
    let stat: string;
    try {
      stat = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
    } catch {
      continue; // a thread that ended meanwhile
    }
    // After the command name in parentheses (which may hold spaces), field 19 of stat(5) is the nice value.
    nices.set(Number(tid), Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[16]));
  }
  return nices;
}

t.test('the worker thread parses below normal CPU priority; the thread serving requests keeps its own', { skip: process.platform !== 'linux' && 'threads have their own nice value on Linux only' }, async (t) => {
  t.teardown(closePolicyWorker);
  await closePolicyWorker();
  const dir = t.testdir({ 'ok.yaml': good });
  const before = threadNices();
  const load = await loadPolicyFileOffThread(join(dir, 'ok.yaml'), { B: 'x' }, { minBytes: 0 });
  t.equal(load.offThread, true);
  const after = threadNices();
  const lowered = [...after].filter(([tid, nice]) => nice === 10 && before.get(tid) !== 10);
  t.equal(lowered.length, 1, 'one thread more at nice 10: the worker');
  t.equal(after.get(process.pid), before.get(process.pid), 'the main thread as it was');
});

t.test('a large policy comes in parts: the same policy, in order, its keys in order, frozen', async (t) => {
  t.teardown(closePolicyWorker);
  const siteCount = ITEMS_PER_PART + 7;
  const routeCount = 3 * ITEMS_PER_PART + 11;
  const lines = ['sites:'];
  for (let i = 0; i < siteCount; i++) lines.push(`  s${i}: { url: "http://127.0.0.1:${1000 + i}", building: b${i % 5} }`);
  lines.push('routes:');
  for (let i = 0; i < routeCount; i++) lines.push(`  - { name: r${i}, match: { host: r${i}.example }, sites: [s${i % siteCount}], priority: ${1 + (i % 3)} }`);
  const dir = t.testdir({ 'big.yaml': `${lines.join('\n')}\n` });
  const file = join(dir, 'big.yaml');
  const load = await loadPolicyFileOffThread(file, {}, { minBytes: 0 });
  const here = await loadPolicyFile(file, {});
  t.equal(load.offThread, true);
  if (!load.result.ok || !here.ok) throw new Error('expected a policy');
  const policy = load.result.policy;
  t.equal(policy.routes.length, routeCount);
  t.equal(policy.sites.length, siteCount);
  t.same(policy, here.policy, 'what loadPolicyFile answers');
  t.same(policy.routes.map((r) => r.name), here.policy.routes.map((r) => r.name), 'routes in policy order');
  t.same(Object.keys(policy), Object.keys(here.policy), 'keys in their order');
  t.ok(Object.isFrozen(policy) && Object.isFrozen(policy.routes) && Object.isFrozen(policy.routes[routeCount - 1]!.match), 'deep-frozen');
  t.strictSame(policy, here.policy, 'strictly the same values');
  t.equal(policy.routes[0]!.failback, policy.routes[1]!.failback, 'equal settings within a part arrive as one object');
  t.equal(policy.sites[0]!.health, policy.sites[1]!.health);
  t.not(policy.routes[0]!.match, policy.routes[1]!.match, 'different settings stay apart');
  // The next reload on the same worker still answers whole.
  const again = await loadPolicyFileOffThread(file, {}, { minBytes: 0 });
  t.same(again.result, here);
});

t.test('a reload keeps the running policy\'s objects for the routes and sites it did not change', async (t) => {
  t.teardown(closePolicyWorker);
  const text = (changedPort: number) => {
    const lines = ['sites:'];
    for (let i = 0; i < ITEMS_PER_PART + 3; i++) lines.push(`  s${i}: { url: "http://127.0.0.1:${i === 1 ? changedPort : 1000 + i}", building: b${i % 5} }`);
    lines.push('routes:');
    for (let i = 0; i < 2 * ITEMS_PER_PART + 5; i++) lines.push(`  - { name: r${i}, match: { host: r${i}.example }, sites: [s${i === 7 ? 2 : 0}], priority: ${i === 3 ? 9 : 1} }`);
    return `${lines.join('\n')}\n`;
  };
  const dir = t.testdir({ 'a.yaml': text(1001) });
  const file = join(dir, 'a.yaml');
  const first = await loadPolicyFileOffThread(file, {}, { minBytes: 0 });
  if (!first.result.ok) throw new Error('expected a policy');
  const running = first.result.policy;
  // The same routes with r3 and r7 changed, site s1 moved, and one route more.
  writeFileSync(file, text(2001).replace('priority: 9', 'priority: 4').replace('sites: [s2]', 'sites: [s1]') + '  - { name: extra, sites: [s0] }\n');
  const next = await loadPolicyFileOffThread(file, {}, { minBytes: 0, running });
  const here = await loadPolicyFile(file, {});
  if (!next.result.ok || !here.ok) throw new Error('expected a policy');
  const policy = next.result.policy;
  t.strictSame(policy, here.policy, 'the same values as a parse from scratch');
  t.equal(policy.routes[0], running.routes[0], 'an unchanged route is the running object');
  t.equal(policy.routes[2 * ITEMS_PER_PART], running.routes[2 * ITEMS_PER_PART], 'in a later part too');
  t.equal(policy.sites[0], running.sites[0], 'an unchanged site is the running object');
  t.not(policy.sites[1], running.sites[1], 'a changed site is the parsed one');
  t.equal(policy.sites[1]!.url, 'http://127.0.0.1:2001');
  t.not(policy.routes[3], running.routes[3], 'a changed route is the parsed one');
  t.equal(policy.routes[3]!.priority, 4);
  t.same(policy.routes[7]!.sites, ['s1']);
  t.equal(policy.routes.at(-1)!.name, 'extra', 'a new route is there');
  t.not(policy.routes, running.routes, 'the lists themselves are new');
  t.ok(Object.isFrozen(policy.routes[3]) && Object.isFrozen(policy.sites[1]!.health), 'the parsed objects frozen');
});

t.test('shareEqualSettings: one object for equal settings, never for settings that only look alike', async (t) => {
  const items = [
    { name: 'a', retry: { on: [502], budget: { percent: 20 } }, limits: { bodyBytes: 1 } },
    { name: 'b', retry: { on: [502], budget: { percent: 20 } }, limits: { bodyBytes: 2 } },
    { name: 'c', retry: { on: [502], budget: { percent: 20 }, extra: undefined } },
    { name: 'd', limits: { bodyBytes: null } },
    { name: 'e', limits: { bodyBytes: Number.POSITIVE_INFINITY } },
    { name: 'f', limits: { bodyBytes: Number.NaN } },
    { name: 'g', other: { bodyBytes: 1 } },
    'not an object',
    null,
  ];
  const shared = shareEqualSettings(items) as Array<Record<string, Record<string, unknown>> | string | null>;
  t.strictSame(shared, items, 'the same values, in order');
  const at = (i: number) => shared[i] as Record<string, Record<string, unknown>>;
  t.equal(at(1).retry, at(0).retry, 'equal retry settings: one object');
  t.not(at(1).limits, at(0).limits, 'different limits stay apart');
  t.not(at(2).retry, at(0).retry, 'an undefined field is not a missing one');
  t.not(at(3).limits, at(4).limits, 'Infinity is not null');
  t.not(at(4).limits, at(5).limits, 'NaN is not Infinity');
  t.not(at(6).other, at(0).limits, 'only the same field is shared');
  t.equal(shared[0], items[0], 'an item with nothing to share is passed as it is');
  t.not(shared[1], items[1], 'an item that shares is a copy (the original is not changed)');
  t.not((items[1] as { retry: unknown }).retry, (items[0] as { retry: unknown }).retry);
});
