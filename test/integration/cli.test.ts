// The CLI as a user runs it: real child processes of the built `dist/cli.js`.
// `detour check` on good and bad files, `detour start` with reload by file
// change, SIGHUP and the admin API, a bad policy kept out, and SIGTERM letting an
// in-flight request finish before exiting.
import t, { type Test } from 'tap';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { writeFile, readFile, rename } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startFakeSite } from '../helpers/fake-site.js';
import { request } from '../helpers/load.js';
import { waitFor } from '../helpers/wait.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
const cli = join(root, 'dist', 'cli.js');
if (!existsSync(cli)) throw new Error(`${cli} is missing: run \`npm run build\` first (npm ci does it through prepare)`);

interface Run { code: number | null; stdout: string; stderr: string }

function run(args: string[], env: Record<string, string> = {}, timeoutMs = 30_000): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [cli, ...args], { cwd: root, env: { ...process.env, ...env, DETOUR_LOG_LEVEL: 'warn' } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c) => { stdout += c; });
    child.stderr.on('data', (c) => { stderr += c; });
    const timer = setTimeout(() => { child.kill('SIGKILL'); reject(new Error(`detour ${args.join(' ')} did not finish in ${timeoutMs} ms`)); }, timeoutMs);
    child.on('close', (code) => { clearTimeout(timer); resolve({ code, stdout, stderr }); });
  });
}

t.test('detour check accepts every example policy in config/', async (t) => {
  const files = readdirSync(join(root, 'config')).filter((f) => f.endsWith('.yaml'));
  t.ok(files.length >= 3, 'there are examples');
  for (const f of files) {
    const r = await run(['check', '-c', join('config', f)], { DETOUR_ADMIN_TOKEN: 'x' });
    t.equal(r.code, 0, `${f}: exit 0 (${r.stderr.trim()})`);
    t.match(r.stdout, /: ok/);
  }
});

t.test('detour check points at the line and column of each problem', async (t) => {
  const unknown = await run(['check', '-c', 'test/fixtures/policies/unknown-site.yaml']);
  t.equal(unknown.code, 1);
  const misspelled = await run(['check', '-c', 'test/fixtures/policies/misspelled-key.yaml']);
  t.equal(misspelled.code, 1);
  for (const [r, file] of [[unknown, 'unknown-site.yaml'], [misspelled, 'misspelled-key.yaml']] as const) {
    const lines = r.stderr.trim().split('\n');
    t.ok(lines.length >= 1, `${file}: at least one problem`);
    for (const line of lines) t.match(line, new RegExp(`^test/fixtures/policies/${file.replace('.', '\\.')}:\\d+:\\d+ \\S+: .+`), `format: ${line}`);
  }
  // Find the exact positions in the fixtures themselves, so the test says what a user sees.
  const unknownText = await readFile(join(root, 'test/fixtures/policies/unknown-site.yaml'), 'utf8');
  const unknownErr = unknown.stderr.split('\n').find((l) => /unknown site/.test(l))!;
  const [, line, col, name] = /:(\d+):(\d+) .*unknown site "?([\w-]+)"?/.exec(unknownErr) ?? [];
  t.ok(line, `an unknown-site line: ${unknownErr}`);
  const srcLine = unknownText.split('\n')[Number(line) - 1]!;
  t.equal(srcLine.slice(Number(col) - 1, Number(col) - 1 + name!.length), name, 'the column points at the unknown name');

  const misspelledErr = misspelled.stderr.split('\n').find((l) => /unknown key/.test(l))!;
  t.ok(misspelledErr, `a misspelled-key line: ${misspelled.stderr}`);
  const [, mLine, mCol] = /:(\d+):(\d+) /.exec(misspelledErr)!;
  const mText = (await readFile(join(root, 'test/fixtures/policies/misspelled-key.yaml'), 'utf8')).split('\n')[Number(mLine) - 1]!;
  const key = /unknown key "?([\w.]+)"?/.exec(misspelledErr)?.[1] ?? misspelledErr.split(' ')[1]!.split('.').pop()!;
  t.ok(mText.slice(Number(mCol) - 1).startsWith(key.split('.').pop()!), `the column points at the key (${mText.trim()})`);
  t.match(misspelledErr, /did you mean/);

  const missing = await run(['check', '-c', 'no/such/file.yaml']);
  t.equal(missing.code, 1);
  t.match(missing.stderr, /no\/such\/file\.yaml:1:1/);
});

t.test('detour with no or wrong arguments is a usage error (exit 2)', async (t) => {
  t.equal((await run(['check'])).code, 2);
  t.equal((await run(['frobnicate'])).code, 2);
  const help = await run(['--help']);
  t.equal(help.code, 0);
  for (const cmd of ['start', 'check', 'demo', 'status', 'drain', 'undrain', 'pin', 'failback']) t.match(help.stdout, new RegExp(`\\b${cmd}\\b`));
});

interface Started { child: ChildProcess; proxyUrl: string; adminUrl: string; stderr: () => string }

async function startDetour(t: Test, file: string, env: Record<string, string>): Promise<Started> {
  const child = spawn(process.execPath, [cli, 'start', '-c', file], { cwd: root, env: { ...process.env, ...env, DETOUR_LOG_LEVEL: 'info' } });
  let out = '';
  let err = '';
  child.stdout!.on('data', (c) => { out += c; });
  child.stderr!.on('data', (c) => { err += c; });
  t.teardown(() => { if (child.exitCode === null) child.kill('SIGKILL'); });
  await waitFor(() => /serving \d+ routes on (\S+), admin API on (\S+)/.test(out) || child.exitCode !== null, { timeoutMs: 15_000, message: 'detour start to listen' });
  const m = /serving \d+ routes on (\S+), admin API on (\S+)"/.exec(out) ?? /serving \d+ routes on (\S+), admin API on (\S+)/.exec(out);
  if (!m) throw new Error(`detour start failed: ${out}\n${err}`);
  return { child, proxyUrl: m[1]!, adminUrl: m[2]!, stderr: () => out + err };
}

function policyYaml(primary: string, backup: string, extra = ''): string {
  return `listen: { host: 127.0.0.1, port: 0 }
admin: { host: 127.0.0.1, port: 0, token: \${TOKEN} }
sites:
  primary: { url: "${primary}", building: a, health: { interval: 100ms, timeout: 1s } }
  backup: { url: "${backup}", building: b, health: { interval: 100ms, timeout: 1s } }
routes:
  - name: api
    sites: [primary, backup]
${extra}`;
}

async function startPolicyRig(t: Test) {
  const primary = await startFakeSite({ name: 'primary' });
  const backup = await startFakeSite({ name: 'backup' });
  t.teardown(() => primary.close());
  t.teardown(() => backup.close());
  const file = join(t.testdir({}), 'policy.yaml');
  await writeFile(file, policyYaml(primary.url, backup.url));
  const d = await startDetour(t, file, { TOKEN: 'tok' });
  return { primary, backup, file, d };
}

t.test('detour start: reload on file change, SIGHUP and POST /reload; a bad policy is kept out', async (t) => {
  const { primary, backup, file, d } = await startPolicyRig(t);
  t.equal((await request(`${d.proxyUrl}/x`, undefined)).site, 'primary');

  // A bad edit (rename-replace, as editors do): traffic keeps flowing on the old policy.
  await writeFile(`${file}.tmp`, policyYaml(primary.url, backup.url, '    sitez: [oops]\n'));
  await rename(`${file}.tmp`, file);
  await waitFor(async () => /detour_config_reloads_total\{result="failure"\} 1/.test(await (await fetch(`${d.adminUrl}/metrics`)).text()),
    { timeoutMs: 5000, message: 'failed reload counted' });
  await waitFor(() => /policy\.yaml:\d+:\d+ routes\[0\]\.sitez: unknown key/.test(d.stderr()), { timeoutMs: 3000, message: 'the FILE:LINE:COL error logged' });
  t.equal((await request(`${d.proxyUrl}/x`, undefined)).site, 'primary', 'traffic still flows on the last good policy');

  // A good edit that drains the primary's building, picked up by the watcher.
  await writeFile(file, `${policyYaml(primary.url, backup.url)}drain: { buildings: [a] }\n`);
  await waitFor(async () => (await request(`${d.proxyUrl}/x`, undefined)).site === 'backup', { timeoutMs: 5000, message: 'reload applied' });
  t.pass('file change reloaded');

  // SIGHUP: undrain again.
  await writeFile(file, policyYaml(primary.url, backup.url));
  d.child.kill('SIGHUP');
  await waitFor(async () => /detour_config_reloads_total\{result="success"\} [2-9]/.test(await (await fetch(`${d.adminUrl}/metrics`)).text()),
    { timeoutMs: 5000, message: 'SIGHUP reload' });

  // POST /reload with a bad file: 422 with the lines.
  await writeFile(file, 'listen: [\n');
  const res = await fetch(`${d.adminUrl}/reload`, { method: 'POST', headers: { authorization: 'Bearer tok' } });
  t.equal(res.status, 422);
  const body = await res.json() as { lines: string[] };
  t.match(body.lines[0], /policy\.yaml:\d+:\d+/);
  t.equal((await request(`${d.proxyUrl}/x`, undefined)).status, 200, 'still serving');
});

t.test('detour start: SIGTERM lets an in-flight request finish, then exits 0', async (t) => {
  const { primary, d } = await startPolicyRig(t);
  primary.set({ status: 200, body: 'slow answer', delayMs: 700 });
  const inflight = request(`${d.proxyUrl}/slow`, undefined);
  await waitFor(() => primary.pending > 0, { timeoutMs: 3000, message: 'request in flight' });
  const exited = new Promise<number | null>((resolve) => d.child.on('exit', (code) => resolve(code)));
  d.child.kill('SIGTERM');
  const res = await inflight;
  t.equal(res.status, 200, 'the in-flight request finished');
  t.equal(res.body, 'slow answer');
  t.equal(await exited, 0, 'exit code 0');
  const after = await request(`${d.proxyUrl}/x`, undefined);
  t.ok(after.error, 'no longer listening');
});

t.test('detour demo runs the whole story and reports zero failed client requests', async (t) => {
  const r = await run(['demo', '--fast', '--plain'], {}, 120_000);
  t.equal(r.code, 0, `exit 0 (${r.stderr.slice(-500)})`);
  t.match(r.stdout.split('\n')[0], /^Operator console: http:\/\/127\.0\.0\.1:\d+\/ {2}\(open it in a browser to watch; token for its actions: [0-9a-f]{32}\)$/,
    'the console URL comes first');
  t.match(r.stdout, /Act 2: Fire in gedung-cyber-1/);
  t.match(r.stdout, /admin API: building gedung-cyber-1 drained/, 'the operator drains the building through the admin API');
  t.match(r.stdout, /cyber1 is up, and drained: 0 requests reached it/);
  t.match(r.stdout, /integrity mismatch/);
  const summary = /client requests: (\d+), failed: (\d+)/.exec(r.stdout);
  t.ok(summary, 'a summary line');
  t.ok(Number(summary![1]) > 100, `${summary![1]} client requests`);
  t.equal(Number(summary![2]), 0, 'zero failed client requests');
  t.match(r.stdout, /failback order: border-control -> ceir -> passport/);
});
