// The integrity gate's I/O: for every route that would fail back through a
// `verify` gate, keep comparing the preferred site with the serving one, and
// report the verdict to the decision only when it changes. Checks keep running
// the whole time a route is failed over, so when the preferred site comes back
// the decision already knows for how long the two have agreed (sinceMs).
import type { Logger } from '../logger.js';
import type { Metrics } from '../metrics/metrics.js';
import type { SitePolicy, VerifyPolicy } from '../config/policy.js';
import type { IntegrityVerdict } from '../routing/route-table.js';
import { compareIntegrity, type Answer, type IntegrityComparison } from './integrity.js';
import { createAgents, destroyAgents, httpGet, joinUrl, type HttpAgents } from './http-get.js';
import { RepeatLoop } from './repeat-loop.js';
import type { ClientTls } from '../tls/client-tls.js';

export interface IntegrityTarget {
  readonly route: string;
  readonly verify: VerifyPolicy;
  /** Where traffic wants to go back to. */
  readonly preferred: SitePolicy;
  /** Where traffic is now; null when nothing serves the route. */
  readonly serving: SitePolicy | null;
}

export interface IntegrityVerifierDeps {
  /** A verdict changed (prev: the one it replaces). The verifier is the one owner of verdicts. */
  onVerdict(route: string, verdict: IntegrityVerdict, prev: IntegrityVerdict | undefined): void;
  /** A verdict was withdrawn because its route no longer needs checking. */
  onForget?(route: string): void;
  readonly metrics: Metrics;
  readonly logger: Logger;
  readonly now?: () => number;
  /** Trust for https:// sites, by URL: the very one live traffic and probes use. */
  readonly clientTls?: (siteUrl: string) => ClientTls | undefined;
}

/** Integrity documents can be real exports (row counts, checksums per table), not just a health line. */
const MAX_INTEGRITY_BODY_BYTES = 1024 * 1024;

export class IntegrityVerifier {
  readonly #deps: IntegrityVerifierDeps;
  readonly #now: () => number;
  readonly #agents: HttpAgents = createAgents();
  readonly #checks = new Map<string, RouteCheck>();
  readonly #verdicts = new Map<string, IntegrityVerdict>();
  #closed = false;

  constructor(deps: IntegrityVerifierDeps) {
    this.#deps = deps;
    this.#now = deps.now ?? Date.now;
  }

  /**
   * A target whose settings and sites are unchanged keeps its loop and verdict.
   * One whose pair of sites (or what is compared) changed is checked again at
   * once, and a passing verdict is withdrawn meanwhile: agreeing with the old
   * serving site says nothing about the new one. A target that disappears stops
   * and its verdict is forgotten silently.
   */
  update(targets: ReadonlyArray<IntegrityTarget>): void {
    if (this.#closed) return;
    const wanted = new Map(targets.map((t) => [t.route, t]));
    for (const [route, check] of this.#checks) {
      const target = wanted.get(route);
      if (target !== undefined && loopKey(target) === check.loopKey) continue;
      void check.loop.stop();
      this.#checks.delete(route);
      if (target === undefined) {
        if (this.#verdicts.delete(route)) this.#deps.onForget?.(route);
      } else if (comparisonKey(target) !== check.comparisonKey && this.#verdicts.has(route)) {
        this.#record(route, false, `checking ${target.preferred.name} against ${target.serving?.name ?? 'nothing'} anew`);
      }
    }
    for (const target of wanted.values()) {
      if (this.#checks.has(target.route)) continue;
      const check = new RouteCheck(target, (signal) => this.#check(target, signal));
      this.#checks.set(target.route, check);
      check.loop.start();
    }
  }

  verdicts(): ReadonlyMap<string, IntegrityVerdict> {
    return this.#verdicts;
  }

  /** An immediate check of one route; resolves when its verdict is recorded. */
  async checkNow(route: string): Promise<void> {
    await this.#checks.get(route)?.loop.runNow();
  }

  async close(): Promise<void> {
    this.#closed = true;
    const stopping = [...this.#checks.values()].map((c) => c.loop.stop());
    this.#checks.clear();
    await Promise.all(stopping);
    destroyAgents(this.#agents);
  }

  async #check(target: IntegrityTarget, signal: AbortSignal): Promise<void> {
    const { route, verify, preferred, serving } = target;
    if (serving === null) {
      this.#record(route, false, 'no site to compare against');
      return;
    }
    const onlyPreferred = verify.max !== undefined;
    const [a, b] = await Promise.all([
      this.#fetch(preferred, verify, signal),
      onlyPreferred ? Promise.resolve(undefined) : this.#fetch(serving, verify, signal),
    ]);
    if (signal.aborted) return;
    let comparison: IntegrityComparison;
    try {
      comparison = compareIntegrity(verify, { site: preferred.name, answer: a }, { site: serving.name, answer: b });
    } catch (err) {
      this.#deps.logger.error({ err, route }, 'integrity comparison failed');
      comparison = { ok: false, detail: 'comparison failed', result: 'error' };
    }
    this.#deps.metrics.integrityChecks.inc({ route, result: comparison.result });
    this.#record(route, comparison.ok, comparison.detail);
  }

  async #fetch(site: SitePolicy, verify: VerifyPolicy, signal: AbortSignal): Promise<Answer> {
    const tls = this.#deps.clientTls?.(site.url);
    const answer = await httpGet(joinUrl(site.url, verify.path), {
      timeoutMs: verify.timeoutMs, maxBodyBytes: MAX_INTEGRITY_BODY_BYTES, agents: this.#agents, signal, ...(tls ? { tls } : {}),
    });
    if (!answer.ok) return answer;
    // Comparing a cut-off body would call two different documents equal.
    if (answer.truncated) return { ok: false, error: `body larger than ${MAX_INTEGRITY_BODY_BYTES} bytes` };
    return { ok: true, status: answer.status, body: answer.bytes };
  }

  /** Notify only on change; sinceMs moves only when `ok` flips. */
  #record(route: string, ok: boolean, detail: string): void {
    const prev = this.#verdicts.get(route);
    if (prev !== undefined && prev.ok === ok && prev.detail === detail) return;
    const sinceMs = prev !== undefined && prev.ok === ok ? prev.sinceMs : this.#now();
    const verdict: IntegrityVerdict = Object.freeze({ ok, sinceMs, detail });
    this.#verdicts.set(route, verdict);
    if (prev?.ok !== ok) this.#deps.logger.info({ route, ok, detail }, ok ? 'integrity gate passed' : 'integrity gate failing');
    try {
      this.#deps.onVerdict(route, verdict, prev);
    } catch (err) {
      this.#deps.logger.error({ err, route }, 'integrity verdict handler failed');
    }
  }
}

class RouteCheck {
  readonly loopKey: string;
  readonly comparisonKey: string;
  readonly loop: RepeatLoop;

  constructor(target: IntegrityTarget, task: (signal: AbortSignal) => Promise<void>) {
    this.loopKey = loopKey(target);
    this.comparisonKey = comparisonKey(target);
    this.loop = new RepeatLoop(task, () => target.verify.intervalMs);
  }
}

/** What a verdict is about: which two sites, which document, which rule. */
function comparisonKey(t: IntegrityTarget): string {
  const v = t.verify;
  return JSON.stringify([
    t.preferred.name, t.preferred.url, t.serving?.name ?? null, t.serving?.url ?? null, v.path, v.field ?? null, v.max ?? null,
  ]);
}

function loopKey(t: IntegrityTarget): string {
  return JSON.stringify([comparisonKey(t), t.verify.intervalMs, t.verify.timeoutMs]);
}
