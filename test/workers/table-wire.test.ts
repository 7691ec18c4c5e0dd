// A table crosses the IPC channel without its policy and arrives frozen, with
// its by-name index rebuilt, or is refused.
import t from 'tap';
import { serialize, deserialize } from 'node:v8';
import { parsePolicy } from '../../src/config/parse-policy.js';
import { decideRoutes } from '../../src/routing/decide-routes.js';
import { initialHealth } from '../../src/health/health-state.js';
import { noOverrides, type RouteTable } from '../../src/routing/route-table.js';
import { deepFreeze, fromWire, toWire } from '../../src/workers/table-wire.js';
import { resolveWorkerCount } from '../../src/workers/data-plane.js';
import type { Policy } from '../../src/config/policy.js';

function policyOf(text: string): Policy {
  const result = parsePolicy(text, 'p.yaml', {});
  if (!result.ok) throw new Error(JSON.stringify(result.errors));
  return result.policy;
}

const policy = policyOf('sites:\n  a: { url: "http://127.0.0.1:1" }\n  b: { url: "http://127.0.0.1:2" }\nroutes:\n  - { name: r1, sites: [a, b] }\n  - { name: r2, sites: [b] }\n');

function tableOf(prev?: RouteTable): RouteTable {
  const health = new Map([['a', { ...initialHealth(0), status: 'up' as const }], ['b', { ...initialHealth(0), status: 'up' as const }]]);
  return decideRoutes({ policy, health, overrides: noOverrides, integrity: new Map(), prev, nowMs: 1000 });
}

t.test('a table survives the channel (structured clone) and is frozen on arrival', async (t) => {
  const table = tableOf();
  const wire = deserialize(serialize(toWire(table, 7))) as ReturnType<typeof toWire>;
  t.notOk(Object.isFrozen(wire.routes[0]), 'the clone arrives unfrozen');
  const policyCopy = deserialize(serialize(policy)) as Policy;
  const result = fromWire(wire, new Map([[7, policyCopy]]), undefined);
  if (!result.ok) throw new Error(result.message);
  t.equal(result.table.version, table.version);
  t.equal(result.table.policy, policyCopy, 'joined with the policy it names');
  t.same(result.table.routes, table.routes);
  t.equal(result.table.byName.get('r2'), result.table.routes[1], 'the index points into the same decisions');
  t.ok(Object.isFrozen(result.table) && Object.isFrozen(result.table.routes[0]) && Object.isFrozen(result.table.routes[0]!.weights), 're-frozen, deep');
  t.ok(Object.isFrozen(policyCopy.routes[0]), 'the policy too');
  t.throws(() => { (result.table.routes[0] as { active: string | null }).active = 'b'; }, TypeError, 'no one can mutate it in place');
});

t.test('a table naming an unknown policy, or older than the one in place, is refused', async (t) => {
  const first = tableOf();
  const second = tableOf(first);
  const policies = new Map([[1, policy]]);
  const unknown = fromWire(toWire(second, 2), policies, undefined);
  t.equal(unknown.ok, false);
  t.match(!unknown.ok && unknown.message, /names policy 2, which this worker never received/);
  const current = fromWire(toWire(second, 1), policies, undefined);
  if (!current.ok) throw new Error(current.message);
  const older = fromWire(toWire(first, 1), policies, current.table);
  t.match(!older.ok && older.message, /older than the table in place/);
  t.equal(fromWire(toWire(second, 1), policies, current.table).ok, true, 'the same version again is harmless');
});

t.test('deepFreeze reaches into maps', async (t) => {
  const value = deepFreeze({ m: new Map([['k', { v: 1 }]]) });
  t.ok(Object.isFrozen(value.m.get('k')));
  t.equal(deepFreeze(null), null);
});

t.test('workers: absent = 1, auto = one per core, a number as it is', async (t) => {
  const scenarios: Array<[number | 'auto' | undefined, number, number]> = [[undefined, 8, 1], [1, 8, 1], [3, 8, 3], ['auto', 8, 8], ['auto', 0, 1]];
  for (const [setting, cores, expected] of scenarios) t.equal(resolveWorkerCount(setting, cores), expected, `${setting} on ${cores} cores`);
});
