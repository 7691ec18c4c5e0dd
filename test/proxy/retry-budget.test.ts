// The retry budget as a scenario table (time passed in), then end to end: a
// site answering 503 to everything under load gets its requests re-sent only
// within the budget, and the rest are answered with its own 503.
import t from 'tap';
import { RetryBudget, RETRY_BUDGET_WINDOW_MS } from '../../src/proxy/retry-budget.js';
import { startFakeSite } from '../helpers/fake-site.js';
import { testPolicy } from '../helpers/policy.js';
import { request, startHarness } from './fixtures/proxy-harness.js';

type Step =
  | { readonly at: number; readonly sent: number; readonly site?: string }
  | { readonly at: number; readonly retry: number; readonly site?: string; readonly allowed: number };

t.test('RetryBudget', async (t) => {
  const scenarios: Array<{ name: string; percent: number; minPerSecond: number; steps: Step[] }> = [
    {
      name: 'no traffic, no floor: nothing may be retried',
      percent: 20, minPerSecond: 0,
      steps: [{ at: 0, retry: 3, allowed: 0 }],
    },
    {
      name: '20% of 100 requests: 20 retries, then spent',
      percent: 20, minPerSecond: 0,
      steps: [{ at: 0, sent: 100 }, { at: 500, retry: 30, allowed: 20 }],
    },
    {
      name: 'the floor lets a quiet route retry: 1/s over a 10 s window is 10',
      percent: 20, minPerSecond: 1,
      steps: [{ at: 0, sent: 5 }, { at: 100, retry: 15, allowed: 10 }],
    },
    {
      name: 'the share wins over the floor when traffic is high',
      percent: 50, minPerSecond: 1,
      steps: [{ at: 0, sent: 100 }, { at: 100, retry: 80, allowed: 50 }],
    },
    {
      name: 'the window slides: old requests and retries stop counting after 10 s',
      percent: 20, minPerSecond: 0,
      steps: [
        { at: 0, sent: 50 }, { at: 0, retry: 20, allowed: 10 },
        { at: RETRY_BUDGET_WINDOW_MS - 1, retry: 5, allowed: 0 },
        { at: RETRY_BUDGET_WINDOW_MS + 1000, retry: 5, allowed: 0 },
        { at: RETRY_BUDGET_WINDOW_MS + 1000, sent: 10 },
        { at: RETRY_BUDGET_WINDOW_MS + 1000, retry: 5, allowed: 2 },
      ],
    },
    {
      name: 'a bucket reused after the ring comes round starts from zero',
      percent: 100, minPerSecond: 0,
      steps: [{ at: 3000, sent: 4 }, { at: 3000 + RETRY_BUDGET_WINDOW_MS, retry: 5, allowed: 0 }],
    },
    {
      name: 'sites are counted apart',
      percent: 20, minPerSecond: 0,
      steps: [{ at: 0, sent: 10, site: 'a' }, { at: 0, sent: 100, site: 'b' }, { at: 1, retry: 5, site: 'a', allowed: 2 }, { at: 1, retry: 30, site: 'b', allowed: 20 }],
    },
    {
      name: 'percent 100 retries every request once; 0 with no floor never',
      percent: 0, minPerSecond: 0,
      steps: [{ at: 0, sent: 100 }, { at: 0, retry: 1, allowed: 0 }],
    },
  ];
  for (const s of scenarios) {
    const budget = new RetryBudget();
    const rule = { percent: s.percent, minPerSecond: s.minPerSecond };
    for (const step of s.steps) {
      const site = step.site ?? 'a';
      if ('sent' in step) {
        for (let i = 0; i < step.sent; i++) budget.sent('r', site, step.at);
        continue;
      }
      let allowed = 0;
      for (let i = 0; i < step.retry; i++) {
        if (budget.allows('r', site, rule, step.at)) {
          budget.spend('r', site, step.at);
          allowed++;
        }
      }
      t.equal(allowed, step.allowed, `${s.name}: at ${step.at} ms, ${step.allowed} of ${step.retry} allowed`);
    }
  }

  const budget = new RetryBudget();
  budget.sent('r', 'a', 0);
  budget.spend('r', 'a', 0);
  budget.sent('gone', 'a', 0);
  t.same(budget.counts('r', 'a', 0), { requests: 1, retries: 1 }, 'a forced move is counted');
  budget.retain((route) => route === 'r');
  t.same(budget.counts('gone', 'a', 0), { requests: 0, retries: 0 }, 'a removed route is forgotten');
  t.same(budget.counts('r', 'a', 0), { requests: 1, retries: 1 }, 'a kept one is not');
});

t.test('a site at 100% 503 under load: retries stay within the budget', async (t) => {
  const sick = await startFakeSite({ name: 'sick', behaviour: 'status:503' });
  const healthy = await startFakeSite({ name: 'healthy' });
  t.teardown(() => sick.close());
  t.teardown(() => healthy.close());
  const budget = { percent: 20, minPerSecond: 1 };
  const policy = testPolicy({
    sites: [{ name: 'sick', url: sick.url }, { name: 'healthy', url: healthy.url }],
    routes: [{ name: 'r', sites: ['sick', 'healthy'], retry: { budget } }],
  });
  // The table keeps routing to the sick site (passive detection is not wired in
  // the harness): the worst case for the healthy one.
  const h = await startHarness(policy);
  t.teardown(() => h.close());

  const total = 300;
  const statuses: number[] = [];
  const startedMs = performance.now();
  let started = 0;
  const worker = async (): Promise<void> => {
    while (started++ < total) statuses.push((await request(h.url, '/x')).status);
  };
  await Promise.all(Array.from({ length: 8 }, worker));
  const elapsedS = (performance.now() - startedMs) / 1000;
  t.ok(elapsedS < RETRY_BUDGET_WINDOW_MS / 1000, `the load fits in one window (${elapsedS.toFixed(1)} s)`);

  const retries = await h.metric('detour_retries_total', { route: 'r', from: 'sick', to: 'healthy' });
  const limit = Math.max(total * budget.percent / 100, budget.minPerSecond * RETRY_BUDGET_WINDOW_MS / 1000);
  t.equal(sick.counts.traffic, total, 'every request went to the sick site first');
  t.equal(healthy.counts.traffic, retries, 'the healthy site got exactly the retries');
  t.ok(retries <= limit + 1, `${retries} retries for ${total} requests (budget ${limit})`);
  t.ok(retries >= limit - 8, `the budget was used, not just refused (${retries} of ${limit})`);
  t.equal(statuses.filter((s) => s === 200).length, retries, 'each retry answered 200');
  t.equal(statuses.filter((s) => s === 503).length, total - retries, 'the rest got the sick site\'s 503');
  t.equal(await h.metric('detour_retry_budget_exhausted_total', { route: 'r' }), total - retries, 'every refused retry counted');
});
