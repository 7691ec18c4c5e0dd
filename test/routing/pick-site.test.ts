import t from 'tap';
import { nextSite, pickSite } from '../../src/routing/pick-site.js';

/** A deterministic random source (mulberry32) so weighted picks are reproducible. */
function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let x = a;
    x = Math.imul(x ^ (x >>> 15), x | 1);
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61);
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}

const w = (...pairs: Array<[string, number]>) => ({ weights: pairs.map(([site, weight]) => ({ site, weight })) });

t.test('pickSite: fixed random values land in the right band', async (t) => {
  const decision = w(['a', 10], ['b', 90]);
  const scenarios: Array<[number, string]> = [[0, 'a'], [0.0999, 'a'], [0.1, 'b'], [0.5, 'b'], [0.99999, 'b'], [1, 'b'], [-1, 'a'], [Number.NaN, 'b']];
  for (const [r, expected] of scenarios) t.equal(pickSite(decision, () => r), expected, `random ${r}`);
});

t.test('pickSite: edge decisions', async (t) => {
  t.equal(pickSite(w(), () => 0.5), null, 'no weights');
  t.equal(pickSite(w(['a', 0], ['b', 0]), () => 0.5), null, 'only zero weights');
  t.equal(pickSite(w(['a', 100]), () => { throw new Error('random not needed'); }), 'a', 'single site needs no random');
  t.equal(pickSite(w(['a', 0], ['b', 100]), () => 0), 'b', 'zero weight never picked');
});

t.test('pickSite: spread follows the weights (seeded)', async (t) => {
  for (const [pa, pb] of [[10, 90], [50, 50], [90, 10]] as const) {
    const random = seeded(42 + pa);
    const n = 10_000;
    let a = 0;
    for (let i = 0; i < n; i++) if (pickSite(w(['a', pa], ['b', pb]), random) === 'a') a++;
    const share = (a / n) * 100;
    t.ok(Math.abs(share - pa) < 2, `${pa}/${pb}: a got ${share.toFixed(1)}%`);
  }
});

t.test('nextSite: first eligible not yet tried', async (t) => {
  const scenarios: Array<[string[], string[], string | null]> = [
    [['a', 'b', 'c'], [], 'a'],
    [['a', 'b', 'c'], ['a'], 'b'],
    [['a', 'b', 'c'], ['b'], 'a'],
    [['a', 'b', 'c'], ['a', 'b'], 'c'],
    [['a', 'b'], ['a', 'b'], null],
    [[], [], null],
  ];
  for (const [eligible, tried, expected] of scenarios) {
    t.equal(nextSite({ eligible }, new Set(tried)), expected, `eligible ${eligible.join(',')} tried ${tried.join(',')}`);
  }
});
