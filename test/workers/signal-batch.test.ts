// Passive signals leave a worker counted, not listed, on a timer or when the
// batch is full; site evidence and spent budgets leave at the end of the turn.
// A scripted scheduler makes every flush visible.
import t from 'tap';
import { SignalBatcher, replaySignals, type SignalBatch, type SignalScheduler } from '../../src/workers/signal-batch.js';
import type { PassiveHealth } from '../../src/proxy/exchange.js';

function scripted() {
  const timers: Array<{ ms: number; run: () => void; cancelled: boolean }> = [];
  const soon: Array<() => void> = [];
  const scheduler: SignalScheduler = {
    after(ms, run) {
      const timer = { ms, run, cancelled: false };
      timers.push(timer);
      return () => { timer.cancelled = true; };
    },
    soon(run) { soon.push(run); },
  };
  return {
    scheduler,
    /** Fire the armed batch timer. */
    tick() { for (const timer of timers.splice(0)) if (!timer.cancelled) timer.run(); },
    endOfTurn() { for (const run of soon.splice(0)) run(); },
    armed: () => timers.filter((x) => !x.cancelled).length,
  };
}

type Step =
  | ['responded', string, number, string]
  | ['requestFailed', string, string, string]
  | ['connectionFailed', string, string]
  | ['retryBudgetSpent', string]
  | ['tick'] | ['endOfTurn'];

const scenarios: Array<{ name: string; maxEntries?: number; steps: Step[]; batches: SignalBatch[] }> = [
  {
    name: 'responses are counted per site, status and client, and leave on the timer',
    steps: [['responded', 'a', 200, 'c1'], ['responded', 'a', 200, 'c1'], ['responded', 'a', 503, 'c1'], ['responded', 'b', 200, 'c2'], ['endOfTurn'], ['tick']],
    batches: [{ connectionFailed: [], requestFailed: [], responded: [['a', 200, 'c1', 2], ['a', 503, 'c1', 1], ['b', 200, 'c2', 1]], retryBudgetSpent: [] }],
  },
  {
    name: 'nothing leaves before the timer for ordinary traffic',
    steps: [['responded', 'a', 200, 'c1'], ['requestFailed', 'a', 'reset', 'c1'], ['endOfTurn']],
    batches: [],
  },
  {
    name: 'site evidence leaves at the end of the turn, with what was waiting; a burst is one message',
    steps: [['responded', 'a', 200, 'c1'], ['connectionFailed', 'a', 'ECONNREFUSED'], ['connectionFailed', 'a', 'ECONNREFUSED'], ['endOfTurn'], ['tick']],
    batches: [{ connectionFailed: [['a', 'ECONNREFUSED'], ['a', 'ECONNREFUSED']], requestFailed: [], responded: [['a', 200, 'c1', 1]], retryBudgetSpent: [] }],
  },
  {
    name: 'a spent retry budget leaves at the end of the turn, once per site',
    steps: [['retryBudgetSpent', 'a'], ['retryBudgetSpent', 'a'], ['requestFailed', 'a', 'reset', 'c1'], ['requestFailed', 'a', 'reset', 'c1'], ['endOfTurn']],
    batches: [{ connectionFailed: [], requestFailed: [['a', 'reset', 'c1', 2]], responded: [], retryBudgetSpent: ['a'] }],
  },
  {
    name: 'a full batch leaves at once, before its timer',
    maxEntries: 2,
    steps: [['responded', 'a', 200, 'c1'], ['responded', 'a', 200, 'c2'], ['responded', 'a', 200, 'c3'], ['tick']],
    batches: [
      { connectionFailed: [], requestFailed: [], responded: [['a', 200, 'c1', 1], ['a', 200, 'c2', 1]], retryBudgetSpent: [] },
      { connectionFailed: [], requestFailed: [], responded: [['a', 200, 'c3', 1]], retryBudgetSpent: [] },
    ],
  },
];

for (const scenario of scenarios) {
  t.test(scenario.name, async (t) => {
    const clock = scripted();
    const sent: SignalBatch[] = [];
    const batcher = new SignalBatcher({ send: (b) => sent.push(b), scheduler: clock.scheduler, ...(scenario.maxEntries ? { maxEntries: scenario.maxEntries } : {}) });
    for (const step of scenario.steps) {
      switch (step[0]) {
        case 'responded': batcher.responded(step[1], step[2], step[3]); break;
        case 'requestFailed': batcher.requestFailed(step[1], step[2], step[3]); break;
        case 'connectionFailed': batcher.connectionFailed(step[1], step[2]); break;
        case 'retryBudgetSpent': batcher.retryBudgetSpent(step[1]); break;
        case 'tick': clock.tick(); break;
        case 'endOfTurn': clock.endOfTurn(); break;
      }
    }
    t.same(sent, scenario.batches);
  });
}

t.test('the batch interval is armed once per batch, and cancelled by an early flush', async (t) => {
  const clock = scripted();
  const sent: SignalBatch[] = [];
  const batcher = new SignalBatcher({ send: (b) => sent.push(b), scheduler: clock.scheduler });
  batcher.responded('a', 200, 'c');
  batcher.responded('a', 200, 'd');
  t.equal(clock.armed(), 1, 'one timer for the batch');
  batcher.flush();
  t.equal(clock.armed(), 0, 'flushing cancels it');
  t.equal(batcher.pending, 0);
  batcher.flush();
  t.equal(sent.length, 1, 'an empty flush sends nothing');
});

t.test('after close, every signal leaves at once', async (t) => {
  const clock = scripted();
  const sent: SignalBatch[] = [];
  const batcher = new SignalBatcher({ send: (b) => sent.push(b), scheduler: clock.scheduler });
  batcher.responded('a', 200, 'c');
  batcher.close();
  t.equal(sent.length, 1, 'close flushes');
  batcher.responded('a', 200, 'c');
  batcher.connectionFailed('a', 'refused');
  t.equal(sent.length, 3, 'later signals are not held for a timer that may never fire');
});

t.test('replay feeds the passive monitor every counted signal', async (t) => {
  const calls: string[] = [];
  const passive: PassiveHealth = {
    connectionFailed: (s, d) => calls.push(`site ${s} ${d}`),
    requestFailed: (s, d, c) => calls.push(`request ${s} ${d} ${c}`),
    responded: (s, st, c) => calls.push(`responded ${s} ${st} ${c}`),
    retryBudgetSpent: (s) => calls.push(`budget ${s}`),
  };
  replaySignals({
    connectionFailed: [['a', 'refused']], requestFailed: [['b', 'reset', 'c1', 2]], responded: [['b', 200, 'c1', 3]], retryBudgetSpent: ['b'],
  }, passive);
  t.same(calls, [
    'responded b 200 c1', 'responded b 200 c1', 'responded b 200 c1', 'request b reset c1', 'request b reset c1', 'site a refused', 'budget b',
  ]);
  // A monitor without retryBudgetSpent (an older PassiveHealth) is fine.
  replaySignals({ connectionFailed: [], requestFailed: [], responded: [], retryBudgetSpent: ['a'] }, { ...passive, retryBudgetSpent: undefined } as PassiveHealth);
});
