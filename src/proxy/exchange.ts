// One client request from arrival to the last byte: read the body when it can
// be replayed, send it to a site, and decide after each attempt whether to
// relay, retry on the next eligible site, or answer with an error. Each
// attempt's outcome arrives exactly once from the engine; an attempt that is
// abandoned (site declared down, client gone) is aborted silently.
// A request goes out a second time only when that cannot make something
// happen twice: its body is held in full, and its method is idempotent or the
// site provably never saw it (refused, connect timeout, stale pooled
// connection before the request was written, still connecting when the site
// was declared down).
// What an attempt tells passive health depends on when it failed: before the
// request reached the site, about the site; after, possibly about the request.
// A request that failed after it was sent on one site and then the same way on
// the next is a poison request: its client gets the error, and the second
// failure is not held against the second site (the request, not the sites,
// is what fails).
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Policy, RoutePolicy, SitePolicy } from '../config/policy.js';
import type { Logger } from '../logger.js';
import type { Metrics } from '../metrics/metrics.js';
import { nextSite, pickSite } from '../routing/pick-site.js';
import type { RouteDecision } from '../routing/route-table.js';
import type { AttemptOutcome, OutgoingBody, ProxyEngine, UpstreamAttempt } from './http-proxy-adapter.js';
import { isNeverReached, type UpstreamError } from './upstream-error.js';
import type { InFlightEntry, InFlightRegistry } from './in-flight.js';
import type { LiveEntry } from './live-list.js';
import type { RetryBudget } from './retry-budget.js';
import type { RequestMetrics } from './request-metrics.js';
import { sendLocal, type LocalAnswer } from './local-response.js';
import { closeAfterAnswer, isReplayable, readRequestBody, type ReadBody } from './request-body.js';

/** Live-traffic outcomes for passive health detection. */
export interface PassiveHealth {
  /** Site evidence: nothing reached the site (refused, connect timeout); it may be marked down at once. */
  connectionFailed(site: string, detail: string): void;
  /** Request evidence: the request was sent, then failed (reset, hang-up, response timeout, unparseable answer, broken body). */
  requestFailed(site: string, detail: string, client: string): void;
  /** The site answered with `status` (the monitor knows which statuses count as failures). */
  responded(site: string, status: number, client: string): void;
  /** Re-sends off this site just ran out of budget: worth a probe now (is it sick, or just failing some requests?). */
  retryBudgetSpent?(site: string): void;
}

/** Methods that may be sent twice (RFC 9110 9.2.2): anything else is re-sent only if the site never saw it. */
const IDEMPOTENT_METHODS = new Set(['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE', 'TRACE']);

export interface ExchangeContext {
  readonly engine: ProxyEngine;
  readonly passive: PassiveHealth;
  readonly metrics: Metrics;
  readonly logger: Logger;
  readonly random: () => number;
  readonly registry: InFlightRegistry<Exchange>;
  /** The route's decision in the current table (undefined if a reload removed the route). */
  decisionFor(route: string): RouteDecision | undefined;
  /** The site in the current table's policy. */
  siteFor(name: string): SitePolicy | undefined;
  /** The current policy's answer when no site can serve. */
  unavailable(): Policy['unavailable'];
  /** Called once, when the client response is closed (finished or not). */
  finished(exchange: Exchange): void;
  /** Who sent the request, for passive detection's distinct-clients rule (bounded: never a label). */
  clientOf(req: IncomingMessage): string;
  /** Probes doubt this site (suspect, a probe failed, or down): re-sends off it skip the retry budget. */
  inDoubt(site: string): boolean;
  /** Re-sends per route and site stay within a share of live traffic (see retry-budget.ts). */
  readonly retryBudget: RetryBudget;
  readonly nowMs: () => number;
  /** detour_requests_total and detour_request_duration_seconds, through cached label children. */
  readonly requestMetrics: RequestMetrics;
}

export interface ExchangeSummary {
  readonly site: string;
  readonly status: number;
  /** Re-sends to another site (a stale pooled connection retried on the same site is not one). */
  readonly retries: number;
  readonly why?: string;
}

/** Status recorded for a client that left before any answer (nginx's convention). */
const CLIENT_CLOSED = 499;
/** Retries triggered by a failure or a retryable status; moves after a site is declared down are extra. */
const MAX_FAILURE_RETRIES = 1;

interface Attempt {
  readonly site: string;
  handle: UpstreamAttempt | undefined;
  awaitingHeaders: boolean;
  /** Its place among the requests waiting on `site`, until it has an outcome. */
  inFlight: InFlightEntry<Exchange> | undefined;
}

export class Exchange {
  /** Its entry among the forwarder's requests in flight (set and removed by the forwarder). */
  tracked: LiveEntry<Exchange> | undefined;
  private readonly tried = new Set<string>();
  /** Made on first use: most requests never log, and a pino child per request showed in the profile. */
  private logger: Logger | undefined;
  private body: OutgoingBody = { kind: 'none' };
  private attempt: Attempt | undefined;
  private failureRetries = 0;
  /** One same-site retry on a new connection after a stale pooled one; it does not use up the failure retry. */
  private staleRetried = false;
  private readonly idempotent: boolean;
  /** The request already failed once after it was sent (or got a retryable status): a second such failure is the request's. */
  private failedAfterSent = false;
  private readonly client: string;
  private recorded = false;
  private closed = false;
  // For the access log: who answered, and why detour re-sent or answered itself.
  private servedBy = 'none';
  private status = 0;
  private readonly resends: string[] = [];
  private readonly notes: string[] = [];

  constructor(
    private readonly ctx: ExchangeContext,
    private readonly req: IncomingMessage,
    private readonly res: ServerResponse,
    private readonly route: RoutePolicy,
    /** The decision seen when the request arrived, if the route is gone from the current table by the time we send. */
    private readonly arrival: RouteDecision,
    private readonly startedMs: number,
  ) {
    this.idempotent = IDEMPOTENT_METHODS.has(req.method ?? 'GET');
    this.client = ctx.clientOf(req);
  }

  private get log(): Logger {
    return (this.logger ??= this.ctx.logger.child({ route: this.route.name }));
  }

  /**
   * Whether lines at `level` are written: the debug and info lines below are
   * per request (a re-send, a client gone), so neither their objects nor the
   * child logger are made when the level is off.
   */
  private logs(level: 'debug' | 'info'): boolean {
    return this.ctx.logger.isLevelEnabled(level);
  }

  /**
   * Read what of the body must be held, then send. A promise only when body
   * bytes have to be read first (see readRequestBody); may throw (the
   * forwarder answers for it either way).
   */
  start(): Promise<void> | undefined {
    this.res.on('close', () => this.onClientClosed());
    const body = readRequestBody(this.req, this.route.retry.maxBodyBytes, this.route.limits.bodyBytes, () => this.refuseBody());
    if (body instanceof Promise) return body.then((read) => this.withBody(read));
    this.withBody(body);
    return undefined;
  }

  private withBody(body: ReadBody): void {
    // `recorded`: the streamed body already ran past the limit (413 sent).
    if (this.closed || this.recorded) return;
    if (body.kind === 'too_large') return this.refuseBody();
    if (body.kind === 'aborted') {
      if (this.logs('debug')) this.log.debug({ detail: body.detail }, 'proxy: client gave up while sending the body');
      this.record('none', CLIENT_CLOSED);
      this.res.destroy();
      return;
    }
    this.body = body;
    const site = pickSite(this.decision(), this.ctx.random);
    if (site === null) {
      this.answerUnavailable();
      return;
    }
    this.send(site);
  }

  /** The site was declared down: if we are still waiting on it and can replay, move now. */
  siteDown(site: string): void {
    const a = this.attempt;
    if (this.closed || !a || a.site !== site || !a.awaitingHeaders) return;
    if (!this.canResend(!(a.handle?.reachedSite() ?? false))) return;
    const next = nextSite(this.decision(), this.tried);
    if (next === null) return;
    a.awaitingHeaders = false;
    a.handle?.abort();
    this.ctx.registry.remove(a.inFlight);
    this.retry(site, next, 'site declared down', false);
  }

  /** The body is over limits.bodyBytes: 413, even if part of it already went to a site (that attempt is dropped). */
  private refuseBody(): void {
    const a = this.attempt;
    this.attempt = undefined;
    if (a) {
      a.handle?.abort();
      this.ctx.registry.remove(a.inFlight);
    }
    this.notes.push(`body over ${this.route.limits.bodyBytes} bytes`);
    this.record('none', 413);
    closeAfterAnswer(this.req, this.res);
    sendLocal(this.res, { status: 413, message: `detour: the request body is larger than ${this.route.limits.bodyBytes} bytes`, headers: { connection: 'close' } });
  }

  /** Shutdown past its grace period: cut the request off. */
  abort(): void {
    this.attempt?.handle?.abort();
    this.res.destroy();
  }

  private decision(): RouteDecision {
    return this.ctx.decisionFor(this.route.name) ?? this.arrival;
  }

  private send(site: string, freshConnection = false): void {
    this.tried.add(site);
    const policy = this.ctx.siteFor(site);
    if (!policy) {
      // A reload removed the site between the decision and now: nothing to tell the health monitor.
      this.log.warn({ site }, 'proxy: site is not in the current policy');
      const next = nextSite(this.decision(), this.tried);
      if (next !== null && isReplayable(this.body)) this.send(next);
      else this.answer(site, { status: 502, message: `detour: site "${site}" is no longer configured` });
      return;
    }
    const attempt: Attempt = { site, handle: undefined, awaitingHeaders: true, inFlight: undefined };
    this.attempt = attempt;
    if (!freshConnection) this.ctx.retryBudget.sent(this.route.name, site, this.ctx.nowMs());
    attempt.inFlight = this.ctx.registry.add(site, this);
    const target = {
      url: policy.url, connectMs: policy.timeouts.connectMs, responseMs: policy.timeouts.responseMs,
      ...(freshConnection ? { freshConnection } : {}),
    };
    attempt.handle = this.ctx.engine.web(this.req, this.res, target, this.body, (o) => this.onOutcome(attempt, o));
  }

  private onOutcome(attempt: Attempt, outcome: AttemptOutcome): void {
    if (attempt !== this.attempt || this.closed) return;
    attempt.awaitingHeaders = false;
    this.ctx.registry.remove(attempt.inFlight);
    const site = attempt.site;
    switch (outcome.kind) {
      case 'response': {
        const { response } = outcome;
        const retryStatus = this.route.retry.on.includes(response.status);
        if (retryStatus && this.failedAfterSent) this.poisoned(site, `status ${response.status}`);
        else this.ctx.passive.responded(site, response.status, this.client);
        // The site answered, so it has seen the request: only a method that may run twice goes again.
        const next = retryStatus && this.canResend(false) ? this.retryCandidate() : null;
        if (next !== null) {
          response.discard();
          this.failedAfterSent = true;
          this.retry(site, next, `status ${response.status}`, true);
          return;
        }
        this.record(site, response.status);
        response.relay(siteHeader(site), (failure) => {
          this.log.warn({ site, detail: failure.detail }, 'proxy: site broke off a response');
          // Headers arrived, so the request was sent: a broken or stalled body is request evidence.
          if (this.failedAfterSent) this.poisoned(site, failure.detail);
          else this.ctx.passive.requestFailed(site, failure.detail, this.client);
        });
        return;
      }
      case 'failed':
        this.onFailed(site, outcome.error, outcome.requestSent);
        return;
      case 'client_error': {
        if (this.logs('debug')) this.log.debug({ site, err: outcome.error.message }, 'proxy: client request failed');
        this.answer(site, { status: 400, message: 'detour: the request could not be forwarded' });
        return;
      }
    }
  }

  private onFailed(site: string, error: UpstreamError, requestSent: boolean): void {
    if (error.code === 'stale_connection') {
      // The pool handed us a connection the site had closed: the site is fine.
      // Same site, new connection, when the request can go again.
      if (this.logs('debug')) this.log.debug({ site, detail: error.detail }, 'proxy: pooled connection was stale');
      if (!this.staleRetried && this.canResend(!requestSent)) {
        this.staleRetried = true;
        this.send(site, true);
        return;
      }
      this.answer(site, { status: error.status, message: `detour: site "${site}" closed the connection before answering` });
      return;
    }
    this.log.warn({ site, code: error.code, detail: error.detail }, 'proxy: site failed before answering');
    const neverReached = isSiteEvidence(error);
    if (!neverReached && this.failedAfterSent) this.poisoned(site, error.detail);
    else reportFailure(this.ctx.passive, site, error, this.client);
    // An answer that is not HTTP comes from the application; another site running it would say the same.
    // A request the site never saw adds nothing to anyone's load when it moves: no budget.
    const next = error.code !== 'bad_response' && error.code !== 'local_error' && this.canResend(neverReached)
      ? this.retryCandidate(neverReached) : null;
    if (next !== null) {
      if (!neverReached) this.failedAfterSent = true;
      this.retry(site, next, error.detail, true);
      return;
    }
    this.answer(site, { status: error.status, message: `detour: site "${site}" failed: ${error.detail}` });
  }

  /**
   * Whether the request may be sent again: its body must be held in full, and
   * either its method may run twice or the site provably never saw it.
   */
  private canResend(neverReachedSite: boolean): boolean {
    return isReplayable(this.body) && (this.idempotent || neverReachedSite);
  }

  /**
   * The request failed after it was sent on a first site, and now again on
   * this one: it is the request that fails. Its client gets the error; this
   * site is not blamed (and no third site is tried: MAX_FAILURE_RETRIES).
   */
  private poisoned(site: string, detail: string): void {
    this.ctx.metrics.poisonRequests.inc({ route: this.route.name });
    if (this.logs('info')) this.log.info({ site, detail }, 'proxy: poison request: failed after it was sent on two sites; not counted against the second');
  }

  private retryCandidate(budgetFree = false): string | null {
    if (this.failureRetries >= MAX_FAILURE_RETRIES) return null;
    const next = nextSite(this.decision(), this.tried);
    const from = this.attempt?.site;
    if (next === null || from === undefined || budgetFree) return next;
    if (this.ctx.retryBudget.allows(this.route.name, from, this.route.retry.budget, this.ctx.nowMs())) return next;
    // The budget protects a healthy site from a partly failing one that probes
    // vouch for; a site failing everything is not that. Spending the budget asks
    // a probe at once, and while probes doubt the site (that probe pending, a
    // probe failed already, or the site is down) re-sends still go: a dead or
    // hung building must cost clients nothing. A passing probe restores the budget.
    this.ctx.passive.retryBudgetSpent?.(from);
    if (this.ctx.inDoubt(from)) return next;
    this.ctx.metrics.retryBudgetExhausted.inc({ route: this.route.name });
    this.notes.push(`retry budget of ${from} spent`);
    return null;
  }

  private retry(from: string, to: string, why: string, afterFailure: boolean): void {
    if (afterFailure) this.failureRetries++;
    this.resends.push(`${from} -> ${to}: ${why}`);
    this.ctx.retryBudget.spend(this.route.name, from, this.ctx.nowMs());
    this.ctx.metrics.retries.inc({ route: this.route.name, from, to });
    if (this.logs('info')) this.log.info({ from, to, why }, 'proxy: retrying on the next site');
    this.send(to);
  }

  private answerUnavailable(): void {
    const { status, retryAfterSeconds } = this.ctx.unavailable();
    this.notes.push('no site can serve');
    this.record('none', status);
    sendLocal(this.res, unavailableAnswer(this.route.name, status, retryAfterSeconds));
  }

  private answer(site: string, answer: LocalAnswer): void {
    this.notes.push(answer.message);
    this.record(site, answer.status);
    sendLocal(this.res, { ...answer, headers: { 'x-detour-site': site, ...answer.headers } });
  }

  /** What the access log says about this request, once its response is closed. */
  summary(): ExchangeSummary {
    const why = [...this.resends, ...this.notes];
    return { site: this.servedBy, status: this.status, retries: this.resends.length, ...(why.length > 0 && { why: why.join('; ') }) };
  }

  private record(site: string, code: number): void {
    if (this.recorded) return;
    this.recorded = true;
    this.servedBy = site;
    this.status = code;
    this.ctx.requestMetrics.record(this.route.name, site, code, (performance.now() - this.startedMs) / 1000);
  }

  private onClientClosed(): void {
    if (this.closed) return;
    this.closed = true;
    const a = this.attempt;
    if (a) {
      this.ctx.registry.remove(a.inFlight);
      if (a.awaitingHeaders) a.handle?.abort();
    }
    if (!this.res.writableFinished && !this.recorded) {
      if (this.logs('debug')) this.log.debug({ site: a?.site }, 'proxy: client went away before an answer');
      this.record(a?.site ?? 'none', CLIENT_CLOSED);
    }
    this.ctx.finished(this);
  }
}

/** `x-detour-site: SITE`, one frozen object per site name rather than one per response. */
const siteHeaders = new Map<string, Readonly<Record<string, string>>>();

export function siteHeader(site: string): Readonly<Record<string, string>> {
  let headers = siteHeaders.get(site);
  if (!headers) {
    // Site names come from the policy: bounded, but a long-running process sees reloads rename them.
    if (siteHeaders.size >= 10_000) siteHeaders.clear();
    siteHeaders.set(site, (headers = Object.freeze({ 'x-detour-site': site })));
  }
  return headers;
}

/** A failure before the request reached the site: evidence about the site itself. */
export function isSiteEvidence(error: UpstreamError): boolean {
  // Refused, connect timeout, failed TLS handshake (upstream-error.ts).
  return isNeverReached(error.code);
}

/**
 * Tell passive health about a failed attempt: site evidence may mark the site
 * down at once; anything after the request was sent only counts toward the
 * failure ratio; a stale pooled connection blames nobody.
 */
export function reportFailure(passive: PassiveHealth, site: string, error: UpstreamError, client: string): void {
  // A stale pooled connection or detour's own exhaustion (EMFILE) blames nobody.
  if (error.code === 'stale_connection' || error.code === 'local_error') return;
  if (isSiteEvidence(error)) passive.connectionFailed(site, error.detail);
  else passive.requestFailed(site, error.detail, client);
}

export function unavailableAnswer(route: string, status: number, retryAfterSeconds: number): LocalAnswer {
  return {
    status,
    message: `detour: no site can serve route "${route}" right now`,
    headers: { 'retry-after': String(Math.max(0, Math.round(retryAfterSeconds))) },
  };
}
