// A throwaway redis-server per test: loopback only, a free port, no persistence,
// its own temp dir. Killed by PID (never by name) on stop(), in t.teardown, and
// as a last resort when the test process exits. The machine's own Redis (6379)
// is never touched.
import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants, mkdtempSync, rmSync } from 'node:fs';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { findFreePort } from './free-port.js';

export interface RedisServer {
  readonly url: string;
  readonly port: number;
  /** SIGKILL (no goodbye to clients, like a crash) and wait for the exit. */
  stop(): Promise<void>;
  /** Start again on the same port, empty (nothing is saved). */
  restart(): Promise<void>;
}

export interface Teardown {
  teardown(fn: () => unknown): void;
}

const READY_TIMEOUT_MS = 5000;
const PORT_ATTEMPTS = 5;

export async function startRedis(t?: Teardown): Promise<RedisServer> {
  const bin = findOnPath('redis-server');
  if (!bin) throw new Error("redis-server not found: install Debian's redis-server package (.ci/run does)");
  const dir = mkdtempSync(join(tmpdir(), 'detour-redis-'));
  let child: ChildProcess | undefined;
  let port = 0;
  const killOnExit = (): void => {
    child?.kill('SIGKILL');
  };
  process.once('exit', killOnExit);

  const stop = async (): Promise<void> => {
    const running = child;
    child = undefined;
    if (running && running.exitCode === null && running.signalCode === null) {
      const exited = new Promise<void>((resolve) => running.once('exit', () => resolve()));
      running.kill('SIGKILL');
      await exited;
    }
  };

  let lastError: unknown;
  for (let attempt = 0; attempt < PORT_ATTEMPTS && !child; attempt++) {
    port = await findFreePort();
    try {
      child = await spawnRedis(bin, port, dir);
    } catch (err) {
      lastError = err; // most likely someone else took the port between our probe and redis' bind
    }
  }
  if (!child) {
    process.off('exit', killOnExit);
    rmSync(dir, { recursive: true, force: true });
    throw new Error(`could not start redis-server after ${PORT_ATTEMPTS} attempts: ${String(lastError)}`);
  }

  const server: RedisServer = {
    url: `redis://127.0.0.1:${port}`,
    port,
    stop,
    async restart() {
      await stop();
      // The port was ours a moment ago; retry briefly in case the kernel is slow to free it.
      let err: unknown;
      for (let attempt = 0; attempt < PORT_ATTEMPTS; attempt++) {
        try {
          child = await spawnRedis(bin, port, dir);
          return;
        } catch (e) {
          err = e;
          await new Promise((resolve) => setTimeout(resolve, 100));
        }
      }
      throw new Error(`could not restart redis-server on port ${port}: ${String(err)}`);
    },
  };
  t?.teardown(async () => {
    await stop();
    process.off('exit', killOnExit);
    rmSync(dir, { recursive: true, force: true });
  });
  return server;
}

function findOnPath(name: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (!dir) continue;
    const candidate = join(dir, name);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}

/** Resolves once the server answers as this very process; rejects (and kills it) if it exits or stays silent. */
async function spawnRedis(bin: string, port: number, dir: string): Promise<ChildProcess> {
  const child = spawn(bin, [
    '--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no',
    '--daemonize', 'no', '--dir', dir, '--loglevel', 'warning',
  ], { stdio: ['ignore', 'pipe', 'pipe'] });
  // Keep the pipes drained (a full pipe would block redis) and the tail for errors.
  let output = '';
  const keep = (chunk: Buffer): void => {
    output = (output + chunk.toString()).slice(-2000);
  };
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  const exited = new Promise<never>((_, reject) => {
    child.once('exit', (code, signal) => reject(new Error(`redis-server exited (${signal ?? code}): ${output.trim()}`)));
    child.once('error', reject);
  });
  exited.catch(() => {}); // observed below; a later exit (stop()) is expected
  const deadline = Date.now() + READY_TIMEOUT_MS;
  try {
    for (;;) {
      const pong = await Promise.race([answersAs(port, child.pid!), exited]);
      if (pong) return child;
      if (Date.now() > deadline) throw new Error(`redis-server on port ${port} did not answer within ${READY_TIMEOUT_MS}ms: ${output.trim()}`);
      await Promise.race([new Promise((resolve) => setTimeout(resolve, 20)), exited]);
    }
  } catch (err) {
    child.kill('SIGKILL');
    throw err;
  }
}

/**
 * True when whatever listens on the port is our child: a redis-server that lost
 * the port race exits, but another server on that port would answer a PING.
 */
function answersAs(port: number, pid: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host: '127.0.0.1', port });
    let answer = '';
    const done = (ok: boolean): void => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(500, () => done(false));
    socket.once('error', () => done(false));
    socket.once('connect', () => socket.write('INFO server\r\n'));
    socket.on('data', (chunk) => {
      answer += chunk.toString();
      const match = /process_id:(\d+)\r\n/.exec(answer);
      if (match) done(Number(match[1]) === pid);
      else if (answer.startsWith('-')) done(false);
    });
  });
}
