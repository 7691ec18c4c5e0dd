// Combining this replica's verdict on a site with the other replicas' (from the
// shared store), so that one replica with a bad network path cannot fail every
// replica over. Pure: the caller passes the previous combined verdict and now.
//
// Majority of the replicas that have a verdict wins; a tie keeps this replica's
// own view (with two replicas that disagree, each routes on what it sees, and
// neither drags the other along). With no other verdicts the own verdict stands,
// but its age is still counted from when the combined verdict last flipped: losing
// the other replicas (Redis away) must not make a hold-down look already served.
// A combined `down` rests on passive evidence alone only if every down vote does.
import type { SiteHealth } from './health-state.js';
import type { ReplicaVerdict } from '../state/state-store.js';

export function combineHealth(
  own: SiteHealth,
  others: readonly Pick<ReplicaVerdict, 'status' | 'passiveOnly'>[],
  prev: SiteHealth | undefined,
  nowMs: number,
): SiteHealth {
  const votes = [...others.map((o) => o.status), ...(own.status === 'unknown' ? [] : [own.status])];
  const down = votes.filter((v) => v === 'down').length;
  const up = votes.length - down;
  const status = down > up ? 'down' : up > down ? 'up' : own.status;
  if (status === 'unknown') return own;
  // Time the combined verdict has held: from the previous combined verdict when it
  // agrees (a hold-down must not restart because one replica re-voted); from now
  // when it just flipped (even if this replica has seen the site up for longer).
  const sinceMs = prev
    ? (prev.status === status ? prev.sinceMs : nowMs)
    : (status === own.status ? own.sinceMs : nowMs);
  const tally = `${down} of ${votes.length} replicas see it down`;
  const passiveOnly = status === 'down'
    && (own.status !== 'down' || own.passiveOnly === true)
    && others.every((o) => o.status !== 'down' || o.passiveOnly === true);
  if (status === own.status) {
    const { passiveOnly: _own, ...rest } = own;
    return {
      ...rest, sinceMs, reason: others.length > 0 ? `${own.reason}; ${tally}` : own.reason,
      ...(passiveOnly ? { passiveOnly: true } : {}),
    };
  }
  return {
    status, passes: 0, fails: 0, sinceMs,
    reason: `quorum: ${tally} (this replica: ${own.status}, ${own.reason})`,
    ...(own.lastCheckMs !== undefined ? { lastCheckMs: own.lastCheckMs } : {}),
    ...(passiveOnly ? { passiveOnly: true } : {}),
  };
}
