// `detour start` as a user runs it, for the access log: SIGUSR1 reopens the
// file after logrotate moved it (its own file: the CLI suite is long enough).
import t from 'tap';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startFakeSite } from '../helpers/fake-site.js';
import { request } from '../helpers/load.js';
import { waitFor } from '../helpers/wait.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
const cli = join(root, 'dist', 'cli.js');
if (!existsSync(cli)) throw new Error(`${cli} is missing: run \`npm run build\` first (npm ci does it through prepare)`);

t.test('detour start: SIGUSR1 reopens the access log after rotation', async (t) => {
  const primary = await startFakeSite({ name: 'primary' });
  const backup = await startFakeSite({ name: 'backup' });
  t.teardown(() => primary.close());
  t.teardown(() => backup.close());
  const dir = t.testdir({});
  const log = join(dir, 'access.log');
  const file = join(dir, 'policy.yaml');
  await writeFile(file, `listen: { host: 127.0.0.1, port: 0 }
admin: { host: 127.0.0.1, port: 0 }
sites:
  primary: { url: "${primary.url}", building: a }
  backup: { url: "${backup.url}", building: b }
routes:
  - { name: api, sites: [primary, backup] }
accessLog: { path: "${log}" }\n`);
  const child = spawn(process.execPath, [cli, 'start', '-c', file, '--no-watch'], { cwd: root, env: { ...process.env, DETOUR_LOG_LEVEL: 'info' } });
  let out = '';
  child.stdout.on('data', (c) => { out += c; });
  child.stderr.on('data', (c) => { out += c; });
  t.teardown(() => { if (child.exitCode === null) child.kill('SIGKILL'); });
  await waitFor(() => /serving \d+ routes on (\S+),/.test(out) || child.exitCode !== null, { timeoutMs: 15_000, message: 'detour start to listen' });
  const proxyUrl = /serving \d+ routes on (\S+),/.exec(out)?.[1];
  if (!proxyUrl) throw new Error(`detour start failed: ${out}`);
  const d = { child, proxyUrl, stderr: () => out };
  const count = async (f: string): Promise<number> => (await readFile(f, 'utf8').catch(() => '')).split('\n').filter(Boolean).length;
  t.equal((await request(`${d.proxyUrl}/one`, undefined)).status, 200);
  await waitFor(async () => (await count(log)) === 1, { timeoutMs: 3000, message: 'first line' });
  await rename(log, `${log}.1`);
  d.child.kill('SIGUSR1');
  await waitFor(() => /access log reopened/.test(d.stderr()), { timeoutMs: 3000, message: 'SIGUSR1 handled' });
  t.equal((await request(`${d.proxyUrl}/two`, undefined)).status, 200);
  await waitFor(async () => (await count(log)) === 1, { timeoutMs: 3000, message: 'a new file at the path' });
  t.match(await readFile(log, 'utf8'), /"path":"\/two"/);
  t.equal(await count(`${log}.1`), 1, 'the rotated file keeps the old line');
  t.equal(d.child.exitCode, null, 'still running (SIGUSR1 does not start the inspector or exit)');
});

