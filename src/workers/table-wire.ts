// A route table on its way from the primary to a worker. The table travels
// whole (every decision), but without its policy: a policy changes only on a
// reload, and a 10,000-route policy re-sent with every health change would
// cost more than the decision itself. The policy travels once, under an id,
// and each table names the id it was computed from. On arrival the worker
// joins the two, rebuilds the by-name index and freezes the result, so the
// data plane reads exactly what it reads in a single process: a frozen table,
// replaced whole by reference.
import type { Policy } from '../config/policy.js';
import type { RouteDecision, RouteTable } from '../routing/route-table.js';

export interface WireTable {
  readonly version: number;
  readonly computedAtMs: number;
  readonly policyId: number;
  readonly routes: readonly RouteDecision[];
  readonly nextWakeMs: number | null;
}

export function toWire(table: RouteTable, policyId: number): WireTable {
  return {
    version: table.version, computedAtMs: table.computedAtMs, policyId, routes: table.routes, nextWakeMs: table.nextWakeMs,
  };
}

export type FromWire =
  | { readonly ok: true; readonly table: RouteTable }
  | { readonly ok: false; readonly message: string };

/**
 * Rebuild a table around the policy it names. A table for a policy the worker
 * does not hold, or older than the one in place, is refused (the channel is
 * ordered, so either means a bug, and routing on it would be worse than
 * keeping the current table).
 */
export function fromWire(wire: WireTable, policies: ReadonlyMap<number, Policy>, current: RouteTable | undefined): FromWire {
  const policy = policies.get(wire.policyId);
  if (!policy) return { ok: false, message: `table ${wire.version} names policy ${wire.policyId}, which this worker never received` };
  if (current && wire.version < current.version) {
    return { ok: false, message: `table ${wire.version} is older than the table in place (${current.version})` };
  }
  const byName = new Map<string, RouteDecision>();
  for (const d of wire.routes) byName.set(d.name, d);
  const table: RouteTable = {
    version: wire.version, computedAtMs: wire.computedAtMs, policy, routes: wire.routes, byName, nextWakeMs: wire.nextWakeMs,
  };
  return { ok: true, table: deepFreeze(table) };
}

/** Freeze a value and everything it holds (Maps cannot be frozen in place; their values are). */
export function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    const children = value instanceof Map ? value.values() : Object.values(value);
    for (const v of children) deepFreeze(v);
  }
  return value;
}
