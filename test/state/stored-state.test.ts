// The snapshot a Redis replica emits: stored state + unconfirmed local
// operations + own verdicts, with silent replicas left out.
import t from 'tap';
import {
  applyStoredOp, composeSnapshot, emptyStoredState, findLostOps, findStale, rebuildOps, type StoredState,
} from '../../src/state/stored-state.js';
import { applyOp, emptySharedState, type ReplicaVerdict, type SharedState, type StateOp } from '../../src/state/state-store.js';

const NOW = 100_000;
const LIVENESS = 5000;
const verdict = (status: 'up' | 'down', atMs: number): ReplicaVerdict => ({ status, sinceMs: 1, reason: `probe ${status}`, atMs });

const stored: StoredState = {
  epoch: 'e1',
  shared: { ...emptyStoredState.shared, drainedSites: ['cyber1'], pins: { visa: 'dr', ceir: 'serpong' } },
  verdicts: [
    { field: 'cyber1\tfresh', site: 'cyber1', replicaId: 'fresh', verdict: verdict('down', NOW - 100) },
    { field: 'cyber1\tedge', site: 'cyber1', replicaId: 'edge', verdict: verdict('down', NOW - LIVENESS) },
    { field: 'cyber1\tsilent', site: 'cyber1', replicaId: 'silent', verdict: verdict('up', NOW - 9000) },
    { field: 'cyber1\tnoheartbeat', site: 'cyber1', replicaId: 'noheartbeat', verdict: verdict('up', NOW) },
    { field: 'cyber1\tme', site: 'cyber1', replicaId: 'me', verdict: verdict('up', NOW - 60_000) },
  ],
  heartbeats: { fresh: NOW - 100, edge: NOW - LIVENESS, silent: NOW - LIVENESS - 1, me: NOW - 60_000 },
};

const compose = (over: Partial<Parameters<typeof composeSnapshot>[0]> = {}) => composeSnapshot({
  stored, pending: [], own: new Map(), replicaId: 'me', nowMs: NOW, livenessMs: LIVENESS, ...over,
});

t.test('liveness window: heartbeats at most livenessMs old count; this replica always does', async (t) => {
  const s = compose();
  t.same(s.replicas, ['edge', 'fresh', 'me']);
  t.same(Object.keys(s.health.cyber1 ?? {}), ['edge', 'fresh'], 'silent replicas, replicas without heartbeat and our stored copy are left out');
});

t.test('own verdicts come from memory', async (t) => {
  const own = verdict('down', NOW);
  const s = compose({ own: new Map([['cyber1', own], ['serpong', verdict('up', NOW)]]) });
  t.same(s.health.cyber1?.me, own);
  t.same(Object.keys(s.health), ['cyber1', 'serpong']);
});

t.test('unconfirmed operations are applied on top, in order', async (t) => {
  const s = compose({
    pending: [
      { op: 'undrain', kind: 'site', name: 'cyber1' },
      { op: 'drain', kind: 'building', name: 'tower' },
      { op: 'unpin', route: 'visa' },
    ],
  });
  t.same(s.drainedSites, []);
  t.same(s.drainedBuildings, ['tower']);
  t.same(s.pins, { ceir: 'serpong' });
  t.same(stored.shared.drainedSites, ['cyber1'], 'stored state untouched');
});

t.test('snapshots are frozen and canonical: equal states serialise equally', async (t) => {
  const a = compose({ pending: [{ op: 'pin', route: 'alpha', site: 'x' }] });
  const b = composeSnapshot({
    stored: applyStoredOp(stored, { op: 'pin', route: 'alpha', site: 'x' }),
    pending: [], own: new Map(), replicaId: 'me', nowMs: NOW, livenessMs: LIVENESS,
  });
  t.equal(JSON.stringify(a), JSON.stringify(b));
  t.same(Object.keys(a.pins), ['alpha', 'ceir', 'visa']);
  t.ok(Object.isFrozen(a) && Object.isFrozen(a.pins) && Object.isFrozen(a.health) && Object.isFrozen(a.replicas));
});

t.test('time moving on ages replicas out', async (t) => {
  t.same(compose({ nowMs: NOW + 1 }).replicas, ['fresh', 'me']);
  t.same(compose({ nowMs: NOW + LIVENESS }).replicas, ['me']);
});

t.test('findStale names only silent replicas and their verdicts, never this one', async (t) => {
  t.same(findStale(stored, NOW, LIVENESS, 'me'), {
    replicas: ['silent'],
    fields: ['cyber1\tnoheartbeat', 'cyber1\tsilent'],
  });
  t.same(findStale(emptyStoredState, NOW, LIVENESS, 'me'), { replicas: [], fields: [] });
});

const confirmed: SharedState = {
  ...emptySharedState,
  drainedSites: ['cyber1', 'alpha'],
  drainedBuildings: ['gedung-cyber-1'],
  pins: { visa: 'dr', ceir: 'serpong' },
  failbackApprovals: { ceir: { atMs: 7, force: true } },
  failoverApprovals: { visa: { atMs: 9, force: false } },
};
const at = (epoch: string | undefined, shared: SharedState = emptySharedState): StoredState => ({ ...emptyStoredState, epoch, shared });

const lossCases: { name: string; previous: StoredState; read: StoredState; lost: boolean }[] = [
  { name: 'first read ever (nothing remembered): the read is the truth', previous: emptyStoredState, read: at('e1'), lost: false },
  { name: 'first read, with writes confirmed before it: still nothing to compare', previous: at(undefined, confirmed), read: at('e1'), lost: false },
  { name: 'same epoch, state emptied by another replica: its undrain wins', previous: at('e1', confirmed), read: at('e1'), lost: false },
  { name: 'same epoch, same state', previous: at('e1', confirmed), read: at('e1', confirmed), lost: false },
  { name: 'new epoch, Redis empty: lost', previous: at('e1', confirmed), read: at('e2'), lost: true },
  { name: 'new epoch, another replica already rebuilt part of it: lost all the same', previous: at('e1', confirmed),
    read: at('e2', { ...emptySharedState, drainedSites: ['cyber1'] }), lost: true },
  { name: 'new epoch, nothing had been confirmed: lost, nothing to rebuild', previous: at('e1'), read: at('e2'), lost: true },
];

for (const c of lossCases) {
  t.test(`findLostOps: ${c.name}`, async (t) => {
    const ops = findLostOps(c.previous, c.read);
    if (!c.lost) {
      t.equal(ops, undefined);
      return;
    }
    t.ok(ops, 'lost');
    // Rebuilding over what the new Redis holds gives back at least everything confirmed before.
    const rebuilt = ops!.reduce(applyOp, c.read.shared);
    for (const key of ['drainedSites', 'drainedBuildings'] as const) {
      t.same([...rebuilt[key]].sort(), [...new Set([...c.previous.shared[key], ...c.read.shared[key]])].sort(), key);
    }
    for (const key of ['pins', 'failbackApprovals', 'failoverApprovals'] as const) t.same(rebuilt[key], c.previous.shared[key], key);
  });
}

t.test('rebuildOps: one idempotent op per drain, pin and approval, nothing for health', async (t) => {
  const withHealth: SharedState = { ...confirmed, health: { cyber1: { r: { status: 'down', sinceMs: 1, reason: 'x', atMs: 1 } } }, replicas: ['r'] };
  const ops = rebuildOps(withHealth);
  t.same(ops, [
    { op: 'drain', kind: 'site', name: 'alpha' },
    { op: 'drain', kind: 'site', name: 'cyber1' },
    { op: 'drain', kind: 'building', name: 'gedung-cyber-1' },
    { op: 'pin', route: 'ceir', site: 'serpong' },
    { op: 'pin', route: 'visa', site: 'dr' },
    { op: 'approveFailback', route: 'ceir', approval: { atMs: 7, force: true } },
    { op: 'approveFailover', route: 'visa', approval: { atMs: 9, force: false } },
  ] satisfies StateOp[]);
  const once = ops.reduce(applyOp, emptySharedState);
  t.same(ops.reduce(applyOp, once), once, 'applying twice (several replicas rebuilding) changes nothing');
  t.same(rebuildOps(emptySharedState), []);
});

t.test('a rebuild queued ahead of a local undrain made during the outage: the undrain still wins', async (t) => {
  const pending: StateOp[] = [{ op: 'undrain', kind: 'building', name: 'gedung-cyber-1' }];
  const s = compose({ stored: at('e2'), pending: [...findLostOps(at('e1', confirmed), at('e2'))!, ...pending] });
  t.same(s.drainedBuildings, []);
  t.same(s.drainedSites, ['alpha', 'cyber1']);
  t.same(s.pins, { ceir: 'serpong', visa: 'dr' });
});

t.test('sites named like Object.prototype members are ordinary keys', async (t) => {
  const other = verdict('down', NOW - 100);
  const own = verdict('up', NOW);
  const s = compose({
    stored: { ...stored, verdicts: [{ field: 'constructor\tfresh', site: 'constructor', replicaId: 'fresh', verdict: other }] },
    own: new Map([['toString', own], ['constructor', own]]),
  });
  t.same(Object.keys(s.health), ['constructor', 'toString']);
  t.same(s.health.constructor, { fresh: other, me: own }, 'both replicas vote on the site named constructor');
  t.equal(Object.hasOwn(Object, 'fresh'), false, 'nothing was written onto the Object constructor');
  t.equal(Object.getPrototypeOf(s.health), null, 'the table has no prototype to inherit names from');
  t.equal(Object.getPrototypeOf(s.pins), null);
});
