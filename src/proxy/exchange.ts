// One client request from arrival to the last byte: read the body when it can
// be replayed, send it to a site, and decide after each attempt whether to
// relay, retry on the next eligible site, or answer with an error. Each
// attempt's outcome arrives exactly once from the engine; an attempt that is
// abandoned (site declared down, client gone) is aborted silently.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Policy, RoutePolicy, SitePolicy } from '../config/policy.js';
import type { Logger } from '../logger.js';
import type { Metrics } from '../metrics/metrics.js';
import { nextSite, pickSite } from '../routing/pick-site.js';
import type { RouteDecision } from '../routing/route-table.js';
import type { AttemptOutcome, OutgoingBody, ProxyEngine, UpstreamAttempt } from './http-proxy-adapter.js';
import type { InFlightRegistry } from './in-flight.js';
import { sendLocal, type LocalAnswer } from './local-response.js';
import { isReplayable, readRequestBody } from './request-body.js';

/** Live-traffic outcomes for passive health detection. */
export interface PassiveHealth {
  /** The site failed before answering: refused, reset, timed out. */
  connectionFailed(site: string, detail: string): void;
  /** The site answered (the monitor counts consecutive 5xx). */
  responded(site: string, status: number): void;
}

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
}

/** Status recorded for a client that left before any answer (nginx's convention). */
const CLIENT_CLOSED = 499;
/** Retries triggered by a failure or a retryable status; moves after a site is declared down are extra. */
const MAX_FAILURE_RETRIES = 1;

interface Attempt {
  readonly site: string;
  handle: UpstreamAttempt | undefined;
  awaitingHeaders: boolean;
}

export class Exchange {
  private readonly tried = new Set<string>();
  private readonly log: Logger;
  private body: OutgoingBody = { kind: 'none' };
  private attempt: Attempt | undefined;
  private failureRetries = 0;
  private recorded = false;
  private closed = false;

  constructor(
    private readonly ctx: ExchangeContext,
    private readonly req: IncomingMessage,
    private readonly res: ServerResponse,
    private readonly route: RoutePolicy,
    /** The decision seen when the request arrived, if the route is gone from the current table by the time we send. */
    private readonly arrival: RouteDecision,
    private readonly startedMs: number,
  ) {
    this.log = ctx.logger.child({ route: route.name });
  }

  async start(): Promise<void> {
    this.res.on('close', () => this.onClientClosed());
    const body = await readRequestBody(this.req, this.route.retry.maxBodyBytes);
    if (this.closed) return;
    if (body.kind === 'aborted') {
      this.log.debug({ detail: body.detail }, 'proxy: client gave up while sending the body');
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
    if (this.closed || !a || a.site !== site || !a.awaitingHeaders || !isReplayable(this.body)) return;
    const next = nextSite(this.decision(), this.tried);
    if (next === null) return;
    a.awaitingHeaders = false;
    a.handle?.abort();
    this.ctx.registry.remove(site, this);
    this.retry(site, next, 'site declared down', false);
  }

  /** Shutdown past its grace period: cut the request off. */
  abort(): void {
    this.attempt?.handle?.abort();
    this.res.destroy();
  }

  private decision(): RouteDecision {
    return this.ctx.decisionFor(this.route.name) ?? this.arrival;
  }

  private send(site: string): void {
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
    const attempt: Attempt = { site, handle: undefined, awaitingHeaders: true };
    this.attempt = attempt;
    this.ctx.registry.add(site, this);
    const target = { url: policy.url, connectMs: policy.timeouts.connectMs, responseMs: policy.timeouts.responseMs };
    attempt.handle = this.ctx.engine.web(this.req, this.res, target, this.body, (o) => this.onOutcome(attempt, o));
  }

  private onOutcome(attempt: Attempt, outcome: AttemptOutcome): void {
    if (attempt !== this.attempt || this.closed) return;
    attempt.awaitingHeaders = false;
    this.ctx.registry.remove(attempt.site, this);
    const site = attempt.site;
    switch (outcome.kind) {
      case 'response': {
        const { response } = outcome;
        this.ctx.passive.responded(site, response.status);
        const next = this.route.retry.on.includes(response.status) ? this.retryCandidate() : null;
        if (next !== null) {
          response.discard();
          this.retry(site, next, `status ${response.status}`, true);
          return;
        }
        this.record(site, response.status);
        response.relay({ 'x-detour-site': site }, (detail) => {
          this.log.warn({ site, detail }, 'proxy: site died while sending a response');
          this.ctx.passive.connectionFailed(site, detail);
        });
        return;
      }
      case 'failed': {
        const { error } = outcome;
        this.log.warn({ site, code: error.code, detail: error.detail }, 'proxy: site failed before answering');
        this.ctx.passive.connectionFailed(site, error.detail);
        const next = this.retryCandidate();
        if (next !== null) {
          this.retry(site, next, error.detail, true);
          return;
        }
        this.answer(site, { status: error.status, message: `detour: site "${site}" failed: ${error.detail}` });
        return;
      }
      case 'client_error': {
        this.log.debug({ site, err: outcome.error.message }, 'proxy: client request failed');
        this.answer(site, { status: 400, message: 'detour: the request could not be forwarded' });
        return;
      }
    }
  }

  private retryCandidate(): string | null {
    if (this.failureRetries >= MAX_FAILURE_RETRIES || !isReplayable(this.body)) return null;
    return nextSite(this.decision(), this.tried);
  }

  private retry(from: string, to: string, why: string, afterFailure: boolean): void {
    if (afterFailure) this.failureRetries++;
    this.ctx.metrics.retries.inc({ route: this.route.name, from, to });
    this.log.info({ from, to, why }, 'proxy: retrying on the next site');
    this.send(to);
  }

  private answerUnavailable(): void {
    const { status, retryAfterSeconds } = this.ctx.unavailable();
    this.record('none', status);
    sendLocal(this.res, unavailableAnswer(this.route.name, status, retryAfterSeconds));
  }

  private answer(site: string, answer: LocalAnswer): void {
    this.record(site, answer.status);
    sendLocal(this.res, { ...answer, headers: { 'x-detour-site': site, ...answer.headers } });
  }

  private record(site: string, code: number): void {
    if (this.recorded) return;
    this.recorded = true;
    const route = this.route.name;
    this.ctx.metrics.requests.inc({ route, site, code: String(code) });
    this.ctx.metrics.requestDuration.observe({ route, site }, (performance.now() - this.startedMs) / 1000);
  }

  private onClientClosed(): void {
    if (this.closed) return;
    this.closed = true;
    const a = this.attempt;
    if (a) {
      this.ctx.registry.remove(a.site, this);
      if (a.awaitingHeaders) a.handle?.abort();
    }
    if (!this.res.writableFinished && !this.recorded) {
      this.log.debug({ site: a?.site }, 'proxy: client went away before an answer');
      this.record(a?.site ?? 'none', CLIENT_CLOSED);
    }
    this.ctx.finished(this);
  }
}

export function unavailableAnswer(route: string, status: number, retryAfterSeconds: number): LocalAnswer {
  return {
    status,
    message: `detour: no site can serve route "${route}" right now`,
    headers: { 'retry-after': String(Math.max(0, Math.round(retryAfterSeconds))) },
  };
}
