import t from 'tap';
import { writeFileSync, copyFileSync } from 'node:fs';
import { join } from 'node:path';
import type { PeerCertificate } from 'node:tls';
import { describeTlsError, loadClientTls } from '../../src/tls/client-tls.js';
import { UpstreamAgents } from '../../src/proxy/upstream-agents.js';
import type { SitePolicy } from '../../src/config/policy.js';
import { testPolicy } from '../helpers/policy.js';
import { makeCa } from '../helpers/tls.js';

const site = (url: string, tls?: SitePolicy['tls']): SitePolicy =>
  testPolicy({ sites: [{ name: 's', url, ...(tls ? { tls } : {}) }], routes: [{ name: 'r', sites: ['s'] }] }).sites[0]!;

t.test('describeTlsError', async (t) => {
  const err = (code: string, extra: object = {}) => Object.assign(new Error(`${code} happened`), { code }, extra);
  const table: Array<[unknown, string | undefined]> = [
    [err('DEPTH_ZERO_SELF_SIGNED_CERT'), 'certificate signed by unknown authority'],
    [err('UNABLE_TO_GET_ISSUER_CERT_LOCALLY'), 'certificate signed by unknown authority'],
    [err('ERR_TLS_CERT_ALTNAME_INVALID', { host: 'ceir.internal' }), 'name mismatch: ceir.internal'],
    [err('ERR_TLS_CERT_ALTNAME_INVALID'), 'name mismatch: the site name'],
    [err('CERT_NOT_YET_VALID'), 'certificate not yet valid'],
    [err('CERT_REVOKED'), 'certificate revoked'],
    [err('EPROTO'), 'TLS handshake failed: EPROTO happened'],
    [err('ERR_TLS_HANDSHAKE_TIMEOUT'), 'TLS handshake failed: ERR_TLS_HANDSHAKE_TIMEOUT happened'],
    [err('INVALID_SIGNATURE'), 'certificate not accepted (INVALID_SIGNATURE)'],
    [err('ECONNREFUSED'), undefined],
    [new Error('no code'), undefined],
    [null, undefined],
  ];
  for (const [input, expected] of table) t.equal(describeTlsError(input), expected, String(expected));
});

t.test('loadClientTls: names, defaults and files', async (t) => {
  const ca = makeCa(t, 'load-ca');
  t.same(loadClientTls(site('http://127.0.0.1:1'), Date.now()), { ok: true, value: undefined }, 'plain http has no TLS');

  const byIp = loadClientTls(site('https://127.0.0.1:1'), Date.now());
  if (!byIp.ok || !byIp.value) return t.fail('https site');
  t.equal(byIp.value.name, '127.0.0.1');
  t.equal(byIp.value.options.servername, '', 'no SNI for an IP address (and never the Host header)');
  t.equal(byIp.value.options.rejectUnauthorized, true);

  const named = loadClientTls(site('https://10.0.0.1:8443', { ca: ca.cert, servername: 'ceir.internal', verify: true }), Date.now());
  if (!named.ok || !named.value) return t.fail('named site');
  t.equal(named.value.options.servername, 'ceir.internal');
  const other = ca.issue('other', { dns: ['other.internal'] });
  const { X509Certificate } = await import('node:crypto');
  const { readFileSync } = await import('node:fs');
  const peer = new X509Certificate(readFileSync(other.cert)).toLegacyObject() as PeerCertificate;
  const mismatch = named.value.options.checkServerIdentity!('127.0.0.1', peer);
  t.equal(describeTlsError(mismatch), 'name mismatch: ceir.internal', 'checked against the servername, whatever host was dialled');

  const lax = loadClientTls(site('https://[::1]:1', { verify: false }), Date.now());
  if (!lax.ok || !lax.value) return t.fail('lax site');
  t.equal(lax.value.options.rejectUnauthorized, false);
  t.equal(lax.value.options.checkServerIdentity!('x', peer), undefined);
  t.equal(lax.value.name, '::1');

  const missing = loadClientTls(site('https://a.example', { ca: join(ca.dir, 'nope.pem'), verify: true }), Date.now());
  t.same(missing.ok ? null : [missing.path, /no such file/.test(missing.message)], ['sites.s.tls.ca', true]);
  const client = ca.issue('client', { client: true, expired: true });
  const expired = loadClientTls(site('https://a.example', { cert: client.cert, key: client.key, verify: true }), Date.now());
  t.same(expired.ok ? null : [expired.path, /expired/.test(expired.message)], ['sites.s.tls.cert', true]);
  const fine = ca.issue('fine', { client: true });
  const mtls = loadClientTls(site('https://a.example', { cert: fine.cert, key: fine.key, verify: true }), Date.now());
  t.ok(mtls.ok && mtls.value?.options.cert && mtls.value.options.key, 'client certificate loaded');
});

t.test('the trust id follows file contents; a new trust retires the old pool', async (t) => {
  const first = makeCa(t, 'first-ca');
  const second = makeCa(t, 'second-ca');
  const bundle = join(first.dir, 'bundle.pem');
  copyFileSync(first.cert, bundle);
  const s = site('https://a.example:8443', { ca: bundle, verify: true });
  const a = loadClientTls(s, Date.now());
  copyFileSync(second.cert, bundle);
  const b = loadClientTls(s, Date.now());
  if (!a.ok || !b.ok || !a.value || !b.value) return t.fail('loaded');
  t.not(a.value.id, b.value.id, 'a rotated CA is a new trust');

  const agents = new UpstreamAgents();
  t.teardown(() => agents.close());
  const poolA = agents.agentFor(s.url, a.value);
  t.equal(agents.agentFor(s.url, a.value), poolA, 'same trust, same pool');
  const poolB = agents.agentFor(s.url, b.value);
  t.not(poolB, poolA, 'new trust, new pool');
  t.equal((poolB as unknown as { options: { ca?: Buffer } }).options.ca?.toString(), second.pem(second.cert), 'the pool carries the trust');
  writeFileSync(bundle, 'garbage');
  const broken = loadClientTls(s, Date.now());
  t.equal(broken.ok, false);
});
