// The CLI with TLS: `detour check` pointing at a missing certificate file and
// printing verify: false as a warning, and `detour start` picking up a rotated
// listener certificate by watching its files, with no SIGHUP.
import t from 'tap';
import { spawn } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { copyFileSync, existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import { join } from 'node:path';
import type { TLSSocket } from 'node:tls';
import { fileURLToPath } from 'node:url';
import { startFakeSite } from '../helpers/fake-site.js';
import { makeCa } from '../helpers/tls.js';
import { waitFor } from '../helpers/wait.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
const cli = join(root, 'dist', 'cli.js');
if (!existsSync(cli)) throw new Error(`${cli} is missing: run \`npm run build\` first`);

function check(file: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [cli, 'check', '-c', file], { env: { ...process.env, DETOUR_LOG_LEVEL: 'warn' } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c) => { stdout += c; });
    child.stderr.on('data', (c) => { stderr += c; });
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

t.test('detour check: the line of a missing certificate file; verify: false is a warning, exit 0', async (t) => {
  const ca = makeCa(t, 'cli-ca');
  const cert = ca.issue('edge', { dns: ['gw.example'] });
  const file = join(ca.dir, 'missing.yaml');
  writeFileSync(file, `listen:\n  tls:\n    cert: nowhere/edge.crt\n    key: ${cert.key}\nsites:\n  a: { url: "https://127.0.0.1:1" }\nroutes:\n  - { name: r, sites: [a] }\n`);
  const missing = await check(file);
  t.equal(missing.code, 1);
  t.match(missing.stderr, new RegExp(`^${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:3:5 listen\\.tls\\.cert: cannot read .*nowhere/edge\\.crt: no such file`, 'm'));

  const lax = join(ca.dir, 'lax.yaml');
  writeFileSync(lax, 'sites:\n  a: { url: "https://127.0.0.1:1", tls: { verify: false } }\nroutes:\n  - { name: r, sites: [a] }\n');
  const warned = await check(lax);
  t.equal(warned.code, 0);
  t.match(warned.stdout, /: ok/);
  t.match(warned.stderr, /lax\.yaml:2:\d+ sites\.a\.tls\.verify: warning: certificates of a are not verified/);
});

t.test('detour start: a rotated listener certificate is picked up from its files', async (t) => {
  const ca = makeCa(t, 'rot-ca');
  const first = ca.issue('first', { dns: ['gw.example'] });
  const second = ca.issue('second', { dns: ['gw.example'] });
  const site = await startFakeSite({ name: 'app' });
  t.teardown(() => site.close());
  copyFileSync(first.cert, join(ca.dir, 'edge.crt'));
  copyFileSync(first.key, join(ca.dir, 'edge.key'));
  const file = join(ca.dir, 'policy.yaml');
  writeFileSync(file, `listen: { host: 127.0.0.1, port: 0, tls: { cert: edge.crt, key: edge.key } }\nadmin: { host: 127.0.0.1, port: 0 }\nsites:\n  app: { url: "${site.url}" }\nroutes:\n  - { name: r, sites: [app] }\n`);
  const child = spawn(process.execPath, [cli, 'start', '-c', file], { env: { ...process.env, DETOUR_LOG_LEVEL: 'info' } });
  let out = '';
  child.stdout.on('data', (c) => { out += c; });
  child.stderr.on('data', (c) => { out += c; });
  t.teardown(() => { if (child.exitCode === null) child.kill('SIGKILL'); });
  await waitFor(() => /serving \d+ routes on https:\/\/\S+/.test(out) || child.exitCode !== null, { timeoutMs: 15_000, message: 'detour start to listen' });
  const url = /serving \d+ routes on (https:\/\/[^,\s]+)/.exec(out)?.[1];
  if (!url) return t.fail(`no https listener: ${out}`);

  const serialOf = (): Promise<string> => new Promise((resolve, reject) => {
    const req = https.get(`${url}/x`, { ca: readFileSync(ca.cert), servername: 'gw.example', agent: false }, (res) => {
      const serial = (res.socket as TLSSocket).getPeerCertificate().serialNumber;
      res.resume();
      res.on('end', () => resolve(serial));
    });
    req.on('error', reject);
  });
  const serial = (f: { cert: string }) => new X509Certificate(readFileSync(f.cert)).serialNumber;
  t.equal(await serialOf(), serial(first));

  // As a certificate manager does: write new files beside, rename them over the old ones.
  copyFileSync(second.key, join(ca.dir, 'edge.key.new'));
  copyFileSync(second.cert, join(ca.dir, 'edge.crt.new'));
  renameSync(join(ca.dir, 'edge.key.new'), join(ca.dir, 'edge.key'));
  renameSync(join(ca.dir, 'edge.crt.new'), join(ca.dir, 'edge.crt'));
  await waitFor(async () => (await serialOf()) === serial(second), { timeoutMs: 8000, intervalMs: 100, message: 'the new certificate served' });
  t.pass('rotated without SIGHUP');
  child.kill('SIGTERM');
});
