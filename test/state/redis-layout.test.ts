// Reading shared state back from Redis replies: good entries kept, malformed
// ones skipped with one message each, failed reads thrown.
import t from 'tap';
import {
  createEpoch, createRedisKeys, healthField, parseReadAll, READ_ALL_REPLIES, type ExecResult,
} from '../../src/state/redis-layout.js';

const ok = (...values: unknown[]): ExecResult => values.map((v) => [null, v] as const);
/** The state replies, then SET NX's answer and the epoch, as the transaction returns them. */
const read = (...values: unknown[]): ExecResult => ok(...values, null, 'e1');
const goodVerdict = JSON.stringify({ status: 'down', sinceMs: 5, reason: 'connect ECONNREFUSED', atMs: 9 });

t.test('keys live under the prefix', async (t) => {
  t.same(createRedisKeys('x:'), {
    drainedSites: 'x:drain:sites', drainedBuildings: 'x:drain:buildings', pins: 'x:pins',
    failbackApprovals: 'x:approvals:failback', failoverApprovals: 'x:approvals:failover',
    health: 'x:health', replicas: 'x:replicas', channel: 'x:changed', epoch: 'x:epoch',
  });
  t.equal(healthField('cyber1', 'host-1-ab12'), 'cyber1\thost-1-ab12');
});

t.test('a full read', async (t) => {
  const bad: string[] = [];
  const s = parseReadAll(read(
    ['s2', 's1'], ['tower'], { ceir: 'serpong' },
    { ceir: JSON.stringify({ atMs: 7, force: true }) }, {},
    { [healthField('cyber1', 'r1')]: goodVerdict },
    ['r1', '123', 'r2', '456'],
  ), (m) => bad.push(m));
  t.same(s.shared.drainedSites, ['s1', 's2']);
  t.same(s.shared.drainedBuildings, ['tower']);
  t.same(s.shared.pins, { ceir: 'serpong' });
  t.same(s.shared.failbackApprovals, { ceir: { atMs: 7, force: true } });
  t.same(s.shared.failoverApprovals, {});
  t.same(s.verdicts, [{ field: 'cyber1\tr1', site: 'cyber1', replicaId: 'r1',
    verdict: { status: 'down', sinceMs: 5, reason: 'connect ECONNREFUSED', atMs: 9 } }]);
  t.same(s.heartbeats, { r1: 123, r2: 456 });
  t.equal(s.epoch, 'e1');
  t.same(bad, []);
});

t.test('scores as [member, score] pairs (RESP3) read the same', async (t) => {
  const s = parseReadAll(read([], [], {}, {}, {}, {}, [['r1', '123'], ['r2', 456]]), () => {});
  t.same(s.heartbeats, { r1: 123, r2: 456 });
});

const malformed: { name: string; replies: unknown[]; mentions: string }[] = [
  { name: 'approval not JSON', replies: [[], [], {}, { ceir: '{oops' }, {}, {}, []], mentions: 'approvals:failback entry for route ceir' },
  { name: 'approval without force', replies: [[], [], {}, {}, { visa: '{"atMs":1}' }, {}, []], mentions: 'approvals:failover entry for route visa' },
  { name: 'verdict with an unknown status', replies: [[], [], {}, {}, {},
    { 'cyber1\tr1': JSON.stringify({ status: 'maybe', sinceMs: 1, reason: '', atMs: 1 }) }, []], mentions: 'health entry' },
  { name: 'health field without a replica', replies: [[], [], {}, {}, {}, { cyber1: goodVerdict }, []], mentions: 'health entry "cyber1"' },
  { name: 'health field with an empty site', replies: [[], [], {}, {}, {}, { '\tr1': goodVerdict }, []], mentions: 'health entry' },
  { name: 'heartbeat not a number', replies: [[], [], {}, {}, {}, {}, ['r1', 'soon']], mentions: 'heartbeat of replica r1' },
];

for (const c of malformed) {
  t.test(`malformed entry skipped: ${c.name}`, async (t) => {
    const bad: string[] = [];
    const s = parseReadAll(read(...c.replies), (m) => bad.push(m));
    t.equal(bad.length, 1);
    t.match(bad[0], c.mentions);
    t.same([s.verdicts, s.heartbeats, s.shared.failbackApprovals, s.shared.failoverApprovals], [[], {}, {}, {}]);
  });
}

t.test('a failed read throws its error', async (t) => {
  const replies: ExecResult = [...ok([], []), [new Error('WRONGTYPE Operation against a key holding the wrong kind of value'), null], ...read({}, {}, {}, [])];
  t.throws(() => parseReadAll(replies, () => {}), /WRONGTYPE/);
  t.throws(() => parseReadAll(ok([], []), () => {}), new RegExp(`expected ${READ_ALL_REPLIES} replies`));
  t.throws(() => parseReadAll(ok([], [], {}, {}, {}, {}, [], null, null), () => {}), /no epoch/);
});

t.test('epochs are 16 hex characters and differ every time', async (t) => {
  const epochs = new Set(Array.from({ length: 50 }, createEpoch));
  t.equal(epochs.size, 50);
  for (const e of epochs) t.match(e, /^[0-9a-f]{16}$/);
});

t.test('names like constructor read back as own entries of prototype-free tables', async (t) => {
  const s = parseReadAll(read(
    [], [], { constructor: 'serpong' }, {}, { toString: JSON.stringify({ atMs: 7, force: false }) }, {}, ['valueOf', '1'],
  ), () => {});
  t.same(s.shared.pins, { constructor: 'serpong' });
  t.same(s.shared.failoverApprovals, { toString: { atMs: 7, force: false } });
  t.same(s.heartbeats, { valueOf: 1 });
  for (const table of [s.shared.pins, s.shared.failbackApprovals, s.shared.failoverApprovals, s.heartbeats]) {
    t.equal(Object.getPrototypeOf(table), null);
    t.equal((table as Record<string, unknown>).hasOwnProperty, undefined, 'no inherited members');
  }
});
