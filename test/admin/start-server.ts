// Starts a real admin server on 127.0.0.1:0 in front of a fake control, with
// its log lines captured, and closes it when the test ends.
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { startAdminServer, type AdminServer, type AdminServerOptions } from '../../src/admin/admin-server.js';
import { createFakeControl, type FakeControl } from './fake-control.js';

export const goodToken = 's3cret-token-#1';

export interface TestServer {
  readonly url: string;
  readonly port: number;
  readonly control: FakeControl;
  readonly server: AdminServer;
  /** Parsed pino lines written so far. */
  readonly logs: Array<Record<string, unknown>>;
  /** Raw log output, for "the token never appears" checks. */
  rawLog(): string;
}

interface Teardown {
  teardown(fn: () => unknown): void;
}

export async function startTestServer(
  t: Teardown,
  opts: { token?: string; maxBodyBytes?: number } & Partial<Pick<AdminServerOptions, 'authLimits' | 'publicRead' | 'audit' | 'onAuthFailure' | 'now' | 'tls'>> = {},
): Promise<TestServer> {
  const control = createFakeControl();
  const raw: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      raw.push(chunk.toString('utf8'));
      done();
    },
  });
  const logger = pino({ level: 'info' }, sink);
  const server = await startAdminServer({
    host: '127.0.0.1',
    port: 0,
    token: 'token' in opts ? opts.token : goodToken,
    control,
    logger,
    ...(opts.maxBodyBytes === undefined ? {} : { maxBodyBytes: opts.maxBodyBytes }),
    // The auth tables try many wrong tokens from one address; the limiter has its own tests.
    authLimits: opts.authLimits ?? { maxFailures: 1_000_000 },
    ...(opts.publicRead ? { publicRead: opts.publicRead } : {}),
    ...(opts.audit ? { audit: opts.audit } : {}),
    ...(opts.onAuthFailure ? { onAuthFailure: opts.onAuthFailure } : {}),
    ...(opts.now ? { now: opts.now } : {}),
    ...(opts.tls ? { tls: opts.tls } : {}),
  });
  t.teardown(() => server.close());
  const port = server.address.port;
  return {
    url: `${server.isTls ? 'https' : 'http'}://127.0.0.1:${port}`,
    port,
    control,
    server,
    get logs() {
      return raw.join('').split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as Record<string, unknown>);
    },
    rawLog: () => raw.join(''),
  };
}

/** A port that was free a moment ago and has nothing listening on it. */
export async function closedPort(): Promise<number> {
  const { createServer } = await import('node:net');
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const { port } = probe.address() as { port: number };
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  return port;
}
