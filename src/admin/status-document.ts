// The /status document, built from what the control plane holds: a pure
// function of the table, health, drains, integrity verdicts, events and who
// leads, so the control plane decides and this file only words it.
import { indexPolicy, type Policy } from '../config/policy.js';
import type { SiteHealth } from '../health/health-state.js';
import type { GatewayEvent } from '../model/events.js';
import type { IntegrityVerdict, RouteTable } from '../routing/route-table.js';
import type { LeadershipView } from '../leader/leadership.js';
import type { RouteStatus, SiteStatus, StatusDocument } from './admin-control.js';

export interface StatusInput {
  readonly version: string;
  readonly replica: string;
  readonly policy: Policy;
  readonly table: RouteTable;
  readonly health: (site: string) => SiteHealth;
  readonly integrity: ReadonlyMap<string, IntegrityVerdict>;
  readonly drains: { readonly sites: ReadonlySet<string>; readonly buildings: ReadonlySet<string> };
  readonly stateStore: { readonly kind: 'memory' | 'redis'; readonly up: boolean };
  readonly events: readonly GatewayEvent[];
  readonly leadership: LeadershipView;
}

const iso = (ms: number) => new Date(ms).toISOString();

export function buildStatus(input: StatusInput): StatusDocument {
  const { policy, table, drains, leadership } = input;
  const index = indexPolicy(policy);
  const routes: RouteStatus[] = table.routes.map((d) => {
    const r = index.routes.get(d.name)!;
    const v = input.integrity.get(d.name);
    return {
      name: d.name, priority: r.priority, sites: r.sites, state: d.state, active: d.active,
      weights: d.weights, reason: d.reason, since: iso(d.sinceMs),
      pendingFailover: d.pendingFailover
        ? { from: d.pendingFailover.from, to: d.pendingFailover.to, since: iso(d.pendingFailover.sinceMs) }
        : null,
      pendingFailback: d.state === 'awaiting-approval',
      blocked: d.blocked ?? null,
      pinnedTo: d.pinnedTo ?? null,
      passiveIgnored: d.passiveIgnored ?? null,
      integrity: v ? { ok: v.ok, detail: v.detail, since: iso(v.sinceMs) } : null,
      ...(d.ramp ? { ramp: { to: d.ramp.to, from: d.ramp.from, step: d.ramp.step, percent: d.ramp.percent, stepStarted: iso(d.ramp.stepStartedMs) } } : {}),
    };
  });
  const sites: SiteStatus[] = policy.sites.map((s) => {
    const h = input.health(s.name);
    const drainedBy: ('site' | 'building')[] = [];
    if (drains.sites.has(s.name)) drainedBy.push('site');
    if (drains.buildings.has(s.building)) drainedBy.push('building');
    return {
      name: s.name, building: s.building, url: s.url, health: h.status, reason: h.reason,
      since: iso(h.sinceMs), drained: drainedBy.length > 0, drainedBy,
    };
  });
  return {
    version: input.version,
    replica: input.replica,
    epoch: table.epoch ?? 0,
    // Who leads, and the other replicas, exist only with a shared store; a lone gateway's document is as before.
    ...(input.stateStore.kind === 'redis' ? {
      leader: leadership.leader,
      replicas: leadership.replicas.map((r) => ({
        id: r.id, leader: r.id === leadership.leader, heartbeat: r.heartbeatMs === null ? null : iso(r.heartbeatMs),
        redisReachable: r.redisReachable, epoch: r.epoch,
      })),
    } : {}),
    policyFile: policy.file,
    tableVersion: table.version,
    routes, sites,
    drains: { sites: [...drains.sites].sort(), buildings: [...drains.buildings].sort() },
    stateStore: input.stateStore,
    events: input.events,
  };
}
