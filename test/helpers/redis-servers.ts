// Redis the way operators run it, for tests: a redis-server speaking only TLS,
// and a redis-sentinel (redis-server --sentinel) watching a plain one. Each is
// a child process on loopback and a free port, killed by PID in t.teardown.
// Readiness is asked with ioredis itself (TLS needs a handshake, Sentinel its
// own commands), with a bounded number of attempts.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis, type RedisOptions } from 'ioredis';
import { findFreePort } from './free-port.js';
import type { Teardown } from './redis.js';

const READY_TIMEOUT_MS = 8000;
const PORT_ATTEMPTS = 5;

export interface TlsRedis {
  readonly port: number;
  readonly url: string;
}

/** redis-server with TLS only (no plain port), a certificate for 127.0.0.1 issued by the test's CA. */
export async function startTlsRedis(t: Teardown, files: { cert: string; key: string; ca: string; caPem: string }): Promise<TlsRedis> {
  const dir = scratch(t, 'detour-redis-tls-');
  const port = await spawnReady(t, (p) => [
    '--port', '0', '--tls-port', String(p), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir,
    '--tls-cert-file', files.cert, '--tls-key-file', files.key, '--tls-ca-cert-file', files.ca, '--tls-auth-clients', 'no',
    '--loglevel', 'warning',
  ], (p) => ({ port: p, host: '127.0.0.1', tls: { ca: files.caPem } }));
  return { port, url: `rediss://127.0.0.1:${port}` };
}

/** A sentinel watching the master at masterPort as group `name` (quorum 1). */
export async function startSentinel(t: Teardown, masterPort: number, name = 'mymaster'): Promise<{ port: number }> {
  const dir = scratch(t, 'detour-sentinel-');
  const port = await spawnReady(t, (p) => {
    // Sentinel rewrites its config file: each attempt gets its own.
    const conf = join(dir, `sentinel-${p}.conf`);
    writeFileSync(conf, [
      `port ${p}`, 'bind 127.0.0.1', `dir ${dir}`,
      `sentinel monitor ${name} 127.0.0.1 ${masterPort} 1`,
      `sentinel down-after-milliseconds ${name} 5000`, '',
    ].join('\n'));
    return [conf, '--sentinel', '--loglevel', 'warning'];
  }, (p) => ({ port: p, host: '127.0.0.1' }), async (client) => {
    const addr = await client.call('SENTINEL', 'get-master-addr-by-name', name) as [string, string] | null;
    return addr !== null && Number(addr[1]) === masterPort;
  });
  return { port };
}

function scratch(t: Teardown, prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** Starts the child on a free port and waits until it answers; retries on another port if it lost the port race. */
async function spawnReady(
  t: Teardown, args: (port: number) => string[], clientOptions: (port: number) => RedisOptions,
  isReady: (client: Redis) => Promise<boolean> = async (client) => (await client.ping()) === 'PONG',
): Promise<number> {
  let lastError: unknown;
  for (let attempt = 0; attempt < PORT_ATTEMPTS; attempt++) {
    const port = await findFreePort();
    const child = spawn('redis-server', args(port), { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    const keep = (chunk: Buffer): void => { output = (output + chunk.toString()).slice(-2000); };
    child.stdout!.on('data', keep);
    child.stderr!.on('data', keep);
    const kill = (): void => { child.kill('SIGKILL'); };
    process.once('exit', kill);
    t.teardown(() => stopChild(child).then(() => process.off('exit', kill)));
    try {
      await waitReady(child, clientOptions(port), isReady, () => output);
      return port;
    } catch (err) {
      lastError = err;
      await stopChild(child);
    }
  }
  throw new Error(`could not start redis-server ${args(0).join(' ')}: ${String(lastError)}`);
}

async function waitReady(child: ChildProcess, options: RedisOptions, isReady: (c: Redis) => Promise<boolean>, output: () => string): Promise<void> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`redis-server exited: ${output().trim()}`);
    const client = new Redis({ ...options, lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null, enableOfflineQueue: false });
    client.on('error', () => undefined);
    try {
      await client.connect();
      if (await isReady(client)) return;
    } catch {
      // not yet
    } finally {
      client.disconnect();
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`redis-server did not answer within ${READY_TIMEOUT_MS}ms: ${output().trim()}`);
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGKILL');
  await exited;
}

/** A plain redis-server replicating from masterPort; resolves once the link is up. */
export async function startReplica(t: Teardown, masterPort: number): Promise<{ port: number; url: string }> {
  const dir = scratch(t, 'detour-redis-replica-');
  const port = await spawnReady(t, (p) => [
    '--port', String(p), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir,
    '--replicaof', '127.0.0.1', String(masterPort), '--loglevel', 'warning',
  ], (p) => ({ port: p, host: '127.0.0.1' }), async (client) => /master_link_status:up/.test(await client.info('replication')));
  return { port, url: `redis://127.0.0.1:${port}` };
}
