// The passive rule as a decision table, time passed in: site evidence reports
// at once; request evidence only raises a suspicion once the window holds
// enough requests, enough failures, a high enough ratio and enough clients, and
// then at most once per probe interval.
import t from 'tap';
import { PassiveMonitor } from '../../src/health/passive-monitor.js';
import { FailureWindow, judgeWindow } from '../../src/health/passive-window.js';
import type { PassivePolicy } from '../../src/config/policy.js';
import { defaultPassive } from '../helpers/policy.js';
import { makeSite } from './site-fixture.js';

type Step =
  | { readonly at: number; readonly ok?: number; readonly fail?: number; readonly status?: number; readonly site?: string; readonly clients?: number }
  | { readonly at: number; readonly refused: string; readonly site?: string };

interface Scenario {
  readonly name: string;
  readonly passive?: Partial<PassivePolicy>;
  readonly intervalMs?: number;
  readonly steps: readonly Step[];
  /** What was reported, in order: ['down', site, detail] or ['suspect', site, detail]. */
  readonly expect: ReadonlyArray<readonly [string, string, RegExp | string]>;
}

const small: Partial<PassivePolicy> = { minRequests: 10, ratio: 0.5, failureThreshold: 3, windowMs: 10_000 };

const scenarios: Scenario[] = [
  {
    name: 'a refused connection is site evidence: reported at once',
    steps: [{ at: 0, refused: 'connect ECONNREFUSED' }],
    expect: [['down', 'cyber1', 'connect ECONNREFUSED']],
  },
  {
    name: 'one client failing 20 requests out of 20 is only a suspicion (the probe decides)',
    steps: [{ at: 0, fail: 20 }],
    expect: [['suspect', 'cyber1', /^20 of 20 requests failed in 10s \(last: socket hang up\)$/]],
  },
  {
    name: 'below the volume nothing is trusted, however bad the ratio',
    steps: [{ at: 0, fail: 19 }],
    expect: [],
  },
  {
    name: 'below the ratio: failures among many successes are the requests\' own',
    steps: [{ at: 0, ok: 60 }, { at: 1, fail: 40 }],
    expect: [],
  },
  {
    name: 'exactly at the ratio is enough',
    steps: [{ at: 0, ok: 20 }, { at: 1, fail: 20 }],
    expect: [['suspect', 'cyber1', /^20 of 40 requests failed/]],
  },
  {
    name: 'a 500 is the application\'s answer: never counted',
    steps: [{ at: 0, fail: 30, status: 500 }],
    expect: [],
  },
  {
    name: '502, 503 and 504 count by default',
    passive: small,
    steps: [{ at: 0, fail: 4, status: 502 }, { at: 1, fail: 3, status: 503 }, { at: 2, fail: 3, status: 504 }],
    expect: [['suspect', 'cyber1', /^10 of 10 requests failed in 10s \(last: status 504\)$/]],
  },
  {
    name: 'statuses are configurable: 500 counts when listed',
    passive: { ...small, statuses: [500] },
    steps: [{ at: 0, fail: 10, status: 500 }],
    expect: [['suspect', 'cyber1', /last: status 500/]],
  },
  {
    name: 'failures older than the window are forgotten',
    passive: small,
    steps: [{ at: 0, fail: 9 }, { at: 11_000, fail: 1 }, { at: 11_001, ok: 9 }],
    expect: [],
  },
  {
    name: 'at most one suspicion per probe interval, then again while failures go on',
    passive: small,
    intervalMs: 1000,
    steps: [{ at: 0, fail: 10 }, { at: 500, fail: 10 }, { at: 1000, fail: 1 }],
    expect: [['suspect', 'cyber1', /^10 of 10/], ['suspect', 'cyber1', /^21 of 21/]],
  },
  {
    name: 'minClients: one client cannot raise it, three can',
    passive: { ...small, minClients: 3 },
    steps: [{ at: 0, fail: 15, clients: 1 }, { at: 1, fail: 3, clients: 3 }],
    expect: [['suspect', 'cyber1', /^18 of 18 requests failed in 10s from 3\+ clients/]],
  },
  {
    name: 'failureThreshold 0 turns request evidence off, not site evidence',
    passive: { failureThreshold: 0 },
    steps: [{ at: 0, fail: 50 }, { at: 1, refused: 'connect ETIMEDOUT' }],
    expect: [['down', 'cyber1', 'connect ETIMEDOUT']],
  },
  {
    name: 'sites count separately',
    passive: small,
    steps: [{ at: 0, fail: 6 }, { at: 0, fail: 6, site: 'serpong' }, { at: 1, ok: 4 }],
    expect: [],
  },
  {
    name: 'sites removed by a reload are ignored',
    steps: [{ at: 0, fail: 30, site: 'old' }, { at: 1, refused: 'connect ECONNREFUSED', site: 'old' }],
    expect: [],
  },
];

for (const s of scenarios) {
  t.test(s.name, async (t) => {
    let now = 1_000_000;
    const reports: Array<[string, string, string]> = [];
    const monitor = new PassiveMonitor({
      now: () => now,
      siteFailed: (site, detail) => reports.push(['down', site, detail]),
      siteSuspected: (site, detail) => reports.push(['suspect', site, detail]),
    });
    const site = (name: string) => ({ ...makeSite(name, `http://127.0.0.1:1/${name}`, { intervalMs: s.intervalMs ?? 60_000 }), passive: { ...defaultPassive, ...s.passive } });
    monitor.update([site('cyber1'), site('serpong')]);
    for (const step of s.steps) {
      now = 1_000_000 + step.at;
      const name = step.site ?? 'cyber1';
      if ('refused' in step) {
        monitor.connectionFailed(name, step.refused);
        continue;
      }
      for (let i = 0; i < (step.ok ?? 0); i++) monitor.responded(name, 200, '10.0.0.1');
      for (let i = 0; i < (step.fail ?? 0); i++) {
        const client = `client-${i % (step.clients ?? 1)}`;
        if (step.status !== undefined) monitor.responded(name, step.status, client);
        else monitor.requestFailed(name, 'socket hang up', client);
      }
    }
    t.equal(reports.length, s.expect.length, `reports: ${JSON.stringify(reports)}`);
    s.expect.forEach(([kind, name, detail], i) => {
      t.equal(reports[i]?.[0], kind);
      t.equal(reports[i]?.[1], name);
      if (typeof detail === 'string') t.equal(reports[i]?.[2], detail);
      else t.match(reports[i]?.[2], detail);
    });
  });
}

t.test('a reload keeps the window of unchanged sites and resets changed ones', async (t) => {
  let now = 0;
  const reports: string[] = [];
  const monitor = new PassiveMonitor({
    now: () => now, siteFailed: () => {}, siteSuspected: (site) => reports.push(site),
  });
  const cyber1 = { ...makeSite('cyber1', 'http://127.0.0.1:1'), passive: { ...defaultPassive, ...small } };
  monitor.update([cyber1]);
  for (let i = 0; i < 9; i++) monitor.requestFailed('cyber1', 'reset', 'c');
  monitor.update([cyber1, makeSite('serpong', 'http://127.0.0.1:2')]);
  monitor.requestFailed('cyber1', 'reset', 'c');
  t.same(reports, ['cyber1'], 'the unchanged site kept its nine failures');
  monitor.update([{ ...cyber1, passive: { ...cyber1.passive, minRequests: 11 } }]);
  now = 60_000;
  for (let i = 0; i < 10; i++) monitor.requestFailed('cyber1', 'reset', 'c');
  t.same(reports, ['cyber1'], 'changed settings start a new window');
});

t.test('a reload compares passive settings by value: equal copies keep the window, a changed status list resets it', async (t) => {
  const reports: string[] = [];
  const monitor = new PassiveMonitor({ now: () => 0, siteFailed: () => {}, siteSuspected: (site) => reports.push(site) });
  const cyber1 = { ...makeSite('cyber1', 'http://127.0.0.1:1'), passive: { ...defaultPassive, ...small } };
  monitor.update([cyber1]);
  for (let i = 0; i < 9; i++) monitor.requestFailed('cyber1', 'reset', 'c');
  // The same settings, as a reload parses them: new objects, keys in another order.
  const { statuses, ...rest } = cyber1.passive;
  monitor.update([{ ...cyber1, passive: { statuses: [...statuses], ...rest } }]);
  monitor.requestFailed('cyber1', 'reset', 'c');
  t.same(reports, ['cyber1'], 'an equal copy kept the nine failures');
  monitor.update([{ ...cyber1, passive: { ...cyber1.passive, statuses: statuses.slice(1) } }]);
  for (let i = 0; i < 9; i++) monitor.requestFailed('cyber1', 'reset', 'c');
  t.same(reports, ['cyber1'], 'another status list started a new window (nine failures are not enough)');
});

t.test('judgeWindow says why it does not suspect', async (t) => {
  const p = { ...defaultPassive, ...small, minClients: 2 };
  const rows: Array<[{ requests: number; failures: number; failingClients: number }, string | true]> = [
    [{ requests: 9, failures: 9, failingClients: 2 }, 'volume'],
    [{ requests: 10, failures: 2, failingClients: 2 }, 'failures'],
    [{ requests: 10, failures: 4, failingClients: 2 }, 'ratio'],
    [{ requests: 10, failures: 5, failingClients: 1 }, 'clients'],
    [{ requests: 10, failures: 5, failingClients: 2 }, true],
  ];
  for (const [counts, want] of rows) {
    const j = judgeWindow(counts, p, '10s');
    t.equal(j.suspect ? true : j.why, want, JSON.stringify(counts));
  }
  t.equal(judgeWindow({ requests: 100, failures: 100, failingClients: 5 }, { ...p, failureThreshold: 0 }, '10s').suspect, false);
});

t.test('FailureWindow keeps constant memory and counts clients only up to what is needed', async (t) => {
  const w = new FailureWindow(1000, 2);
  for (let i = 0; i < 1000; i++) w.record(i, i % 2 === 0, `c${i}`);
  const c = w.counts(999);
  t.ok(c.requests <= 1000 && c.requests >= 900, `about one window of requests (${c.requests})`);
  t.equal(c.failingClients, 2);
  t.same(w.counts(5000), { requests: 0, failures: 0, failingClients: 0 }, 'all expired');
});

t.test('a spent retry budget asks a probe at once, once per interval, unless request evidence is off', async (t) => {
  let now = 0;
  const reports: string[] = [];
  const monitor = new PassiveMonitor({ now: () => now, siteFailed: () => {}, siteSuspected: (site, detail) => reports.push(`${site}: ${detail}`) });
  const site = (name: string, failureThreshold = 3) => ({
    ...makeSite(name, `http://127.0.0.1:1/${name}`, { intervalMs: 1000 }), passive: { ...defaultPassive, failureThreshold },
  });
  monitor.update([site('cyber1'), site('off', 0)]);
  monitor.responded('cyber1', 503, 'c');
  monitor.retryBudgetSpent('cyber1');
  monitor.retryBudgetSpent('cyber1');
  monitor.retryBudgetSpent('off');
  monitor.retryBudgetSpent('gone');
  t.same(reports, ['cyber1: its retry budget is spent (last: status 503)']);
  now = 1000;
  monitor.retryBudgetSpent('cyber1');
  t.equal(reports.length, 2, 'again after an interval');
});
