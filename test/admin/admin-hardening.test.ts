import t from 'tap';
import { readFileSync } from 'node:fs';
import https from 'node:https';
import { AuditLog } from '../../src/admin/audit-log.js';
import type { AuthFailureReason } from '../../src/admin/admin-server.js';
import { makeCa } from '../helpers/tls.js';
import { goodToken, startTestServer } from './start-server.js';

async function call(url: string, method: string, path: string, token?: string) {
  const res = await fetch(`${url}${path}`, { method, headers: token === undefined ? {} : { authorization: `Bearer ${token}` } });
  return { status: res.status, retryAfter: res.headers.get('retry-after'), json: await res.json().catch(() => null) as any };
}

t.test('publicRead: false puts /status and /metrics behind the token, never /healthz', async (t) => {
  let publicRead = false;
  const s = await startTestServer(t, { publicRead: () => publicRead });
  t.equal((await call(s.url, 'GET', '/status')).status, 401);
  t.equal((await call(s.url, 'GET', '/metrics', 'wrong')).status, 403);
  t.equal((await call(s.url, 'GET', '/status', goodToken)).status, 200);
  t.equal((await call(s.url, 'GET', '/healthz')).status, 200);
  publicRead = true;
  t.equal((await call(s.url, 'GET', '/status')).status, 200, 'asked per request: a reload applies at once');
});

t.test('failed authentications are limited per address, reported by reason and audited', async (t) => {
  let nowMs = 1_000_000;
  const reasons: AuthFailureReason[] = [];
  const audit = new AuditLog();
  const s = await startTestServer(t, {
    authLimits: { maxFailures: 2, windowMs: 10_000, blockMs: 30_000 }, now: () => nowMs, audit, onAuthFailure: (r) => reasons.push(r),
  });
  t.equal((await call(s.url, 'POST', '/reload')).status, 401);
  t.equal((await call(s.url, 'POST', '/reload', 'nope')).status, 403);
  const limited = await call(s.url, 'POST', '/reload', goodToken);
  t.equal(limited.status, 429);
  t.equal(limited.retryAfter, '30');
  nowMs += 20_000;
  t.equal((await call(s.url, 'POST', '/reload', goodToken)).retryAfter, '10', 'Retry-After counts down');
  t.equal(s.control.calls.length, 0, 'nothing reached the control while limited');
  nowMs += 10_001;
  t.equal((await call(s.url, 'POST', '/reload', goodToken)).status, 200, 'served again after the block');
  t.same(reasons, ['missing', 'invalid', 'limited', 'limited']);
  t.same(audit.entries().map((e) => [e.action, e.target, e.result, e.status]), [
    ['reload', '/reload', 'refused', 401], ['reload', '/reload', 'refused', 403], ['reload', 'policy', 'ok', 200],
  ]);
  t.ok(audit.entries().every((e) => e.source === '127.0.0.1' && e.time === new Date(e.time).toISOString()));
});

t.test('no token configured: refused as disabled, and nobody is locked out for it', async (t) => {
  const reasons: AuthFailureReason[] = [];
  const s = await startTestServer(t, { token: undefined, authLimits: { maxFailures: 1 }, onAuthFailure: (r) => reasons.push(r) });
  for (let i = 0; i < 3; i++) t.equal((await call(s.url, 'POST', '/reload', 'x')).status, 403);
  t.same(reasons, ['disabled', 'disabled', 'disabled']);
});

t.test('admin over HTTPS; setSecureContext swaps the certificate for new connections', async (t) => {
  const ca = makeCa(t, 'admin-unit-ca');
  const first = ca.issue('first', { dns: ['admin.example'] });
  const second = ca.issue('second', { dns: ['admin.example'] });
  const s = await startTestServer(t, { tls: { cert: readFileSync(first.cert), key: readFileSync(first.key) } });
  t.equal(s.server.isTls, true);
  const serial = () => new Promise<string>((resolve, reject) => {
    https.get(`${s.url}/healthz`, { ca: readFileSync(ca.cert), servername: 'admin.example', agent: false }, (res) => {
      const peer = (res.socket as import('node:tls').TLSSocket).getPeerCertificate().serialNumber;
      res.resume();
      res.on('end', () => resolve(peer));
    }).on('error', reject);
  });
  const before = await serial();
  s.server.setSecureContext({ cert: readFileSync(second.cert), key: readFileSync(second.key) });
  t.not(await serial(), before);

  const plain = await startTestServer(t);
  t.equal(plain.server.isTls, false);
  plain.server.setSecureContext({ cert: readFileSync(second.cert), key: readFileSync(second.key) });
  t.equal((await call(plain.url, 'GET', '/healthz')).status, 200, 'a plain server ignores certificates');
});
