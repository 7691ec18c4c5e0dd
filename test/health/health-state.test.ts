import t from 'tap';
import { initialHealth, stepHealth, type HealthEvent, type HealthStatus } from '../../src/health/health-state.js';

const pass: HealthEvent = { kind: 'probePassed' };
const fail: HealthEvent = { kind: 'probeFailed', detail: 'connect ECONNREFUSED' };
const passive: HealthEvent = { kind: 'passiveFailed', detail: 'ECONNRESET' };

// Each scenario: events in order, and the status plus "changed" flag after each.
const scenarios: Array<{ name: string; rise: number; fall: number; events: HealthEvent[]; expect: Array<[HealthStatus, boolean]> }> = [
  { name: 'unknown takes the first pass at once', rise: 2, fall: 2, events: [pass], expect: [['up', true]] },
  { name: 'unknown takes the first failure at once', rise: 2, fall: 2, events: [fail], expect: [['down', true]] },
  {
    name: 'up needs fall consecutive failures', rise: 2, fall: 3,
    events: [pass, fail, fail, pass, fail, fail, fail],
    expect: [['up', true], ['up', false], ['up', false], ['up', false], ['up', false], ['up', false], ['down', true]],
  },
  {
    name: 'down needs rise consecutive passes', rise: 2, fall: 2,
    events: [fail, pass, fail, pass, pass, pass],
    expect: [['down', true], ['down', false], ['down', false], ['down', false], ['up', true], ['up', false]],
  },
  {
    name: 'passive failure marks down at once, only probes bring it back', rise: 2, fall: 2,
    events: [pass, passive, passive, pass, pass],
    expect: [['up', true], ['down', true], ['down', false], ['down', false], ['up', true]],
  },
  {
    name: 'forced verdicts are adopted and reported once', rise: 2, fall: 2,
    events: [pass, { kind: 'forced', status: 'down', detail: 'quorum' }, { kind: 'forced', status: 'down', detail: 'quorum' }, { kind: 'forced', status: 'up', detail: 'quorum' }],
    expect: [['up', true], ['down', true], ['down', false], ['up', true]],
  },
];

for (const s of scenarios) {
  t.test(s.name, async (t) => {
    let h = initialHealth(0);
    s.events.forEach((ev, i) => {
      const step = stepHealth(h, ev, { rise: s.rise, fall: s.fall }, 1000 * (i + 1));
      t.same([step.health.status, step.changed], s.expect[i], `after event ${i} (${ev.kind})`);
      if (step.changed) t.equal(step.health.sinceMs, 1000 * (i + 1), 'sinceMs moves on change');
      h = step.health;
    });
  });
}

t.test('reasons say what happened', async (t) => {
  let h = initialHealth(0);
  h = stepHealth(h, pass, { rise: 2, fall: 2 }, 1).health;
  h = stepHealth(h, fail, { rise: 2, fall: 2 }, 2).health;
  h = stepHealth(h, fail, { rise: 2, fall: 2 }, 3).health;
  t.equal(h.reason, '2 failed probes (connect ECONNREFUSED)');
  h = stepHealth(h, pass, { rise: 2, fall: 2 }, 4).health;
  h = stepHealth(h, pass, { rise: 2, fall: 2 }, 5).health;
  t.equal(h.reason, '2 passing probes');
});

// The passive rule: site evidence is down at once but `passiveOnly` until a
// probe agrees; request evidence only makes a site suspect, and the next probe
// decides (failed: down at once, whatever `fall`; passed: suspicion dropped).
const suspect: HealthEvent = { kind: 'passiveSuspected', detail: '20 of 20 requests failed in 10s' };
type Mark = [HealthStatus, boolean, 'passiveOnly' | 'suspect' | '-'];
const passiveScenarios: Array<{ name: string; events: HealthEvent[]; expect: Mark[] }> = [
  {
    name: 'site evidence: down at once, passive only until a probe fails too',
    events: [pass, passive, fail, fail],
    expect: [['up', true, '-'], ['down', true, 'passiveOnly'], ['down', true, '-'], ['down', false, '-']],
  },
  {
    name: 'site evidence, then the probes bring it back',
    events: [pass, passive, pass, pass],
    expect: [['up', true, '-'], ['down', true, 'passiveOnly'], ['down', false, 'passiveOnly'], ['up', true, '-']],
  },
  {
    name: 'request evidence: suspect; a failed probe confirms at once (fall 3 not needed)',
    events: [pass, suspect, fail],
    expect: [['up', true, '-'], ['up', false, 'suspect'], ['down', true, '-']],
  },
  {
    name: 'request evidence refuted by a passing probe: stays up',
    events: [pass, suspect, suspect, pass, fail],
    expect: [['up', true, '-'], ['up', false, 'suspect'], ['up', false, 'suspect'], ['up', false, '-'], ['up', false, '-']],
  },
  {
    // Found by test/fuzz/health-state.test.ts: the passes before the site evidence counted toward rise.
    name: 'site evidence on a site already down restarts its rise count',
    events: [fail, pass, passive, pass, pass],
    expect: [['down', true, '-'], ['down', false, '-'], ['down', false, '-'], ['down', false, '-'], ['up', true, '-']],
  },
  {
    name: 'a suspicion about a site already down changes nothing',
    events: [fail, suspect],
    expect: [['down', true, '-'], ['down', false, '-']],
  },
];

for (const s of passiveScenarios) {
  t.test(s.name, async (t) => {
    let h = initialHealth(0);
    s.events.forEach((ev, i) => {
      const step = stepHealth(h, ev, { rise: 2, fall: 3 }, 1000 * (i + 1));
      const mark = step.health.passiveOnly ? 'passiveOnly' : step.health.suspect !== undefined ? 'suspect' : '-';
      t.same([step.health.status, step.changed, mark], s.expect[i], `after event ${i} (${ev.kind})`);
      h = step.health;
    });
  });
}

t.test('a confirmed suspicion says both what traffic and the probe saw', async (t) => {
  let h = stepHealth(initialHealth(0), pass, { rise: 2, fall: 2 }, 1).health;
  h = stepHealth(h, suspect, { rise: 2, fall: 2 }, 2).health;
  h = stepHealth(h, { kind: 'probeFailed', detail: 'status 503' }, { rise: 2, fall: 2 }, 3).health;
  t.equal(h.reason, 'live traffic failing (20 of 20 requests failed in 10s) and a probe confirmed it (status 503)');
  t.equal(h.sinceMs, 3);
  let p = stepHealth(initialHealth(0), passive, { rise: 2, fall: 2 }, 1).health;
  p = stepHealth(p, fail, { rise: 2, fall: 2 }, 2).health;
  t.equal(p.reason, 'live traffic failed (ECONNRESET); a probe confirmed it (connect ECONNREFUSED)');
  t.equal(p.sinceMs, 1, 'still down since the passive failure');
});
