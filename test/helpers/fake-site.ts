/**
 * A scriptable fake data-center site: a real HTTP server on 127.0.0.1, port 0.
 *
 * ```ts
 * const site = await startFakeSite({ name: 'cyber1' });
 * t.teardown(() => site.close());
 * site.set('status:503');          // live traffic now gets 503
 * site.setHealth('hang');          // /healthz accepts and never answers
 * site.setIntegrity({ checksum: 'a1f3', lagSeconds: 2 });
 * await site.kill();               // the building dies: listener closed, open sockets destroyed
 * await site.revive();             // it comes back on the same port
 * site.setPath('/boom', 'reset');  // one URL of the application drops the connection
 * ```
 *
 * Behaviours: `'ok'` (200, JSON echo), `'status:NNN'`, `'hang'` (read the request,
 * never answer), `'reset'` (destroy the socket), or `{ status, body?, headers?, delayMs? }`.
 * Every answer names the site in the `x-fake-site` header (and `site` in 'ok' bodies),
 * so tests can see which site served a request.
 *
 * `/healthz` follows the health behaviour (default 'ok' -> 200 `ok`). `/_integrity`
 * answers `{ checksum, replication: { lagSeconds } }` while health is 'ok', and follows
 * the health behaviour otherwise (a hung site hangs its integrity endpoint too).
 * Only other paths are recorded in `requests`; every path is counted in `counts`.
 */
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { readFileSync } from 'node:fs';
import type { Socket } from 'node:net';

export type FakeBehaviour =
  | 'ok'
  | 'hang'
  | 'reset'
  | `status:${number}`
  | { readonly status: number; readonly body?: string; readonly headers?: Readonly<Record<string, string>>; readonly delayMs?: number };

export interface FakeIntegrity {
  readonly checksum?: string;
  readonly lagSeconds?: number;
}

export interface RecordedRequest {
  readonly method: string;
  /** Request target as received (path and query). */
  readonly path: string;
  readonly headers: IncomingHttpHeaders;
  readonly body: Buffer;
  readonly atMs: number;
}

export interface FakeSiteOptions {
  readonly name: string;
  readonly behaviour?: FakeBehaviour;
  readonly health?: FakeBehaviour;
  readonly integrity?: FakeIntegrity;
  readonly healthPath?: string;
  readonly integrityPath?: string;
  /** Serve HTTPS with this certificate and key (file paths, see helpers/tls.ts); the url is then https://. */
  readonly tls?: { readonly cert: string; readonly key: string };
}

export interface FakeSite {
  readonly name: string;
  /** `http://127.0.0.1:PORT` (`https://` with `tls`; stable across kill/revive). */
  readonly url: string;
  readonly port: number;
  /** Live-traffic requests (not health or integrity), oldest first. */
  readonly requests: readonly RecordedRequest[];
  /** Requests per kind, and TCP connections accepted (to see keep-alive reuse). */
  readonly counts: { readonly traffic: number; readonly health: number; readonly integrity: number; readonly connections: number };
  /** Requests that have arrived but not been answered (hang, delays). */
  readonly pending: number;
  set(behaviour: FakeBehaviour): void;
  setHealth(behaviour: FakeBehaviour): void;
  setIntegrity(value: FakeIntegrity): void;
  /** Same behaviour for traffic and health: a whole building hanging, resetting or erroring. */
  setAll(behaviour: FakeBehaviour): void;
  /** Live traffic whose path starts with `prefix` gets `behaviour` (null: back to the site's behaviour). */
  setPath(prefix: string, behaviour: FakeBehaviour | null): void;
  clearRecords(): void;
  /** Close the listener and destroy every open socket (new connections are refused). */
  kill(): Promise<void>;
  /** Listen again on the same port after kill(). */
  revive(): Promise<void>;
  /** kill() for good; idempotent. */
  close(): Promise<void>;
}

export async function startFakeSite(opts: FakeSiteOptions): Promise<FakeSite> {
  const healthPath = opts.healthPath ?? '/healthz';
  const integrityPath = opts.integrityPath ?? '/_integrity';
  let behaviour: FakeBehaviour = opts.behaviour ?? 'ok';
  let health: FakeBehaviour = opts.health ?? 'ok';
  let integrity: FakeIntegrity = { checksum: 'same', lagSeconds: 0, ...opts.integrity };
  const byPath = new Map<string, FakeBehaviour>();
  const behaviourFor = (pathname: string): FakeBehaviour => {
    for (const [prefix, b] of byPath) if (pathname.startsWith(prefix)) return b;
    return behaviour;
  };
  const requests: RecordedRequest[] = [];
  const counts = { traffic: 0, health: 0, integrity: 0, connections: 0 };
  const sockets = new Set<Socket>();
  const timers = new Set<NodeJS.Timeout>();
  let pending = 0;
  let closed = false;

  const answer = (req: IncomingMessage, res: ServerResponse, b: FakeBehaviour, okBody: () => string): void => {
    if (b === 'hang') return;
    if (b === 'reset') {
      req.socket.destroy();
      return;
    }
    const spec = typeof b === 'object' ? b : b === 'ok' ? { status: 200 } : { status: Number(b.slice('status:'.length)) };
    const send = (): void => {
      if (res.destroyed) return;
      const body = spec.body ?? (spec.status === 200 ? okBody() : `${opts.name} ${spec.status}\n`);
      res.writeHead(spec.status, { 'x-fake-site': opts.name, 'content-type': 'text/plain', ...spec.headers });
      res.end(body);
    };
    if (spec.delayMs) {
      const timer = setTimeout(() => { timers.delete(timer); send(); }, spec.delayMs);
      timers.add(timer);
    } else {
      send();
    }
  };

  const onRequest = (req: IncomingMessage, res: ServerResponse): void => {
    pending++;
    res.on('close', () => { pending--; });
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('error', () => { /* the client went away; nothing to answer */ });
    req.on('end', () => {
      const path = req.url ?? '/';
      const pathname = path.split('?')[0];
      if (pathname === healthPath) {
        counts.health++;
        answer(req, res, health, () => 'ok\n');
        return;
      }
      if (pathname === integrityPath) {
        counts.integrity++;
        answer(req, res, health, () => JSON.stringify({
          site: opts.name, checksum: integrity.checksum, replication: { lagSeconds: integrity.lagSeconds },
        }));
        return;
      }
      counts.traffic++;
      const body = Buffer.concat(chunks);
      requests.push({ method: req.method ?? 'GET', path, headers: req.headers, body, atMs: Date.now() });
      answer(req, res, behaviourFor(pathname ?? '/'), () => JSON.stringify({ site: opts.name, method: req.method, path, bodyBytes: body.length }));
    });
  };
  const server: Server = opts.tls
    ? createHttpsServer({ cert: readFileSync(opts.tls.cert), key: readFileSync(opts.tls.key) }, onRequest)
    : createServer(onRequest);
  server.on('connection', (socket: Socket) => {
    counts.connections++;
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });

  const listen = (port: number): Promise<void> => new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  await listen(0);
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('fake site: no TCP address');
  const port = address.port;

  const kill = async (): Promise<void> => {
    for (const timer of timers) clearTimeout(timer);
    timers.clear();
    if (!server.listening) return;
    const done = new Promise<void>((resolve) => server.close(() => resolve()));
    for (const s of sockets) s.destroy();
    await done;
  };

  return {
    name: opts.name,
    url: `${opts.tls ? 'https' : 'http'}://127.0.0.1:${port}`,
    port,
    requests,
    counts,
    get pending() { return pending; },
    set(b) { behaviour = b; },
    setHealth(b) { health = b; },
    setIntegrity(v) { integrity = { ...integrity, ...v }; },
    setAll(b) { behaviour = b; health = b; },
    setPath(prefix, b) {
      if (b === null) byPath.delete(prefix);
      else byPath.set(prefix, b);
    },
    clearRecords() {
      requests.length = 0;
      counts.traffic = 0;
      counts.health = 0;
      counts.integrity = 0;
      counts.connections = 0;
    },
    kill,
    async revive() {
      if (closed) throw new Error(`fake site ${opts.name} is closed`);
      if (!server.listening) await listen(port);
    },
    async close() {
      closed = true;
      await kill();
    },
  };
}
