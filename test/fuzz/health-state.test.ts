// Property-based tests of the health state machine: random thresholds and random
// histories of probe results, live-traffic evidence and forced verdicts, checked
// after every step against an oracle written from the rules, not from the code:
//   - down only after `fall` consecutive failed probes, the first probe of an
//     unknown site, a probe confirming a suspicion, site evidence (passiveFailed)
//     or a forced verdict; a suspicion (passiveSuspected) never changes the status;
//   - up only after `rise` consecutive passing probes (the first probe of an
//     unknown site, or a forced verdict), counted since the last failed probe,
//     site evidence or forced verdict: live traffic never brings a site back;
//   - passes and fails count consecutive probes, never both at once;
//   - sinceMs moves exactly when the status changes, to the step's time;
//     `changed` is true exactly when the verdict (status or passiveOnly) changes;
//   - passiveOnly only on a site down by site evidence, cleared by a failed probe
//     (the verdict now rests on a probe) or the site coming back; a suspect is
//     never down, dropped by any probe answer or verdict change;
//   - the reducer is pure: it never mutates its input (inputs are frozen).
import t from 'tap';
import fc from 'fast-check';
import { initialHealth, stepHealth, type HealthEvent, type SiteHealth, type Thresholds } from '../../src/health/health-state.js';

const SEED = 20261201;

const eventArb: fc.Arbitrary<HealthEvent> = fc.oneof(
  { weight: 5, arbitrary: fc.constant({ kind: 'probePassed' as const }) },
  { weight: 5, arbitrary: fc.constant({ kind: 'probeFailed' as const, detail: 'status 503' }) },
  { weight: 2, arbitrary: fc.constant({ kind: 'passiveFailed' as const, detail: 'ECONNREFUSED' }) },
  { weight: 2, arbitrary: fc.constant({ kind: 'passiveSuspected' as const, detail: '10 of 10 requests failed' }) },
  { weight: 1, arbitrary: fc.constantFrom('up' as const, 'down' as const).map((status) => ({ kind: 'forced' as const, status, detail: 'quorum' })) },
);

const historyArb: fc.Arbitrary<History> = fc.record({
  rise: fc.integer({ min: 1, max: 4 }),
  fall: fc.integer({ min: 1, max: 4 }),
  steps: fc.array(fc.record({ event: eventArb, advanceMs: fc.integer({ min: 0, max: 3000 }) }), { maxLength: 40 }),
});

/** What the rules say, kept apart from the reducer: consecutive probe counts and whether a probe is awaited. */
interface Oracle {
  /** Passing probes since the last failed probe, site evidence or forced verdict. */
  passesInRow: number;
  /** Failed probes since the last passing probe or forced verdict. */
  failsInRow: number;
  suspected: boolean;
}

function deepFreeze<T>(h: T): T {
  return Object.freeze(h);
}

function verdict(h: SiteHealth): string {
  return `${h.status}${h.passiveOnly ? '/passiveOnly' : ''}`;
}

function checkStep(prev: SiteHealth, event: HealthEvent, next: SiteHealth, changed: boolean, o: Oracle, th: Thresholds, nowMs: number): string | null {
  const wasUp = prev.status === 'up';
  const wasDown = prev.status === 'down';
  // Counters: consecutive probes, one side at a time.
  if (next.passes > 0 && next.fails > 0) return `passes ${next.passes} and fails ${next.fails} at once`;
  if (event.kind === 'probePassed' && (next.passes !== prev.passes + 1 || next.fails !== 0)) return 'a pass must add one to passes and zero fails';
  if (event.kind === 'probeFailed' && (next.fails !== prev.fails + 1 || next.passes !== 0)) return 'a failure must add one to fails and zero passes';
  if (event.kind === 'forced' && event.status !== prev.status && (next.passes !== 0 || next.fails !== 0)) return 'a forced verdict restarts both counts';
  if (event.kind === 'passiveSuspected' && (next.passes !== prev.passes || next.fails !== prev.fails)) return 'a suspicion is not a probe';

  // Down: only on the evidence the rules name.
  if (next.status === 'down' && !wasDown) {
    const allowed = event.kind === 'passiveFailed'
      || (event.kind === 'forced' && event.status === 'down')
      || (event.kind === 'probeFailed' && (prev.status === 'unknown' || o.failsInRow >= th.fall || o.suspected));
    if (!allowed) return `down on ${event.kind} with ${o.failsInRow} failed probes in a row (fall ${th.fall}), suspected ${o.suspected}`;
  }
  if (event.kind === 'passiveSuspected' && next.status !== prev.status) return 'a suspicion changed the status';
  // Up: only probes (or a forced verdict) bring a site up.
  if (next.status === 'up' && !wasUp) {
    const allowed = (event.kind === 'forced' && event.status === 'up')
      || (event.kind === 'probePassed' && (prev.status === 'unknown' || o.passesInRow >= th.rise));
    if (!allowed) return `up on ${event.kind} with ${o.passesInRow} passing probes in a row (rise ${th.rise})`;
  }
  // Enough evidence always moves the status: fall failures take an up site down, rise passes bring a down site up.
  if (event.kind === 'probeFailed' && o.failsInRow >= th.fall && next.status !== 'down') return `${o.failsInRow} failed probes (fall ${th.fall}) and still ${next.status}`;
  if (event.kind === 'probePassed' && o.passesInRow >= th.rise && next.status !== 'up') return `${o.passesInRow} passing probes (rise ${th.rise}) and still ${next.status}`;
  if (next.status === 'unknown' && prev.status !== 'unknown') return 'back to unknown';
  if (prev.status === 'unknown' && (event.kind === 'probePassed' || event.kind === 'probeFailed') && next.status === 'unknown') return 'the first probe gave no verdict';

  // Time and change flags.
  if (next.status !== prev.status && next.sinceMs !== nowMs) return `status changed but sinceMs ${next.sinceMs} != now ${nowMs}`;
  if (next.status === prev.status && next.sinceMs !== prev.sinceMs) return 'sinceMs moved without a status change';
  if (changed !== (verdict(next) !== verdict(prev))) return `changed=${changed} but verdict ${verdict(prev)} -> ${verdict(next)}`;
  const isProbe = event.kind === 'probePassed' || event.kind === 'probeFailed';
  if (isProbe && next.lastCheckMs !== nowMs) return 'a probe must set lastCheckMs';
  if (!isProbe && next.lastCheckMs !== prev.lastCheckMs) return `${event.kind} moved lastCheckMs`;
  if (typeof next.reason !== 'string' || next.reason.length === 0) return 'no reason';

  // passiveOnly and suspect.
  if (next.passiveOnly && next.status !== 'down') return 'passiveOnly on a site that is not down';
  if (next.passiveOnly && !prev.passiveOnly && event.kind !== 'passiveFailed') return `passiveOnly set by ${event.kind}`;
  if (event.kind === 'probeFailed' && next.passiveOnly) return 'a failed probe must clear passiveOnly';
  if (next.suspect !== undefined && next.status === 'down') return 'a down site is still suspect';
  if (isProbe && next.suspect !== undefined) return 'a probe answer must settle the suspicion';
  if (next.suspect !== undefined && prev.suspect === undefined && event.kind !== 'passiveSuspected') return `suspect set by ${event.kind}`;
  return null;
}

function advance(o: Oracle, event: HealthEvent, prev: SiteHealth, next: SiteHealth): Oracle {
  switch (event.kind) {
    case 'probePassed': return { passesInRow: o.passesInRow + 1, failsInRow: 0, suspected: false };
    case 'probeFailed': return { passesInRow: 0, failsInRow: o.failsInRow + 1, suspected: false };
    // Site evidence: the site could not be reached, so passes toward `rise` start again.
    case 'passiveFailed': return { ...o, passesInRow: 0, suspected: false };
    case 'passiveSuspected': return { ...o, suspected: prev.status !== 'down' };
    case 'forced': return next.status === prev.status ? o : { passesInRow: 0, failsInRow: 0, suspected: false };
  }
}

/** The oracle's "what would the reducer need to be told next" (before the step): the rise count. */
function oracleBefore(o: Oracle, event: HealthEvent): Oracle {
  if (event.kind === 'probePassed') return { ...o, passesInRow: o.passesInRow + 1 };
  if (event.kind === 'probeFailed') return { ...o, failsInRow: o.failsInRow + 1 };
  return o;
}

type History = { rise: number; fall: number; steps: Array<{ event: HealthEvent; advanceMs: number }> };

function runHistory({ rise, fall, steps }: History): string | null {
  const th = { rise, fall };
  let nowMs = 1_000_000;
  let h = deepFreeze(initialHealth(nowMs));
  let o: Oracle = { passesInRow: 0, failsInRow: 0, suspected: false };
  for (const [i, { event, advanceMs }] of steps.entries()) {
    nowMs += advanceMs;
    const step = stepHealth(h, event, th, nowMs);
    const problem = checkStep(h, event, step.health, step.changed, oracleBefore(o, event), th, nowMs);
    if (problem) return `step ${i} (${event.kind}, from ${verdict(h)} passes ${h.passes} fails ${h.fails}): ${problem}`;
    o = advance(o, event, h, step.health);
    h = deepFreeze(step.health);
  }
  return null;
}

t.test('random histories keep the rules of the health state machine', async (t) => {
  let downs = 0;
  let ups = 0;
  fc.assert(fc.property(historyArb, (history) => {
    const problem = runHistory(history);
    if (problem) throw new Error(problem);
    // Count transitions, so the test can tell it explored both directions.
    let h = initialHealth(0);
    for (const { event } of history.steps) {
      const next = stepHealth(h, event, history, 0).health;
      if (next.status !== h.status) next.status === 'down' ? downs++ : ups++;
      h = next;
    }
  }), { seed: SEED, numRuns: 2000 });
  t.ok(downs > 500 && ups > 500, `explored both directions (${downs} downs, ${ups} ups)`);
});

t.test('the same history gives the same states (pure, no hidden clock)', async (t) => {
  fc.assert(fc.property(historyArb, ({ rise, fall, steps }) => {
    const replay = () => {
      let h = initialHealth(5);
      let nowMs = 5;
      return steps.map(({ event, advanceMs }) => {
        nowMs += advanceMs;
        h = stepHealth(h, event, { rise, fall }, nowMs).health;
        return h;
      });
    };
    t.strictSame(replay(), replay());
  }), { seed: SEED, numRuns: 200 });
});

t.test('the oracle itself catches a reducer that breaks the rules', async (t) => {
  // Guards the property above: a site down on one failed probe with fall 3 must be reported.
  const th = { rise: 2, fall: 3 };
  const up = stepHealth(initialHealth(0), { kind: 'probePassed' }, th, 1).health;
  const fail: HealthEvent = { kind: 'probeFailed', detail: 'x' };
  const wrong: SiteHealth = { ...up, status: 'down', fails: 1, passes: 0, sinceMs: 2, lastCheckMs: 2, reason: 'wrong' };
  t.match(checkStep(up, fail, wrong, true, { passesInRow: 0, failsInRow: 1, suspected: false }, th, 2), /down on probeFailed/);
  const right = stepHealth(up, fail, th, 2);
  t.equal(checkStep(up, fail, right.health, right.changed, { passesInRow: 0, failsInRow: 1, suspected: false }, th, 2), null);
});
