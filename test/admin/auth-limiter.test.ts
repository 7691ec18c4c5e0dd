import t from 'tap';
import { AuthLimiter } from '../../src/admin/auth-limiter.js';
import { AuditLog } from '../../src/admin/audit-log.js';

type Step = readonly ['fail' | 'ok', string, number] | readonly ['check', string, number, number | null];

// [action, source, nowMs(, expected retryAfterSeconds or null = allowed)]
const scenarios: Array<{ name: string; steps: readonly Step[] }> = [
  {
    name: 'blocked after 3 failures within the window, for blockMs, even for other calls',
    steps: [['fail', 'a', 0], ['fail', 'a', 100], ['check', 'a', 200, null], ['fail', 'a', 200], ['check', 'a', 201, 10], ['check', 'a', 9_500, 1], ['check', 'a', 10_200, null]],
  },
  { name: 'failures spread beyond the window never block', steps: [['fail', 'a', 0], ['fail', 'a', 1000], ['fail', 'a', 5000], ['fail', 'a', 5500], ['check', 'a', 5600, null]] },
  { name: 'a success forgives earlier failures', steps: [['fail', 'a', 0], ['fail', 'a', 1], ['ok', 'a', 2], ['fail', 'a', 3], ['check', 'a', 4, null]] },
  { name: 'one address blocked, another not', steps: [['fail', 'a', 0], ['fail', 'a', 1], ['fail', 'a', 2], ['check', 'b', 3, null], ['check', 'a', 3, 10]] },
  { name: 'after the block, counting starts again', steps: [['fail', 'a', 0], ['fail', 'a', 1], ['fail', 'a', 2], ['fail', 'a', 10_002], ['check', 'a', 10_003, null]] },
];

t.test('AuthLimiter scenarios (3 failures per 5 s, blocked 10 s)', async (t) => {
  for (const s of scenarios) {
    const limiter = new AuthLimiter({ maxFailures: 3, windowMs: 5000, blockMs: 10_000 });
    const seen: Array<number | null> = [];
    const expected: Array<number | null> = [];
    for (const step of s.steps) {
      if (step[0] === 'fail') limiter.failed(step[1], step[2]);
      else if (step[0] === 'ok') limiter.succeeded(step[1]);
      else {
        const gate = limiter.check(step[1], step[2]);
        seen.push(gate.allowed ? null : gate.retryAfterSeconds);
        expected.push(step[3] ?? null);
      }
    }
    t.same(seen, expected, s.name);
  }
});

t.test('memory stays bounded under a flood of addresses', async (t) => {
  const limiter = new AuthLimiter({ maxFailures: 2, windowMs: 1000, blockMs: 1000, maxTracked: 100 });
  for (let i = 0; i < 1000; i++) limiter.failed(`10.0.${i >> 8}.${i & 255}`, i);
  t.ok(limiter.size <= 100, `${limiter.size} addresses tracked`);
  limiter.failed('x', 5000);
  limiter.failed('x', 5001);
  t.equal(limiter.check('x', 5002).allowed, false, 'the newest address is still tracked');
});

t.test('AuditLog keeps the newest entries', async (t) => {
  const log = new AuditLog(3);
  for (let i = 0; i < 5; i++) log.record({ time: String(i), source: 's', action: 'drain', target: `site ${i}`, result: 'ok', status: 200, message: '' });
  t.same(log.entries().map((e) => e.target), ['site 2', 'site 3', 'site 4']);
  t.ok(Object.isFrozen(log.entries()[0]));
});
