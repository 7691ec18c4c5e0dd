// The admin HTTP API: plain node:http, a small declarative route table, JSON in
// and out. It only translates HTTP to AdminControl calls and back; every error
// becomes a DetourError and is turned into a response in exactly one place
// (sendError), so nothing a client sends can crash the gateway.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createTlsServer, type Server as TlsServer } from 'node:https';
import type { SecureContextOptions } from 'node:tls';
import type { AddressInfo } from 'node:net';
import { z } from 'zod';
import type { Logger } from '../logger.js';
import { formatPolicyError } from '../config/policy.js';
import {
  DetourError,
  badRequest,
  conflict,
  notApplied,
  internalError,
  methodNotAllowed,
  notFound,
  payloadTooLarge,
  toDetourError,
  tooManyRequests,
} from '../errors.js';
import type { AdminControl, ControlResult, DrainTarget } from './admin-control.js';
import { createAuthorizer } from './auth.js';
import { AuditLog } from './audit-log.js';
import { AuthLimiter, type AuthLimiterOptions } from './auth-limiter.js';
import { consoleEndpoints } from './console-routes.js';

export interface AdminServerOptions {
  readonly host: string;
  readonly port: number;
  /**
   * Bearer token for mutations; undefined or empty refuses every mutation. A
   * function is asked on every request, so a policy reload that rotates the
   * token takes effect at once (a leaked token must stop working).
   */
  readonly token: string | undefined | (() => string | undefined);
  readonly control: AdminControl;
  readonly logger: Logger;
  /** Largest accepted request body (default 64 KiB). */
  readonly maxBodyBytes?: number;
  /** How long close() lets in-flight requests finish before cutting them (default 2000). */
  readonly closeGraceMs?: number;
  // --- hardening (admin.tls, admin.publicRead, failed-auth limits, audit) ---
  /** Serve HTTPS with this certificate (setSecureContext swaps it). */
  readonly tls?: SecureContextOptions;
  /** false: /status and /metrics need the token too; asked per request (default true). */
  readonly publicRead?: () => boolean;
  readonly authLimits?: Partial<AuthLimiterOptions>;
  /** Every refused authentication, by reason (metric detour_admin_auth_failures_total). */
  readonly onAuthFailure?: (reason: AuthFailureReason) => void;
  /** Where mutations are recorded; its owner shows it (the gateway puts it in /status as `audit`). */
  readonly audit?: AuditLog;
  readonly now?: () => number;
}

export type AuthFailureReason = 'missing' | 'invalid' | 'disabled' | 'limited';

export interface AdminServer {
  readonly address: AddressInfo;
  readonly isTls: boolean;
  /** New connections get this certificate; open ones keep theirs. */
  setSecureContext(options: SecureContextOptions): void;
  close(): Promise<void>;
}

/** Reads that publicRead: false puts behind the token. */
const PROTECTED_READS = new Set(['status', 'metrics']);

const jsonContentType = 'application/json';
const defaultMaxBodyBytes = 64 * 1024;

interface Reply {
  readonly status: number;
  readonly body: string;
  readonly contentType: string;
  readonly headers?: Readonly<Record<string, string>>;
}

interface EndpointContext {
  readonly params: readonly string[];
  /** Parsed JSON body of a mutation (`{}` when empty); undefined for reads. */
  readonly body: unknown;
  /** Fields added to the mutation's log line (names, never secrets). */
  readonly logFields: Record<string, unknown>;
}

interface Endpoint {
  /** Name in logs: drain, undrain, pin, ... */
  readonly action: string;
  /** Mutations need the bearer token and get a JSON body. */
  readonly mutates: boolean;
  run(ctx: EndpointContext): Promise<Reply>;
}

interface PathSpec {
  /** Segments; ':name' captures one URL-decoded, non-empty segment. */
  readonly template: readonly string[];
  readonly methods: Readonly<Record<string, Endpoint>>;
}

export async function startAdminServer(opts: AdminServerOptions): Promise<AdminServer> {
  const logger = opts.logger;
  const tokenNow = typeof opts.token === 'function' ? opts.token : () => opts.token as string | undefined;
  let authorizerFor: { token: string | undefined; authorizer: ReturnType<typeof createAuthorizer> } | undefined;
  const currentAuthorizer = () => {
    const token = tokenNow();
    if (authorizerFor?.token !== token || !authorizerFor) authorizerFor = { token, authorizer: createAuthorizer(token) };
    return authorizerFor.authorizer;
  };
  const authorizer = currentAuthorizer();
  const maxBodyBytes = opts.maxBodyBytes ?? defaultMaxBodyBytes;
  const audit = opts.audit ?? new AuditLog();
  const limiter = new AuthLimiter(opts.authLimits);
  const now = opts.now ?? Date.now;
  const paths = buildPaths(opts.control);
  if (!authorizer.isEnabled) logger.warn('admin token not configured; admin mutations are disabled');

  const onRequest = (req: IncomingMessage, res: ServerResponse): void => {
    // handleRequest never rejects by design; the catch is the last line of defence.
    handleRequest(req, res).catch((e: unknown) => {
      logger.error({ err: e }, 'admin request failed unexpectedly');
      if (!res.headersSent) sendError(res, internalError('internal error', e));
      else res.destroy();
    });
  };
  const server: Server = opts.tls ? createTlsServer(opts.tls, onRequest) : createServer(onRequest);
  // Slow or stalled clients must not pin sockets forever.
  server.headersTimeout = 10_000;
  server.requestTimeout = 30_000;

  async function handleRequest(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const method = req.method ?? 'GET';
    let endpoint: Endpoint | undefined;
    const logFields: Record<string, unknown> = {};
    let reply: Reply;
    try {
      const url = new URL(req.url ?? '/', 'http://admin.invalid');
      const resolved = resolveEndpoint(paths, method, url.pathname);
      endpoint = resolved.endpoint;
      logFields.target = url.pathname;
      let body: unknown;
      if (endpoint.mutates || (PROTECTED_READS.has(endpoint.action) && opts.publicRead?.() === false)) authenticate(req);
      if (endpoint.mutates) body = parseJsonBody(await readBody(req, maxBodyBytes));
      reply = await endpoint.run({ params: resolved.params, body, logFields });
    } catch (e) {
      const err = toDetourError(e);
      if (err.status >= 500) logger.error({ err: err.cause ?? err, method, url: req.url }, 'admin request failed');
      sendError(res, err);
      // A flood of 429s would push real entries out of the audit trail; they are counted and logged.
      if (endpoint?.mutates && err.code !== 'too_many_requests') logMutation(endpoint.action, logFields, err.status, err.message, req);
      return;
    }
    send(res, reply);
    if (endpoint.mutates) logMutation(endpoint.action, logFields, reply.status, outcomeOf(reply), req);
  }

  /** The bearer token, behind the per-address failure limit; throws 401/403/429. */
  function authenticate(req: IncomingMessage): void {
    const source = req.socket.remoteAddress ?? 'unknown';
    const gate = limiter.check(source, now());
    if (!gate.allowed) {
      opts.onAuthFailure?.('limited');
      logger.debug({ source }, 'admin: refused an authentication from a rate-limited address');
      throw tooManyRequests(gate.retryAfterSeconds);
    }
    const current = currentAuthorizer();
    try {
      current.authorize(req.headers.authorization);
    } catch (e) {
      const reason: AuthFailureReason = !current.isEnabled ? 'disabled' : req.headers.authorization === undefined ? 'missing' : 'invalid';
      opts.onAuthFailure?.(reason);
      // Without a configured token nothing can be guessed: no reason to lock the address out.
      if (current.isEnabled) limiter.failed(source, now());
      throw e;
    }
    limiter.succeeded(source);
  }

  function logMutation(action: string, fields: Record<string, unknown>, status: number, outcome: string, req: IncomingMessage): void {
    const source = req.socket.remoteAddress ?? 'unknown';
    const result = status < 400 ? 'ok' : status === 401 || status === 403 ? 'refused' : 'failed';
    const target = typeof fields.target === 'string' ? fields.target : '';
    audit.record({ time: new Date(now()).toISOString(), source, action, target, result, status, message: outcome });
    logger.info({ action, ...fields, status, outcome, result, remote: source }, `admin ${action}: ${outcome}`);
  }

  await listen(server, opts.host, opts.port);
  server.on('error', (err) => logger.error({ err }, 'admin server error'));
  const address = server.address() as AddressInfo;
  logger.info({ host: address.address, port: address.port }, 'admin API listening');

  let closing: Promise<void> | undefined;
  return {
    address,
    isTls: opts.tls !== undefined,
    setSecureContext(options) {
      if (opts.tls !== undefined) (server as TlsServer).setSecureContext(options);
    },
    close() {
      closing ??= closeServer(server, opts.closeGraceMs ?? 2000);
      return closing;
    },
  };
}

function buildPaths(control: AdminControl): readonly PathSpec[] {
  const read = (action: string, run: () => Promise<Reply>): Endpoint => ({ action, mutates: false, run });
  const mutation = (action: string, run: (ctx: EndpointContext) => Promise<Reply>): Endpoint => ({ action, mutates: true, run });

  const drainEndpoint = (action: 'drain' | 'undrain'): Endpoint =>
    mutation(action, async (ctx) => {
      const body = validate(action === 'drain' ? drainBody : undrainBody, ctx.body);
      const target = toDrainTarget(body);
      // A forced drain may empty a route on purpose: the audit trail must say so.
      const force = 'force' in body && body.force === true;
      ctx.logFields.target = `${target.kind} ${target.name}${force ? ' (forced)' : ''}`;
      if (force) ctx.logFields.force = true;
      if (action === 'undrain') return controlReply(await control.undrain(target));
      return controlReply(await (force ? control.drain(target, { force }) : control.drain(target)));
    });

  return [
    // The operator console: GET / and its files (src/admin/console-routes.ts).
    ...consoleEndpoints({ metrics: () => control.metrics() }).map((e) => ({ template: e.template, methods: { GET: read(e.action, e.run) } })),
    { template: ['healthz'], methods: { GET: read('healthz', async () => jsonReply(200, { status: 'ok' })) } },
    {
      template: ['metrics'],
      methods: {
        GET: read('metrics', async () => {
          const m = await control.metrics();
          return { status: 200, body: m.body, contentType: m.contentType };
        }),
      },
    },
    { template: ['status'], methods: { GET: read('status', async () => jsonReply(200, control.status())) } },
    { template: ['drain'], methods: { POST: drainEndpoint('drain'), DELETE: drainEndpoint('undrain') } },
    {
      template: ['routes', ':route', 'pin'],
      methods: {
        POST: mutation('pin', async (ctx) => {
          const route = ctx.params[0]!;
          const { site } = validate(pinBody, ctx.body);
          Object.assign(ctx.logFields, { route, site, target: `route ${route} -> site ${site}` });
          return controlReply(await control.pin(route, site));
        }),
        DELETE: mutation('unpin', async (ctx) => {
          const route = ctx.params[0]!;
          validate(emptyBody, ctx.body);
          Object.assign(ctx.logFields, { route, target: `route ${route}` });
          return controlReply(await control.unpin(route));
        }),
      },
    },
    {
      template: ['routes', ':route', 'failback'],
      methods: {
        POST: mutation('failback', async (ctx) => {
          const route = ctx.params[0]!;
          const force = validate(failbackBody, ctx.body).force ?? false;
          // A forced failback skips the integrity gate: the log must say so.
          Object.assign(ctx.logFields, { route, force, target: `route ${route}${force ? ' (forced)' : ''}` });
          return controlReply(await control.approveFailback(route, force));
        }),
      },
    },
    {
      template: ['routes', ':route', 'failover'],
      methods: {
        POST: mutation('failover', async (ctx) => {
          const route = ctx.params[0]!;
          validate(emptyBody, ctx.body);
          Object.assign(ctx.logFields, { route, target: `route ${route}` });
          return controlReply(await control.approveFailover(route));
        }),
      },
    },
    {
      template: ['reload'],
      methods: {
        POST: mutation('reload', async (ctx) => {
          validate(emptyBody, ctx.body);
          ctx.logFields.target = 'policy';
          const result = await control.reload();
          if (result.ok) return jsonReply(200, { ok: true, message: result.message });
          const lines = result.errors.map(formatPolicyError);
          ctx.logFields.problems = lines.length;
          return jsonReply(422, {
            ok: false,
            error: `policy has ${lines.length} problem(s); keeping the last good policy`,
            code: 'invalid_policy',
            errors: result.errors,
            lines,
          });
        }),
      },
    },
  ];
}

// --- request bodies ---------------------------------------------------------

const name = z.string().min(1, 'must be a non-empty string');

const oneTarget = (b: { building?: string | undefined; site?: string | undefined }) => (b.building === undefined) !== (b.site === undefined);
const oneTargetMessage = 'body must have exactly one of "building" or "site"';
const drainBody = z
  .strictObject({ building: name.optional(), site: name.optional(), force: z.boolean().optional() })
  .refine(oneTarget, oneTargetMessage);
const undrainBody = z
  .strictObject({ building: name.optional(), site: name.optional() })
  .refine(oneTarget, oneTargetMessage);

const pinBody = z.strictObject({ site: name });
const failbackBody = z.strictObject({ force: z.boolean().optional() });
const emptyBody = z.strictObject({});

function toDrainTarget(b: z.infer<typeof undrainBody>): DrainTarget {
  return b.building !== undefined ? { kind: 'building', name: b.building } : { kind: 'site', name: b.site! };
}

function validate<T>(schema: z.ZodType<T>, body: unknown): T {
  const result = schema.safeParse(body);
  if (result.success) return result.data;
  const problems = result.error.issues.map((i) => (i.path.length > 0 ? `${i.path.join('.')}: ${i.message}` : i.message));
  throw badRequest(`invalid body: ${problems.join('; ')}`);
}

function parseJsonBody(raw: string): unknown {
  // Empty means "no options": `curl -X POST .../failback` should just work.
  if (raw.trim() === '') return {};
  try {
    return JSON.parse(raw);
  } catch (e) {
    throw badRequest(`invalid JSON body: ${(e as Error).message}`, e);
  }
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

function readBody(req: IncomingMessage, maxBytes: number): Promise<string> {
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > maxBytes) return Promise.reject(payloadTooLarge(maxBytes));
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size <= maxBytes) {
        chunks.push(chunk);
        return;
      }
      // Stop buffering; node discards the rest once the 413 is sent.
      req.off('data', onData);
      reject(payloadTooLarge(maxBytes));
    };
    req.on('data', onData);
    req.once('end', () => {
      try {
        resolve(utf8.decode(Buffer.concat(chunks)));
      } catch (e) {
        reject(badRequest('request body is not valid UTF-8', e));
      }
    });
    req.once('error', (e) => reject(badRequest(`could not read request body: ${e.message}`, e)));
    req.once('close', () => {
      if (!req.complete) reject(badRequest('request body was cut short'));
    });
  });
}

// --- routing ------------------------------------------------------------------

function resolveEndpoint(paths: readonly PathSpec[], method: string, pathname: string): { endpoint: Endpoint; params: string[] } {
  const trimmed = pathname.length > 1 && pathname.endsWith('/') ? pathname.slice(0, -1) : pathname;
  const segments = trimmed.split('/').slice(1);
  for (const spec of paths) {
    const params = matchTemplate(spec.template, segments);
    if (params === null) continue;
    // HEAD is GET without a body (node drops it), so monitors can use either.
    const endpoint = (Object.hasOwn(spec.methods, method) ? spec.methods[method] : undefined)
      ?? (method === 'HEAD' ? spec.methods.GET : undefined);
    if (endpoint === undefined) throw methodNotAllowed(method, trimmed, allowedMethods(spec));
    return { endpoint, params };
  }
  throw notFound(`no such endpoint: ${trimmed}`);
}

function matchTemplate(template: readonly string[], segments: readonly string[]): string[] | null {
  if (template.length !== segments.length) return null;
  const params: string[] = [];
  for (let i = 0; i < template.length; i++) {
    const want = template[i]!;
    const got = segments[i]!;
    if (!want.startsWith(':')) {
      if (want !== got) return null;
      continue;
    }
    if (got === '') return null;
    params.push(decodeSegment(got));
  }
  return params;
}

function decodeSegment(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch (e) {
    throw badRequest(`malformed percent-encoding in path segment "${segment}"`, e);
  }
}

function allowedMethods(spec: PathSpec): string[] {
  const methods = Object.keys(spec.methods);
  return methods.includes('GET') ? [...methods, 'HEAD'] : methods;
}

// --- responses ------------------------------------------------------------------

function jsonReply(status: number, value: unknown): Reply {
  return { status, body: JSON.stringify(value), contentType: jsonContentType };
}

function controlReply(result: ControlResult): Reply {
  if (result.ok) return jsonReply(200, { ok: true, message: result.message });
  switch (result.code) {
    case 'not_found':
      throw notFound(result.message);
    case 'conflict':
      throw conflict(result.message);
    case 'bad_request':
      throw badRequest(result.message);
    case 'not_applied':
      throw notApplied(result.message);
  }
  throw internalError(`unexpected control result code: ${(result as { code: unknown }).code}`);
}

function outcomeOf(reply: Reply): string {
  try {
    const parsed = JSON.parse(reply.body) as { message?: unknown; error?: unknown };
    return String(parsed.message ?? parsed.error ?? reply.status);
  } catch {
    return String(reply.status);
  }
}

/** The one place a DetourError becomes an HTTP answer. */
function sendError(res: ServerResponse, err: DetourError): void {
  const headers: Record<string, string> = { ...err.headers };
  // The rest of an oversized body is never read, so the connection cannot be reused.
  if (err.code === 'payload_too_large') headers.connection = 'close';
  send(res, jsonReply(err.status, { error: err.message, code: err.code }), headers);
}

function send(res: ServerResponse, reply: Reply, extraHeaders: Record<string, string> = {}): void {
  if (res.headersSent || res.destroyed) return;
  res.writeHead(reply.status, {
    ...reply.headers,
    ...extraHeaders,
    'content-type': reply.contentType,
    'content-length': Buffer.byteLength(reply.body),
    'cache-control': 'no-store',
    'x-content-type-options': 'nosniff',
  });
  res.end(reply.body);
}

// --- lifecycle ------------------------------------------------------------------

function listen(server: Server, host: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error): void => {
      reject(new DetourError('internal', 500, `cannot start admin API on ${host}:${port}: ${err.message}`, { cause: err }));
    };
    server.once('error', onError);
    server.listen(port, host, () => {
      server.off('error', onError);
      resolve();
    });
  });
}

function closeServer(server: Server, graceMs: number): Promise<void> {
  return new Promise((resolve) => {
    // In-flight admin calls get a moment to answer; a stuck one must not hold shutdown.
    const timer = setTimeout(() => server.closeAllConnections(), graceMs);
    timer.unref();
    server.close(() => {
      clearTimeout(timer);
      resolve();
    });
    server.closeIdleConnections();
  });
}
