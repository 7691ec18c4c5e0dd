// The one file that imports http-proxy-3. It turns the library's event soup
// into one call per attempt with exactly one outcome, and adds the guards the
// library leaves to its users:
// - a per-call error callback, always (the library throws without one);
// - connect and response timeouts of our own, so 504 (slow) and 502 (broken)
//   can be told apart, and a site that hangs is given up on at a known time;
//   the connect clock covers only connecting, the response clock starts when
//   the request is fully sent, and a body that goes silent is bounded too;
// - the client response is destroyed when the site dies or stalls mid-body
//   (the library would leave the client waiting for bytes that never come);
// - the upstream request is aborted when the client goes away;
// - hop-by-hop headers are dropped both ways, and X-Forwarded-* are computed
//   once per attempt from what detour saw (the library appends to the
//   client's, which would let a client claim https or any address, and stack
//   them on a retry); a client's X-Forwarded-For is kept only from a trusted proxy;
// - the request target goes out byte for byte, as route matching saw it;
// - keep-alive connection pools per site, and telling a pooled connection the
//   site had already closed (stale) apart from a failing site.
// Responses are always handled here (`selfHandleResponse`), because a retryable
// 5xx must be discarded rather than streamed to the client.
import type { Agent, ClientRequest, IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Readable, Stream } from 'node:stream';
import { createProxyServer, type ProxyServer, type ServerOptions } from 'http-proxy-3';
import type { Logger } from '../logger.js';
import { copyEndToEnd, stripHopByHop } from './hop-by-hop.js';
import type { TrustedProxies } from './trusted-proxies.js';
import { UpstreamAgents, type AgentLimits } from './upstream-agents.js';
import type { ClientTls } from '../tls/client-tls.js';
import { UpstreamError, connectTimeout, responseTimeout, toUpstreamError, type FailurePhase } from './upstream-error.js';

export interface UpstreamTarget {
  /** Site base URL, e.g. `http://10.0.0.10:8080`. */
  readonly url: string;
  /** From a new connection being opened until it is up; waiting for a pooled connection does not count. */
  readonly connectMs: number;
  /** From the request being fully sent until the response headers; also the longest silence inside a response body. */
  readonly responseMs: number;
  /** Open a new connection instead of using the pool (the retry after a pooled one turned out stale). */
  readonly freshConnection?: boolean;
}

/** What to send as the request body. Only `none` and `buffered` can be sent twice. */
export type OutgoingBody =
  | { readonly kind: 'none' }
  | { readonly kind: 'buffered'; readonly bytes: Buffer }
  /** Streams through once; `stream` defaults to the client request itself. */
  | { readonly kind: 'stream'; readonly stream?: Readable };

/** Why a response that had started did not complete. */
export interface BodyFailure {
  /** `aborted`: the site closed the connection mid-body; `stalled`: no byte for timeouts.response. */
  readonly kind: 'aborted' | 'stalled';
  readonly detail: string;
}

export interface UpstreamResponse {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  /**
   * Stream this response to the client with `extraHeaders` added.
   * `onBroken` is called if the body does not complete (the site dies or goes
   * silent): the client response is then destroyed, so the client sees an
   * error, not a hang.
   */
  relay(extraHeaders: Readonly<Record<string, string>>, onBroken?: (failure: BodyFailure) => void): void;
  /** Throw this response away (a retryable 5xx). */
  discard(): void;
}

export type AttemptOutcome =
  | { readonly kind: 'response'; readonly response: UpstreamResponse }
  /**
   * The site failed before response headers. `requestSent`: the whole request
   * had been written to the connection, so the site may have acted on it.
   */
  | { readonly kind: 'failed'; readonly error: UpstreamError; readonly requestSent: boolean }
  /** The client side failed (bad request stream, unsendable request): not the site's fault. */
  | { readonly kind: 'client_error'; readonly error: Error };

export interface UpstreamAttempt {
  /** Give up on this attempt silently: no outcome is reported after this. */
  abort(): void;
  /** False while the connection is still being set up: until then the site cannot have seen any of the request. */
  reachedSite(): boolean;
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
  /**
   * Drop the connection pools of origins not among `siteUrls`, closing their
   * idle connections (requests running on them finish); returns the dropped origins.
   */
  retainOrigins(siteUrls: Iterable<string>): string[];
  /** Destroy every pooled upstream connection. */
  close(): void;
}

export interface ProxyEngineOptions {
  readonly logger: Logger;
  readonly agentLimits?: AgentLimits;
  /** Trust for an https:// site, by its URL (the same the probes use); undefined = system CAs, URL host. */
  readonly clientTls?: (siteUrl: string) => ClientTls | undefined;
  /** Peers whose X-Forwarded-For is kept (policy trustedProxies); default nobody. */
  readonly isTrustedProxy?: TrustedProxies;
}

/**
 * Response header bytes accepted from a site. Node's default (16 KiB) is
 * smaller than what real applications send (large cookies, CSP headers); a
 * response over it is a parse error that no other site would answer better.
 */
export const MAX_RESPONSE_HEADER_BYTES = 64 * 1024;

/** The library builds the http.request options on top of this object: one per request. */
const outgoingBase = (): { maxHeaderSize: number } => ({ maxHeaderSize: MAX_RESPONSE_HEADER_BYTES });

export function createProxyEngine(opts: ProxyEngineOptions): ProxyEngine {
  const log = opts.logger;
  const trusted: TrustedProxies = opts.isTrustedProxy ?? (() => false);
  const agents = new UpstreamAgents(opts.agentLimits);
  // Errors on the client socket of a WebSocket are emitted on the library's
  // server itself; with no listener of ours it rethrows them and the process dies.
  const onClientSocketError = (err: Error): void => log.debug({ err: describe(err) }, 'proxy: client socket error');
  // One library server per site URL, its target and pool fixed at creation.
  // The library copies its options and then each call's options into a new
  // object per request: with the target, pool and flags in every call's
  // options, a CPU profile under load charged that copy 3.6 us a request (the
  // bare proxy, calling with {}: 0.06 us). A call passes only what must be new
  // each time, and only properties the server's options already have (below).
  const siteProxies = new Map<string, { readonly agent: Agent; readonly proxy: ProxyServer }>();
  const siteProxy = (url: string, agent: Agent): { readonly agent: Agent; readonly proxy: ProxyServer } => {
    let entry = siteProxies.get(url);
    if (!entry) {
      const p = createProxyServer({
        // X-Forwarded-* are ours (xfwd off): the library would append to what the client sent.
        xfwd: false, changeOrigin: false, selfHandleResponse: true,
        // Parsed once per site URL: the library would parse a string target on every request.
        target: new URL(url),
        agent,
        // Forward the request target exactly as received: route matching saw it
        // that way (the library would otherwise re-parse and normalise it).
        toProxy: true,
        // Declared (empty) so that a call's `ssl`, `buffer` and `agent` only
        // overwrite properties of the library's per-request copy. Adding
        // properties there made V8's optimised spread give every request's
        // copy a new hidden class of its own (a Map and its descriptors, in
        // the old generation): 2.6 us a copy instead of 0.19 in isolation, and
        // old-space garbage that a mark-compact had to clear every few seconds.
        ssl: undefined, buffer: undefined,
      });
      p.on('error', onClientSocketError);
      siteProxies.set(url, (entry = { agent, proxy: p }));
    }
    return entry;
  };
  // What a call passes its site's server. `ssl` is the object the library fills
  // in and hands to http.request: a new one each time. A pool other than the
  // site's usual one (a fresh connection, or trust changed by a reload) is
  // given per call.
  const callOptions = (site: { readonly agent: Agent }, agent: Agent): ServerOptions =>
    site.agent === agent ? { ssl: outgoingBase() } : { ssl: outgoingBase(), agent };

  return {
    web(req, res, target, body, onOutcome) {
      const timers = new AttemptTimers(target);
      const conn = new ConnectionWatch();
      let settled = false;
      let requestSent = false;
      let proxyReq: ClientRequest | undefined;
      let proxyReqError: unknown;

      const settle = (outcome: AttemptOutcome): void => {
        if (settled) return;
        settled = true;
        timers.clear();
        onOutcome(outcome);
      };
      const fail = (error: UpstreamError): void => {
        settle({ kind: 'failed', error, requestSent });
        proxyReq?.destroy();
      };

      req.headers = requestHeaders(req, originalHeaders(req), body, trusted) as IncomingHttpHeaders;
      const tls = opts.clientTls?.(target.url);
      const pooled = agents.agentFor(target.url, tls);
      const agent = target.freshConnection ? agents.freshAgentFor(target.url, tls) : pooled;
      const onRequest = (r: ClientRequest): void => {
        proxyReq = r;
        r.on('error', (err) => { proxyReqError = err; });
        conn.watch(r, timers, () => fail(connectTimeout(target.connectMs)));
        // The response clock starts once the site has the whole request: a
        // client uploading slowly is not a slow site.
        r.on('finish', () => {
          requestSent = true;
          if (!settled) timers.startResponse(() => fail(responseTimeout(target.responseMs)));
        });
        r.on('response', (proxyRes: IncomingMessage) => {
          if (settled) {
            proxyRes.destroy();
            return;
          }
          settle({ kind: 'response', response: wrapResponse(proxyRes, res, log, target.responseMs) });
        });
      };

      // Created with the site's usual pool even when this attempt needs a fresh connection.
      const site = siteProxy(target.url, pooled);
      const options = callOptions(site, agent);
      const buffer = outgoingBody(body);
      // The library only ever calls `pipe` on it.
      if (buffer !== undefined) options.buffer = buffer as unknown as Stream;
      try {
        captureNextRequest(agent, onRequest, () => site.proxy.web(req, res, options, (err) => {
          if (settled) return;
          if (err === proxyReqError) fail(toUpstreamError(err, conn.phase()));
          else settle({ kind: 'client_error', error: err });
        }));
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
        reachedSite: () => conn.connected,
      };
    },

    ws(req, socket, head, target, extraHeaders, handlers) {
      const timers = new AttemptTimers(target);
      const conn = new ConnectionWatch();
      let phase: 'pending' | 'upgraded' | 'answered' | 'done' = 'pending';
      let proxyReq: ClientRequest | undefined;
      // After the upgrade the connection leaves the request (and the pool): only we can cut it.
      let upstreamSocket: Socket | undefined;

      const failPending = (error: UpstreamError): void => {
        if (phase !== 'pending') return;
        phase = 'done';
        timers.clear();
        proxyReq?.destroy();
        handlers.failed(error, false);
        socket.end();
      };

      req.headers = upgradeHeaders(req, originalHeaders(req), trusted) as IncomingHttpHeaders;
      const agent = agents.agentFor(target.url, opts.clientTls?.(target.url));
      const site = siteProxy(target.url, agent);
      const onRequest = (r: ClientRequest): void => {
        proxyReq = r;
        conn.watch(r, timers, () => failPending(connectTimeout(target.connectMs)));
        r.on('finish', () => {
          if (phase === 'pending') timers.startResponse(() => failPending(responseTimeout(target.responseMs)));
        });
        // Registered before the library's own listeners, so the headers added
        // here are part of what it writes to the client.
        r.on('upgrade', (proxyRes: IncomingMessage, proxySocket: Socket) => {
          timers.clear();
          upstreamSocket = proxySocket;
          if (phase !== 'pending') {
            proxySocket.destroy();
            return;
          }
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
      };

      try {
        captureNextRequest(agent, onRequest, () => site.proxy.ws(req, socket, head, callOptions(site, agent), (err) => {
          if (phase === 'pending') {
            failPending(toUpstreamError(err, conn.phase()));
          } else if (phase === 'upgraded') {
            phase = 'done';
            handlers.failed(toUpstreamError(err, { connected: true }), true);
          }
        }));
      } catch (err) {
        failPending(toUpstreamError(err, { connected: false }));
      }

      return {
        abort() {
          phase = 'done';
          timers.clear();
          proxyReq?.destroy();
          upstreamSocket?.destroy();
          socket.destroy();
        },
        reachedSite: () => conn.connected,
      };
    },

    retainOrigins(siteUrls) {
      // Requests in flight keep their site's server, listener included.
      siteProxies.clear();
      return agents.retainOrigins(siteUrls);
    },

    close() {
      agents.close();
      for (const { proxy } of siteProxies.values()) {
        proxy.removeAllListeners();
        proxy.on('error', () => { /* closed: late client socket errors are expected */ });
      }
      siteProxies.clear();
    },
  };
}

/**
 * Run `send` (one proxy.web or proxy.ws call) and hand `onRequest` the
 * upstream request it creates through `agent`. ClientRequest hands itself to
 * `agent.addRequest` in its constructor, synchronously inside `send`, so this
 * is the one place we can reach the upstream request before any of its
 * events fire, and tied to this attempt (the library's own `proxyReq` event
 * is server-wide and skipped for `Expect: 100-continue`). The hook is
 * installed on each pool once, as an own method that reads through to the
 * agent's: a wrapper object per request made every request pay for an object
 * with property descriptors, and the pool's lookups in Node's agent code went
 * megamorphic.
 */
function captureNextRequest(agent: Agent, onRequest: (req: ClientRequest) => void, send: () => void): void {
  hookAgent(agent);
  const previous = pendingCapture;
  pendingCapture = onRequest;
  try {
    send();
  } finally {
    pendingCapture = previous;
  }
}

/** The attempt whose upstream request is being created right now (see captureNextRequest). */
let pendingCapture: ((req: ClientRequest) => void) | undefined;
const hooked = new WeakSet<Agent>();

function hookAgent(agent: Agent): void {
  if (hooked.has(agent)) return;
  hooked.add(agent);
  const pool = agent as Agent & { addRequest(req: ClientRequest, options: unknown): void };
  const addRequest = pool.addRequest;
  pool.addRequest = function addCapturedRequest(this: Agent, req: ClientRequest, options: unknown): void {
    const capture = pendingCapture;
    // One request per send: a second one (a redirect follower, say) is not this attempt's.
    pendingCapture = undefined;
    capture?.(req);
    addRequest.call(this, req, options);
  };
}

class AttemptTimers {
  private connectTimer: NodeJS.Timeout | undefined;
  private responseTimer: NodeJS.Timeout | undefined;

  constructor(private readonly target: UpstreamTarget) {}

  /** From a new connection being opened until it is up. */
  startConnect(onTimeout: () => void): void {
    clearTimeout(this.connectTimer);
    this.connectTimer = setTimeout(onTimeout, this.target.connectMs);
    this.connectTimer.unref();
  }

  connected(): void {
    clearTimeout(this.connectTimer);
  }

  /** From the request fully sent until response headers. */
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

/** Which connection an attempt got, and what had happened on it when something failed. */
class ConnectionWatch {
  connected = false;
  private socket: Socket | undefined;
  private reused = false;
  private bytesReadBefore = 0;

  /**
   * The connect clock starts when the request is given a socket that is still
   * connecting; a pooled socket that is already up costs no connect time.
   */
  watch(req: ClientRequest, timers: AttemptTimers, onConnectTimeout: () => void): void {
    req.on('socket', (socket: Socket) => {
      this.socket = socket;
      this.reused = req.reusedSocket;
      this.bytesReadBefore = socket.bytesRead;
      if (!socket.connecting) {
        this.connected = true;
        return;
      }
      timers.startConnect(onConnectTimeout);
      // Over TLS the connection is up once the handshake is done: until then
      // nothing of the request has been sent, and the connect clock covers it.
      socket.once((socket as { encrypted?: boolean }).encrypted === true ? 'secureConnect' : 'connect', () => {
        this.connected = true;
        timers.connected();
      });
    });
    req.on('response', () => { this.connected = true; });
  }

  phase(): FailurePhase {
    const silent = this.socket !== undefined && this.socket.bytesRead === this.bytesReadBefore;
    return { connected: this.connected, reusedAndSilent: this.reused && silent };
  }
}

/** The client's headers as received, kept aside on the request so every attempt starts from them. */
const PRISTINE = Symbol('detour.pristineHeaders');

function originalHeaders(req: IncomingMessage): IncomingHttpHeaders {
  const r = req as IncomingMessage & { [PRISTINE]?: IncomingHttpHeaders };
  // Never copied: every attempt replaces req.headers with a new object, so this one is never written to.
  return (r[PRISTINE] ??= req.headers);
}

function requestHeaders(
  req: IncomingMessage, original: IncomingHttpHeaders, body: OutgoingBody, trusted: TrustedProxies,
): Record<string, string | string[]> {
  const headers = copyEndToEnd(original, {}) as Record<string, string | string[]>;
  if (body.kind === 'buffered') {
    headers['content-length'] = String(body.bytes.length);
    // The whole body is already here; waiting for a 100 Continue would only add a round trip.
    delete headers.expect;
  } else if (body.kind === 'stream' && original['transfer-encoding'] !== undefined) {
    // Node re-chunks what we pipe; only the framing survives, not any codings.
    headers['transfer-encoding'] = 'chunked';
  }
  return addForwardedHeaders(headers, req, original, 'http', trusted);
}

function upgradeHeaders(req: IncomingMessage, original: IncomingHttpHeaders, trusted: TrustedProxies): Record<string, string | string[]> {
  const headers = copyEndToEnd(original, {}) as Record<string, string | string[]>;
  headers.connection = 'Upgrade';
  if (original.upgrade !== undefined) headers.upgrade = original.upgrade;
  return addForwardedHeaders(headers, req, original, 'ws', trusted);
}

/**
 * Detour is the edge: X-Forwarded-Proto, -Host and -Port say what detour saw
 * (whatever the client claimed is replaced, so `https` cannot be spoofed);
 * X-Forwarded-For is a chain: detour starts it with the peer's address, or
 * appends the peer to the chain a trusted proxy sent.
 */
function addForwardedHeaders(
  headers: Record<string, string | string[]>, req: IncomingMessage, original: IncomingHttpHeaders,
  scheme: 'http' | 'ws', trusted: TrustedProxies,
): Record<string, string | string[]> {
  const encrypted = (req.socket as { encrypted?: boolean }).encrypted === true;
  headers['x-forwarded-proto'] = encrypted ? (scheme === 'http' ? 'https' : 'wss') : scheme;
  const host = original.host;
  headers['x-forwarded-port'] = (host && portOf(host)) || (encrypted ? '443' : '80');
  if (host) headers['x-forwarded-host'] = host;
  const client = req.socket.remoteAddress;
  const prior = trusted(client) ? original['x-forwarded-for'] : undefined;
  const chain = Array.isArray(prior) ? prior.join(',') : prior;
  if (client !== undefined) headers['x-forwarded-for'] = chain ? `${chain},${client}` : client;
  else if (chain) headers['x-forwarded-for'] = chain;
  return headers;
}

/** The digits after the last `:` of a Host value (`example.com:8080` -> `8080`), or '' (`[::1]`, no port). */
function portOf(host: string): string {
  const colon = host.lastIndexOf(':');
  if (colon === -1 || colon === host.length - 1) return '';
  for (let i = colon + 1; i < host.length; i++) {
    const c = host.charCodeAt(i);
    if (c < 48 || c > 57) return '';
  }
  return host.slice(colon + 1);
}

/**
 * What the library pipes into the upstream request (it only calls `pipe`):
 * nothing, the held bytes, or (undefined) the client request itself. Not the
 * client request for `none` and `buffered`: on a retry it has already ended,
 * and piping an ended stream would never end the upstream request. A stand-in
 * rather than a PassThrough per request: ending the upstream request is all
 * there is to do.
 */
interface PipeSource {
  pipe<T extends NodeJS.WritableStream>(destination: T): T;
}

const NO_BODY: PipeSource = {
  pipe(destination) {
    destination.end();
    return destination;
  },
};

function outgoingBody(body: OutgoingBody): PipeSource | undefined {
  switch (body.kind) {
    case 'none': return NO_BODY;
    case 'buffered': {
      const bytes = body.bytes;
      return {
        pipe(destination) {
          destination.end(bytes);
          return destination;
        },
      };
    }
    case 'stream': return body.stream;
  }
}

function wrapResponse(proxyRes: IncomingMessage, res: ServerResponse, log: Logger, idleMs: number): UpstreamResponse {
  proxyRes.on('error', (err) => log.debug({ err: describe(err) }, 'proxy: upstream response error'));
  return {
    status: proxyRes.statusCode ?? 0,
    headers: proxyRes.headers,
    relay(extraHeaders, onBroken) {
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
      const headers = stripHopByHop(proxyRes.headers);
      for (const name in headers) {
        try {
          res.setHeader(name, headers[name]!);
        } catch (err) {
          log.debug({ err: describe(err), header: name }, 'proxy: dropped an invalid response header');
        }
      }
      for (const name in extraHeaders) res.setHeader(name, extraHeaders[name]!);
      let done = false;
      const broken = (failure: BodyFailure): void => {
        done = true;
        idle.stop();
        onBroken?.(failure);
        proxyRes.destroy();
        res.destroy();
      };
      // A site that goes silent mid-body would otherwise hold the client forever.
      // Silence while the client is not reading (backpressure) is not the site's.
      const idle = new IdleTimer(idleMs, () => {
        if (res.writableNeedDrain) return true;
        broken({ kind: 'stalled', detail: `response body stalled for ${idleMs}ms` });
        return false;
      });
      proxyRes.on('close', () => {
        idle.stop();
        if (done || proxyRes.complete || res.writableFinished) return;
        broken({ kind: 'aborted', detail: 'response aborted mid-body' });
      });
      proxyRes.on('end', () => idle.stop());
      res.on('close', () => {
        idle.stop();
        if (res.writableFinished) return;
        // The client went away: nothing is broken on the site's side.
        done = true;
        proxyRes.destroy();
      });
      proxyRes.pipe(res);
      proxyRes.on('data', () => idle.touch());
      idle.start();
    },
    discard() {
      proxyRes.destroy();
    },
  };
}

/**
 * Fires `onIdle` after `ms` without a touch(); `onIdle` returns true to keep
 * waiting. A touch only records the time (no timer churn per chunk).
 */
class IdleTimer {
  private timer: NodeJS.Timeout | undefined;
  private lastMs = 0;
  private stopped = false;

  constructor(private readonly ms: number, private readonly onIdle: () => boolean) {}

  start(): void {
    this.touch();
    this.arm(this.ms);
  }

  touch(): void {
    this.lastMs = performance.now();
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
  }

  private arm(delayMs: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      const quietMs = performance.now() - this.lastMs;
      if (quietMs < this.ms) this.arm(this.ms - quietMs);
      else if (this.onIdle()) this.start();
    }, delayMs);
    this.timer.unref();
  }
}

function describe(err: unknown): string {
  if (err instanceof Error) {
    const code = (err as { code?: unknown }).code;
    return typeof code === 'string' ? `${code}: ${err.message}` : err.message;
  }
  return String(err);
}
