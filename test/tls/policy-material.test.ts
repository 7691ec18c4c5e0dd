import t from 'tap';
import { join } from 'node:path';
import { writeFileSync } from 'node:fs';
import { Registry } from 'prom-client';
import { loadPolicyMaterial, materialFiles } from '../../src/tls/policy-material.js';
import { startGateway } from '../../src/gateway.js';
import { silentLogger } from '../../src/logger.js';
import { testPolicy } from '../helpers/policy.js';
import { startFakeSite } from '../helpers/fake-site.js';
import { makeCa } from '../helpers/tls.js';

t.test('loadPolicyMaterial names every broken file; materialFiles lists them all', async (t) => {
  const ca = makeCa(t, 'mat-ca');
  const good = ca.issue('good', { dns: ['a'] });
  const nope = join(ca.dir, 'nope');
  const policy = testPolicy({
    listen: { tls: { cert: nope, key: good.key, minVersion: 'TLSv1.2' } },
    admin: { tls: { cert: good.cert, key: nope, minVersion: 'TLSv1.3' }, tokenFile: nope },
    sites: [{ name: 's', url: 'https://127.0.0.1:1', tls: { ca: nope, verify: true } }],
    routes: [{ name: 'r', sites: ['s'] }],
  });
  const result = loadPolicyMaterial(policy, Date.now());
  t.same(result.ok ? [] : result.errors.map((e) => e.path), ['listen.tls.cert', 'admin.tls.key', 'admin.tokenFile', 'sites.s.tls.ca']);
  t.same(materialFiles(policy).sort(), [nope, good.cert, good.key].sort());

  writeFileSync(join(ca.dir, 'token'), 'from-file\n');
  const fine = loadPolicyMaterial(testPolicy({
    admin: { tls: { ...good, minVersion: 'TLSv1.3' }, tokenFile: join(ca.dir, 'token'), token: 'ignored' },
    sites: [{ name: 's', url: 'https://127.0.0.1:1' }, { name: 'p', url: 'http://127.0.0.1:2' }],
    routes: [{ name: 'r', sites: ['s', 'p'] }],
  }), Date.now());
  if (!fine.ok) return t.fail('valid material');
  t.equal(fine.material.adminToken, 'from-file', 'the token file wins');
  t.equal(fine.material.admin?.minVersion, 'TLSv1.3');
  t.same([...fine.material.sites.keys()], ['https://127.0.0.1:1'], 'plain http sites have no TLS');
});

t.test('the gateway will not start on broken material, and a reload of it fails and keeps the old', async (t) => {
  const ca = makeCa(t, 'gw-ca');
  const site = await startFakeSite({ name: 'app' });
  t.teardown(() => site.close());
  const base = { sites: [{ name: 'app', url: site.url, health: { intervalMs: 100 } }], routes: [{ name: 'r', sites: ['app'] }] };
  await t.rejects(
    startGateway({ policy: testPolicy({ ...base, admin: { tokenFile: join(ca.dir, 'missing') } }), logger: silentLogger(), registry: new Registry() }),
    /cannot start: .*admin\.tokenFile: cannot read .*missing: no such file/,
  );

  const gateway = await startGateway({ policy: testPolicy(base), logger: silentLogger(), registry: new Registry() });
  t.teardown(() => gateway.close());
  const edge = ca.issue('edge', { dns: ['gw'] });
  const withTls = gateway.applyPolicy(testPolicy({ ...base, listen: { tls: { ...edge, minVersion: 'TLSv1.2' } } }));
  t.ok(withTls.ok && /listen changes need a restart/.test(withTls.message), 'TLS on a running plain listener needs a restart');
  const broken = gateway.applyPolicy(testPolicy({ ...base, sites: [{ ...base.sites[0]!, url: site.url.replace('http:', 'https:'), tls: { ca: join(ca.dir, 'missing'), verify: false } }] }));
  t.equal(broken.ok, false);
  t.equal(gateway.control.policy.sites[0]?.url, site.url, 'the last good policy stays');
  t.match(await (await fetch(`${gateway.adminUrl}/metrics`)).text(), /detour_config_reloads_total\{result="failure"\} 1/);
});
