// The one file that imports http-proxy-3. It turns the library's event soup
// into one call per attempt with exactly one outcome, and adds the guards the
// library leaves to its users:
// - a per-call error callback, always (the library throws without one);
// - connect and response timeouts of our own, so 504 (slow) and 502 (broken)
//   can be told apart, and a site that hangs is given up on at a known time;
// - the client response is destroyed when the site dies mid-body (the library
//   would leave the client waiting for bytes that never come);
// - the upstream request is aborted when the client goes away;
// - hop-by-hop headers are dropped both ways, and X-Forwarded-* are computed
//   once per attempt (the library appends them to req.headers on every call,
//   which would stack them on a retry);
// - keep-alive connection pools per site.
// Responses are always handled here (`selfHandleResponse`), because a retryable
// 5xx must be discarded rather than streamed to the client.
import type { Agent, ClientRequest, IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { PassThrough, type Readable } from 'node:stream';
import { createProxyServer, type ProxyServer } from 'http-proxy-3';
import type { Logger } from '../logger.js';
import { stripHopByHop } from './hop-by-hop.js';
import { UpstreamAgents, type AgentLimits } from './upstream-agents.js';
import { UpstreamError, connectTimeout, responseTimeout, toUpstreamError } from './upstream-error.js';

export interface UpstreamTarget {
  /** Site base URL, e.g. `http://10.0.0.10:8080`. */
  readonly url: string;
  readonly connectMs: number;
  /** From connected to response headers. */
  readonly responseMs: number;
}

/** What to send as the request body. Only `none` and `buffered` can be sent twice. */
export type OutgoingBody =
  | { readonly kind: 'none' }
  | { readonly kind: 'buffered'; readonly bytes: Buffer }
  /** Streams through once; `stream` defaults to the client request itself. */
  | { readonly kind: 'stream'; readonly stream?: Readable };

export interface UpstreamResponse {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  /**
   * Stream this response to the client with `extraHeaders` added.
   * `onAborted` is called if the site dies before the body is complete (the
   * client response is then destroyed, so the client sees an error, not a hang).
   */
  relay(extraHeaders: Readonly<Record<string, string>>, onAborted?: (detail: string) => void): void;
  /** Throw this response away (a retryable 5xx). */
  discard(): void;
}

export type AttemptOutcome =
  | { readonly kind: 'response'; readonly response: UpstreamResponse }
  /** The site failed before response headers. */
  | { readonly kind: 'failed'; readonly error: UpstreamError }
  /** The client side failed (bad request stream, unsendable request): not the site's fault. */
  | { readonly kind: 'client_error'; readonly error: Error };

export interface UpstreamAttempt {
  /** Give up on this attempt silently: no outcome is reported after this. */
  abort(): void;
}

export interface WsHandlers {
  /** The site switched protocols; frames now flow both ways. */
  upgraded(): void;
  /** The site answered with plain HTTP instead of switching (relayed to the client as is). */
  responded(status: number): void;
  /**
   * The attempt failed. Before the upgrade the handler may write an HTTP error
   * to `socket`, which is then ended; after it, the socket is just closed.
   */
  failed(error: UpstreamError, afterUpgrade: boolean): void;
}

export interface ProxyEngine {
  web(req: IncomingMessage, res: ServerResponse, target: UpstreamTarget, body: OutgoingBody,
    onOutcome: (outcome: AttemptOutcome) => void): UpstreamAttempt;
  ws(req: IncomingMessage, socket: Socket, head: Buffer, target: UpstreamTarget,
    extraHeaders: Readonly<Record<string, string>>, handlers: WsHandlers): UpstreamAttempt;
  /** Destroy every pooled upstream connection. */
  close(): void;
}

export interface ProxyEngineOptions {
  readonly logger: Logger;
  readonly agentLimits?: AgentLimits;
}

export function createProxyEngine(opts: ProxyEngineOptions): ProxyEngine {
  const log = opts.logger;
  const agents = new UpstreamAgents(opts.agentLimits);
  const proxy: ProxyServer = createProxyServer({ xfwd: true, changeOrigin: false, selfHandleResponse: true });
  // Errors on the client socket of a WebSocket are emitted on the proxy itself;
  // with no listener of ours the library rethrows them and the process dies.
  proxy.on('error', (err) => log.debug({ err: describe(err) }, 'proxy: client socket error'));
  const pristine = new WeakMap<IncomingMessage, IncomingHttpHeaders>();

  /** The client's headers as received, kept aside so every attempt starts from them. */
  const originalHeaders = (req: IncomingMessage): IncomingHttpHeaders => {
    let h = pristine.get(req);
    if (!h) {
      h = { ...req.headers };
      pristine.set(req, h);
    }
    return h;
  };

  return {
    web(req, res, target, body, onOutcome) {
      const timers = new AttemptTimers(target);
      let settled = false;
      let connected = false;
      let proxyReq: ClientRequest | undefined;
      let proxyReqError: unknown;

      const settle = (outcome: AttemptOutcome): void => {
        if (settled) return;
        settled = true;
        timers.clear();
        onOutcome(outcome);
      };
      const fail = (error: UpstreamError): void => {
        settle({ kind: 'failed', error });
        proxyReq?.destroy();
      };

      req.headers = requestHeaders(originalHeaders(req), body) as IncomingHttpHeaders;
      const agent = captureRequests(agents.agentFor(target.url), (r) => {
        proxyReq = r;
        r.on('error', (err) => { proxyReqError = err; });
        timers.startConnect(() => fail(connectTimeout(target.connectMs)));
        r.on('socket', (socket: Socket) => {
          const onConnected = (): void => {
            connected = true;
            timers.startResponse(() => fail(responseTimeout(target.responseMs)));
          };
          if (socket.connecting) socket.once('connect', onConnected);
          else onConnected();
        });
        r.on('response', (proxyRes: IncomingMessage) => {
          connected = true;
          if (settled) {
            proxyRes.destroy();
            return;
          }
          settle({ kind: 'response', response: wrapResponse(proxyRes, res, log) });
        });
      });

      try {
        proxy.web(req, res, {
          target: target.url,
          agent,
          buffer: outgoingStream(body),
        }, (err) => {
          if (settled) return;
          if (err === proxyReqError) fail(toUpstreamError(err, connected));
          else settle({ kind: 'client_error', error: err });
        });
      } catch (err) {
        // http.request throws synchronously on a request it cannot send (bad path characters).
        settle({ kind: 'client_error', error: err instanceof Error ? err : new Error(String(err)) });
      }

      return {
        abort() {
          settled = true;
          timers.clear();
          proxyReq?.destroy();
        },
      };
    },

    ws(req, socket, head, target, extraHeaders, handlers) {
      const timers = new AttemptTimers(target);
      let phase: 'pending' | 'upgraded' | 'answered' | 'done' = 'pending';
      let connected = false;
      let proxyReq: ClientRequest | undefined;

      const failPending = (error: UpstreamError): void => {
        if (phase !== 'pending') return;
        phase = 'done';
        timers.clear();
        proxyReq?.destroy();
        handlers.failed(error, false);
        socket.end();
      };

      req.headers = upgradeHeaders(originalHeaders(req)) as IncomingHttpHeaders;
      const agent = captureRequests(agents.agentFor(target.url), (r) => {
        proxyReq = r;
        timers.startConnect(() => failPending(connectTimeout(target.connectMs)));
        r.on('socket', (s: Socket) => {
          const onConnected = (): void => {
            connected = true;
            timers.startResponse(() => failPending(responseTimeout(target.responseMs)));
          };
          if (s.connecting) s.once('connect', onConnected);
          else onConnected();
        });
        // Registered before the library's own listeners, so the headers added
        // here are part of what it writes to the client.
        r.on('upgrade', (proxyRes: IncomingMessage) => {
          timers.clear();
          if (phase !== 'pending') return;
          phase = 'upgraded';
          Object.assign(proxyRes.headers, extraHeaders);
          handlers.upgraded();
        });
        r.on('response', (proxyRes: IncomingMessage) => {
          timers.clear();
          if (phase !== 'pending') return;
          phase = 'answered';
          Object.assign(proxyRes.headers, extraHeaders);
          handlers.responded(proxyRes.statusCode ?? 0);
        });
      });

      try {
        proxy.ws(req, socket, head, { target: target.url, agent }, (err) => {
          if (phase === 'pending') {
            failPending(toUpstreamError(err, connected));
          } else if (phase === 'upgraded') {
            phase = 'done';
            handlers.failed(toUpstreamError(err, true), true);
          }
        });
      } catch (err) {
        failPending(toUpstreamError(err, false));
      }

      return {
        abort() {
          phase = 'done';
          timers.clear();
          proxyReq?.destroy();
          socket.destroy();
        },
      };
    },

    close() {
      agents.close();
      proxy.removeAllListeners();
      proxy.on('error', () => { /* closed: late client socket errors are expected */ });
    },
  };
}

/**
 * A view of the site's pool that tells us about every request the library
 * creates through it. ClientRequest hands itself to `agent.addRequest` in its
 * constructor, so this is the one place we can reach the upstream request
 * synchronously, before any of its events fire, and tied to this attempt
 * (the library's own `proxyReq` event is server-wide and skipped for
 * `Expect: 100-continue`). Everything else reads through to the real pool.
 */
function captureRequests(agent: Agent, onRequest: (req: ClientRequest) => void): Agent {
  const real = agent as Agent & { addRequest(req: ClientRequest, options: unknown): void };
  return Object.create(agent, {
    addRequest: {
      value(req: ClientRequest, options: unknown): void {
        onRequest(req);
        real.addRequest(req, options);
      },
    },
  }) as Agent;
}

class AttemptTimers {
  private connectTimer: NodeJS.Timeout | undefined;
  private responseTimer: NodeJS.Timeout | undefined;

  constructor(private readonly target: UpstreamTarget) {}

  /** From the request being created (this includes waiting for a free pooled socket) until connected. */
  startConnect(onTimeout: () => void): void {
    this.connectTimer = setTimeout(onTimeout, this.target.connectMs);
    this.connectTimer.unref();
  }

  /** From connected until response headers. */
  startResponse(onTimeout: () => void): void {
    clearTimeout(this.connectTimer);
    clearTimeout(this.responseTimer);
    this.responseTimer = setTimeout(onTimeout, this.target.responseMs);
    this.responseTimer.unref();
  }

  clear(): void {
    clearTimeout(this.connectTimer);
    clearTimeout(this.responseTimer);
  }
}

function requestHeaders(original: IncomingHttpHeaders, body: OutgoingBody): Record<string, string | string[]> {
  const headers = stripHopByHop(original) as Record<string, string | string[]>;
  if (body.kind === 'buffered') {
    headers['content-length'] = String(body.bytes.length);
    // The whole body is already here; waiting for a 100 Continue would only add a round trip.
    delete headers.expect;
  } else if (body.kind === 'stream' && original['transfer-encoding'] !== undefined) {
    // Node re-chunks what we pipe; only the framing survives, not any codings.
    headers['transfer-encoding'] = 'chunked';
  }
  return headers;
}

function upgradeHeaders(original: IncomingHttpHeaders): Record<string, string | string[]> {
  const headers = stripHopByHop(original) as Record<string, string | string[]>;
  headers.connection = 'Upgrade';
  if (original.upgrade !== undefined) headers.upgrade = original.upgrade;
  return headers;
}

function outgoingStream(body: OutgoingBody): Readable | undefined {
  switch (body.kind) {
    // An explicit empty stream: on a retry the client request has already
    // ended, and piping an ended stream would never end the upstream request.
    case 'none': return new PassThrough().end();
    case 'buffered': return new PassThrough().end(body.bytes);
    case 'stream': return body.stream;
  }
}

function wrapResponse(proxyRes: IncomingMessage, res: ServerResponse, log: Logger): UpstreamResponse {
  proxyRes.on('error', (err) => log.debug({ err: describe(err) }, 'proxy: upstream response error'));
  return {
    status: proxyRes.statusCode ?? 0,
    headers: proxyRes.headers,
    relay(extraHeaders, onAborted) {
      if (res.headersSent || res.destroyed) {
        proxyRes.destroy();
        return;
      }
      try {
        res.statusCode = proxyRes.statusCode ?? 502;
        if (proxyRes.statusMessage) res.statusMessage = proxyRes.statusMessage;
      } catch (err) {
        log.warn({ err: describe(err), status: proxyRes.statusCode }, 'proxy: site sent an invalid status');
        proxyRes.destroy();
        res.statusCode = 502;
        for (const [name, value] of Object.entries(extraHeaders)) res.setHeader(name, value);
        res.end('detour: the site sent an invalid response\n');
        return;
      }
      for (const [name, value] of Object.entries(stripHopByHop(proxyRes.headers))) {
        try {
          if (value !== undefined) res.setHeader(name, value);
        } catch (err) {
          log.debug({ err: describe(err), header: name }, 'proxy: dropped an invalid response header');
        }
      }
      for (const [name, value] of Object.entries(extraHeaders)) res.setHeader(name, value);
      let clientGone = false;
      proxyRes.on('close', () => {
        if (proxyRes.complete || res.writableFinished || clientGone) return;
        onAborted?.('response aborted mid-body');
        res.destroy();
      });
      res.on('close', () => {
        if (res.writableFinished) return;
        clientGone = true;
        proxyRes.destroy();
      });
      proxyRes.pipe(res);
    },
    discard() {
      proxyRes.destroy();
    },
  };
}

function describe(err: unknown): string {
  if (err instanceof Error) {
    const code = (err as { code?: unknown }).code;
    return typeof code === 'string' ? `${code}: ${err.message}` : err.message;
  }
  return String(err);
}
