// Which pair of sites the integrity gate compares, per route state.
import t from 'tap';
import { verifyTargets } from '../../src/routing/verify-targets.js';
import { tableFor, testPolicy, type TestDecisionInput } from '../helpers/policy.js';

const verify = { path: '/_integrity', field: 'checksum', intervalMs: 1000, timeoutMs: 500 };
const policy = testPolicy({
  sites: ['a', 'b', 'c'].map((name) => ({ name, url: `http://127.0.0.1:1/${name}` })),
  routes: [
    { name: 'r', sites: ['a', 'b', 'c'], failback: { verify } },
    { name: 'plain', sites: ['a', 'b'] },
  ],
});
const none = { sites: new Set<string>(), buildings: new Set<string>() };
const pairs = (table: ReturnType<typeof tableFor>, drains = none) =>
  verifyTargets(table, drains).map((x) => `${x.route}:${x.preferred.name}->${x.serving.name}`);

const rows: Array<{ name: string; decision: TestDecisionInput; drains?: typeof none; want: string[] }> = [
  { name: 'on its first site: nothing to compare', decision: { active: 'a', preferred: 'a' }, want: [] },
  { name: 'failed over, nothing better up: the first site against the serving one', decision: { state: 'failed-over', active: 'c', preferred: 'c' }, want: ['r:a->c'] },
  { name: 'failed over to c, b back up (a still down): b is the failback target', decision: { state: 'holding-down', active: 'c', preferred: 'b' }, want: ['r:b->c'] },
  { name: 'ramping to b: b, even if a is up again', decision: { state: 'ramping', active: 'c', preferred: 'a', ramp: { to: 'b', from: 'c', step: 0, percent: 10, stepStartedMs: 0 } }, want: ['r:b->c'] },
  { name: 'first site drained: the first undrained one', decision: { state: 'failed-over', active: 'c', preferred: 'c' }, drains: { sites: new Set(['a']), buildings: new Set<string>() }, want: ['r:b->c'] },
  { name: 'pinned: no gate', decision: { state: 'pinned', active: 'c', preferred: 'a' }, want: [] },
  { name: 'unavailable: nothing to compare', decision: { state: 'unavailable' }, want: [] },
];

for (const row of rows) {
  t.test(row.name, async (t) => {
    t.same(pairs(tableFor(policy, { r: row.decision, plain: { state: 'failed-over', active: 'b' } }), row.drains), row.want);
  });
}
