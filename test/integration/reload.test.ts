// Reloads run one at a time and the last read of the file wins: a slow parse of
// a large, older file must never finish after a newer, small one and put the
// old policy back (file watch, SIGHUP and POST /reload all go through reload()).
import t from 'tap';
import { mkdirSync, rmSync } from 'node:fs';
import { readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Registry } from 'prom-client';
import { startGateway } from '../../src/gateway.js';
import { parsePolicy } from '../../src/config/parse-policy.js';
import { silentLogger } from '../../src/logger.js';
import type { ParseResult } from '../../src/config/policy.js';
import { startFakeSite } from '../helpers/fake-site.js';
import { waitFor } from '../helpers/wait.js';

function policyText(siteUrl: string, routes: number, token: string): string {
  const lines = [
    'listen: { host: 127.0.0.1, port: 0 }',
    `admin: { host: 127.0.0.1, port: 0, token: ${token} }`,
    'sites:',
    `  a: { url: "${siteUrl}", health: { interval: 100ms, timeout: 150ms } }`,
    'routes:',
  ];
  for (let i = 0; i < routes; i++) lines.push(`  - { name: r${i}, match: { host: r${i}.example }, sites: [a] }`);
  return `${lines.join('\n')}\n`;
}

t.test('overlapping reloads: one at a time, the last read of the file wins', async (t) => {
  const site = await startFakeSite({ name: 'a' });
  t.teardown(() => site.close());
  const dir = t.testdir({});
  const file = join(dir, 'policy.yaml');
  await writeFile(file, policyText(site.url, 1, 'tok-0123456789abcdef'));
  const first = parsePolicy(await readFile(file, 'utf8'), file, {});
  if (!first.ok) throw new Error('bad fixture');

  // The loader reads the file as the real one does, but the first read's parse
  // is held until the test lets it go: a large file that takes long to parse.
  const reads: number[] = [];
  let release!: () => void;
  const held = new Promise<void>((r) => { release = r; });
  let firstRead!: () => void;
  const readStarted = new Promise<void>((r) => { firstRead = r; });
  const loadPolicy = async (path: string): Promise<ParseResult> => {
    const text = await readFile(path, 'utf8');
    reads.push(text.split('\n').filter((l) => l.includes('name: r')).length);
    if (reads.length === 1) {
      firstRead();
      await held;
    }
    return parsePolicy(text, path, {});
  };
  const gateway = await startGateway({ policy: first.policy, logger: silentLogger(), registry: new Registry(), loadPolicy, firstRoundTimeoutMs: 500 });
  t.teardown(() => gateway.close());

  await writeFile(file, policyText(site.url, 3000, 'tok-0123456789abcdef'));
  const large = gateway.reload();
  await Promise.race([readStarted, waitFor(() => false, { timeoutMs: 10_000, message: 'the reload read the file' })]);
  // The small file replaces the large one (renamed over it, as editors save).
  await writeFile(`${file}.new`, policyText(site.url, 2, 'tok-0123456789abcdef'));
  await rename(`${file}.new`, file);
  const small = gateway.reload();
  const alsoSmall = gateway.reload();
  t.equal(alsoSmall, small, 'reloads asked for while one runs share the next one');

  release();
  t.match(await large, { ok: true, message: /3000 routes/ });
  t.match(await small, { ok: true, message: /2 routes/ });
  t.same(reads, [3000, 2], 'the second read started only after the first reload was applied');
  t.same(gateway.control.policy.routes.map((r) => r.name), ['r0', 'r1'], 'the small file, read last, is in force');
  t.equal(gateway.table().routes.length, 2);
  t.equal(gateway.control.events().filter((e) => e.type === 'policyReloaded').length, 2, 'two reloads');

  // POST /reload goes through the same queue.
  const viaAdmin = await fetch(`${gateway.adminUrl}/reload`, { method: 'POST', headers: { authorization: 'Bearer tok-0123456789abcdef' } });
  t.equal(viaAdmin.status, 200);
  t.same(reads, [3000, 2, 2]);
});

t.test('the policy directory replaced (rm -rf, created again): edits are still picked up, and the lost watch is reported', async (t) => {
  const site = await startFakeSite({ name: 'a' });
  t.teardown(() => site.close());
  const root = t.testdir({});
  const dir = join(root, 'etc');
  const file = join(dir, 'policy.yaml');
  mkdirSync(dir);
  await writeFile(file, policyText(site.url, 1, 'tok-0123456789abcdef'));
  const first = parsePolicy(await readFile(file, 'utf8'), file, {});
  if (!first.ok) throw new Error('bad fixture');
  const gateway = await startGateway({
    policy: first.policy, logger: silentLogger(), registry: new Registry(), firstRoundTimeoutMs: 500,
    watch: { debounceMs: 20, pollMs: 50 },
  });
  t.teardown(() => gateway.close());
  const status = async () => (await (await fetch(`${gateway.adminUrl}/status`)).json()) as {
    configWatch: { up: boolean; detail: string }; events: Array<{ type: string; message: string }>;
  };
  t.match((await status()).configWatch, { up: true, detail: `watching ${dir}` });

  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir);
  await writeFile(file, policyText(site.url, 2, 'tok-0123456789abcdef'));
  await waitFor(() => gateway.control.policy.routes.length === 2, { timeoutMs: 5000, message: 'the file in the new directory reloaded' });

  // Edit again: the watch must be on the new directory now, not deaf on the old one.
  await writeFile(file, policyText(site.url, 3, 'tok-0123456789abcdef'));
  await waitFor(() => gateway.control.policy.routes.length === 3, { timeoutMs: 5000, message: 'a later edit reloaded too' });
  const doc = await status();
  t.match(doc.configWatch, { up: true, detail: `watching ${dir}` });
  const lost = doc.events.find((e) => e.type === 'configWatchDown');
  t.match(lost?.message, /^policy file watch lost: .*etc was (removed or replaced|removed|replaced); polling every 50ms$/, 'the lost watch is an event');
  t.ok(doc.events.some((e) => e.type === 'configWatchUp'), 'and so is the watch coming back');
  const metrics = await (await fetch(`${gateway.adminUrl}/metrics`)).text();
  t.match(metrics, /^detour_config_watch_up 1$/m);
});

t.test('detour_config_watch_up is 0 only while the watch is down', async (t) => {
  const { createMetrics } = await import('../../src/metrics/metrics.js');
  let configWatchUp: boolean | undefined;
  const registry = new Registry();
  const metrics = createMetrics(registry);
  metrics.bindState(() => ({
    table: undefined, sites: [], drainedSites: new Set(), drainedBuildings: new Set(), stateStoreUp: undefined, configWatchUp,
  }));
  const value = async () => /^detour_config_watch_up (\d)$/m.exec(await registry.metrics())?.[1];
  t.equal(await value(), '1', 'not watching (--no-watch): nothing is wrong');
  configWatchUp = false;
  t.equal(await value(), '0', 'watch lost: edits only seen by the poll');
  configWatchUp = true;
  t.equal(await value(), '1');
});
