// The data plane: every client request and WebSocket upgrade comes through
// here. It only reads the current route table (replaced whole by the control
// plane) and reports what live traffic sees through the narrow `passive`
// interface; it never changes routing state itself.
import { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { Policy, RoutePolicy } from '../config/policy.js';
import { indexPolicy, siteByName } from '../config/policy.js';
import type { Logger } from '../logger.js';
import type { Metrics } from '../metrics/metrics.js';
import { matchRoute } from '../routing/match-route.js';
import { pickSite } from '../routing/pick-site.js';
import type { RouteDecision, RouteTable } from '../routing/route-table.js';
import { Exchange, reportFailure, unavailableAnswer, type ExchangeContext, type PassiveHealth } from './exchange.js';
import { createProxyEngine, type ProxyEngine } from './http-proxy-adapter.js';
import { InFlightRegistry } from './in-flight.js';
import { LiveList } from './live-list.js';
import { sendLocal, sendLocalOnSocket, type LocalAnswer } from './local-response.js';
import type { AccessLog } from './access-log.js';
import { checkFraming } from './request-framing.js';
import { RetryBudget } from './retry-budget.js';
import { RequestMetrics } from './request-metrics.js';
import { trustedProxies, type TrustedProxies } from './trusted-proxies.js';
import { parseRequestTarget } from './request-target.js';
import { WebSocketRegistry } from './websocket-registry.js';
import type { ClientTls } from '../tls/client-tls.js';

export type { PassiveHealth } from './exchange.js';

export interface ForwarderDeps {
  currentTable(): RouteTable;
  readonly passive: PassiveHealth;
  readonly metrics: Metrics;
  readonly logger: Logger;
  /** Source for weighted site picks (tests pass a fixed one). */
  readonly random?: () => number;
  /** Defaults to the http-proxy-3 engine. */
  readonly engine?: ProxyEngine;
  /** Trust for https:// sites, by URL (see tls/client-tls.ts); for the default engine. */
  readonly clientTls?: (siteUrl: string) => ClientTls | undefined;
  /** Probes doubt this site (suspect, a probe failed, or down; see ControlPlane.inDoubt): its re-sends skip the budget. Default never. */
  readonly inDoubt?: (site: string) => boolean;
  /** Clock for the retry budget's window (default performance.now). */
  readonly nowMs?: () => number;
  /** One line per request, when the policy has an access log. */
  readonly accessLog?: AccessLog;
}

const NOT_FOUND: LocalAnswer = { status: 404, message: 'detour: no route matches this request' };
const SHUTTING_DOWN: LocalAnswer = { status: 503, message: 'detour: shutting down', headers: { connection: 'close' } };

export class Forwarder {
  private readonly engine: ProxyEngine;
  private readonly log: Logger;
  /** Requests in flight (a list rather than a Set: see live-list.ts). */
  private readonly exchanges = new LiveList<Exchange>();
  private readonly registry = new InFlightRegistry<Exchange>();
  private readonly webSockets = new WebSocketRegistry();
  private readonly retryBudget = new RetryBudget();
  private readonly requestMetrics: RequestMetrics;
  private readonly context: ExchangeContext;
  private closing: Promise<void> | undefined;
  private onIdle: (() => void) | undefined;

  constructor(private readonly deps: ForwarderDeps) {
    this.log = deps.logger;
    this.requestMetrics = new RequestMetrics(deps.metrics);
    const table = (): RouteTable => deps.currentTable();
    const trust = new WeakMap<readonly string[], TrustedProxies>();
    const isTrustedProxy: TrustedProxies = (peer) => {
      const cidrs = table().policy.trustedProxies;
      let check = trust.get(cidrs);
      if (!check) trust.set(cidrs, (check = trustedProxies(cidrs)));
      return check(peer);
    };
    this.engine = deps.engine ?? createProxyEngine({
      logger: this.log, isTrustedProxy, ...(deps.clientTls ? { clientTls: deps.clientTls } : {}),
    });
    this.context = {
      engine: this.engine,
      passive: deps.passive,
      metrics: deps.metrics,
      logger: this.log,
      random: deps.random ?? Math.random,
      registry: this.registry,
      decisionFor: (route) => table().byName.get(route),
      siteFor: (name) => siteByName(table().policy, name),
      unavailable: () => table().policy.unavailable,
      clientOf: (req) => clientOf(req, isTrustedProxy),
      inDoubt: deps.inDoubt ?? (() => false),
      finished: (exchange) => {
        if (exchange.tracked) this.exchanges.remove(exchange.tracked);
        if (this.exchanges.size === 0) this.onIdle?.();
      },
      retryBudget: this.retryBudget,
      nowMs: deps.nowMs ?? (() => performance.now()),
      requestMetrics: this.requestMetrics,
    };
  }

  /** Requests not yet finished (WebSocket connections are not counted). */
  inFlight(): number {
    return this.exchanges.size;
  }

  handle(req: IncomingMessage, res: ServerResponse): void {
    const startedMs = performance.now();
    const note = this.deps.accessLog?.begin(req, res);
    if (this.closing) {
      if (note) note.why = SHUTTING_DOWN.message;
      sendLocal(res, SHUTTING_DOWN);
      return;
    }
    const found = this.resolve(req, startedMs);
    if (!found.ok) {
      if (note) note.why = found.answer.message;
      sendLocal(res, found.answer);
      return;
    }
    const { table, route } = found;
    if (note) note.route = route.name;
    const decision = table.byName.get(route.name);
    if (!decision || !canServe(decision)) {
      if (note) note.why = 'no site can serve';
      this.answerUnavailable(res, table.policy, route, startedMs);
      return;
    }
    const exchange = new Exchange(this.context, req, res, route, decision, startedMs);
    if (note) note.summary = () => exchange.summary();
    exchange.tracked = this.exchanges.add(exchange);
    try {
      exchange.start()?.catch((err: unknown) => this.internalError(res, route, err));
    } catch (err) {
      this.internalError(res, route, err);
    }
  }

  /** Nothing in an exchange should throw; if something does, the client still gets an answer. */
  private internalError(res: ServerResponse, route: RoutePolicy, err: unknown): void {
    this.log.error({ err, route: route.name }, 'proxy: request handling failed');
    sendLocal(res, { status: 502, message: 'detour: internal error while forwarding' });
  }

  /**
   * Check the request target and find its route in the current table. The site
   * gets exactly the target the route was matched on (req.url is rewritten to it).
   */
  private resolve(req: IncomingMessage, startedMs: number):
    | { readonly ok: true; readonly table: RouteTable; readonly route: RoutePolicy }
    | { readonly ok: false; readonly answer: LocalAnswer } {
    const framing = checkFraming(req);
    if (framing !== undefined) {
      this.count('none', 'none', 400, startedMs);
      return { ok: false, answer: { status: 400, message: `detour: bad request: ${framing}`, headers: { connection: 'close' } } };
    }
    const target = parseRequestTarget(req.url ?? '/', req.headers.host);
    if (!target.ok) {
      this.count('none', 'none', 400, startedMs);
      return { ok: false, answer: { status: 400, message: `detour: bad request target: ${target.reason}`, headers: { connection: 'close' } } };
    }
    req.url = target.path;
    const table = this.deps.currentTable();
    const route = matchRoute(table.policy, req.headers.host, target.routePath);
    if (!route) {
      this.count('none', 'none', NOT_FOUND.status, startedMs);
      return { ok: false, answer: NOT_FOUND };
    }
    // Fencing: the epoch of the decision that routed it (whatever the client sent is replaced).
    req.headers['x-detour-epoch'] = String(table.epoch ?? 0);
    return { ok: true, table, route };
  }

  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const startedMs = performance.now();
    socket.on('error', (err) => this.log.debug({ err: err.message }, 'proxy: upgrade client socket error'));
    if (String(req.headers.upgrade ?? '').trim().toLowerCase() !== 'websocket') {
      this.serveWithoutUpgrade(req, socket, head);
      return;
    }
    if (this.closing) {
      sendLocalOnSocket(socket, SHUTTING_DOWN);
      return;
    }
    if (req.method !== 'GET') {
      sendLocalOnSocket(socket, { status: 400, message: 'detour: WebSocket upgrades must use GET' });
      return;
    }
    const found = this.resolve(req, startedMs);
    if (!found.ok) {
      sendLocalOnSocket(socket, found.answer);
      return;
    }
    const { table, route } = found;
    const decision = table.byName.get(route.name);
    const site = decision && canServe(decision) ? pickSite(decision, this.context.random) : null;
    const sitePolicy = site === null ? undefined : siteByName(table.policy, site);
    if (site === null || !sitePolicy) {
      const { status, retryAfterSeconds } = table.policy.unavailable;
      this.count(route.name, 'none', status, startedMs);
      sendLocalOnSocket(socket, unavailableAnswer(route.name, status, retryAfterSeconds));
      return;
    }

    const target = { url: sitePolicy.url, connectMs: sitePolicy.timeouts.connectMs, responseMs: sitePolicy.timeouts.responseMs };
    const log = this.log.child({ route: route.name, site });
    // WebSocket handshakes are not retried on another site: the engine ends the
    // client socket when an attempt fails, and clients reconnect on their own.
    const connection = this.engine.ws(req, socket as Socket, head, target, { 'x-detour-site': site }, {
      upgraded: () => this.count(route.name, site, 101, startedMs),
      responded: (status) => {
        this.deps.passive.responded(site, status, this.context.clientOf(req));
        this.count(route.name, site, status, startedMs);
      },
      failed: (error, afterUpgrade) => {
        if (afterUpgrade) {
          log.debug({ detail: error.detail }, 'proxy: websocket connection to site ended with an error');
          return;
        }
        log.warn({ code: error.code, detail: error.detail }, 'proxy: websocket handshake with site failed');
        reportFailure(this.deps.passive, site, error, this.context.clientOf(req));
        this.count(route.name, site, error.status, startedMs);
        sendLocalOnSocket(socket, {
          status: error.status,
          message: `detour: site "${site}" failed: ${error.detail}`,
          headers: { 'x-detour-site': site },
        });
      },
    });
    this.webSockets.track(site, socket, connection);
  }

  /**
   * An upgrade to something other than WebSocket (`Upgrade: h2c` from
   * `curl --http2` on http://) is optional for the server to honour: answer it
   * as the plain HTTP/1.1 request it also is. Node has already let go of the
   * connection, so the response is built on the raw socket, which is closed
   * after this one response.
   */
  private serveWithoutUpgrade(upgradeReq: IncomingMessage, socket: Duplex, head: Buffer): void {
    if (upgradeReq.headers['transfer-encoding'] !== undefined) {
      // Node stopped parsing at the headers; chunked framing is not worth re-implementing here.
      sendLocalOnSocket(socket, { status: 400, message: 'detour: a chunked body with an Upgrade header is not supported' });
      return;
    }
    // Connection stays: it names the hop-by-hop headers the engine strips.
    delete upgradeReq.headers.upgrade;
    delete upgradeReq.headers['http2-settings'];
    if (head.length > 0) socket.unshift(head);
    // Node ended the upgrade request without a body (the bytes after the headers
    // were meant for the new protocol); a request with one is read afresh.
    const length = Number(upgradeReq.headers['content-length'] ?? 0);
    const req = length > 0 ? requestWithBody(upgradeReq, socket as Socket, length) : upgradeReq;
    const res = new ServerResponse(req);
    res.shouldKeepAlive = false;
    res.setHeader('connection', 'close');
    res.assignSocket(socket as Socket);
    // Like Node's server after a `Connection: close` response: close once the response is flushed.
    res.on('finish', () => (socket as Socket).destroySoon());
    this.handle(req, res);
  }

  /**
   * The control plane declared `site` down (the current table already reflects
   * it): requests still waiting for its response headers move to the next
   * eligible site now, when their body can be replayed.
   */
  siteDown(site: string): void {
    const waiting = this.registry.on(site);
    if (waiting.length > 0) this.log.info({ site, requests: waiting.length }, 'proxy: moving requests off a site declared down');
    for (const exchange of waiting) exchange.siteDown(site);
    this.closeWebSockets(site, 'declared down');
  }

  /**
   * Close the WebSocket connections (open or still in their handshake) to
   * every site not in `usable`: drained sites, sites no route may use, sites
   * removed by a reload. Called with every new route table; the sockets are
   * cut on both sides so clients reconnect and are routed afresh.
   */
  retainSites(usable: (site: string) => boolean): void {
    for (const site of this.webSockets.sites()) {
      if (!usable(site)) this.closeWebSockets(site, 'no longer eligible');
    }
  }

  /**
   * Drop the upstream connection pools of origins not among `siteUrls` (after
   * a reload removed or moved sites), and the retry budgets of (route, site)
   * pairs `policy` no longer has. Requests running on them finish.
   */
  retainOrigins(siteUrls: Iterable<string>, policy: Policy = this.deps.currentTable().policy): void {
    // `policy`: the reloaded one (the table in force may still be decided from
    // the old one, and reading it here would finish a decision under way in one go).
    this.requestMetrics.forget();
    const routes = indexPolicy(policy).routes;
    this.retryBudget.retain((route, site) => routes.get(route)?.sites.includes(site) === true);
    const dropped = this.engine.retainOrigins(siteUrls);
    if (dropped.length > 0) this.log.info({ origins: dropped }, 'proxy: dropped connection pools of sites no longer configured');
  }

  /** WebSocket connections open (or in their handshake) to `site`. */
  webSocketsTo(site: string): number {
    return this.webSockets.count(site);
  }

  private closeWebSockets(site: string, why: string): void {
    // Aborted connections report nothing: the site is not blamed for being cut off.
    const closed = this.webSockets.closeSite(site);
    if (closed > 0) this.log.info({ site, connections: closed }, `proxy: closed WebSocket connections to a site ${why}`);
  }

  /** Stop taking new work, let in-flight requests finish for up to graceMs, then cut off what is left. */
  close(graceMs: number): Promise<void> {
    this.closing ??= this.drain(graceMs);
    return this.closing;
  }

  private async drain(graceMs: number): Promise<void> {
    if (this.exchanges.size > 0) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, graceMs);
        timer.unref();
        this.onIdle = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.onIdle = undefined;
    }
    for (const exchange of this.exchanges.values()) exchange.abort();
    this.webSockets.closeAll();
    this.engine.close();
  }

  private answerUnavailable(res: ServerResponse, policy: Policy, route: RoutePolicy, startedMs: number): void {
    const { status, retryAfterSeconds } = policy.unavailable;
    this.count(route.name, 'none', status, startedMs);
    sendLocal(res, unavailableAnswer(route.name, status, retryAfterSeconds));
  }

  private count(route: string, site: string, code: number, startedMs: number): void {
    this.requestMetrics.record(route, site, code, (performance.now() - startedMs) / 1000);
  }
}

/**
 * A copy of `upgradeReq` whose body is the next `length` bytes on the socket
 * (Node's HTTP parser has already let go of it).
 */
function requestWithBody(upgradeReq: IncomingMessage, socket: Socket, length: number): IncomingMessage {
  const req = new IncomingMessage(socket);
  req.method = upgradeReq.method;
  req.url = upgradeReq.url;
  req.httpVersion = upgradeReq.httpVersion;
  req.httpVersionMajor = upgradeReq.httpVersionMajor;
  req.httpVersionMinor = upgradeReq.httpVersionMinor;
  req.headers = upgradeReq.headers;
  let remaining = Number.isSafeInteger(length) ? length : 0;
  const onData = (chunk: Buffer): void => {
    const part = chunk.subarray(0, remaining);
    remaining -= part.length;
    // Backpressure: reading the request resumes the socket again.
    if (!req.push(part)) socket.pause();
    if (remaining > 0) return;
    socket.off('data', onData);
    req.complete = true;
    req.push(null);
  };
  socket.on('data', onData);
  socket.once('close', () => {
    if (remaining > 0) req.destroy(new Error('client closed the request before its body was complete'));
  });
  return req;
}

/** The client as passive detection counts it: the peer address (detour is the edge). */
/**
 * The client as passive detection counts it: the peer, or behind trusted
 * proxies the last X-Forwarded-For address that is not one of them (the
 * first hop a trusted proxy vouches for; anything left of it the client
 * could have written itself).
 */
export function clientOf(req: IncomingMessage, isTrustedProxy: TrustedProxies): string {
  const peer = req.socket.remoteAddress ?? 'unknown';
  if (!isTrustedProxy(peer)) return peer;
  const header = req.headers['x-forwarded-for'];
  const hops = (Array.isArray(header) ? header.join(',') : header ?? '').split(',').map((h) => h.trim()).filter(Boolean);
  for (let i = hops.length - 1; i >= 0; i--) {
    if (!isTrustedProxy(hops[i])) return hops[i]!;
  }
  return hops[0] ?? peer;
}

function canServe(decision: RouteDecision): boolean {
  return decision.state !== 'unavailable' && decision.weights.some((w) => w.weight > 0);
}
