// Probes and integrity checks use exactly the trust live traffic uses: the
// same ClientTls per site URL. A site the proxy would refuse never passes a
// probe or an integrity comparison.
import t from 'tap';
import { Registry } from 'prom-client';
import { createMetrics } from '../../src/metrics/metrics.js';
import { silentLogger } from '../../src/logger.js';
import { Prober, type ProbeResult } from '../../src/health/prober.js';
import { IntegrityVerifier } from '../../src/health/integrity-verifier.js';
import { loadClientTls, type ClientTls } from '../../src/tls/client-tls.js';
import type { IntegrityVerdict } from '../../src/routing/route-table.js';
import { startFakeSite } from '../helpers/fake-site.js';
import { testPolicy } from '../helpers/policy.js';
import { makeCa } from '../helpers/tls.js';

t.test('prober and integrity verifier with per-site trust', async (t) => {
  const dc = makeCa(t, 'dc-ca');
  const impostorCa = makeCa(t, 'impostor-ca');
  const primary = await startFakeSite({ name: 'primary', tls: dc.issue('primary', { dns: ['ceir.internal'] }), integrity: { checksum: 'a1' } });
  const backup = await startFakeSite({ name: 'backup', tls: dc.issue('backup', { dns: ['ceir.internal'] }), integrity: { checksum: 'a1' } });
  const impostor = await startFakeSite({ name: 'impostor', tls: impostorCa.issue('impostor', { dns: ['ceir.internal'] }), integrity: { checksum: 'a1' } });
  t.teardown(() => Promise.all([primary.close(), backup.close(), impostor.close()]));
  const tls = { ca: dc.cert, servername: 'ceir.internal', verify: true };
  const policy = testPolicy({
    sites: [primary, backup, impostor].map((s) => ({ name: s.name, url: s.url, tls, health: { intervalMs: 60_000, timeoutMs: 2000 } })),
    routes: [{ name: 'ceir', sites: ['primary', 'backup', 'impostor'] }],
  });
  const trust = new Map<string, ClientTls>();
  for (const site of policy.sites) {
    const loaded = loadClientTls(site, Date.now());
    if (loaded.ok && loaded.value) trust.set(site.url, loaded.value);
  }
  const clientTls = (url: string) => trust.get(url);
  const metrics = createMetrics(new Registry());

  const results = new Map<string, ProbeResult>();
  const prober = new Prober({ onResult: (site, r) => results.set(site, r), metrics, logger: silentLogger(), clientTls });
  t.teardown(() => prober.close());
  prober.update(policy.sites);
  await prober.firstRound();
  t.equal(results.get('primary')?.passed, true, String(results.get('primary')?.detail));
  t.equal(results.get('impostor')?.passed, false);
  t.equal(results.get('impostor')?.detail, 'certificate signed by unknown authority');
  t.equal(impostor.counts.health, 0, 'the impostor never saw a probe');

  const verdicts: Array<[string, IntegrityVerdict]> = [];
  const verifier = new IntegrityVerifier({ onVerdict: (route, v) => verdicts.push([route, v]), metrics, logger: silentLogger(), clientTls });
  t.teardown(() => verifier.close());
  const verify = { path: '/_integrity', field: 'checksum', intervalMs: 60_000, timeoutMs: 2000 };
  const [p, b, i] = policy.sites;
  verifier.update([{ route: 'ceir', verify, preferred: p!, serving: b! }]);
  await verifier.checkNow('ceir');
  t.equal(verdicts.at(-1)?.[1].ok, true, String(verdicts.at(-1)?.[1].detail));
  verifier.update([{ route: 'ceir', verify, preferred: p!, serving: i! }]);
  await verifier.checkNow('ceir');
  t.equal(verdicts.at(-1)?.[1].ok, false);
  t.match(verdicts.at(-1)?.[1].detail, /certificate signed by unknown authority/);
  t.equal(impostor.counts.integrity, 0, 'nor an integrity request');
});
