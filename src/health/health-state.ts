// The health state machine of one site: a pure reducer. Time comes in as nowMs;
// the step returns the new state and whether the verdict changed, so callers
// notify only on change.
//
// Who restores a site: passive signals (live traffic failing) may mark a site
// down at once, but only active probes bring it back up. Otherwise one lucky
// request to a half-dead building would pull traffic back onto it.

export type HealthStatus = 'unknown' | 'up' | 'down';

export interface SiteHealth {
  readonly status: HealthStatus;
  /** Consecutive passing probes since the last failure. */
  readonly passes: number;
  /** Consecutive failing probes since the last pass. */
  readonly fails: number;
  /** When `status` last changed (ms since epoch). */
  readonly sinceMs: number;
  /** Why the status is what it is, in words. */
  readonly reason: string;
  readonly lastCheckMs?: number;
}

export type HealthEvent =
  | { readonly kind: 'probePassed'; readonly detail?: string }
  | { readonly kind: 'probeFailed'; readonly detail: string }
  /** A connection failure, timeout or 5xx burst seen on live traffic. */
  | { readonly kind: 'passiveFailed'; readonly detail: string }
  /** Another replica's or an operator's verdict, adopted as is. */
  | { readonly kind: 'forced'; readonly status: 'up' | 'down'; readonly detail: string };

export interface Thresholds {
  readonly rise: number;
  readonly fall: number;
}

export interface HealthStep {
  readonly health: SiteHealth;
  readonly changed: boolean;
}

export function initialHealth(nowMs: number): SiteHealth {
  return { status: 'unknown', passes: 0, fails: 0, sinceMs: nowMs, reason: 'not probed yet' };
}

/**
 * A site with no verdict yet (`unknown`) takes the first probe's answer at once:
 * detour starts serving as soon as it knows anything, instead of waiting
 * `rise` intervals with every route unavailable. From then on `rise`/`fall` apply.
 */
export function stepHealth(prev: SiteHealth, event: HealthEvent, t: Thresholds, nowMs: number): HealthStep {
  switch (event.kind) {
    case 'probePassed': {
      const passes = prev.passes + 1;
      const becomesUp = prev.status !== 'up' && (prev.status === 'unknown' || passes >= t.rise);
      if (becomesUp) {
        const reason = prev.status === 'unknown'
          ? 'first probe passed'
          : `${passes} passing probe${passes === 1 ? '' : 's'}`;
        return changed({ status: 'up', passes, fails: 0, sinceMs: nowMs, reason, lastCheckMs: nowMs });
      }
      return same({ ...prev, passes, fails: 0, lastCheckMs: nowMs });
    }
    case 'probeFailed': {
      const fails = prev.fails + 1;
      const becomesDown = prev.status !== 'down' && (prev.status === 'unknown' || fails >= t.fall);
      if (becomesDown) {
        const reason = `${fails} failed probe${fails === 1 ? '' : 's'} (${event.detail})`;
        return changed({ status: 'down', passes: 0, fails, sinceMs: nowMs, reason, lastCheckMs: nowMs });
      }
      return same({ ...prev, passes: 0, fails, lastCheckMs: nowMs });
    }
    case 'passiveFailed': {
      if (prev.status === 'down') return same(prev);
      // Reset passes so the next probes must earn `rise` again from zero.
      return changed({
        status: 'down', passes: 0, fails: prev.fails, sinceMs: nowMs,
        reason: `live traffic failed (${event.detail})`, lastCheckMs: prev.lastCheckMs,
      });
    }
    case 'forced': {
      if (prev.status === event.status) return same(prev);
      return changed({
        status: event.status, passes: 0, fails: 0, sinceMs: nowMs, reason: event.detail,
        lastCheckMs: prev.lastCheckMs,
      });
    }
  }
}

function changed(health: SiteHealth): HealthStep {
  return { health, changed: true };
}

function same(health: SiteHealth): HealthStep {
  return { health, changed: false };
}
