import t from 'tap';
import { join } from 'node:path';
import { checkPolicyFile, loadPolicyFile } from '../../src/config/load-policy.js';

t.test('a missing file is one error at 1:1 with the OS reason', async (t) => {
  const dir = t.testdir({});
  const file = join(dir, 'nope.yaml');
  const result = await loadPolicyFile(file, {});
  t.same(result, {
    ok: false,
    errors: [{ file, line: 1, col: 1, path: '(file)', message: `cannot read the policy file: ENOENT: no such file or directory, open '${file}'` }],
  });
});

t.test('a directory is not a policy file', async (t) => {
  const dir = t.testdir({});
  const result = await loadPolicyFile(dir, {});
  t.match(result, { ok: false, errors: [{ line: 1, col: 1, message: /EISDIR/ }] });
});

t.test('check prints one line per problem, named by the file given', async (t) => {
  const dir = t.testdir({
    'bad.yaml': 'sites:\n  a: { url: "http://127.0.0.1:1" }\nroutes:\n  - { name: r, sites: [b] }\nlisten: { port: ${P} }\n',
  });
  const file = join(dir, 'bad.yaml');
  t.same(await checkPolicyFile(file, {}), {
    ok: false,
    lines: [
      `${file}:4:24 routes[0].sites[0]: unknown site "b" (sites: a)`,
      `${file}:5:17 listen.port: environment variable P is not set`,
    ],
  });
  const fixed = await checkPolicyFile(file, { P: '8081' });
  t.same(fixed, { ok: false, lines: [`${file}:4:24 routes[0].sites[0]: unknown site "b" (sites: a)`] }, 'env comes from the caller');
});

t.test('check has nothing to say about a valid file', async (t) => {
  const dir = t.testdir({ 'ok.yaml': 'sites:\n  a: { url: "http://127.0.0.1:1" }\nroutes:\n  - { name: r, sites: [a] }\n' });
  const file = join(dir, 'ok.yaml');
  t.same(await checkPolicyFile(file, {}), { ok: true, lines: [] });
  const loaded = await loadPolicyFile(file, {});
  t.equal(loaded.ok && loaded.policy.file, file, 'the policy remembers its file');
});

t.test('the environment defaults to process.env', async (t) => {
  const dir = t.testdir({ 'env.yaml': 'sites:\n  a: { url: "http://127.0.0.1:${DETOUR_LOAD_TEST_PORT}" }\nroutes:\n  - { name: r, sites: [a] }\n' });
  process.env.DETOUR_LOAD_TEST_PORT = '18099';
  t.teardown(() => { delete process.env.DETOUR_LOAD_TEST_PORT; });
  const loaded = await loadPolicyFile(join(dir, 'env.yaml'));
  t.equal(loaded.ok && loaded.policy.sites[0]?.url, 'http://127.0.0.1:18099');
});
