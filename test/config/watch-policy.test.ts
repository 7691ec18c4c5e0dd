import t from 'tap';
import { mkdirSync, renameSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PolicyWatcher } from '../../src/config/watch-policy.js';

interface Cleanup {
  teardown(fn: () => void): void;
  fail(message: string): void;
}

/** A watcher that counts its signals; `nextCall()` resolves on the next one (bounded, so a broken watcher fails fast). */
function watchCounting(t: Cleanup, file: string, debounceMs: number) {
  let calls = 0;
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
    onError: (err) => t.fail(`watcher error: ${err.message}`),
  });
  t.teardown(() => watcher.close());
  return {
    watcher,
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

t.test('a directory that cannot be watched is a clear error', async (t) => {
  const dir = t.testdir({});
  t.throws(() => new PolicyWatcher({ file: join(dir, 'missing', 'policy.yaml'), onChange: () => {} }), {
    message: /^cannot watch .*missing for policy changes: ENOENT/,
  });
});
