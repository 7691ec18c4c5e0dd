// The admin API as a security review sees it: HTTPS, a token read from a file
// and rotated by a reload, reads behind the token when publicRead is false,
// a brute force turned away with 429, and every mutation in the audit trail
// with its source address. Attackers come from other loopback addresses
// (127.0.0.2, 127.0.0.3), so the operator at 127.0.0.1 is not locked out.
import t from 'tap';
import { readFileSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import { join } from 'node:path';
import { Registry } from 'prom-client';
import { startGateway } from '../../src/gateway.js';
import { silentLogger } from '../../src/logger.js';
import { loadPolicyFile } from '../../src/config/load-policy.js';
import { startFakeSite } from '../helpers/fake-site.js';
import { makeCa } from '../helpers/tls.js';

interface Reply { readonly status: number; readonly headers: Record<string, string | string[] | undefined>; readonly json: any; readonly text: string }

function call(base: string, ca: Buffer, method: string, path: string, opts: { token?: string; from?: string; body?: unknown } = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = {};
    if (opts.token !== undefined) headers.authorization = `Bearer ${opts.token}`;
    const body = opts.body === undefined ? undefined : JSON.stringify(opts.body);
    if (body !== undefined) Object.assign(headers, { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)) });
    const req = https.request(`${base}${path}`, {
      method, headers, ca, servername: 'admin.example', agent: false, localAddress: opts.from ?? '127.0.0.1',
    }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let json: any = null;
        try { json = JSON.parse(text); } catch { /* metrics */ }
        resolve({ status: res.statusCode ?? 0, headers: res.headers, json, text });
      });
    });
    req.on('error', reject);
    req.end(body);
  });
}

t.test('admin over HTTPS with a token file, publicRead: false, brute force limited, mutations audited', async (t) => {
  const ca = makeCa(t, 'admin-ca');
  const cert = ca.issue('admin', { dns: ['admin.example'] });
  const trust = readFileSync(ca.cert);
  const site = await startFakeSite({ name: 'app' });
  t.teardown(() => site.close());
  const tokenFile = join(ca.dir, 'admin-token');
  writeFileSync(tokenFile, 'first-token-1234\n');
  const file = join(ca.dir, 'policy.yaml');
  writeFileSync(file, [
    'listen: { host: 127.0.0.1, port: 0 }',
    `admin: { host: 127.0.0.1, port: 0, tokenFile: admin-token, publicRead: false, tls: { cert: ${cert.cert}, key: ${cert.key} } }`,
    `sites:\n  app: { url: "${site.url}", health: { interval: 100ms } }`,
    'routes:\n  - { name: app, sites: [app] }', '',
  ].join('\n'));
  const loaded = await loadPolicyFile(file, {});
  if (!loaded.ok) return t.fail(loaded.errors.map((e) => e.message).join('\n'));
  const gateway = await startGateway({ policy: loaded.policy, logger: silentLogger(), registry: new Registry() });
  t.teardown(() => gateway.close());
  const admin = gateway.adminUrl;
  t.match(admin, /^https:\/\//);

  t.equal((await call(admin, trust, 'GET', '/healthz')).status, 200, 'liveness stays public');
  t.equal((await call(admin, trust, 'GET', '/status')).status, 401, '/status needs the token');
  t.equal((await call(admin, trust, 'GET', '/metrics')).status, 401, '/metrics needs the token');
  t.equal((await call(admin, trust, 'GET', '/status', { token: 'first-token-1234' })).status, 200);

  // Brute force from 127.0.0.2: five wrong guesses, then 429 even for the right token.
  for (let i = 0; i < 5; i++) {
    const guess = await call(admin, trust, 'POST', '/drain', { token: `guess-${i}`, from: '127.0.0.2', body: { site: 'app' } });
    t.equal(guess.status, 403, `guess ${i} refused`);
  }
  const limited = await call(admin, trust, 'POST', '/drain', { token: 'first-token-1234', from: '127.0.0.2', body: { site: 'app' } });
  t.equal(limited.status, 429, 'the sixth attempt is rate limited');
  t.equal(limited.json.code, 'too_many_requests');
  t.ok(Number(limited.headers['retry-after']) > 0, 'with Retry-After in seconds');
  t.equal((await call(admin, trust, 'GET', '/status', { token: 'first-token-1234', from: '127.0.0.2' })).status, 429, 'reads behind the token too');
  t.equal(gateway.control.status().drains.sites.length, 0, 'nothing was drained');

  // The operator at 127.0.0.1 is not affected. Draining the route's only site
  // empties it: refused unless forced (the drain safety rule), and audited so.
  const refused = await call(admin, trust, 'POST', '/drain', { token: 'first-token-1234', body: { site: 'app' } });
  t.equal(refused.status, 409);
  t.match(refused.json.error, /leave route app with no eligible site/);
  const drained = await call(admin, trust, 'POST', '/drain', { token: 'first-token-1234', body: { site: 'app', force: true } });
  t.equal(drained.status, 200);
  t.equal((await call(admin, trust, 'DELETE', '/drain', { token: 'first-token-1234', body: { site: 'app' } })).status, 200);

  // Rotate the token file; a reload makes the old token stop working at once.
  writeFileSync(tokenFile, 'second-token-5678\n');
  t.equal((await call(admin, trust, 'POST', '/reload', { token: 'first-token-1234' })).status, 200);
  t.equal((await call(admin, trust, 'POST', '/routes/app/pin', { token: 'first-token-1234', from: '127.0.0.3', body: { site: 'app' } })).status, 403, 'the old token is refused');
  t.equal((await call(admin, trust, 'POST', '/routes/app/pin', { token: 'second-token-5678', from: '127.0.0.3', body: { site: 'app' } })).status, 200, 'the new one works');

  const status = await call(admin, trust, 'GET', '/status', { token: 'second-token-5678' });
  const audit = status.json.audit as Array<{ source: string; action: string; target: string; result: string; status: number }>;
  const brief = audit.map((a) => [a.source, a.action, a.target, a.result, a.status]);
  t.same(brief, [
    ...[0, 1, 2, 3, 4].map(() => ['127.0.0.2', 'drain', '/drain', 'refused', 403]),
    ['127.0.0.1', 'drain', 'site app', 'failed', 409],
    ['127.0.0.1', 'drain', 'site app (forced)', 'ok', 200],
    ['127.0.0.1', 'undrain', 'site app', 'ok', 200],
    ['127.0.0.1', 'reload', 'policy', 'ok', 200],
    ['127.0.0.3', 'pin', '/routes/app/pin', 'refused', 403],
    ['127.0.0.3', 'pin', 'route app -> site app', 'ok', 200],
  ], 'every mutation and refused attempt, with its source (429s are counted, not listed)');
  t.ok(audit.every((a) => typeof (a as { time?: unknown }).time === 'string'));

  const metrics = await call(admin, trust, 'GET', '/metrics', { token: 'second-token-5678' });
  t.match(metrics.text, /detour_admin_auth_failures_total\{reason="invalid"\} 6/);
  t.match(metrics.text, /detour_admin_auth_failures_total\{reason="missing"\} 2/);
  t.match(metrics.text, /detour_admin_auth_failures_total\{reason="limited"\} 2/);

  // An emptied token file fails the reload and keeps the token that works.
  writeFileSync(tokenFile, '\n');
  const bad = await call(admin, trust, 'POST', '/reload', { token: 'second-token-5678' });
  t.equal(bad.status, 422);
  t.match(bad.json.lines.join('\n'), /admin\.tokenFile: .*admin-token is empty/);
  t.equal((await call(admin, trust, 'GET', '/status', { token: 'second-token-5678' })).status, 200, 'the last good token still works');
});
