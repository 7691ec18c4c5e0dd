// What `detour start` loads before it reads the policy: every module is paid
// for at every start (the CLI took about 0.4 s to import). ioredis is loaded
// when a replica first connects to Redis, and the positioned YAML reader when
// a file must be read with positions (a problem to point at). Checked in a
// fresh process on the built files, as the CLI runs (tap itself loads yaml).
import t from 'tap';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const root = fileURLToPath(new URL('..', import.meta.url));
const dist = `${root}dist`;
if (!existsSync(`${dist}/cli.js`)) throw new Error(`${dist}/cli.js is missing: run \`npm run build\` first (npm ci does it through prepare)`);

const script = `
import { createRequire } from 'node:module';
const require = createRequire(${JSON.stringify(`${root}package.json`)});
const loaded = (pkg) => Object.keys(require.cache).some((file) => file.includes('/node_modules/' + pkg + '/'));
const seen = {};
await import(${JSON.stringify(`${dist}/cli.js`)});
await import(${JSON.stringify(`${dist}/gateway.js`)});
const { parsePolicy } = await import(${JSON.stringify(`${dist}/config/parse-policy.js`)});
const valid = parsePolicy('sites:\\n  a: { url: "http://127.0.0.1:1" }\\nroutes:\\n  - { name: r, sites: [a] }\\n', 'p.yaml', {});
seen.valid = valid.ok;
seen.ioredisAtStart = loaded('ioredis');
seen.yamlForValid = loaded('yaml');
const invalid = parsePolicy('sites:\\n  a: { url: "http://127.0.0.1:1" }\\nroutes:\\n  - { name: r, sites: [b] }\\n', 'p.yaml', {});
seen.invalidError = invalid.ok ? null : invalid.errors[0];
seen.yamlForInvalid = loaded('yaml');
const { createRedisClient } = await import(${JSON.stringify(`${dist}/state/redis-connection.js`)});
const client = createRedisClient({ url: 'redis://127.0.0.1:9' }, { lazyConnect: true });
seen.clientStatus = client.status;
seen.ioredisForClient = loaded('ioredis');
client.disconnect();
console.log(JSON.stringify(seen));
`;

t.test('a start without state.redis loads neither ioredis nor the positioned YAML reader', async (t) => {
  // DETOUR_YAML_CROSSCHECK (set by npm test) reads every policy both ways on purpose: not what a start does.
  const env = { ...process.env, DETOUR_YAML_CROSSCHECK: '' };
  const { stdout } = await promisify(execFile)(process.execPath, ['--input-type=module', '-e', script], { env, timeout: 30_000 });
  const seen = JSON.parse(stdout) as Record<string, unknown>;
  t.equal(seen.valid, true);
  t.equal(seen.ioredisAtStart, false, 'ioredis not loaded by the CLI and the gateway');
  t.equal(seen.yamlForValid, false, 'yaml not loaded to read a valid policy');
  t.match(seen.invalidError, { line: 4, message: /unknown site "b"/ }, 'a problem is still pointed at, by line');
  t.equal(seen.yamlForInvalid, true, 'yaml loaded to point at it');
  t.equal(seen.clientStatus, 'wait', 'a Redis client made, not connected (lazyConnect)');
  t.equal(seen.ioredisForClient, true, 'ioredis loaded for the first client');
});
