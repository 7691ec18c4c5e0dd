import t from 'tap';
import { deepFreeze } from '../../src/model/deep-freeze.js';

t.test('deepFreeze freezes arrays, plain objects and the values of maps, all the way down', async (t) => {
  const shared = { ramp: [10, 100] };
  const value = {
    routes: [{ name: 'ceir', failback: shared }, { name: 'dukcapil', failback: shared }],
    byName: new Map([['ceir', { weights: [{ site: 'cyber1', weight: 100 }] }]]),
    empty: null,
    count: 3,
  };
  t.equal(deepFreeze(value), value, 'the same value back');
  for (const [what, v] of [
    ['the value', value], ['a list', value.routes], ['an item', value.routes[1]], ['a shared object', shared],
    ['a list in a shared object', shared.ramp], ['a map value', value.byName.get('ceir')],
    ['a list in a map value', value.byName.get('ceir')!.weights], ['an item of it', value.byName.get('ceir')!.weights[0]],
  ] as const) t.ok(Object.isFrozen(v), `${what} is frozen`);
});

t.test('deepFreeze leaves scalars, and what is frozen already, as they are', async (t) => {
  for (const scalar of [null, undefined, 0, 'text', true]) t.equal(deepFreeze(scalar), scalar);
  // A frozen value is taken as frozen all the way down: its children are not walked again.
  const inner = { ramp: [10] };
  const outer = Object.freeze({ inner });
  deepFreeze(outer);
  t.notOk(Object.isFrozen(inner), 'not walked into');
});
