// The in-flight lists as scenario tables: a script of adds and removes
// (removing from the head, the middle and the tail, twice, through the wrong
// list) against the values and size a Set would give, then the registry of
// requests waiting per site.
import t from 'tap';
import { LiveList, type LiveEntry } from '../../src/proxy/live-list.js';
import { InFlightRegistry } from '../../src/proxy/in-flight.js';

type Step = { readonly add: string } | { readonly remove: string };

t.test('LiveList behaves like a Set of its live entries', async (t) => {
  const scenarios: Array<{ name: string; steps: Step[]; values: string[] }> = [
    { name: 'empty', steps: [], values: [] },
    { name: 'in the order added', steps: [{ add: 'a' }, { add: 'b' }, { add: 'c' }], values: ['a', 'b', 'c'] },
    { name: 'remove the head', steps: [{ add: 'a' }, { add: 'b' }, { add: 'c' }, { remove: 'a' }], values: ['b', 'c'] },
    { name: 'remove the middle', steps: [{ add: 'a' }, { add: 'b' }, { add: 'c' }, { remove: 'b' }], values: ['a', 'c'] },
    { name: 'remove the tail, then add', steps: [{ add: 'a' }, { add: 'b' }, { remove: 'b' }, { add: 'c' }], values: ['a', 'c'] },
    { name: 'remove the only one, then add', steps: [{ add: 'a' }, { remove: 'a' }, { add: 'b' }], values: ['b'] },
    { name: 'remove everything', steps: [{ add: 'a' }, { add: 'b' }, { remove: 'b' }, { remove: 'a' }], values: [] },
    { name: 'a second remove changes nothing', steps: [{ add: 'a' }, { add: 'b' }, { remove: 'a' }, { remove: 'a' }], values: ['b'] },
  ];
  for (const s of scenarios) {
    const list = new LiveList<string>();
    const entries = new Map<string, LiveEntry<string>>();
    const set = new Set<string>();
    for (const step of s.steps) {
      if ('add' in step) {
        entries.set(step.add, list.add(step.add));
        set.add(step.add);
      } else {
        list.remove(entries.get(step.remove)!);
        set.delete(step.remove);
      }
    }
    t.same(list.values(), s.values, `${s.name}: values`);
    t.same(list.values(), [...set], `${s.name}: the same as a Set`);
    t.equal(list.size, s.values.length, `${s.name}: size`);
  }
});

t.test('LiveList: a removed entry holds nothing, and another list cannot remove it', async (t) => {
  const one = new LiveList<string>();
  const two = new LiveList<string>();
  const a = one.add('a');
  const b = one.add('b');
  one.add('c');
  two.remove(b);
  t.same(one.values(), ['a', 'b', 'c'], 'an entry of another list is ignored');
  t.equal(two.size, 0);
  one.remove(b);
  t.equal(b.prev, null, 'unlinked: no pointer to the previous entry');
  t.equal(b.next, null, 'unlinked: no pointer to the next entry');
  t.equal(b.list, null);
  t.equal(a.next?.value, 'c', 'its neighbours now point at each other');
});

t.test('LiveList: values() is a snapshot that may be changed while it is walked', async (t) => {
  const list = new LiveList<number>();
  const entries = [1, 2, 3, 4].map((n) => list.add(n));
  const seen: number[] = [];
  for (const n of list.values()) {
    seen.push(n);
    list.remove(entries[n - 1]!);
    if (n === 2) list.add(5);
  }
  t.same(seen, [1, 2, 3, 4]);
  t.same(list.values(), [5]);
});

t.test('InFlightRegistry: requests waiting per site', async (t) => {
  const registry = new InFlightRegistry<string>();
  t.same(registry.on('primary'), [], 'a site never used has nobody waiting');
  const r1 = registry.add('primary', 'r1');
  const r2 = registry.add('primary', 'r2');
  const r3 = registry.add('backup', 'r3');
  t.same(registry.on('primary'), ['r1', 'r2']);
  t.same(registry.on('backup'), ['r3']);
  registry.remove(r1);
  registry.remove(r1);
  registry.remove(undefined);
  t.same(registry.on('primary'), ['r2'], 'removed once, a second remove and an absent entry change nothing');
  registry.remove(r2);
  registry.remove(r3);
  t.same(registry.on('primary'), []);
  t.same(registry.on('backup'), []);
  registry.add('primary', 'r4');
  t.same(registry.on('primary'), ['r4'], 'a site whose list emptied takes requests again');
});
