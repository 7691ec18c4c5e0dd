// The contestants of `npm run bench` and `npm run bench:failover`, started by
// hand as child processes on free loopback ports, each in front of the same
// primary + backup pair of Node sites (bench/lib/backend.mjs):
//
//   direct        the primary itself (no proxy)
//   bare          http-proxy-3 with a keep-alive agent, primary only (bench/lib/bare-proxy.mjs)
//   detour        `node dist/cli.js start` with the default number of workers
//   detour-auto   the same with `workers: auto` (only when this build's policy accepts the key)
//   nginx         Debian's nginx, `daemon off`, worker_processes auto, upstream keepalive
//   haproxy       Debian's haproxy, `-db` (foreground), nbthread = cores, http-reuse
//
// NGINX and HAProxy are never started as services: each gets a generated
// config in a temporary directory and is killed by its PID. Every child is
// killed on exit as a last resort. Tools missing from the machine (wrk, nginx,
// haproxy) are installed from Debian with apt-get; a proxy whose package cannot
// be installed is reported as "n/a", not faked.
import { execFileSync, fork, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, openSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from '../chaos/processes.mjs';

export const root = fileURLToPath(new URL('../..', import.meta.url));
// DETOUR_BENCH_CLI: another build's dist/cli.js, to compare before and after a change in one run.
const cli = process.env.DETOUR_BENCH_CLI ?? join(root, 'dist', 'cli.js');
const here = fileURLToPath(new URL('.', import.meta.url));

const children = new Set();
process.on('exit', () => { for (const c of children) { try { process.kill(c, 'SIGKILL'); } catch { /* gone */ } } });
for (const signal of ['SIGINT', 'SIGTERM']) process.once(signal, () => process.exit(130));

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
export const CLK_TCK = 100;

/**
 * Probe and timeout settings every proxy gets, so they are compared like for
 * like: `steady` for the throughput bench (probes that a loaded machine does
 * not fail by accident), `fast` for the failover bench (detection in about
 * fall x interval).
 */
export const HEALTH = {
  steady: { intervalMs: 1000, timeoutMs: 1000, fall: 3, rise: 2, holdDownMs: 1000, connectMs: 1000, responseMs: 5000 },
  // A 500 ms probe timeout: with 200 ms, probes of healthy sites failed on the loaded shared machine.
  fast: { intervalMs: 250, timeoutMs: 500, fall: 2, rise: 2, holdDownMs: 1000, connectMs: 500, responseMs: 2000 },
};

export { freePort };

function has(command) {
  return spawnSync('sh', ['-c', `command -v ${command}`], { stdio: 'ignore' }).status === 0;
}

/** wrk, nginx and haproxy from Debian when missing (as root, or through sudo without a password). */
export function ensureTools(log = console.error) {
  const wanted = [['wrk', 'wrk'], ['nginx', 'nginx-light'], ['haproxy', 'haproxy']].filter(([cmd]) => !has(cmd) && !existsSbin(cmd));
  if (wanted.length > 0 && has('apt-get')) {
    const packages = wanted.map(([, pkg]) => pkg);
    const asRoot = process.getuid?.() === 0;
    const prefix = asRoot ? [] : has('sudo') ? ['sudo', '-n'] : null;
    if (prefix) {
      log(`bench: installing ${packages.join(', ')} with apt-get`);
      const run = (args) => spawnSync(prefix[0] ?? args[0], prefix[0] ? [...prefix.slice(1), ...args] : args.slice(1), {
        stdio: ['ignore', 'ignore', 'inherit'], env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
      });
      if (run(['apt-get', 'install', '-y', '--no-install-recommends', ...packages]).status !== 0) {
        run(['apt-get', 'update']);
        run(['apt-get', 'install', '-y', '--no-install-recommends', ...packages]);
      }
    }
  }
  return { wrk: which('wrk'), nginx: which('nginx'), haproxy: which('haproxy') };
}

function existsSbin(cmd) {
  return which(cmd) !== undefined;
}

function which(cmd) {
  for (const dir of ['/usr/sbin', '/usr/bin', '/sbin', '/bin', '/usr/local/bin', '/usr/local/sbin']) {
    try {
      execFileSync('test', ['-x', join(dir, cmd)]);
      return join(dir, cmd);
    } catch { /* not there */ }
  }
  return undefined;
}

export function version(path, args) {
  const r = spawnSync(path, args, { encoding: 'utf8' });
  return `${r.stdout}${r.stderr}`.split('\n').find((l) => l.trim() !== '')?.trim() ?? 'unknown';
}

/** A Node child (backend or bare proxy) that reports `{ port }` over IPC. */
async function forkReady(script, args) {
  const child = fork(join(here, script), args, { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  children.add(child.pid);
  const ready = await new Promise((resolve, reject) => {
    child.once('message', resolve);
    child.once('exit', (code) => reject(new Error(`${script} exited ${code}`)));
  });
  return { child, pid: child.pid, port: ready.port };
}

/** A bench site in its own process; `mode('503')`, `mode('ok')`; kill/hang/resume act on the process. */
export async function startBackend(name, port = 0) {
  const b = await forkReady('backend.mjs', [name, String(port)]);
  return {
    name, pid: b.pid, port: b.port, url: `http://127.0.0.1:${b.port}`,
    mode: (m) => new Promise((resolve) => { b.child.once('message', resolve); b.child.send({ mode: m }); }),
    hang: () => process.kill(b.pid, 'SIGSTOP'),
    resume: () => process.kill(b.pid, 'SIGCONT'),
    kill: async () => { await killPid(b.pid, 'SIGKILL'); },
  };
}

export async function startBare(target) {
  const b = await forkReady('bare-proxy.mjs', [target]);
  return { name: 'bare', pid: b.pid, url: `http://127.0.0.1:${b.port}/`, stop: () => killPid(b.pid) };
}

/** Wait until `count` requests in a row are served by the site named `site` (the body names it). */
export async function waitServedBy(url, site, count = 20, timeoutMs = 60_000) {
  const deadline = Date.now() + timeoutMs;
  let row = 0;
  while (row < count) {
    const served = await new Promise((resolve) => {
      const req = http.get(url, { agent: false }, (res) => {
        let body = '';
        res.on('data', (c) => { body += c; });
        res.on('end', () => resolve(/"site":"(\w+)"/.exec(body)?.[1]));
      });
      req.setTimeout(2000, () => req.destroy());
      req.on('error', () => resolve(undefined));
    });
    row = served === site ? row + 1 : 0;
    if (Date.now() > deadline) throw new Error(`${url} not served by ${site} within ${timeoutMs} ms`);
    if (row < count) await sleep(50);
  }
}

/** Wait until `url` answers 200 (any site). */
export async function waitHttp(url, timeoutMs = 30_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const status = await new Promise((resolve) => {
      const req = http.get(url, { agent: false }, (res) => { res.resume(); resolve(res.statusCode); });
      req.setTimeout(1000, () => req.destroy());
      req.on('error', () => resolve(0));
    });
    if (status === 200) return;
    if (Date.now() > deadline) throw new Error(`${url} did not answer 200 within ${timeoutMs} ms`);
    await sleep(100);
  }
}

function detourPolicy(port, adminPort, primary, backup, extra = '', health = HEALTH.steady) {
  const h = health;
  const site = (b, building) => `{ url: "${b.url}", building: ${building}, timeouts: { connect: ${h.connectMs}ms, response: ${h.responseMs}ms },
             health: { path: /, interval: ${h.intervalMs}ms, timeout: ${h.timeoutMs}ms, fall: ${h.fall}, rise: ${h.rise}, jitter: 0 } }`;
  return `${extra}
listen: { host: 127.0.0.1, port: ${port} }
admin: { host: 127.0.0.1, port: ${adminPort} }
sites:
  primary: ${site(primary, 'a')}
  backup:  ${site(backup, 'b')}
routes:
  - name: api
    sites: [primary, backup]
    # Like HAProxy's rise: back on the primary soon after it passes its probes (detour's default is 30 s).
    failback: { holdDown: ${h.holdDownMs}ms }
`;
}

/**
 * Whether this build knows `workers: auto` (the worker processes of issue 8):
 * `detour check` of a policy with the key. Once the key exists the bench
 * runs the column without any change here.
 */
export function detourSupportsWorkers(dir) {
  const file = join(dir, 'workers-probe.yaml');
  const fake = { url: 'http://127.0.0.1:9' };
  writeFileSync(file, detourPolicy(1, 2, fake, fake, 'workers: auto'));
  const r = spawnSync(process.execPath, [cli, 'check', '-c', file], { encoding: 'utf8' });
  return r.status === 0;
}

/** `detour start` on free ports; `extra` is prepended to the policy (e.g. `workers: auto`). */
export async function startDetour(name, dir, primary, backup, extra = '', health = HEALTH.steady, cliPath = cli) {
  const port = await freePort();
  const adminPort = await freePort();
  const file = join(dir, `${name}.yaml`);
  writeFileSync(file, detourPolicy(port, adminPort, primary, backup, extra, health));
  // DETOUR_BENCH_NODE_ARGS: extra node flags for the gateway, e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof".
  const nodeArgs = (process.env.DETOUR_BENCH_NODE_ARGS ?? '').split(' ').filter(Boolean);
  const child = spawn(process.execPath, [...nodeArgs, cliPath, 'start', '-c', file, '--no-watch', '--log-level', process.env.DETOUR_BENCH_LOG_LEVEL ?? 'warn'], {
    cwd: root, stdio: ['ignore', process.env.DETOUR_BENCH_LOG ? openSync(process.env.DETOUR_BENCH_LOG, 'a') : 'ignore', 'pipe'],
  });
  children.add(child.pid);
  let stderr = '';
  child.stderr.on('data', (c) => { stderr = (stderr + c).slice(-4000); });
  const url = `http://127.0.0.1:${port}/`;
  try {
    await waitHttp(url);
  } catch (err) {
    throw new Error(`${name} did not start: ${err.message}\n${stderr}`);
  }
  return { name, pid: child.pid, url, adminUrl: `http://127.0.0.1:${adminPort}`, stop: () => killPid(child.pid) };
}

export async function startNginx(bin, dir, primary, backup, health = HEALTH.steady) {
  const port = await freePort();
  const prefix = mkdtempSync(join(dir, 'nginx-'));
  const conf = join(prefix, 'nginx.conf');
  // Open-source NGINX has passive health checks only (max_fails / fail_timeout);
  // active checks are NGINX Plus. A failed attempt is retried on the backup.
  writeFileSync(conf, `
daemon off;
master_process on;
worker_processes auto;
pid ${prefix}/nginx.pid;
error_log ${prefix}/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path ${prefix}/body;
  proxy_temp_path ${prefix}/proxy;
  fastcgi_temp_path ${prefix}/fastcgi;
  uwsgi_temp_path ${prefix}/uwsgi;
  scgi_temp_path ${prefix}/scgi;
  upstream app {
    server 127.0.0.1:${primary.port} max_fails=1 fail_timeout=10s;
    server 127.0.0.1:${backup.port} backup;
    keepalive 256;
  }
  server {
    listen 127.0.0.1:${port};
    location / {
      proxy_pass http://app;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_connect_timeout ${health.connectMs}ms;
      proxy_read_timeout ${health.responseMs}ms;
      proxy_send_timeout ${health.responseMs}ms;
      proxy_next_upstream error timeout http_502 http_503 http_504;
      proxy_next_upstream_tries 2;
    }
  }
}
`);
  return startProxyProcess('nginx', bin, ['-p', prefix, '-e', join(prefix, 'error.log'), '-c', conf], port);
}

export async function startHaproxy(bin, dir, primary, backup, health = HEALTH.steady) {
  const port = await freePort();
  const conf = join(dir, 'haproxy.cfg');
  const threads = Math.max(1, cpus().length);
  // Active checks every intervalMs like detour's probes; a failed attempt is
  // re-sent once, to another server (redispatch), on the same errors as detour.
  writeFileSync(conf, `
global
  nbthread ${threads}
  maxconn 4096
defaults
  mode http
  timeout connect ${health.connectMs}ms
  timeout client 30s
  timeout server ${health.responseMs}ms
  timeout check ${health.timeoutMs}ms
  option http-keep-alive
  http-reuse always
  retries 1
  option redispatch 1
  retry-on conn-failure empty-response response-timeout 502 503 504
frontend in
  bind 127.0.0.1:${port}
  default_backend app
backend app
  option httpchk GET /
  default-server inter ${health.intervalMs}ms fall ${health.fall} rise ${health.rise}
  server primary 127.0.0.1:${primary.port} check
  server backup 127.0.0.1:${backup.port} check backup
`);
  return startProxyProcess('haproxy', bin, ['-db', '-f', conf], port);
}

/** Start a proxy binary in the foreground on `port`, wait until it answers, stop it by PID. */
async function startProxyProcess(name, bin, args, port) {
  const child = spawn(bin, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  children.add(child.pid);
  let stderr = '';
  child.stderr.on('data', (c) => { stderr = (stderr + c).slice(-4000); });
  const url = `http://127.0.0.1:${port}/`;
  try {
    await waitHttp(url, 15_000);
  } catch (err) {
    throw new Error(`${name} did not start: ${err.message}\n${stderr}`);
  }
  return { name, pid: child.pid, url, stop: () => killPid(child.pid, 'SIGTERM') };
}

/** Kill one PID and wait (bounded) for it to be gone. */
export async function killPid(pid, signal = 'SIGTERM') {
  try {
    process.kill(pid, signal);
  } catch {
    children.delete(pid);
    return;
  }
  for (let i = 0; i < 50; i++) {
    await sleep(100);
    try {
      process.kill(pid, 0);
    } catch {
      children.delete(pid);
      return;
    }
  }
  try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
  children.delete(pid);
}

/** `pid` and every process below it (nginx workers, detour's worker processes). */
export function processTree(pid) {
  const parents = new Map();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      parents.set(Number(entry), Number(fields[1]));
    } catch { /* exited meanwhile */ }
  }
  const tree = [pid];
  for (let i = 0; i < tree.length; i++) {
    for (const [child, parent] of parents) if (parent === tree[i]) tree.push(child);
  }
  return tree;
}

/** utime + stime in seconds of a process tree (from /proc/PID/stat). */
export function cpuSeconds(pid) {
  let ticks = 0;
  for (const p of processTree(pid)) {
    try {
      const stat = readFileSync(`/proc/${p}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      // Fields 14 and 15 of stat(5), counted after the command: utime, stime.
      ticks += Number(fields[11]) + Number(fields[12]);
    } catch { /* exited meanwhile */ }
  }
  return ticks / CLK_TCK;
}

/**
 * What the closed-loop benches start with: wrk (installed from Debian when
 * missing; the bench exits if it cannot be), a temporary directory, and the
 * primary + backup sites every proxy is put in front of.
 */
export async function wrkBenchSetup() {
  const tools = ensureTools();
  if (!tools.wrk) {
    console.error('bench: wrk is missing and could not be installed (apt-get install wrk)');
    process.exit(1);
  }
  const dir = tempDir();
  const primary = await startBackend('primary');
  const backup = await startBackend('backup');
  return { tools, dir, primary, backup };
}

export function tempDir() {
  const dir = mkdtempSync(join(tmpdir(), 'detour-bench-'));
  process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

export function machine() {
  const c = cpus();
  const load = readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
  return { cpu: `${c.length} x ${c[0]?.model ?? 'unknown'}`, loadAverage: load, node: process.version, date: new Date().toISOString() };
}
