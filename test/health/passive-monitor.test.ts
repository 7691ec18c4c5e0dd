import t from 'tap';
import { PassiveMonitor } from '../../src/health/passive-monitor.js';
import { makeSite } from './site-fixture.js';

type Step = readonly ['responded', string, number] | readonly ['connectionFailed', string, string];

// Each scenario: failure thresholds per site, what live traffic saw, and the failures reported after each step.
const scenarios: Array<{ name: string; thresholds: Record<string, number>; steps: Step[]; expect: Array<Array<[string, string]>> }> = [
  {
    name: 'connection failure reports at once',
    thresholds: { cyber1: 3 },
    steps: [['connectionFailed', 'cyber1', 'connect ECONNREFUSED']],
    expect: [[['cyber1', 'connect ECONNREFUSED']]],
  },
  {
    name: 'threshold consecutive 5xx report once with the last status',
    thresholds: { cyber1: 3 },
    steps: [['responded', 'cyber1', 500], ['responded', 'cyber1', 502], ['responded', 'cyber1', 503], ['responded', 'cyber1', 503]],
    expect: [[], [], [['cyber1', '3 consecutive 5xx responses (last 503)']], []],
  },
  {
    name: 'any non-5xx resets the streak',
    thresholds: { cyber1: 2 },
    steps: [['responded', 'cyber1', 500], ['responded', 'cyber1', 404], ['responded', 'cyber1', 500], ['responded', 'cyber1', 200], ['responded', 'cyber1', 500]],
    expect: [[], [], [], [], []],
  },
  {
    name: 'a streak that goes on reports again after another threshold',
    thresholds: { cyber1: 2 },
    steps: [['responded', 'cyber1', 500], ['responded', 'cyber1', 500], ['responded', 'cyber1', 500], ['responded', 'cyber1', 504]],
    expect: [[], [['cyber1', '2 consecutive 5xx responses (last 500)']], [], [['cyber1', '2 consecutive 5xx responses (last 504)']]],
  },
  {
    name: 'threshold 1 reports every 5xx',
    thresholds: { cyber1: 1 },
    steps: [['responded', 'cyber1', 500], ['responded', 'cyber1', 503]],
    expect: [[['cyber1', '1 consecutive 5xx responses (last 500)']], [['cyber1', '1 consecutive 5xx responses (last 503)']]],
  },
  {
    name: 'threshold 0 disables the 5xx rule but not connection failures',
    thresholds: { cyber1: 0 },
    steps: [['responded', 'cyber1', 500], ['responded', 'cyber1', 500], ['responded', 'cyber1', 500], ['connectionFailed', 'cyber1', 'read ECONNRESET']],
    expect: [[], [], [], [['cyber1', 'read ECONNRESET']]],
  },
  {
    name: 'sites count separately',
    thresholds: { cyber1: 2, serpong: 2 },
    steps: [['responded', 'cyber1', 500], ['responded', 'serpong', 500], ['responded', 'cyber1', 200], ['responded', 'serpong', 500]],
    expect: [[], [], [], [['serpong', '2 consecutive 5xx responses (last 500)']]],
  },
  {
    name: '4xx and 3xx are the client\'s business, not the site\'s',
    thresholds: { cyber1: 1 },
    steps: [['responded', 'cyber1', 404], ['responded', 'cyber1', 429], ['responded', 'cyber1', 301], ['responded', 'cyber1', 600]],
    expect: [[], [], [], []],
  },
  {
    name: 'unknown sites (removed by a reload) are ignored',
    thresholds: { cyber1: 1 },
    steps: [['responded', 'old', 500], ['connectionFailed', 'old', 'connect ECONNREFUSED']],
    expect: [[], []],
  },
];

for (const s of scenarios) {
  t.test(s.name, async (t) => {
    const failures: Array<[string, string]> = [];
    const monitor = new PassiveMonitor({ onFailure: (site, detail) => failures.push([site, detail]) });
    monitor.update(Object.entries(s.thresholds).map(([name, threshold]) => makeSite(name, 'http://127.0.0.1:1', {}, threshold)));
    s.steps.forEach((step, i) => {
      const seen = failures.length;
      if (step[0] === 'responded') monitor.responded(step[1], step[2]);
      else monitor.connectionFailed(step[1], step[2]);
      t.same(failures.slice(seen), s.expect[i], `after step ${i} (${step.join(' ')})`);
    });
  });
}

t.test('update changes thresholds and forgets removed sites', async (t) => {
  const failures: string[] = [];
  const monitor = new PassiveMonitor({ onFailure: (site, detail) => failures.push(`${site}: ${detail}`) });
  monitor.update([makeSite('cyber1', 'http://127.0.0.1:1', {}, 3), makeSite('serpong', 'http://127.0.0.1:2', {}, 3)]);
  monitor.responded('cyber1', 500);
  monitor.responded('cyber1', 500);
  monitor.update([makeSite('cyber1', 'http://127.0.0.1:1', {}, 2)]);
  monitor.responded('cyber1', 500);
  t.same(failures, ['cyber1: 3 consecutive 5xx responses (last 500)'], 'a streak survives a reload; the new threshold applies');
  monitor.responded('serpong', 500);
  monitor.connectionFailed('serpong', 'connect ECONNREFUSED');
  t.equal(failures.length, 1, 'removed site ignored');
});
