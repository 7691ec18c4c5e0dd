// NotifyOnce with a scripted ledger: only the leader sends, each id once, in
// stream order; claims held elsewhere are looked at again; Redis errors cost a
// retry on the next read, never a crash.
import t from 'tap';
import { NotifyOnce, type NotificationLedger } from '../../src/notify/notify-once.js';
import type { ClaimResult, HistoryRecord } from '../../src/state/history-stream.js';
import { silentLogger } from '../../src/logger.js';

function rig(opts: { leader?: () => boolean; claims?: Record<string, ClaimResult[]>; failMark?: boolean } = {}) {
  let listener: (records: readonly HistoryRecord[]) => void = () => {};
  const sent: string[] = [];
  const marked: string[] = [];
  const claims = opts.claims ?? {};
  const ledger: NotificationLedger = {
    onRecords: (l) => { listener = l; },
    claimNotification: async (id) => {
      const script = claims[id];
      const next = script?.shift() ?? 'won';
      if ((next as string) === 'throw') throw new Error('Redis gone');
      return next;
    },
    markNotified: async (id) => {
      if (opts.failMark) throw new Error('Redis gone');
      marked.push(id);
    },
  };
  const once = new NotifyOnce({
    history: ledger, notify: async (event, { id }) => { sent.push(`${id}:${event.type}`); },
    isLeader: opts.leader ?? (() => true), logger: silentLogger(), claimTtlMs: () => 10_000, now: () => Date.parse('2026-12-01T00:10:00Z'),
  });
  const read = async (records: HistoryRecord[]) => { listener(records); await once.idle(); await new Promise((r) => setImmediate(r)); };
  return { once, sent, marked, read };
}

const rec = (id: string, type = 'failedOver', time = '2026-12-01T00:09:00Z'): HistoryRecord =>
  ({ id, replica: 'r', kind: 'event', event: { type: type as never, time, message: id } });

t.test('the leader sends notable events once each, in order; others are not sent', async (t) => {
  const r = rig();
  const records = [rec('a'), rec('b', 'rampStepped'), rec('c', 'drained'), { id: 'x', replica: 'r', kind: 'audit', audit: {} } as never, rec('old', 'failedOver', '2026-12-01T00:00:00Z')];
  await r.read(records);
  await r.read(records);
  t.same(r.sent, ['a:failedOver', 'c:drained'], 'rampStepped is not notable, an audit entry is not an event, the 10-minute-old one is past catch-up');
  t.same(r.marked, ['a', 'c']);
});

t.test('a follower sends nothing; once it leads it sends what is still undelivered', async (t) => {
  let leading = false;
  const r = rig({ leader: () => leading, claims: { a: ['delivered'] } });
  await r.read([rec('a'), rec('b')]);
  t.same(r.sent, []);
  leading = true;
  await r.read([rec('a'), rec('b')]);
  t.same(r.sent, ['b:failedOver'], 'a was delivered by the old leader');
});

t.test('a claim held by another replica is looked at again until it is delivered or expires', async (t) => {
  const r = rig({ claims: { a: ['claimed', 'claimed', 'won'] } });
  await r.read([rec('a')]);
  await r.read([rec('a')]);
  t.same(r.sent, []);
  await r.read([rec('a')]);
  t.same(r.sent, ['a:failedOver'], 'the holder died: its claim expired, sent now');
});

t.test('Redis errors: a failed claim waits for the next read; a failed mark is logged', async (t) => {
  const r = rig({ claims: { a: ['throw' as ClaimResult] }, failMark: true });
  await r.read([rec('a')]);
  t.same(r.sent, []);
  await r.read([rec('a')]);
  t.same(r.sent, ['a:failedOver']);
  t.same(r.marked, []);
  r.once.close();
  await r.read([rec('b')]);
  t.same(r.sent, ['a:failedOver'], 'closed: nothing more');
});
