// Operator commands as a table: context and command in, refusal, nothing to do,
// or one state operation (with its event and reply) out. No store, no clock.
import t from 'tap';
import { decideCommand, refusalOrUnchanged, type CommandContext, type OperatorCommand } from '../../src/admin/operator-commands.js';
import { decideRoutes } from '../../src/routing/decide-routes.js';
import { noOverrides, type RouteTable } from '../../src/routing/route-table.js';
import { emptySharedState, type SharedState } from '../../src/state/state-store.js';
import type { SiteHealth } from '../../src/health/health-state.js';
import { testPolicy } from '../helpers/policy.js';

const policy = testPolicy({
  sites: [
    { name: 'cyber1', url: 'http://127.0.0.1:1', building: 'gedung-cyber-1' },
    { name: 'serpong', url: 'http://127.0.0.1:2', building: 'serpong-dc' },
    { name: 'other', url: 'http://127.0.0.1:3', building: 'elsewhere' },
  ],
  routes: [
    { name: 'ceir', sites: ['cyber1', 'serpong'], failback: { mode: 'manual', holdDownMs: 0 } },
    { name: 'visa', sites: ['cyber1', 'serpong'], failover: { mode: 'manual' } },
  ],
  drain: { sites: [], buildings: ['elsewhere'] },
});
const up = (sinceMs: number): SiteHealth => ({ status: 'up', sinceMs, reason: 'probe passed', fails: 0, passes: 2 } as SiteHealth);
const down = (sinceMs: number): SiteHealth => ({ status: 'down', sinceMs, reason: 'probe failed', fails: 2, passes: 0 } as SiteHealth);

function tableWith(health: Record<string, SiteHealth>, prev?: RouteTable, nowMs = 1000): RouteTable {
  return decideRoutes({ policy, health: new Map(Object.entries(health)), overrides: noOverrides, integrity: new Map(), prev, nowMs });
}
// ceir: failed over to serpong, cyber1 back (manual failback pending); visa: on cyber1, cyber1 down (manual failover pending).
const calm = tableWith({ cyber1: up(0), serpong: up(0), other: up(0) });
const visaDown = tableWith({ cyber1: down(500), serpong: up(0), other: up(0) }, calm);
const awaiting = tableWith({ cyber1: up(900), serpong: up(0), other: up(0) }, visaDown, 2000);

const shared = (over: Partial<SharedState>): SharedState => ({ ...emptySharedState, ...over });

interface Case {
  readonly name: string;
  readonly cmd: OperatorCommand;
  readonly shared?: Partial<SharedState>;
  readonly table?: RouteTable;
  readonly expect: Record<string, unknown>;
}

const cases: Case[] = [
  { name: 'drain an unknown building', cmd: { command: 'drain', target: { kind: 'building', name: 'nope' } }, expect: { kind: 'refused', code: 'not_found' } },
  { name: 'drain an unknown site', cmd: { command: 'drain', target: { kind: 'site', name: 'nope' } }, expect: { kind: 'refused', code: 'not_found', message: 'unknown site nope' } },
  { name: 'drain a site', cmd: { command: 'drain', target: { kind: 'site', name: 'cyber1' } },
    expect: { kind: 'apply', op: { op: 'drain', kind: 'site', name: 'cyber1' }, event: { event: { type: 'drained', site: 'cyber1', reason: 'site' } } } },
  { name: 'drain a building names no site', cmd: { command: 'drain', target: { kind: 'building', name: 'serpong-dc' } },
    expect: { kind: 'apply', op: { op: 'drain', kind: 'building', name: 'serpong-dc' }, event: { event: { type: 'drained', reason: 'building' } } } },
  { name: 'drain twice', cmd: { command: 'drain', target: { kind: 'site', name: 'cyber1' } }, shared: { drainedSites: ['cyber1'] },
    expect: { kind: 'unchanged', message: 'site cyber1 already drained' } },
  { name: 'undrain what is not drained', cmd: { command: 'undrain', target: { kind: 'site', name: 'cyber1' } }, expect: { kind: 'unchanged', message: 'site cyber1 was not drained' } },
  { name: 'undrain a policy drain', cmd: { command: 'undrain', target: { kind: 'building', name: 'elsewhere' } }, expect: { kind: 'refused', code: 'conflict', message: /policy file/ } },
  { name: 'undrain a runtime drain', cmd: { command: 'undrain', target: { kind: 'building', name: 'serpong-dc' } }, shared: { drainedBuildings: ['serpong-dc'] },
    expect: { kind: 'apply', op: { op: 'undrain', kind: 'building', name: 'serpong-dc' }, event: { event: { type: 'undrained' } } } },
  { name: 'pin an unknown route', cmd: { command: 'pin', route: 'nope', site: 'cyber1' }, expect: { kind: 'refused', code: 'not_found', message: 'unknown route nope' } },
  { name: 'pin to an unknown site', cmd: { command: 'pin', route: 'ceir', site: 'nope' }, expect: { kind: 'refused', code: 'not_found', message: 'unknown site nope' } },
  { name: 'pin to a site not on the route', cmd: { command: 'pin', route: 'ceir', site: 'other' }, expect: { kind: 'refused', code: 'bad_request', message: /not one of route ceir's sites/ } },
  { name: 'pin', cmd: { command: 'pin', route: 'ceir', site: 'serpong' }, expect: { kind: 'apply', op: { op: 'pin', route: 'ceir', site: 'serpong' }, event: { event: { type: 'pinned' } } } },
  { name: 'unpin an unknown route', cmd: { command: 'unpin', route: 'nope' }, expect: { kind: 'refused', code: 'not_found' } },
  { name: 'unpin what is not pinned', cmd: { command: 'unpin', route: 'ceir' }, expect: { kind: 'unchanged', message: 'route ceir was not pinned' } },
  { name: 'unpin', cmd: { command: 'unpin', route: 'ceir' }, shared: { pins: { ceir: 'serpong' } }, expect: { kind: 'apply', op: { op: 'unpin', route: 'ceir' } } },
  { name: 'a route named like a prototype key is not pinned', cmd: { command: 'unpin', route: 'constructor' }, expect: { kind: 'refused', code: 'not_found' } },
  { name: 'approve a failback of an unknown route', cmd: { command: 'approveFailback', route: 'nope', force: false }, expect: { kind: 'refused', code: 'not_found' } },
  { name: 'approve a failback with none pending', cmd: { command: 'approveFailback', route: 'ceir', force: false }, expect: { kind: 'refused', code: 'conflict', message: /no failback pending/ } },
  { name: 'approve a pending failback: stamped with time and target', cmd: { command: 'approveFailback', route: 'ceir', force: false }, table: awaiting,
    expect: { kind: 'apply', op: { op: 'approveFailback', route: 'ceir', approval: { atMs: 5000, force: false, site: 'cyber1' } }, event: { level: 'info', event: { type: 'failbackApproved' } } } },
  { name: 'force a failback: loud', cmd: { command: 'approveFailback', route: 'ceir', force: true }, table: awaiting,
    expect: { kind: 'apply', op: { approval: { force: true } }, event: { level: 'warn', event: { type: 'failbackForced', message: /FORCED/ } } } },
  { name: 'approve a failover of an unknown route', cmd: { command: 'approveFailover', route: 'nope' }, expect: { kind: 'refused', code: 'not_found' } },
  { name: 'approve a failover with none pending', cmd: { command: 'approveFailover', route: 'visa' }, expect: { kind: 'refused', code: 'conflict', message: /no failover pending/ } },
  { name: 'approve a pending failover: for its destination', cmd: { command: 'approveFailover', route: 'visa' }, table: visaDown,
    expect: { kind: 'apply', op: { op: 'approveFailover', route: 'visa', approval: { atMs: 5000, force: false, site: 'serpong' } }, event: { event: { type: 'failoverApproved' } } } },
];

for (const c of cases) {
  t.test(c.name, async (t) => {
    const ctx: CommandContext = { policy, shared: shared(c.shared ?? {}), table: c.table ?? calm, nowMs: 5000 };
    const out = decideCommand(ctx, c.cmd);
    t.match(out, c.expect);
    if (out.kind !== 'apply') t.match(refusalOrUnchanged(out), out.kind === 'refused' ? { ok: false, code: out.code } : { ok: true });
  });
}

t.test('replies are worded against the table decided after the operation', async (t) => {
  const ctx: CommandContext = { policy, shared: emptySharedState, table: awaiting, nowMs: 5000 };
  const failback = decideCommand(ctx, { command: 'approveFailback', route: 'ceir', force: false });
  t.equal(failback.kind, 'apply');
  if (failback.kind === 'apply') {
    t.match(failback.reply(awaiting), /^failback of ceir approved; now awaiting-approval/);
    t.equal(failback.reply(calm.policy === policy ? { ...calm, byName: new Map() } : calm), 'failback of ceir approved', 'a route gone by then');
  }
  const failover = decideCommand({ ...ctx, table: visaDown }, { command: 'approveFailover', route: 'visa' });
  if (failover.kind === 'apply') t.equal(failover.reply(calm), 'route visa failed over to cyber1');
  const undrain = decideCommand({ ...ctx, shared: shared({ drainedBuildings: ['elsewhere'] }) }, { command: 'undrain', target: { kind: 'building', name: 'elsewhere' } });
  if (undrain.kind === 'apply') t.equal(undrain.reply(calm), 'building elsewhere undrained (still drained by the policy file)');
  const drain = decideCommand(ctx, { command: 'drain', target: { kind: 'site', name: 'cyber1' } });
  if (drain.kind === 'apply') t.equal(drain.reply(calm), 'site cyber1 drained');
});
