// Admin calls answer once every live worker routes by the new table: a table
// of waits, acknowledgements, deaths and timeouts.
import t from 'tap';
import { VersionAcks, type AckResult } from '../../src/workers/version-acks.js';

function scriptedAfter() {
  const timers: Array<{ run: () => void; cancelled: boolean }> = [];
  return {
    after: (_ms: number, run: () => void) => {
      const timer = { run, cancelled: false };
      timers.push(timer);
      return () => { timer.cancelled = true; };
    },
    expire: () => { for (const timer of timers.splice(0)) if (!timer.cancelled) timer.run(); },
  };
}

type Step = ['expect', string] | ['applied', string, number] | ['forget', string] | ['wait', number] | ['expire'];

const scenarios: Array<{ name: string; steps: Step[]; results: Array<AckResult<string> | 'pending'> }> = [
  {
    name: 'no workers: nothing to wait for',
    steps: [['wait', 3]],
    results: [{ ok: true }],
  },
  {
    name: 'answers once every worker has the version',
    steps: [['expect', 'w1'], ['expect', 'w2'], ['wait', 2], ['applied', 'w1', 2], ['applied', 'w2', 2]],
    results: [{ ok: true }],
  },
  {
    name: 'a newer version counts',
    steps: [['expect', 'w1'], ['wait', 2], ['applied', 'w1', 5]],
    results: [{ ok: true }],
  },
  {
    name: 'one worker short: still waiting',
    steps: [['expect', 'w1'], ['expect', 'w2'], ['wait', 2], ['applied', 'w1', 2]],
    results: ['pending'],
  },
  {
    name: 'a worker that dies is not waited for',
    steps: [['expect', 'w1'], ['expect', 'w2'], ['wait', 2], ['applied', 'w1', 2], ['forget', 'w2']],
    results: [{ ok: true }],
  },
  {
    name: 'a timeout names the workers that lag',
    steps: [['expect', 'w1'], ['expect', 'w2'], ['wait', 2], ['applied', 'w2', 2], ['expire']],
    results: [{ ok: false, lagging: ['w1'] }],
  },
  {
    name: 'an old acknowledgement moves nothing; an unknown worker is ignored',
    steps: [['expect', 'w1'], ['applied', 'w1', 3], ['wait', 3], ['applied', 'w1', 2], ['applied', 'w9', 9]],
    results: [{ ok: true }],
  },
  {
    name: 'waits for different versions settle independently',
    steps: [['expect', 'w1'], ['wait', 2], ['wait', 3], ['applied', 'w1', 2]],
    results: [{ ok: true }, 'pending'],
  },
];

for (const scenario of scenarios) {
  t.test(scenario.name, async (t) => {
    const clock = scriptedAfter();
    const acks = new VersionAcks<string>(clock.after);
    const results: Array<AckResult<string> | 'pending'> = [];
    for (const step of scenario.steps) {
      switch (step[0]) {
        case 'expect': acks.expect(step[1]); break;
        case 'applied': acks.applied(step[1], step[2]); break;
        case 'forget': acks.forget(step[1]); break;
        case 'wait': {
          const i = results.push('pending') - 1;
          void acks.waitFor(step[1], 1000).then((r) => { results[i] = r; });
          break;
        }
        case 'expire': clock.expire(); break;
      }
      await Promise.resolve();
    }
    await new Promise((resolve) => setImmediate(resolve));
    t.same(results, scenario.results);
  });
}

t.test('releaseAll answers every waiter with who lags (a closing pool does not hang its callers)', async (t) => {
  const clock = scriptedAfter();
  const acks = new VersionAcks<string>(clock.after);
  acks.expect('w1');
  acks.expect('w2');
  acks.applied('w1', 4);
  const a = acks.waitFor(4, 1000);
  const b = acks.waitFor(5, 1000);
  acks.applied('w2', 4);
  t.same(await a, { ok: true });
  acks.releaseAll();
  t.same(await b, { ok: false, lagging: ['w1', 'w2'] });
  t.equal(acks.versionOf('w1'), 4);
  t.equal(acks.versionOf('nobody'), undefined);
});
