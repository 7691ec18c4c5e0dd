// Active health checks: one probe loop per site, feeding results to the health
// state machine through onResult. The prober only observes; it never decides
// up or down (that is the reducer's job, with rise/fall).
import { performance } from 'node:perf_hooks';
import type { Logger } from '../logger.js';
import type { Metrics } from '../metrics/metrics.js';
import { samePart, type HealthPolicy, type SitePolicy } from '../config/policy.js';
import { createAgents, destroyAgents, httpGet, joinUrl, type HttpAgents, type HttpGetResult } from './http-get.js';
import { probeGet, probeTarget, type ProbeTarget } from './probe-get.js';
import { RepeatLoop } from './repeat-loop.js';
import type { CounterCell, HistogramCell } from '../metrics/hot-metrics.js';
import type { ClientTls } from '../tls/client-tls.js';

export interface ProbeResult {
  readonly passed: boolean;
  /** In words: `status 200`, `connect ECONNREFUSED`, `timeout after 500ms`, `status 503`, `body lacks "ok"`. */
  readonly detail: string;
  readonly durationMs: number;
  readonly status?: number;
}

export interface ProberDeps {
  onResult(site: string, result: ProbeResult): void;
  readonly metrics: Metrics;
  readonly logger: Logger;
  /** 0 <= random() < 1; injectable so tests can pin the jitter. */
  readonly random?: () => number;
  /** Trust for https:// sites, by URL: the very one live traffic uses (asked at every probe, so a reload applies at once). */
  readonly clientTls?: (siteUrl: string) => ClientTls | undefined;
}

/** The probe looks at most this much body for expectBody: health pages are small. */
const MAX_PROBE_BODY_BYTES = 64 * 1024;

export class Prober {
  readonly #deps: ProberDeps;
  readonly #random: () => number;
  readonly #agents: HttpAgents = createAgents();
  readonly #loops = new Map<string, SiteLoop>();
  /** New loops whose first probe has not been sent yet: started a batch per turn (see update). */
  readonly #toStart = new Set<SiteLoop>();
  #starting: NodeJS.Immediate | undefined;
  #closed = false;

  constructor(deps: ProberDeps) {
    this.#deps = deps;
    this.#random = deps.random ?? Math.random;
  }

  /**
   * Sites whose url and health settings did not change keep their loop and its
   * timing (a reload must not make every site probe at once, nor reset a probe
   * about to report); changed sites restart with an immediate probe; removed
   * sites stop and report nothing more. New loops send their first probe
   * STARTS_PER_TURN at a time, a batch per turn of the event loop: opening a
   * connection costs 70 to 100 us here, and 1,000 of them in one call held
   * requests 60 to 240 ms (a reload that changes every site's health settings,
   * or a start; `node bench/capacity.mjs --only restart`).
   */
  update(sites: readonly SitePolicy[]): void {
    if (this.#closed) return;
    const wanted = new Map<string, SitePolicy>();
    for (const site of sites) wanted.set(site.name, site);
    for (const [name, loop] of this.#loops) {
      const site = wanted.get(name);
      if (site === undefined || !sameProbe(site, loop.site)) {
        void loop.stop();
        this.#loops.delete(name);
      }
    }
    for (const site of sites) {
      if (this.#loops.has(site.name)) continue;
      const loop = new SiteLoop(site, this.#deps, this.#agents, this.#random);
      this.#loops.set(site.name, loop);
      this.#toStart.add(loop);
    }
    this.#startSome();
  }

  /** Sends the first probe of up to STARTS_PER_TURN new loops, and the rest in later turns. */
  #startSome(): void {
    clearImmediate(this.#starting);
    this.#starting = undefined;
    let started = 0;
    for (const loop of this.#toStart) {
      if (started === STARTS_PER_TURN) {
        this.#starting = setImmediate(() => this.#startSome());
        return;
      }
      this.#toStart.delete(loop);
      if (loop.loop.isStopped) continue;
      loop.start();
      started++;
    }
  }

  /** An extra round now (one site or all); resolves when its results are reported. */
  async probeNow(site?: string): Promise<void> {
    const loops = site === undefined ? [...this.#loops.values()] : [this.#loops.get(site)].filter((l) => l !== undefined);
    // A loop whose first probe waits for its turn sends it now: this probe is its start.
    for (const l of loops) this.#toStart.delete(l);
    await Promise.all(loops.map((l) => l.loop.runNow()));
  }

  /** Resolves when every current site has reported at least once (or stopped trying). */
  async firstRound(): Promise<void> {
    await Promise.all([...this.#loops.values()].map((l) => l.firstResult));
  }

  /** Clears every timer and aborts probes in flight; resolves once they have settled. */
  async close(): Promise<void> {
    this.#closed = true;
    clearImmediate(this.#starting);
    this.#toStart.clear();
    const stopping = [...this.#loops.values()].map((l) => l.stop());
    this.#loops.clear();
    await Promise.all(stopping);
    destroyAgents(this.#agents);
  }
}

/** First probes sent in one turn of the event loop (see Prober.update). */
const STARTS_PER_TURN = 64;

/** `intervalMs` ± `jitter` (a fraction): spreads probes so sites sharing a host are not hit in lockstep. */
export function jitteredDelayMs(intervalMs: number, jitter: number, random: () => number): number {
  const fraction = Math.min(1, Math.max(0, jitter));
  return Math.max(0, Math.round(intervalMs * (1 + fraction * (2 * random() - 1))));
}

/** The probe's verdict on one answer, before timing is added. */
export function judgeProbe(health: HealthPolicy, answer: HttpGetResult): Omit<ProbeResult, 'durationMs'> {
  if (!answer.ok) return { passed: false, detail: answer.error };
  const { status } = answer;
  if (!health.expectStatus.includes(status)) return { passed: false, detail: `status ${status}`, status };
  if (health.expectBody !== undefined && !answer.body.includes(health.expectBody)) {
    return { passed: false, detail: `body lacks ${JSON.stringify(health.expectBody)}`, status };
  }
  return { passed: true, detail: `status ${status}`, status };
}

/** Whether a site's probe is the same: its address and the health settings a probe uses (no text per site: this runs in a reload's swap). */
function sameProbe(a: SitePolicy, b: SitePolicy): boolean {
  const x = a.health;
  const y = b.health;
  return a.url === b.url && x.path === y.path && x.intervalMs === y.intervalMs && x.jitter === y.jitter
    && x.timeoutMs === y.timeoutMs && x.expectBody === y.expectBody && samePart(x.expectStatus, y.expectStatus);
}

class SiteLoop {
  readonly site: SitePolicy;
  readonly loop: RepeatLoop;
  readonly firstResult: Promise<void>;
  readonly #deps: ProberDeps;
  readonly #agents: HttpAgents;
  readonly #url: string;
  /** http:// sites: the request prepared once, sent on a bare connection (https:// goes through Node's client). */
  readonly #target: ProbeTarget | undefined;
  /** This site's metric cells, found once. */
  readonly #checks: Readonly<Record<'pass' | 'fail' | 'error', CounterCell>>;
  readonly #duration: HistogramCell;
  #reportedFirst: () => void = () => undefined;

  constructor(site: SitePolicy, deps: ProberDeps, agents: HttpAgents, random: () => number) {
    this.site = site;
    this.#deps = deps;
    this.#agents = agents;
    this.#url = joinUrl(site.url, site.health.path);
    const target = this.#url.startsWith('http:') ? probeTarget(this.#url) : undefined;
    this.#target = typeof target === 'object' ? target : undefined;
    const { healthChecks, healthCheckDuration } = deps.metrics;
    this.#checks = {
      pass: healthChecks.labels({ site: site.name, result: 'pass' }),
      fail: healthChecks.labels({ site: site.name, result: 'fail' }),
      error: healthChecks.labels({ site: site.name, result: 'error' }),
    };
    this.#duration = healthCheckDuration.labels({ site: site.name });
    this.firstResult = new Promise((resolve) => { this.#reportedFirst = resolve; });
    this.loop = new RepeatLoop(
      (signal) => this.#probe(signal),
      () => jitteredDelayMs(site.health.intervalMs, site.health.jitter, random),
    );
  }

  start(): void {
    this.loop.start();
  }

  stop(): Promise<void> {
    // A stopped site will never report: let firstRound() stop waiting for it.
    this.#reportedFirst();
    return this.loop.stop();
  }

  #get(signal: AbortSignal): Promise<HttpGetResult> {
    const { timeoutMs } = this.site.health;
    if (this.#target !== undefined) return probeGet(this.#target, { timeoutMs, maxBodyBytes: MAX_PROBE_BODY_BYTES, signal });
    const tls = this.#deps.clientTls?.(this.site.url);
    return httpGet(this.#url, { timeoutMs, maxBodyBytes: MAX_PROBE_BODY_BYTES, agents: this.#agents, signal, ...(tls ? { tls } : {}) });
  }

  async #probe(signal: AbortSignal): Promise<void> {
    const { name, health } = this.site;
    const startedMs = performance.now();
    const answer = await this.#get(signal);
    // Results of a loop that was stopped (site removed or re-configured, or close()) are stale.
    if (signal.aborted) return;
    const durationMs = performance.now() - startedMs;
    if (!answer.ok && answer.local) {
      // detour could not even open a socket (out of file descriptors): that says
      // nothing about the site, so no verdict; the next probe tries again.
      this.#deps.logger.warn({ site: name, detail: answer.error }, 'probe not sent: the gateway is out of resources; no verdict on the site');
      this.#checks.error.inc();
      this.#reportedFirst();
      return;
    }
    const result: ProbeResult = { ...judgeProbe(health, answer), durationMs };
    (result.passed ? this.#checks.pass : this.#checks.fail).inc();
    this.#duration.observe(durationMs / 1000);
    if (this.#deps.logger.isLevelEnabled('debug')) {
      this.#deps.logger.debug({ site: name, passed: result.passed, detail: result.detail, durationMs }, 'probe finished');
    }
    try {
      this.#deps.onResult(name, result);
    } catch (err) {
      this.#deps.logger.error({ err, site: name }, 'probe result handler failed');
    }
    this.#reportedFirst();
  }
}
