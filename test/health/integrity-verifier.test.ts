import t from 'tap';
import { Registry } from 'prom-client';
import { createMetrics, type Metrics } from '../../src/metrics/metrics.js';
import { silentLogger } from '../../src/logger.js';
import { IntegrityVerifier, type IntegrityTarget } from '../../src/health/integrity-verifier.js';
import type { IntegrityVerdict } from '../../src/routing/route-table.js';
import type { VerifyPolicy } from '../../src/config/policy.js';
import { startProbeSite, waitFor, type ProbeSite, type SiteBehaviour } from '../helpers/probe-site.js';
import { makeSite, makeVerify } from './site-fixture.js';

type Cleanup = { teardown(fn: () => unknown): void };

interface Harness {
  readonly verifier: IntegrityVerifier;
  readonly metrics: Metrics;
  readonly emitted: Array<{ route: string } & IntegrityVerdict>;
  clockMs: number;
}

function startVerifier(t: Cleanup): Harness {
  const metrics = createMetrics(new Registry());
  const h: Harness = {
    metrics,
    emitted: [],
    clockMs: 1000,
    verifier: new IntegrityVerifier({
      onVerdict: (route, verdict) => h.emitted.push({ route, ...verdict }),
      metrics,
      logger: silentLogger(),
      now: () => h.clockMs,
    }),
  };
  t.teardown(() => h.verifier.close());
  return h;
}

async function startSite(t: Cleanup, behaviour: SiteBehaviour): Promise<ProbeSite> {
  const site = await startProbeSite(behaviour);
  t.teardown(() => site.close());
  return site;
}

const doc = (value: unknown, status = 200): SiteBehaviour => ({ status, body: JSON.stringify(value) });

function target(route: string, verify: VerifyPolicy, preferred: ProbeSite, serving: ProbeSite | null, servingName = 'serpong'): IntegrityTarget {
  return {
    route,
    verify,
    preferred: makeSite('cyber1', preferred.url),
    serving: serving === null ? null : makeSite(servingName, serving.url),
  };
}

async function integrityCount(metrics: Metrics, route: string, result: string): Promise<number> {
  const { values } = await metrics.integrityChecks.get();
  return values.find((v) => v.labels.route === route && v.labels.result === result)?.value ?? 0;
}

t.test('verdicts are emitted on change only; sinceMs is when ok last flipped', async (t) => {
  const cyber1 = await startSite(t, doc({ checksum: 'a1' }));
  const serpong = await startSite(t, doc({ checksum: 'a1' }));
  const h = startVerifier(t);
  const check = async (atMs: number): Promise<void> => {
    h.clockMs = atMs;
    await h.verifier.checkNow('ceir');
  };

  h.verifier.update([target('ceir', makeVerify({ field: 'checksum' }), cyber1, serpong)]);
  await check(1000);
  await check(2000);
  t.same(h.emitted, [{ route: 'ceir', ok: true, sinceMs: 1000, detail: 'checksum a1 (cyber1) == a1 (serpong)' }], 'same answer twice: one verdict');
  t.same(h.verifier.verdicts().get('ceir'), { ok: true, sinceMs: 1000, detail: 'checksum a1 (cyber1) == a1 (serpong)' });

  serpong.set(doc({ checksum: 'b2' }));
  await check(3000);
  serpong.set(doc({ checksum: 'b3' }));
  await check(4000);
  await check(4500);
  serpong.set(doc({}, 500));
  await check(5000);
  serpong.set(doc({ checksum: 'a1' }));
  await check(6000);
  t.same(h.emitted.slice(1), [
    { route: 'ceir', ok: false, sinceMs: 3000, detail: 'checksum a1 (cyber1) != b2 (serpong)' },
    { route: 'ceir', ok: false, sinceMs: 3000, detail: 'checksum a1 (cyber1) != b3 (serpong)' },
    { route: 'ceir', ok: false, sinceMs: 3000, detail: 'serpong: status 500' },
    { route: 'ceir', ok: true, sinceMs: 6000, detail: 'checksum a1 (cyber1) == a1 (serpong)' },
  ], 'detail changes keep sinceMs; ok flips move it');
  t.equal(await integrityCount(h.metrics, 'ceir', 'match'), cyber1.paths.length - 4, 'every check counted');
  t.equal(await integrityCount(h.metrics, 'ceir', 'mismatch'), 3);
  t.equal(await integrityCount(h.metrics, 'ceir', 'error'), 1);
  t.same([...new Set(cyber1.paths)], ['/_integrity'], 'verify.path fetched');
  t.equal(cyber1.paths.length, serpong.paths.length, 'both sites fetched every time');
});

t.test('with max, only the preferred site is read and its value bounded', async (t) => {
  const cyber1 = await startSite(t, doc({ replication: { lagSeconds: 12 } }));
  const serpong = await startSite(t, doc({}));
  const h = startVerifier(t);
  h.verifier.update([target('visa', makeVerify({ field: 'replication.lagSeconds', max: 5 }), cyber1, serpong)]);
  await h.verifier.checkNow('visa');
  t.same(h.verifier.verdicts().get('visa'), { ok: false, sinceMs: 1000, detail: 'replication.lagSeconds 12 (cyber1) > max 5' });
  cyber1.set(doc({ replication: { lagSeconds: 2 } }));
  h.clockMs = 2000;
  await h.verifier.checkNow('visa');
  t.same(h.verifier.verdicts().get('visa'), { ok: true, sinceMs: 2000, detail: 'replication.lagSeconds 2 (cyber1) <= max 5' });
  t.equal(serpong.paths.length, 0, 'serving site never fetched');
});

t.test('no serving site: not ok, nothing fetched', async (t) => {
  const cyber1 = await startSite(t, doc({ checksum: 'a1' }));
  const h = startVerifier(t);
  h.verifier.update([target('ceir', makeVerify({ field: 'checksum' }), cyber1, null)]);
  await h.verifier.checkNow('ceir');
  t.same(h.emitted, [{ route: 'ceir', ok: false, sinceMs: 1000, detail: 'no site to compare against' }]);
  t.equal(cyber1.paths.length, 0);
});

t.test('a site that does not answer in time fails the gate', async (t) => {
  const cyber1 = await startSite(t, doc({ checksum: 'a1' }));
  const serpong = await startSite(t, 'hang');
  const h = startVerifier(t);
  h.verifier.update([target('ceir', makeVerify({ field: 'checksum', timeoutMs: 150 }), cyber1, serpong)]);
  await waitFor(() => h.emitted.length === 1, 'first verdict');
  t.same(h.emitted[0], { route: 'ceir', ok: false, sinceMs: 1000, detail: 'serpong: timeout after 150ms' });
  await waitFor(() => serpong.openSockets === 0, 'timed-out connection closed');
});

t.test('bodies over 1 MiB are refused, not compared cut off', async (t) => {
  const big = 'x'.repeat(1024 * 1024 + 10);
  const cyber1 = await startSite(t, { status: 200, body: big });
  const serpong = await startSite(t, { status: 200, body: big });
  const h = startVerifier(t);
  h.verifier.update([target('ceir', makeVerify(), cyber1, serpong)]);
  await waitFor(() => h.emitted.length === 1, 'first verdict');
  t.equal(h.emitted[0]?.ok, false);
  t.equal(h.emitted[0]?.detail, 'cyber1: body larger than 1048576 bytes; serpong: body larger than 1048576 bytes');
});

t.test('checks keep running every intervalMs', async (t) => {
  const cyber1 = await startSite(t, doc({ checksum: 'a1' }));
  const serpong = await startSite(t, doc({ checksum: 'a1' }));
  const h = startVerifier(t);
  h.verifier.update([target('ceir', makeVerify({ field: 'checksum', intervalMs: 20 }), cyber1, serpong)]);
  await waitFor(() => cyber1.paths.length >= 4 && serpong.paths.length >= 4, 'four checks');
  t.equal(h.emitted.length, 1, 'still one verdict');
  t.equal(Math.max(cyber1.maxInFlight, serpong.maxInFlight), 1, 'checks never overlap');
});

t.test('update keeps unchanged targets, re-checks changed pairs, forgets removed ones', async (t) => {
  const cyber1 = await startSite(t, doc({ checksum: 'a1' }));
  const serpong = await startSite(t, doc({ checksum: 'a1' }));
  const dr = await startSite(t, doc({ checksum: 'zz' }));
  const h = startVerifier(t);
  const verify = makeVerify({ field: 'checksum' });
  h.verifier.update([target('ceir', verify, cyber1, serpong), target('visa', verify, cyber1, serpong)]);
  await Promise.all([h.verifier.checkNow('ceir'), h.verifier.checkNow('visa')]);
  t.equal(h.emitted.length, 2);

  // Same targets in new objects: loops and verdicts kept, nothing emitted, no extra fetch.
  const fetched = serpong.paths.length;
  h.verifier.update([target('ceir', verify, cyber1, serpong), target('visa', verify, cyber1, serpong)]);
  t.equal(serpong.paths.length, fetched, 'no immediate re-check');
  t.equal(h.emitted.length, 2, 'nothing emitted');

  // visa now served from dr: the old passing verdict is withdrawn until dr is compared.
  h.clockMs = 5000;
  h.verifier.update([target('ceir', verify, cyber1, serpong), target('visa', verify, cyber1, dr, 'dr')]);
  t.same(h.emitted[2], { route: 'visa', ok: false, sinceMs: 5000, detail: 'checking cyber1 against dr anew' });
  await waitFor(() => h.emitted.length === 4, 'verdict for the new pair');
  t.same(h.emitted[3], { route: 'visa', ok: false, sinceMs: 5000, detail: 'checksum a1 (cyber1) != zz (dr)' });

  // ceir no longer needs the gate: forgotten silently, loop stopped.
  h.verifier.update([target('visa', verify, cyber1, dr, 'dr')]);
  const before = serpong.paths.length;
  await h.verifier.checkNow('ceir');
  t.equal(serpong.paths.length, before, 'removed target not checked');
  t.equal(h.emitted.length, 4, 'nothing emitted on removal');
  t.same([...h.verifier.verdicts().keys()], ['visa']);
});

t.test('close aborts checks in flight and stops the loops', async (t) => {
  const cyber1 = await startSite(t, 'hang');
  const serpong = await startSite(t, 'hang');
  const h = startVerifier(t);
  h.verifier.update([target('ceir', makeVerify({ field: 'checksum', timeoutMs: 10_000, intervalMs: 5 }), cyber1, serpong)]);
  await waitFor(() => cyber1.inFlight === 1 && serpong.inFlight === 1, 'checks in flight');
  await h.verifier.close();
  await waitFor(() => cyber1.openSockets === 0 && serpong.openSockets === 0, 'connections closed');
  t.equal(h.emitted.length, 0, 'an aborted check says nothing');
  h.verifier.update([target('ceir', makeVerify({ field: 'checksum' }), cyber1, serpong)]);
  t.equal(cyber1.paths.length, 1, 'a closed verifier starts nothing');
});

t.test('what the sites sent is compared: big integers, non-UTF-8 bodies, a bound beyond the safe range', async (t) => {
  const cyber1 = await startSite(t, { status: 200, body: '{"checksum": 9007199254740993}' });
  const serpong = await startSite(t, { status: 200, body: '{"checksum": 9007199254740992}' });
  const h = startVerifier(t);
  const byField = target('ceir', makeVerify({ field: 'checksum' }), cyber1, serpong);
  h.verifier.update([byField]);
  await h.verifier.checkNow('ceir');
  t.same(h.verifier.verdicts().get('ceir'),
    { ok: false, sinceMs: 1000, detail: 'checksum 9007199254740993 (cyber1) != 9007199254740992 (serpong)' },
    'JSON.parse would call these equal');

  cyber1.set({ status: 200, body: Buffer.from('{"checksum": "Müller"}', 'latin1') });
  serpong.set({ status: 200, body: Buffer.from('{"checksum": "Mäller"}', 'latin1') });
  await h.verifier.checkNow('ceir');
  t.match(h.verifier.verdicts().get('ceir'),
    { ok: false, detail: 'cyber1: body is not valid UTF-8; serpong: body is not valid UTF-8' });

  // Whole bodies: the same Latin-1 bytes match, different ones do not.
  h.verifier.update([target('ceir', makeVerify(), cyber1, serpong)]);
  await h.verifier.checkNow('ceir');
  t.match(h.verifier.verdicts().get('ceir'), { ok: false, detail: /^body sha256:\w+ \(cyber1\) != sha256:\w+ \(serpong\)$/ });
  serpong.set({ status: 200, body: Buffer.from('{"checksum": "Müller"}', 'latin1') });
  await h.verifier.checkNow('ceir');
  t.match(h.verifier.verdicts().get('ceir'), { ok: true, detail: /==/ });

  cyber1.set({ status: 200, body: '{"lag": 9007199254740993}' });
  h.verifier.update([target('ceir', makeVerify({ field: 'lag', max: 2 ** 62 }), cyber1, serpong)]);
  await h.verifier.checkNow('ceir');
  t.match(h.verifier.verdicts().get('ceir'), { ok: false, detail: /lag 9007199254740993 is beyond the safe integer range/ });
  t.ok(await integrityCount(h.metrics, 'ceir', 'error') >= 2, 'not UTF-8 and beyond the safe range count as errors');
  t.equal(await integrityCount(h.metrics, 'ceir', 'match'), 1, 'only the identical bytes matched');
});
