// The health state machine of one site: a pure reducer. Time comes in as nowMs;
// the step returns the new state and whether the verdict changed, so callers
// notify only on change.
//
// Who restores a site: passive signals (live traffic failing) may mark a site
// down at once, but only active probes bring it back up. Otherwise one lucky
// request to a half-dead building would pull traffic back onto it.
//
// Who may take a site down: the site's own evidence (a connection refused or
// timed out before anything was sent) at once, but marked `passiveOnly`, so the
// routing decision may still use it as a route's last site. Request evidence
// (failures after the request was sent) only makes a site `suspect`; the next
// probe decides: failed, the site is down at once (evidence confirmed); passed,
// the suspicion is dropped. A client can therefore never take a healthy site
// down with requests that make the application fail: the probe answers for it.

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
  /** Down on live-traffic evidence alone, not confirmed by a failed probe yet. */
  readonly passiveOnly?: boolean;
  /** Live traffic failed above the ratio: the next probe confirms (down) or refutes it. In words. */
  readonly suspect?: string;
}

export type HealthEvent =
  | { readonly kind: 'probePassed'; readonly detail?: string }
  | { readonly kind: 'probeFailed'; readonly detail: string }
  /** Live traffic could not reach the site at all (refused, connect timeout, TLS handshake). */
  | { readonly kind: 'passiveFailed'; readonly detail: string }
  /** Live traffic failed above the ratio after requests were sent: probe now, decide on its answer. */
  | { readonly kind: 'passiveSuspected'; readonly detail: string }
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
      // A passing probe refutes a suspicion: the failures were the requests' own.
      return same(withoutSuspicion({ ...prev, passes, fails: 0, lastCheckMs: nowMs }));
    }
    case 'probeFailed': {
      const fails = prev.fails + 1;
      if (prev.suspect !== undefined && prev.status !== 'down') {
        return changed({
          status: 'down', passes: 0, fails, sinceMs: nowMs, lastCheckMs: nowMs,
          reason: `live traffic failing (${prev.suspect}) and a probe confirmed it (${event.detail})`,
        });
      }
      if (prev.status === 'down' && prev.passiveOnly) {
        // The probe agrees with live traffic: the verdict no longer rests on passive evidence alone.
        const { passiveOnly: _passiveOnly, ...rest } = prev;
        return changed({ ...rest, passes: 0, fails, lastCheckMs: nowMs, reason: `${prev.reason}; a probe confirmed it (${event.detail})` });
      }
      const becomesDown = prev.status !== 'down' && (prev.status === 'unknown' || fails >= t.fall);
      if (becomesDown) {
        const reason = `${fails} failed probe${fails === 1 ? '' : 's'} (${event.detail})`;
        return changed({ status: 'down', passes: 0, fails, sinceMs: nowMs, reason, lastCheckMs: nowMs });
      }
      return same({ ...prev, passes: 0, fails, lastCheckMs: nowMs });
    }
    case 'passiveFailed': {
      // Reset passes so the next probes must earn `rise` again from zero: also on a
      // site already down, or a site live traffic cannot reach would come back on
      // the probes that passed before it failed (found by test/fuzz/health-state).
      if (prev.status === 'down') return same(prev.passes === 0 ? prev : { ...prev, passes: 0 });
      return changed({
        status: 'down', passes: 0, fails: prev.fails, sinceMs: nowMs,
        reason: `live traffic failed (${event.detail})`, lastCheckMs: prev.lastCheckMs, passiveOnly: true,
      });
    }
    case 'passiveSuspected': {
      // Already down, or already waiting for a probe: nothing new to ask.
      if (prev.status === 'down' || prev.suspect !== undefined) return same(prev);
      return same({ ...prev, suspect: event.detail });
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

function withoutSuspicion(health: SiteHealth): SiteHealth {
  if (health.suspect === undefined) return health;
  const { suspect: _suspect, ...rest } = health;
  return rest;
}

function changed(health: SiteHealth): HealthStep {
  return { health, changed: true };
}

function same(health: SiteHealth): HealthStep {
  return { health, changed: false };
}
