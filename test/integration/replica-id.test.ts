// --replica-id / DETOUR_REPLICA_ID name this replica in the shared state and in
// /status; a name that could not be a Redis hash field part is a usage error.
import t from 'tap';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildProgram } from '../../src/cli.js';
import { startGateway } from '../../src/gateway.js';
import { silentLogger } from '../../src/logger.js';
import { testPolicy } from '../helpers/policy.js';
import { startFakeSite } from '../helpers/fake-site.js';

t.test('a bad --replica-id is a usage error, before anything starts', async (t) => {
  const file = join(t.testdir({}), 'p.yaml');
  writeFileSync(file, 'listen: { host: 127.0.0.1, port: 0 }\nadmin: { host: 127.0.0.1, port: 0 }\nsites:\n  a: { url: "http://127.0.0.1:1" }\nroutes:\n  - { name: r, sites: [a] }\n');
  for (const bad of ['has space', '', '-leading-dash', 'x'.repeat(101)]) {
    let code = -1;
    let err = '';
    await buildProgram({ out: () => {}, err: (s) => { err += s; }, env: {}, setExitCode: (n) => { code = n; } })
      .parseAsync(['node', 'detour', 'start', '-c', file, '--replica-id', bad]);
    t.equal(code, 2, JSON.stringify(bad));
    t.match(err, /--replica-id must be 1 to 100 letters/);
  }
});

t.test('the replica id shows in /status', async (t) => {
  const site = await startFakeSite({ name: 'a' });
  t.teardown(() => site.close());
  const gateway = await startGateway({
    policy: testPolicy({ sites: [{ name: 'a', url: site.url }], routes: [{ name: 'r', sites: ['a'] }] }),
    logger: silentLogger(), replicaId: 'jakarta-1',
  });
  t.teardown(() => gateway.close());
  const status = await (await fetch(`${gateway.adminUrl}/status`)).json() as { replica?: string };
  t.equal(status.replica, 'jakarta-1');
});
