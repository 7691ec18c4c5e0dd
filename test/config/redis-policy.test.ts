// state.redis as operators write it: one URL, or sentinels with a master group
// name; rediss:// with a CA file. Bad combinations are reported at their key,
// with line and column, and change nothing.
import t from 'tap';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parsePolicy } from '../../src/config/parse-policy.js';
import { loadPolicyFile } from '../../src/config/load-policy.js';
import { formatPolicyError } from '../../src/config/policy.js';

const head = 'sites: { a: { url: "http://127.0.0.1:1" } }\nroutes: [{ name: r, sites: [a] }]\n';
const lines = (redis: string): string[] => {
  const result = parsePolicy(`${head}state:\n  redis:\n${redis}`, 'p.yaml', {});
  return result.ok ? [] : result.errors.map(formatPolicyError);
};

t.test('valid shapes', async (t) => {
  const parsed = parsePolicy(`${head}state:\n  redis:\n    url: rediss://:pw@group/1\n    name: group\n    sentinels: [10.0.0.5:26379, { host: "::1", port: 26380 }, "[fd00::1]:26381"]\n    tls: { servername: redis.internal }\n`, '/etc/detour/p.yaml', {});
  if (!parsed.ok) return t.fail(parsed.errors.map(formatPolicyError).join('\n'));
  t.same(parsed.policy.state!.redis, {
    url: 'rediss://:pw@group/1', keyPrefix: 'detour:', name: 'group',
    sentinels: [{ host: '10.0.0.5', port: 26379 }, { host: '::1', port: 26380 }, { host: 'fd00::1', port: 26381 }],
    tls: { servername: 'redis.internal' },
  });
  const plain = parsePolicy(`${head}state: { redis: { url: "redis://127.0.0.1:6379/0" } }\n`, 'p.yaml', {});
  t.ok(plain.ok);
  if (plain.ok) t.same(plain.policy.state!.redis, { url: 'redis://127.0.0.1:6379/0', keyPrefix: 'detour:' }, 'no new keys appear unasked');
});

t.test('problems, one line each at the key', async (t) => {
  const cases: Array<{ name: string; redis: string; expect: RegExp[] }> = [
    { name: 'sentinels without name', redis: '    url: redis://g/0\n    sentinels: [127.0.0.1:26379]\n',
      expect: [/^p\.yaml:6:5 state\.redis\.sentinels: needs name/] },
    { name: 'name without sentinels', redis: '    url: redis://g/0\n    name: g\n',
      expect: [/^p\.yaml:6:5 state\.redis\.name: is the Sentinel master group name: it needs sentinels/] },
    { name: 'tls with redis://', redis: '    url: redis://127.0.0.1\n    tls: { servername: x.internal }\n',
      expect: [/^p\.yaml:6:5 state\.redis\.tls: needs a rediss:\/\/ url/] },
    { name: 'bad sentinel address', redis: '    url: redis://g\n    name: g\n    sentinels: [nohost, "h:99999", { host: h }]\n',
      expect: [/state\.redis\.sentinels\[0\]: must be host:port/, /state\.redis\.sentinels\[1\]: must be host:port/, /state\.redis\.sentinels\[2\]/] },
    { name: 'empty sentinel list', redis: '    url: redis://g\n    name: g\n    sentinels: []\n', expect: [/state\.redis\.sentinels: must list at least one sentinel/] },
    { name: 'unknown tls key', redis: '    url: rediss://h\n    tls: { cafile: x }\n', expect: [/state\.redis\.tls\.cafile: unknown key/] },
  ];
  for (const c of cases) {
    const got = lines(c.redis);
    t.equal(got.length, c.expect.length, `${c.name}: ${got.join(' | ')}`);
    c.expect.forEach((re, i) => t.match(got[i] ?? '', re, c.name));
  }
});

t.test('state.redis.tls.ca is read and checked like every TLS file (detour check, load)', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'detour-redis-ca-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'p.yaml');
  writeFileSync(join(dir, 'not-a-ca.pem'), 'hello\n');
  writeFileSync(file, `${head}state:\n  redis:\n    url: rediss://127.0.0.1:6380\n    tls: { ca: not-a-ca.pem }\n`);
  const bad = await loadPolicyFile(file, {});
  t.notOk(bad.ok);
  if (!bad.ok) t.match(bad.errors.map(formatPolicyError).join('\n'), /:6:12 state\.redis\.tls\.ca: .*not-a-ca\.pem holds no PEM certificate/);
  writeFileSync(file, `${head}state:\n  redis:\n    url: rediss://127.0.0.1:6380\n    tls: { ca: missing.pem }\n`);
  const missing = await loadPolicyFile(file, {});
  if (!missing.ok) t.match(missing.errors.map(formatPolicyError).join('\n'), /state\.redis\.tls\.ca: cannot read .*missing\.pem: no such file/);
  else t.fail('a missing CA file must be reported');
});
