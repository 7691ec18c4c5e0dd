// Whose decision this replica routes on, once per decision. The leader (or a
// lone gateway) routes on its own decision and publishes it when it changed; a
// follower applies the leader's published decision, intersected with its own
// drains (followDecision). A replica that cannot reach Redis routes on its own
// decision, made from the last table it applied (so ramps go on from their
// step), under the last epoch it knew: it never invents a newer epoch than the
// leader's.
import { inheritInputs } from '../routing/decide-routes.js';
import type { RouteDecision, RouteTable } from '../routing/route-table.js';
import { decisionsDiffer, followDecision, movesTraffic, type FollowInput } from './follow-decision.js';
import type { Leadership } from './leadership.js';

export interface LeadershipStep {
  readonly leadership: Leadership;
  /** The table this replica routes on now. */
  readonly prev: RouteTable;
  /** Its own decision, made from `prev`. */
  readonly own: RouteTable;
  readonly drains: FollowInput['drains'];
  readonly nowMs: number;
  /** What this replica last published as leader (undefined: publish whatever comes). */
  readonly published: readonly RouteDecision[] | undefined;
}

export function applyLeadership(step: LeadershipStep): { readonly table: RouteTable; readonly published: readonly RouteDecision[] | undefined } {
  const { leadership, prev, own } = step;
  const keep = prev.epoch ?? 0;
  let table: RouteTable;
  let published = step.published;
  if (leadership.isLeader()) {
    if (published === undefined || decisionsDiffer(published, own.routes)) {
      table = withEpoch(own, leadership.publish(own.routes, movesTraffic(prev, own)));
    } else {
      table = withEpoch(own, keep);
    }
    // Equal or published, these decisions are the ones to compare with next: the
    // same objects then (decideRoutes keeps unchanged ones), so the next compare
    // is cheap. Kept the older, equal copies, every decision after a reload
    // compared all 10,000 routes field by field again.
    published = own.routes;
  } else {
    const theirs = leadership.published();
    table = theirs && leadership.isUp()
      ? inheritInputs(own, followDecision({ published: theirs, local: own, prev, drains: step.drains, nowMs: step.nowMs }))
      : withEpoch(own, keep);
  }
  leadership.noteApplied(table.epoch ?? 0);
  return { table, published };
}

/** The table stamped with its epoch (a copy that keeps what it was decided from, so the next decision stays incremental). */
export function withEpoch(table: RouteTable, epoch: number): RouteTable {
  return table.epoch === epoch ? table : inheritInputs(table, Object.freeze({ ...table, epoch }));
}
