import t from 'tap';
import { readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { checkPolicyFile, loadPolicyFile } from '../../src/config/load-policy.js';

const configDir = fileURLToPath(new URL('../../config/', import.meta.url));
const examples = readdirSync(configDir).filter((name) => /\.ya?ml$/.test(name)).sort();

t.test('there are example policies', async (t) => {
  t.ok(examples.length > 0, `found ${examples.join(', ')}`);
});

for (const name of examples) {
  t.test(`config/${name} passes detour check`, async (t) => {
    // An empty environment: examples must work out of the box (the admin token is then absent).
    const bare = await checkPolicyFile(`${configDir}${name}`, {});
    t.same(bare, { ok: true, lines: [] }, bare.lines.join('\n'));
    const withToken = await loadPolicyFile(`${configDir}${name}`, { DETOUR_ADMIN_TOKEN: 'test-token' });
    t.equal(withToken.ok && withToken.policy.admin.token, 'test-token', 'the admin token comes from DETOUR_ADMIN_TOKEN');
  });
}

// The scenario examples promise specific behaviour in their comments; hold them to it.
t.test('jakarta-fire: verified, ramped failback away from the burning building', async (t) => {
  const result = await loadPolicyFile(`${configDir}jakarta-fire.yaml`, {});
  if (!result.ok) return t.fail('jakarta-fire.yaml must parse');
  const { policy } = result;
  t.same([...new Set(policy.sites.map((s) => s.building))].sort(), ['gedung-cyber-1', 'serpong-dc']);
  const ceir = policy.routes.find((r) => r.name === 'ceir');
  t.same(ceir?.failback.verify && { path: ceir.failback.verify.path, field: ceir.failback.verify.field }, { path: '/_integrity', field: 'checksum' });
  t.same(ceir?.failback.ramp, [10, 50, 100]);
});

t.test('immigration-phased: priorities, manual modes, lag-bound verify', async (t) => {
  const result = await loadPolicyFile(`${configDir}immigration-phased.yaml`, {});
  if (!result.ok) return t.fail('immigration-phased.yaml must parse');
  const byName = new Map(result.policy.routes.map((r) => [r.name, r]));
  for (const name of ['travel-ban', 'interpol', 'border-crossing', 'autogate']) t.equal(byName.get(name)?.priority, 1, name);
  for (const name of ['visa', 'stay-permit']) t.equal(byName.get(name)?.priority, 2, name);
  t.equal(byName.get('passports')?.priority, 3);
  t.ok(result.policy.routes.some((r) => r.failover.mode === 'manual'), 'one route fails over only by hand');
  t.ok(result.policy.routes.some((r) => r.failback.mode === 'manual'), 'one route fails back only by hand');
  t.ok(result.policy.routes.some((r) => r.failback.verify?.field === 'replication.lagSeconds' && r.failback.verify.max === 5));
});

t.test('redis-shared: shared state and webhooks', async (t) => {
  const result = await loadPolicyFile(`${configDir}redis-shared.yaml`, {});
  if (!result.ok) return t.fail('redis-shared.yaml must parse');
  t.ok(result.policy.state?.redis.url.startsWith('redis://127.0.0.1'));
  t.ok(result.policy.notify.webhooks.length > 0);
  t.ok(result.policy.notify.webhooks.every((hook) => new URL(hook.url).hostname === '127.0.0.1'), 'examples stay on loopback');
});

t.test('edge-tls: TLS both ways, admin hardened', async (t) => {
  const result = await loadPolicyFile(`${configDir}edge-tls.yaml`, {});
  if (!result.ok) return t.fail('edge-tls.yaml must parse');
  const { policy } = result;
  t.equal(policy.listen.tls?.cert, `${configDir}tls-example/edge.crt`, 'paths are relative to the policy file');
  t.equal(policy.listen.tls?.minVersion, 'TLSv1.2');
  t.ok(policy.admin.tls);
  t.equal(policy.admin.publicRead, false);
  t.ok(policy.sites.every((s) => s.url.startsWith('https://') && s.tls?.servername === 'ceir.internal' && s.tls.verify));
});
