// Operator commands (drain, undrain, pin, unpin, approve a failback or a
// failover), decided by pure functions: each looks at the policy, the shared
// state and the route table, and returns either a refusal (mapped to an HTTP
// status at the admin edge), nothing to do, or ONE state operation with the
// event that says what the operator did. The control plane carries it out
// (store.apply, then the decision); nothing here has a side effect, so every
// answer is worked out in a table test.
import { indexPolicy, type Policy } from '../config/policy.js';
import type { DescribedEvent } from '../model/events.js';
import type { RouteTable } from '../routing/route-table.js';
import { ownValue, type SharedState, type StateOp } from '../state/state-store.js';
import type { ControlResult, DrainTarget } from './admin-control.js';

export interface CommandContext {
  readonly policy: Policy;
  /** Runtime drains, pins and approvals (policy drains are not in here). */
  readonly shared: SharedState;
  /** The table the operator acted on. */
  readonly table: RouteTable;
  readonly nowMs: number;
}

export type Command =
  | { readonly kind: 'refused'; readonly code: 'not_found' | 'bad_request' | 'conflict'; readonly message: string }
  | { readonly kind: 'unchanged'; readonly message: string }
  | {
    readonly kind: 'apply';
    readonly op: StateOp;
    readonly event: DescribedEvent;
    /** The reply, worded against the table decided once the operation is in. */
    reply(after: RouteTable): string;
  };

export type OperatorCommand =
  | { readonly command: 'drain' | 'undrain'; readonly target: DrainTarget }
  | { readonly command: 'pin'; readonly route: string; readonly site: string }
  | { readonly command: 'unpin'; readonly route: string }
  | { readonly command: 'approveFailback'; readonly route: string; readonly force: boolean }
  | { readonly command: 'approveFailover'; readonly route: string };

export function decideCommand(ctx: CommandContext, cmd: OperatorCommand): Command {
  switch (cmd.command) {
    case 'drain': return drain(ctx, cmd.target);
    case 'undrain': return undrain(ctx, cmd.target);
    case 'pin': return pin(ctx, cmd.route, cmd.site);
    case 'unpin': return unpin(ctx, cmd.route);
    case 'approveFailback': return approveFailback(ctx, cmd.route, cmd.force);
    case 'approveFailover': return approveFailover(ctx, cmd.route);
  }
}

/** The admin API's answer for a command that did not reach the store. */
export function refusalOrUnchanged(cmd: Exclude<Command, { kind: 'apply' }>): ControlResult {
  return cmd.kind === 'refused' ? { ok: false, code: cmd.code, message: cmd.message } : { ok: true, message: cmd.message };
}

const refused = (code: 'not_found' | 'bad_request' | 'conflict', message: string): Command => ({ kind: 'refused', code, message });

function unknownTarget(ctx: CommandContext, target: DrainTarget): Command | undefined {
  const index = indexPolicy(ctx.policy);
  const known = target.kind === 'site' ? index.sites.has(target.name) : index.buildings.has(target.name);
  return known ? undefined : refused('not_found', `unknown ${target.kind} ${target.name}`);
}

function sharedDrains(shared: SharedState, kind: 'site' | 'building'): readonly string[] {
  return kind === 'site' ? shared.drainedSites : shared.drainedBuildings;
}

function drain(ctx: CommandContext, target: DrainTarget): Command {
  const unknown = unknownTarget(ctx, target);
  if (unknown) return unknown;
  if (sharedDrains(ctx.shared, target.kind).includes(target.name)) {
    return { kind: 'unchanged', message: `${target.kind} ${target.name} already drained` };
  }
  return drainChange(target, 'drain', `${target.kind} ${target.name} drained: no new requests will reach it`, `${target.kind} ${target.name} drained`);
}

/** The state operation, event and reply of a drain or undrain that changes something. */
function drainChange(target: DrainTarget, op: 'drain' | 'undrain', message: string, reply: string): Command {
  return {
    kind: 'apply',
    op: { op, kind: target.kind, name: target.name },
    event: {
      level: 'info',
      event: { type: `${op}ed`, ...(target.kind === 'site' ? { site: target.name } : {}), reason: target.kind, message },
    },
    reply: () => reply,
  };
}

function undrain(ctx: CommandContext, target: DrainTarget): Command {
  const unknown = unknownTarget(ctx, target);
  if (unknown) return unknown;
  const inPolicy = (target.kind === 'site' ? ctx.policy.drain.sites : ctx.policy.drain.buildings).includes(target.name);
  if (!sharedDrains(ctx.shared, target.kind).includes(target.name)) {
    return inPolicy
      ? refused('conflict', `${target.kind} ${target.name} is drained by the policy file; edit drain: in the policy and reload`)
      : { kind: 'unchanged', message: `${target.kind} ${target.name} was not drained` };
  }
  const still = inPolicy ? ' (still drained by the policy file)' : '';
  return drainChange(target, 'undrain', `${target.kind} ${target.name} undrained`, `${target.kind} ${target.name} undrained${still}`);
}

function pin(ctx: CommandContext, route: string, site: string): Command {
  const index = indexPolicy(ctx.policy);
  const r = index.routes.get(route);
  if (!r) return refused('not_found', `unknown route ${route}`);
  if (!index.sites.has(site)) return refused('not_found', `unknown site ${site}`);
  if (!r.sites.includes(site)) {
    return refused('bad_request', `site ${site} is not one of route ${route}'s sites (${r.sites.join(', ')})`);
  }
  return {
    kind: 'apply',
    op: { op: 'pin', route, site },
    event: { level: 'info', event: { type: 'pinned', route, site, message: `route ${route} pinned to ${site}` } },
    reply: () => `route ${route} pinned to ${site}`,
  };
}

function unpin(ctx: CommandContext, route: string): Command {
  if (!indexPolicy(ctx.policy).routes.has(route)) return refused('not_found', `unknown route ${route}`);
  if (ownValue(ctx.shared.pins, route) === undefined) return { kind: 'unchanged', message: `route ${route} was not pinned` };
  return {
    kind: 'apply',
    op: { op: 'unpin', route },
    event: { level: 'info', event: { type: 'unpinned', route, message: `route ${route} unpinned` } },
    reply: () => `route ${route} unpinned`,
  };
}

/**
 * An approval is stamped with its time and its site, and never deleted: the
 * decision honours it only for the episode it was given in (a failback
 * approval counts from when the target last came up, a failover approval from
 * when the failover became pending), so the next episode needs its own.
 */
function approveFailback(ctx: CommandContext, route: string, force: boolean): Command {
  const d = ctx.table.byName.get(route);
  if (!d) return refused('not_found', `unknown route ${route}`);
  if (!d.preferred || d.active === d.preferred) {
    return refused('conflict', `route ${route} has no failback pending (${d.state}: ${d.reason})`);
  }
  const site = d.ramp?.to ?? d.preferred;
  return {
    kind: 'apply',
    op: { op: 'approveFailback', route, approval: { atMs: ctx.nowMs, force, site } },
    event: {
      level: force ? 'warn' : 'info',
      event: {
        type: force ? 'failbackForced' : 'failbackApproved', route,
        message: force
          ? `route ${route} failback to ${d.preferred} FORCED by an operator: hold-down, integrity and priority gates skipped`
          : `route ${route} failback to ${d.preferred} approved by an operator (gates still apply)`,
      },
    },
    reply: (after) => {
      const now = after.byName.get(route);
      return now ? `failback of ${route} approved; now ${now.state}: ${now.reason}` : `failback of ${route} approved`;
    },
  };
}

function approveFailover(ctx: CommandContext, route: string): Command {
  const d = ctx.table.byName.get(route);
  if (!d) return refused('not_found', `unknown route ${route}`);
  if (!d.pendingFailover) return refused('conflict', `route ${route} has no failover pending (${d.state})`);
  const to = d.pendingFailover.to;
  return {
    kind: 'apply',
    op: { op: 'approveFailover', route, approval: { atMs: ctx.nowMs, force: false, site: to } },
    event: { level: 'info', event: { type: 'failoverApproved', route, message: `route ${route} failover to ${to} approved by an operator` } },
    reply: (after) => `route ${route} failed over to ${after.byName.get(route)?.active ?? to}`,
  };
}
