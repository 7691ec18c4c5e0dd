import t from 'tap';
import { mkdirSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PolicyWatcher, type WatchStatus } from '../../src/config/watch-policy.js';

interface Cleanup {
  teardown(fn: () => void): void;
}

/** A watcher that counts its signals; `nextCall()` resolves on the next one (bounded, so a broken watcher fails fast). */
function watchCounting(t: Cleanup, file: string, debounceMs: number, opts: { pollMs?: number } = {}) {
  let calls = 0;
  const statuses: WatchStatus[] = [];
  let waiters: Array<() => void> = [];
  const watcher = new PolicyWatcher({
    file,
    debounceMs,
    onChange: () => {
      calls += 1;
      const ready = waiters;
      waiters = [];
      for (const resolve of ready) resolve();
    },
    ...(opts.pollMs === undefined ? {} : { pollMs: opts.pollMs }),
    // Recorded, not failed on: removing a test's directory at teardown takes its watch down too.
    onStatus: (status) => statuses.push(status),
  });
  t.teardown(() => watcher.close());
  return {
    watcher,
    statuses,
    calls: () => calls,
    nextCall: (timeoutMs = 5000) => new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no change signalled within ${timeoutMs}ms`)), timeoutMs);
      waiters.push(() => {
        clearTimeout(timer);
        resolve();
      });
    }),
  };
}

const policy = (n: number) => `# version ${n}\nsites: {}\n`;

t.test('fires when the file is written in place', async (t) => {
  const dir = t.testdir({ 'policy.yaml': policy(1) });
  const file = join(dir, 'policy.yaml');
  const subject = watchCounting(t, file, 20);
  const next = subject.nextCall();
  writeFileSync(file, policy(2));
  await next;
  t.equal(subject.calls(), 1);
  t.same(subject.statuses, [{ up: true, detail: `watching ${dir}` }], 'watching from the start, and still');
});

t.test('fires when an editor replaces the file by rename', async (t) => {
  const dir = t.testdir({ 'policy.yaml': policy(1) });
  const file = join(dir, 'policy.yaml');
  const subject = watchCounting(t, file, 20);
  const next = subject.nextCall();
  writeFileSync(join(dir, '.policy.yaml.swp'), policy(2));
  renameSync(join(dir, '.policy.yaml.swp'), file);
  await next;
  t.equal(subject.calls(), 1);

  const again = subject.nextCall();
  writeFileSync(file, policy(3));
  await again;
  t.equal(subject.calls(), 2, 'still watching after the rename');
});

t.test('fires when a ConfigMap-style symlink swap changes what the file points at', async (t) => {
  const dir = t.testdir({ v1: { 'policy.yaml': policy(1) }, v2: { 'policy.yaml': policy(2) } });
  symlinkSync('v1', join(dir, '..data'));
  symlinkSync(join('..data', 'policy.yaml'), join(dir, 'policy.yaml'));
  const subject = watchCounting(t, join(dir, 'policy.yaml'), 20);
  const next = subject.nextCall();
  symlinkSync('v2', join(dir, '..data_tmp'));
  renameSync(join(dir, '..data_tmp'), join(dir, '..data'));
  await next;
  t.equal(subject.calls(), 1);
});

t.test('many events from one save give one signal', async (t) => {
  const dir = t.testdir({ 'policy.yaml': policy(1) });
  const file = join(dir, 'policy.yaml');
  const subject = watchCounting(t, file, 100);
  // The referee has a longer debounce: once it fires, the subject has settled too.
  const referee = watchCounting(t, file, 400);
  const settled = referee.nextCall();
  for (let n = 2; n < 6; n++) writeFileSync(file, policy(n));
  await settled;
  t.equal(subject.calls(), 1);
});

t.test('other files in the directory are ignored', async (t) => {
  const dir = t.testdir({ 'policy.yaml': policy(1), 'notes.txt': 'x' });
  const subject = watchCounting(t, join(dir, 'policy.yaml'), 20);
  const referee = watchCounting(t, join(dir, 'notes.txt'), 200);
  const settled = referee.nextCall();
  writeFileSync(join(dir, 'notes.txt'), 'y');
  await settled;
  t.equal(subject.calls(), 0);
});

t.test('close() stops the signals', async (t) => {
  const dir = t.testdir({ 'policy.yaml': policy(1) });
  const file = join(dir, 'policy.yaml');
  const subject = watchCounting(t, file, 20);
  const referee = watchCounting(t, file, 200);
  subject.watcher.close();
  subject.watcher.close();
  const settled = referee.nextCall();
  writeFileSync(file, policy(2));
  await settled;
  t.equal(subject.calls(), 0);
});

t.test('close() cancels a pending signal', async (t) => {
  const dir = t.testdir({ 'policy.yaml': policy(1) });
  const file = join(dir, 'policy.yaml');
  const subject = watchCounting(t, file, 150);
  const early = watchCounting(t, file, 10);
  const referee = watchCounting(t, file, 400);
  const seen = early.nextCall();
  const settled = referee.nextCall();
  writeFileSync(file, policy(2));
  await seen; // the event reached the directory watch; the subject's timer is pending
  subject.watcher.close();
  await settled;
  t.equal(subject.calls(), 0);
});

t.test('a file that does not exist yet is signalled when it appears', async (t) => {
  const dir = t.testdir({});
  mkdirSync(join(dir, 'etc'));
  const file = join(dir, 'etc', 'policy.yaml');
  const subject = watchCounting(t, file, 20);
  const next = subject.nextCall();
  writeFileSync(file, policy(1));
  await next;
  t.equal(subject.calls(), 1);
});

t.test('a directory that is not there yet: said so, polled, watched once it appears', async (t) => {
  const dir = t.testdir({});
  const file = join(dir, 'missing', 'policy.yaml');
  const subject = watchCounting(t, file, 20, { pollMs: 50 });
  t.match(subject.watcher.status, { up: false, detail: /^cannot watch .*missing: ENOENT.*; polling every 50ms$/ });
  const next = subject.nextCall();
  mkdirSync(join(dir, 'missing'));
  writeFileSync(file, policy(1));
  await next;
  t.match(subject.watcher.status, { up: true, detail: /^watching .*missing$/ });
  t.same(subject.statuses.map((s) => s.up), [false, true]);
});

t.test('the directory replaced (rm -rf, created again): the watch follows, edits are seen again', async (t) => {
  const root = t.testdir({ etc: { 'policy.yaml': policy(1) } });
  const dir = join(root, 'etc');
  const file = join(dir, 'policy.yaml');
  const subject = watchCounting(t, file, 20, { pollMs: 50 });
  t.equal(subject.watcher.status.up, true);

  const replaced = subject.nextCall();
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir);
  writeFileSync(file, policy(2));
  await replaced;
  await waitUntil(() => subject.statuses.some((s) => !s.up), 'the lost watch reported');
  t.match(subject.statuses.find((s) => !s.up), { detail: /was (removed or replaced|removed|replaced); polling every 50ms$/ });
  await waitUntil(() => subject.watcher.status.up, 'watch re-armed');

  // An edit in place, well inside the poll interval's reach: the new watch sees it.
  const calls = subject.calls();
  const edited = subject.nextCall();
  writeFileSync(file, policy(3));
  await edited;
  t.equal(subject.calls(), calls + 1, 'one signal for one edit');
  t.match(subject.watcher.status, { up: true, detail: /^watching / });
});

t.test('a change the watch did not report is still seen by the poll', async (t) => {
  const dir = t.testdir({ 'policy.yaml': policy(1) });
  const file = join(dir, 'policy.yaml');
  const subject = watchCounting(t, file, 20, { pollMs: 50 });
  // Stand-in for a dropped event: the watch is closed behind the watcher's back.
  (subject.watcher as unknown as { watcher: { close(): void } }).watcher.close();
  const next = subject.nextCall();
  writeFileSync(file, policy(2));
  await next;
  t.equal(subject.calls(), 1);
});

async function waitUntil(cond: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 5000;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`${what}: not within 5000ms`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

t.test('a watch that errors, or a directory that changed identity, is reported and armed again by the poll', async (t) => {
  const dir = t.testdir({ 'policy.yaml': policy(1) });
  const file = join(dir, 'policy.yaml');
  const subject = watchCounting(t, file, 20, { pollMs: 50 });
  const inner = subject.watcher as unknown as { watcher: { emit(e: string, err: Error): void }; watchedDir: string };
  inner.watcher.emit('error', new Error('EMFILE: too many open files'));
  t.match(subject.watcher.status, { up: false, detail: `watch on ${dir} failed: EMFILE: too many open files; polling every 50ms` });
  await waitUntil(() => subject.watcher.status.up, 'armed again');
  // Platforms that reuse no inode numbers: the poll sees another directory under the same name.
  inner.watchedDir = 'another directory';
  await waitUntil(() => subject.statuses.some((s) => /was replaced; polling/.test(s.detail)), 'replacement noticed');
  await waitUntil(() => subject.watcher.status.up, 'armed on the new one');
  const next = subject.nextCall();
  writeFileSync(file, policy(2));
  await next;
  t.same(subject.statuses.map((s) => s.up), [true, false, true, false, true]);
});
