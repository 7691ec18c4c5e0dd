// TLS end to end, with certificates made at test time (helpers/tls.ts): HTTPS
// clients to detour, detour to HTTPS sites under a private CA and a
// servername, impostors and wrong names kept out, listener certificates
// rotated by a reload without dropping connections.
import t, { type Test } from 'tap';
import { X509Certificate } from 'node:crypto';
import { copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import { join } from 'node:path';
import type { TLSSocket } from 'node:tls';
import { Registry } from 'prom-client';
import { startGateway, type Gateway } from '../../src/gateway.js';
import { silentLogger } from '../../src/logger.js';
import { loadPolicyFile } from '../../src/config/load-policy.js';
import type { SiteTlsPolicy } from '../../src/config/policy.js';
import { startFakeSite, type FakeSite } from '../helpers/fake-site.js';
import { fastHealth, TOKEN } from '../helpers/gateway.js';
import { Load } from '../helpers/load.js';
import { testPolicy } from '../helpers/policy.js';
import { makeCa, type CertFiles, type TestCa } from '../helpers/tls.js';
import { waitFor } from '../helpers/wait.js';

interface Answer {
  readonly status: number;
  readonly site: string | undefined;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly body: string;
  readonly serial: string;
  readonly reused: boolean;
}

/** One HTTPS request trusting `ca` for the name `servername`. */
function httpsGet(url: string, opts: { ca: TestCa; servername: string; agent?: https.Agent; headers?: Record<string, string>; method?: string }): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = https.request(url, {
      method: opts.method ?? 'GET', ca: readFileSync(opts.ca.cert), servername: opts.servername, headers: opts.headers,
      agent: opts.agent ?? false,
    }, (res) => {
      const serial = (res.socket as TLSSocket).getPeerCertificate().serialNumber;
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({
        status: res.statusCode ?? 0, site: res.headers['x-detour-site'] as string | undefined, headers: res.headers,
        body: Buffer.concat(chunks).toString('utf8'),
        serial, reused: req.reusedSocket,
      }));
      res.on('error', reject);
    });
    req.setTimeout(10_000, () => req.destroy(new Error('client timeout')));
    req.on('error', reject);
    req.end();
  });
}

async function httpsSite(t: Test, name: string, cert: CertFiles): Promise<FakeSite> {
  const site = await startFakeSite({ name, tls: cert });
  t.teardown(() => site.close());
  return site;
}

async function start(t: Test, policy: Parameters<typeof startGateway>[0]['policy']): Promise<Gateway> {
  const gateway = await startGateway({ policy, logger: silentLogger(), registry: new Registry() });
  t.teardown(() => gateway.close());
  return gateway;
}

const siteEntry = (site: FakeSite, tls: SiteTlsPolicy) => ({
  name: site.name, url: site.url, health: { ...fastHealth, timeoutMs: 1000 }, timeouts: { connectMs: 500, responseMs: 5000 }, tls,
});

t.test('HTTPS client -> detour -> HTTPS sites under a private CA and a servername; the primary killed under load', async (t) => {
  const dc = makeCa(t, 'dc-ca');
  const edge = makeCa(t, 'edge-ca');
  const edgeCert = edge.issue('gw', { dns: ['gw.example'], chain: true });
  const cyber1 = await httpsSite(t, 'cyber1', dc.issue('cyber1', { dns: ['ceir.internal'], chain: true }));
  const serpong = await httpsSite(t, 'serpong', dc.issue('serpong', { dns: ['ceir.internal'] }));
  const trust: SiteTlsPolicy = { ca: dc.cert, servername: 'ceir.internal', verify: true };
  const gateway = await start(t, testPolicy({
    listen: { tls: { ...edgeCert, minVersion: 'TLSv1.2' } },
    admin: { token: TOKEN },
    sites: [siteEntry(cyber1, trust), siteEntry(serpong, trust)],
    routes: [{ name: 'ceir', sites: ['cyber1', 'serpong'] }],
  }));
  t.match(gateway.proxyUrl, /^https:\/\//);
  t.equal(gateway.control.health('cyber1')?.status, 'up', `probes pass over TLS with the site trust (${gateway.control.health('cyber1')?.reason})`);

  // The client's Host names neither site: the certificate is checked against the servername, not against it.
  const answer = await httpsGet(`${gateway.proxyUrl}/imei/1`, { ca: edge, servername: 'gw.example', headers: { host: 'evil.example.com' } });
  t.equal(answer.status, 200);
  t.equal(answer.site, 'cyber1');
  const seen = cyber1.requests.at(-1)!;
  t.equal(seen.headers['x-forwarded-proto'], 'https', 'X-Forwarded-Proto follows the listener');
  t.equal(seen.headers.host, 'evil.example.com', 'the client Host is forwarded, untouched');

  const load = new Load({ url: `${gateway.proxyUrl}/imei/2`, workers: 6, pauseMs: 5, tls: { ca: readFileSync(edge.cert), servername: 'gw.example' } }).start();
  await waitFor(() => load.outcomes.filter((o) => o.site === 'cyber1').length > 30, { timeoutMs: 8000, message: 'traffic on cyber1' });
  const killedAt = Date.now();
  await cyber1.kill();
  await waitFor(() => load.outcomes.filter((o) => o.startedMs > killedAt && o.site === 'serpong').length > 50, { timeoutMs: 8000, message: 'traffic on serpong' });
  await load.stop();
  t.same(load.failed, [], 'no HTTPS client saw an error');
  t.equal(gateway.table().byName.get('ceir')!.active, 'serpong');
});

t.test('an impostor certificate or a wrong name: the site is down with the reason and never gets a request', async (t) => {
  const dc = makeCa(t, 'dc-ca');
  const impostorCa = makeCa(t, 'impostor-ca');
  const good = await httpsSite(t, 'good', dc.issue('good', { dns: ['ceir.internal'] }));
  const impostor = await httpsSite(t, 'impostor', impostorCa.issue('impostor', { dns: ['ceir.internal'] }));
  const wrongName = await httpsSite(t, 'wrongname', dc.issue('wrongname', { dns: ['other.internal'] }));
  const expired = await httpsSite(t, 'expired', dc.issue('expired', { dns: ['ceir.internal'], expired: true }));
  const trust: SiteTlsPolicy = { ca: dc.cert, servername: 'ceir.internal', verify: true };
  const gateway = await start(t, testPolicy({
    admin: { token: TOKEN },
    sites: [siteEntry(impostor, trust), siteEntry(good, trust), siteEntry(wrongName, trust), siteEntry(expired, trust)],
    routes: [
      { name: 'only-impostor', sites: ['impostor'], match: { pathPrefix: '/imp' } },
      { name: 'wrong', sites: ['wrongname'], match: { pathPrefix: '/wrong' } },
      { name: 'ceir', sites: ['impostor', 'expired', 'good'] },
    ],
  }));
  const status = await (await fetch(`${gateway.adminUrl}/status`)).json() as { sites: Array<{ name: string; health: string; reason: string }> };
  const site = (name: string) => status.sites.find((s) => s.name === name)!;
  t.equal(site('impostor').health, 'down');
  t.match(site('impostor').reason, /certificate signed by unknown authority/);
  t.equal(site('wrongname').health, 'down');
  t.match(site('wrongname').reason, /name mismatch: ceir\.internal/);
  t.match(site('expired').reason, /certificate expired/);
  t.equal(site('good').health, 'up');

  const startedMs = Date.now();
  const unavailable = await fetch(`${gateway.proxyUrl}/imp/x`);
  t.equal(unavailable.status, 503, 'a route whose only site is an impostor answers 503');
  t.ok(Date.now() - startedMs < 1000, 'at once');
  t.ok(unavailable.headers.get('retry-after'));
  t.equal((await fetch(`${gateway.proxyUrl}/wrong/x`)).status, 503);
  for (let i = 0; i < 20; i++) {
    const res = await fetch(`${gateway.proxyUrl}/imei/${i}`);
    t.equal(res.headers.get('x-detour-site'), 'good');
  }
  for (const s of [impostor, wrongName, expired]) t.same({ traffic: s.counts.traffic, health: s.counts.health }, { traffic: 0, health: 0 }, `${s.name} never received a request`);
});

t.test('replacing the listener certificate and reloading: new connections get it, open ones keep working; a broken pair keeps the old one', async (t) => {
  const edge = makeCa(t, 'edge-ca');
  const first = edge.issue('first', { dns: ['gw.example'] });
  const second = edge.issue('second', { dns: ['gw.example'] });
  const backend = await startFakeSite({ name: 'app' });
  t.teardown(() => backend.close());
  copyFileSync(first.cert, join(edge.dir, 'edge.crt'));
  copyFileSync(first.key, join(edge.dir, 'edge.key'));
  const file = join(edge.dir, 'policy.yaml');
  writeFileSync(file, [
    'listen: { host: 127.0.0.1, port: 0, tls: { cert: edge.crt, key: edge.key } }',
    'admin: { host: 127.0.0.1, port: 0 }',
    `sites:\n  app: { url: "${backend.url}", health: { interval: 100ms } }`,
    'routes:\n  - { name: app, sites: [app] }', '',
  ].join('\n'));
  const loaded = await loadPolicyFile(file, {});
  if (!loaded.ok) return t.fail(loaded.errors.map((e) => e.message).join('\n'));
  const gateway = await start(t, loaded.policy);
  const serial = (files: CertFiles) => new X509Certificate(readFileSync(files.cert)).serialNumber;
  const client = { ca: edge, servername: 'gw.example' };
  const kept = new https.Agent({ keepAlive: true, maxSockets: 1 });
  t.teardown(() => kept.destroy());

  const before = await httpsGet(`${gateway.proxyUrl}/a`, { ...client, agent: kept });
  t.equal(before.serial, serial(first));

  copyFileSync(second.cert, join(edge.dir, 'edge.crt'));
  copyFileSync(second.key, join(edge.dir, 'edge.key'));
  const reloaded = await gateway.reload();
  t.equal(reloaded.ok, true, 'reload with the new pair');
  t.equal((await httpsGet(`${gateway.proxyUrl}/b`, client)).serial, serial(second), 'a new connection gets the new certificate');
  const open = await httpsGet(`${gateway.proxyUrl}/c`, { ...client, agent: kept });
  t.equal(open.status, 200);
  t.ok(open.reused, 'the open connection was kept');
  t.equal(open.serial, serial(first), 'and still speaks under the old certificate');

  // The certificate of one pair, the key of another: the reload fails, naming the file, and the running pair stays.
  copyFileSync(first.cert, join(edge.dir, 'edge.crt'));
  const broken = await gateway.reload();
  t.equal(broken.ok, false);
  if (!broken.ok) t.match(broken.errors.map((e) => `${e.path}: ${e.message}`).join('\n'), /listen\.tls\.key: .*edge\.key is not the private key of the certificate in .*edge\.crt/);
  t.equal((await httpsGet(`${gateway.proxyUrl}/d`, client)).serial, serial(second), 'new connections still get the last good certificate');
  const metrics = await (await fetch(`${gateway.adminUrl}/metrics`)).text();
  t.match(metrics, /detour_config_reloads_total\{result="failure"\} 1/);
  const events = gateway.control.status().events.filter((e) => e.type === 'policyReloadFailed');
  t.match(events.at(-1)?.message, /edge\.key/);
});

