// Real processes for the chaos suite: the gateway through its own CLI
// (`node dist/cli.js start -c FILE`) and redis-server on a free port with no
// persistence. Every child is killed by its PID (never by name), and killed on
// harness exit as a last resort. Unexpected gateway exits are counted: the
// table's "gateway restarts" column must stay 0.
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createConnection, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const root = fileURLToPath(new URL('../..', import.meta.url));
export const cli = join(root, 'dist', 'cli.js');
const children = new Set();
process.on('exit', () => { for (const c of children) c.kill('SIGKILL'); });
// Ctrl-C or a CI timeout: exit through 'exit', so no gateway or redis-server outlives the harness.
for (const signal of ['SIGINT', 'SIGTERM']) process.once(signal, () => process.exit(130));

export function freePort() {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address();
      probe.close(() => resolve(port));
    });
  });
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export async function waitFor(cond, timeoutMs, what) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await cond()) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(50);
  }
}

/**
 * Start `detour start -c file`. opts.fdLimit wraps it in `bash -c 'ulimit -n N; exec node ...'`.
 * Resolves once GET /healthz on the admin port answers.
 */
export async function startGateway({ file, adminUrl, fdLimit, env = {}, name = 'gateway' }) {
  // DETOUR_BENCH_NODE_ARGS: extra node flags for the gateway, e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof" (as in bench/lib/proxies.mjs).
  const nodeArgs = (process.env.DETOUR_BENCH_NODE_ARGS ?? '').split(' ').filter(Boolean);
  const args = [...nodeArgs, cli, 'start', '-c', file, '--log-level', 'warn'];
  const command = fdLimit ? 'bash' : process.execPath;
  const argv = fdLimit
    ? ['-c', `ulimit -n ${fdLimit} && exec "$0" "$@"`, process.execPath, ...args]
    : args;
  const child = spawn(command, argv, { cwd: root, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(child);
  let log = '';
  const keep = (c) => { log = (log + c.toString()).slice(-20_000); };
  child.stdout.on('data', keep);
  child.stderr.on('data', keep);
  const gw = {
    name, child, pid: child.pid, expectedExit: false, exit: null,
    get log() { return log; },
    /** SIGTERM (graceful) and wait; resolves with the exit code. */
    async stop(signal = 'SIGTERM', timeoutMs = 15_000) {
      gw.expectedExit = true;
      if (gw.exit) return gw.exit;
      const exited = new Promise((r) => child.once('exit', (code, sig) => r({ code, signal: sig })));
      child.kill(signal);
      const t = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
      const result = await exited;
      clearTimeout(t);
      return result;
    },
    sample() { return sampleProcess(child.pid); },
  };
  child.on('exit', (code, signal) => { children.delete(child); gw.exit = { code, signal, atMs: Date.now() }; });
  await waitFor(async () => {
    if (gw.exit) throw new Error(`${name} exited (${gw.exit.signal ?? gw.exit.code}) while starting:\n${log}`);
    return (await httpGet(`${adminUrl}/healthz`).catch(() => null))?.status === 200;
  }, 20_000, `${name} admin /healthz`);
  return gw;
}

/** RSS (kB) and open file descriptors of a process, from /proc. */
export function sampleProcess(pid) {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const rssKb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
    const fds = readdirSync(`/proc/${pid}/fd`).length;
    return { atMs: Date.now(), rssKb, fds };
  } catch {
    return null;
  }
}

export async function httpGet(url, { headers = {}, method = 'GET', body, timeoutMs = 5000 } = {}) {
  const res = await fetch(url, { method, headers, body, signal: AbortSignal.timeout(timeoutMs) });
  const text = await res.text();
  return { status: res.status, text, json: () => JSON.parse(text) };
}

function findOnPath(name) {
  for (const dir of (process.env.PATH ?? '').split(':')) {
    try {
      if (readdirSync(dir).includes(name)) return join(dir, name);
    } catch { /* not a directory */ }
  }
  return null;
}

/** A throwaway redis-server: loopback, free port, `--save ''`, own dir; kill() is SIGKILL by PID. */
export async function startRedis() {
  const bin = findOnPath('redis-server');
  if (!bin) throw new Error('redis-server not found (bash .ci/ensure-tools.sh installs it)');
  const dir = mkdtempSync(join(tmpdir(), 'detour-chaos-redis-'));
  const port = await freePort();
  let child;
  const spawnIt = async () => {
    child = spawn(bin, ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir, '--loglevel', 'warning'],
      { stdio: 'ignore' });
    children.add(child);
    const c = child;
    c.on('exit', () => children.delete(c));
    await waitFor(() => pingRedis(port), 5000, `redis-server on ${port}`);
  };
  await spawnIt();
  return {
    url: `redis://127.0.0.1:${port}`, port,
    get pid() { return child?.pid; },
    async kill() {
      const c = child;
      child = undefined;
      if (!c || c.exitCode !== null) return;
      const exited = new Promise((r) => c.once('exit', r));
      c.kill('SIGKILL');
      await exited;
    },
    async restart() {
      await this.kill();
      for (let i = 0; ; i++) {
        try { await spawnIt(); return; } catch (err) { if (i > 10) throw err; await sleep(100); }
      }
    },
    async close() { await this.kill(); rmSync(dir, { recursive: true, force: true }); },
  };
}

function pingRedis(port) {
  return new Promise((resolve) => {
    const s = createConnection({ host: '127.0.0.1', port });
    s.setTimeout(500, () => { s.destroy(); resolve(false); });
    s.once('error', () => resolve(false));
    s.once('connect', () => s.write('PING\r\n'));
    s.once('data', (d) => { s.destroy(); resolve(d.toString().startsWith('+PONG')); });
  });
}
