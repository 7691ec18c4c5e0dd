// The Prometheus test helper itself: it must fail loudly without binaries,
// reject bad input before spawning, and leave no process or port behind.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { findPromBinaries, startPrometheus } from '../helpers/prometheus.js';

t.test('missing binaries throw with the install command', async (t) => {
  const empty = await mkdtemp(join(tmpdir(), 'detour-nobin-'));
  t.teardown(() => rm(empty, { recursive: true, force: true }));
  t.throws(() => findPromBinaries([empty]), /promtool and prometheus not found .*bash \.ci\/install-prometheus\.sh/);
});

t.test('bad options are rejected before anything starts', async (t) => {
  await t.rejects(startPrometheus({ scrapeTargets: ['127.0.0.1:1'], scrapeIntervalMs: 0 }), /scrapeIntervalMs/);
  await t.rejects(startPrometheus({ scrapeTargets: ['https://127.0.0.1:1'], scrapeIntervalMs: 500 }), /host:port/);
  await t.rejects(startPrometheus({ scrapeTargets: ['http://127.0.0.1:1/other'], scrapeIntervalMs: 500 }), /host:port/);
});

t.test('a started Prometheus answers queries and is gone after close', async (t) => {
  const prom = await startPrometheus({ scrapeTargets: ['http://127.0.0.1:1'], scrapeIntervalMs: 1000 });
  t.teardown(() => prom.close());
  t.match(prom.url, /^http:\/\/127\.0\.0\.1:\d+$/);
  const one = await prom.query('vector(1)');
  t.same(one.map((s) => s.value[1]), ['1'], 'instant query returns the vector');
  await t.rejects(prom.query('sum('), /failed/, 'a PromQL error rejects');
  await t.rejects(prom.query('1'), /scalar, not a vector/, 'a non-vector result rejects');
  await t.rejects(prom.waitFor('vector(0) > 1', (s) => s.length > 0, 200), /timed out/, 'waitFor gives up after its timeout');
  await prom.close();
  await prom.close();
  await t.rejects(fetch(`${prom.url}/-/ready`), 'nothing listens after close');
});
