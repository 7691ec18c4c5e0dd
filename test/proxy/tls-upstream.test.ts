// Live traffic to https:// sites: the site's own trust (CA, name), never the
// client's Host; a failed handshake is tls_failed, which proves the site never
// saw the request, so even a POST goes to the next site, and passive health
// hears a connection failure (the site is down at once).
import t from 'tap';
import { loadClientTls, type ClientTls } from '../../src/tls/client-tls.js';
import type { SitePolicy } from '../../src/config/policy.js';
import { startFakeSite } from '../helpers/fake-site.js';
import { testPolicy } from '../helpers/policy.js';
import { makeCa } from '../helpers/tls.js';
import { request, startHarness } from './fixtures/proxy-harness.js';

t.test('a POST meeting an impostor certificate goes to the next site; the impostor is reported and sees nothing', async (t) => {
  const dc = makeCa(t, 'dc-ca');
  const impostorCa = makeCa(t, 'impostor-ca');
  const impostor = await startFakeSite({ name: 'impostor', tls: impostorCa.issue('impostor', { dns: ['ceir.internal'] }) });
  const good = await startFakeSite({ name: 'good', tls: dc.issue('good', { dns: ['ceir.internal'] }) });
  t.teardown(() => Promise.all([impostor.close(), good.close()]));
  const tls = { ca: dc.cert, servername: 'ceir.internal', verify: true };
  const policy = testPolicy({
    sites: [{ name: 'impostor', url: impostor.url, tls }, { name: 'good', url: good.url, tls }],
    routes: [{ name: 'ceir', sites: ['impostor', 'good'] }],
  });
  const trust = new Map<string, ClientTls>();
  for (const site of policy.sites) {
    const loaded = loadClientTls(site as SitePolicy, Date.now());
    if (loaded.ok && loaded.value) trust.set(site.url, loaded.value);
  }
  const h = await startHarness(policy, {}, { clientTls: (url) => trust.get(url) });
  t.teardown(() => h.close());

  const res = await request(h.url, '/records', { method: 'POST', body: '{"id":1}', headers: { host: 'impostor.example', 'content-type': 'application/json' } });
  t.equal(res.status, 200);
  t.equal(res.headers['x-detour-site'], 'good');
  t.equal(good.requests.at(-1)?.headers.host, 'impostor.example', 'the client Host goes through, but never decides the certificate name');
  t.same(h.passive.failed, [['impostor', 'certificate signed by unknown authority']]);
  t.equal(impostor.counts.traffic, 0, 'the impostor never received the request');
  t.equal(await h.metric('detour_retries_total', { route: 'ceir', from: 'impostor', to: 'good' }), 1);

  // Only the impostor left: 502 naming the TLS failure, and still nothing reaches it.
  h.setDecisions({ ceir: { eligible: ['impostor'], weights: [{ site: 'impostor', weight: 100 }], active: 'impostor' } });
  const alone = await request(h.url, '/records');
  t.equal(alone.status, 502);
  t.match(alone.text, /certificate signed by unknown authority/);
  t.equal(impostor.counts.traffic, 0);
});
