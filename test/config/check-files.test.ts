import t from 'tap';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { checkPolicyFile, loadPolicyFile } from '../../src/config/load-policy.js';
import { makeCa } from '../helpers/tls.js';

const routes = 'routes:\n  - { name: app, sites: [a] }\n';

function write(dir: string, name: string, text: string): string {
  const file = join(dir, name);
  writeFileSync(file, text);
  return file;
}

/** The 1-based line of the first line of `text` containing `needle`. */
function lineOf(text: string, needle: string): number {
  return text.split('\n').findIndex((l) => l.includes(needle)) + 1;
}

t.test('a valid TLS policy: relative paths resolve against the policy directory', async (t) => {
  const ca = makeCa(t, 'ok-ca');
  const edge = ca.issue('edge', { dns: ['gw.example'], chain: true });
  const client = ca.issue('client', { client: true });
  writeFileSync(join(ca.dir, 'token'), 'secret-from-file\n');
  const text = [
    'listen:', '  port: 0', '  tls:', `    cert: ${edge.cert.slice(ca.dir.length + 1)}`, `    key: ${edge.key}`,
    'admin:', '  port: 0', '  tokenFile: token', '  publicRead: false', '  tls: { cert: ' + edge.cert + ', key: ' + edge.key + ', minVersion: TLSv1.3 }',
    'sites:', '  a:', '    url: https://127.0.0.1:1', '    tls:', `      ca: ${ca.cert}`, '      servername: ceir.internal',
    `      cert: ${client.cert}`, `      key: ${client.key}`, routes,
  ].join('\n');
  const file = write(ca.dir, 'policy.yaml', text);
  const loaded = await loadPolicyFile(file, {});
  if (!loaded.ok) return t.fail(loaded.errors.map((e) => e.message).join('\n'));
  const { policy } = loaded;
  t.same(policy.listen.tls, { cert: edge.cert, key: edge.key, minVersion: 'TLSv1.2' });
  t.same(policy.admin.tls?.minVersion, 'TLSv1.3');
  t.equal(policy.admin.tokenFile, join(ca.dir, 'token'));
  t.equal(policy.admin.publicRead, false);
  t.same(policy.sites[0]?.tls, { ca: ca.cert, servername: 'ceir.internal', cert: client.cert, key: client.key, verify: true });
  t.same(await checkPolicyFile(file, {}), { ok: true, lines: [] });
});

t.test('detour check points at the key naming a broken file', async (t) => {
  const ca = makeCa(t, 'bad-ca');
  const other = makeCa(t, 'other-ca');
  const good = ca.issue('good', { dns: ['a'] });
  const stranger = other.issue('stranger', { dns: ['a'] });
  const expired = ca.issue('expired', { dns: ['a'], expired: true });
  const notPem = write(ca.dir, 'not-pem.crt', 'hello\n');
  write(ca.dir, 'empty-token', '\n');
  const lines = [
    'listen:', '  tls:', `    cert: ${join(ca.dir, 'missing.crt')}`, `    key: ${good.key}`,
    'admin:', '  tokenFile: empty-token', '  tls:', `    cert: ${good.cert}`, `    key: ${stranger.key}`,
    'sites:',
    '  a:', '    url: https://127.0.0.1:1', '    tls:', `      ca: ${notPem}`, `      cert: ${expired.cert}`, `      key: ${expired.key}`,
    '  b:', '    url: http://127.0.0.1:2', '    tls: { verify: true }',
    '  c:', '    url: https://127.0.0.1:3', '    tls:', `      cert: ${good.cert}`,
    'routes:', '  - { name: app, sites: [a, b, c] }',
  ];
  const text = `${lines.join('\n')}\n`;
  const file = write(ca.dir, 'broken.yaml', text);
  const report = await checkPolicyFile(file, {});
  t.equal(report.ok, false);
  const expect = (needle: string, path: string, message: RegExp) => {
    const line = report.lines.find((l) => l.includes(` ${path}: `));
    t.ok(line, `a line for ${path}`);
    t.match(line, new RegExp(`^${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:${lineOf(text, needle)}:\\d+ `), `${path} at line ${lineOf(text, needle)}`);
    t.match(line, message);
  };
  expect('missing.crt', 'listen.tls.cert', /cannot read .*missing\.crt: no such file/);
  expect('tokenFile', 'admin.tokenFile', /empty-token is empty/);
  expect(stranger.key, 'admin.tls.key', /is not the private key of the certificate in/);
  expect('not-pem.crt', 'sites.a.tls.ca', /holds no PEM certificate/);
  expect(expired.cert, 'sites.a.tls.cert', /expired on/);
  expect('tls: { verify: true }', 'sites.b.tls', /applies only to https:\/\/ sites/);
  expect(`      cert: ${good.cert}`, 'sites.c.tls.cert', /needs both cert and key/);
  t.equal(report.lines.length, 7, report.lines.join('\n'));
});

t.test('token and tokenFile together are refused; unreadable and multi-line token files too', async (t) => {
  const ca = makeCa(t, 'tok-ca');
  write(ca.dir, 'two-lines', 'a\nb\n');
  const base = 'sites:\n  a: { url: "http://127.0.0.1:1" }\n' + routes;
  const both = await checkPolicyFile(write(ca.dir, 'both.yaml', `admin: { token: x, tokenFile: two-lines }\n${base}`), {});
  t.match(both.lines.join('\n'), /admin.tokenFile: set admin.token or admin.tokenFile, not both/);
  t.match(both.lines.join('\n'), /more than one line/);
  const dir = await checkPolicyFile(write(ca.dir, 'dir.yaml', `admin: { tokenFile: . }\n${base}`), {});
  t.match(dir.lines.join('\n'), /cannot read .*: is a directory/);
});

t.test('a key that is not a key, a broken certificate block', async (t) => {
  const ca = makeCa(t, 'junk-ca');
  const good = ca.issue('good', { dns: ['a'] });
  const junkKey = write(ca.dir, 'junk.key', 'not a key\n');
  const junkCert = write(ca.dir, 'junk.crt', '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n');
  const text = `listen: { tls: { cert: ${good.cert}, key: ${junkKey} } }\nadmin: { tls: { cert: ${junkCert}, key: ${good.key} } }\nsites:\n  a: { url: "http://127.0.0.1:1" }\n${routes}`;
  const report = await checkPolicyFile(write(ca.dir, 'junk.yaml', text), {});
  t.match(report.lines.join('\n'), /listen.tls.key: cannot use .*junk\.key: it holds no PEM private key/);
  t.match(report.lines.join('\n'), /admin.tls.cert: .*junk\.crt: certificate 1 is not a valid X.509 certificate/);
});

t.test('verify: false is valid but warned about, at its line', async (t) => {
  const ca = makeCa(t, 'warn-ca');
  const text = `sites:\n  a:\n    url: https://127.0.0.1:1\n    tls: { verify: false }\n${routes}`;
  const file = write(ca.dir, 'warn.yaml', text);
  const report = await checkPolicyFile(file, {});
  t.equal(report.ok, true);
  t.same(report.lines, []);
  t.equal(report.warnings?.length, 1);
  t.match(report.warnings?.[0], new RegExp(`:4:\\d+ sites.a.tls.verify: warning: certificates of a are not verified`));
});
