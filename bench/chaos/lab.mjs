// One chaos "lab": fake sites in three buildings, a policy file, one gateway or
// three replicas on a real redis-server, an open-loop load, and the harness's
// own record of what it did and when (faults, drains, kills). Scenarios drive a
// lab through `ctl`; analyse() turns the records into one row of the table.
//
// Topology (every scenario):
//   building A: a1, a2     building B: b1, b2     building C: c1
//   route api   (/api,   priority 1): [a1, b1, c1], failback verified (/_integrity checksum)
//   route batch (/batch, priority 2): [a2, b2]
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { OpenLoad, isFailure } from './load.mjs';
import { freePort, httpGet, sleep, startGateway, startRedis, waitFor } from './processes.mjs';
import { startSite } from './sites.mjs';

export const TIMING = Object.freeze({
  // Generous for a loaded 2-core machine: a 200 ms probe timeout there fails
  // healthy sites (seen at load average 18), which is the configuration's doing, not a fault.
  intervalMs: 250, probeTimeoutMs: 1000, fall: 2, rise: 2,
  connectMs: 1500, responseMs: 2000,
  holdDownMs: 1000, stepMs: 500,
  /** Time after a drain call answered, or after /status shows a site down, before an arrival there counts as a violation. */
  decisionAllowanceMs: 250,
});
/** Detection time of a dead site by probes: fall x (interval + timeout). */
export const DETECTION_MS = TIMING.fall * (TIMING.intervalMs + TIMING.probeTimeoutMs);
/** Default latency bound: probe detection + one upstream response timeout + 2.5 s of slack for a loaded machine. */
export const BOUND_MS = DETECTION_MS + TIMING.responseMs + 2500;
export const TOKEN = 'chaos-token';

const SITES = [['a1', 'A'], ['a2', 'A'], ['b1', 'B'], ['b2', 'B'], ['c1', 'C']];
export const ROUTES = [
  { name: 'api', pathPrefix: '/api', sites: ['a1', 'b1', 'c1'] },
  { name: 'batch', pathPrefix: '/batch', sites: ['a2', 'b2'] },
];

export function policyText(sites, { redis, workers } = {}) {
  const t = TIMING;
  const site = (s) => `  ${s.name}:
    url: ${s.url}
    building: ${s.building}
    timeouts: { connect: ${t.connectMs}ms, response: ${t.responseMs}ms }
    health: { path: /healthz, interval: ${t.intervalMs}ms, timeout: ${t.probeTimeoutMs}ms, rise: ${t.rise}, fall: ${t.fall}, jitter: 0 }`;
  return `# written by bench/chaos (npm run chaos)
listen: { host: 127.0.0.1, port: \${DETOUR_PORT} }
admin: { host: 127.0.0.1, port: \${DETOUR_ADMIN_PORT}, token: \${DETOUR_ADMIN_TOKEN} }
sites:
${sites.map(site).join('\n')}
routes:
  - name: api
    match: { pathPrefix: /api }
    sites: [a1, b1, c1]
    priority: 1
    failback: { holdDown: ${t.holdDownMs}ms, verify: { path: /_integrity, field: checksum }, ramp: [50, 100], step: ${t.stepMs}ms }
  - name: batch
    match: { pathPrefix: /batch }
    sites: [a2, b2]
    priority: 2
    failback: { holdDown: ${t.holdDownMs}ms, ramp: [50, 100], step: ${t.stepMs}ms }
unavailable: { status: 503, retryAfter: 1s }
shutdown: { grace: 5s }
${workers === undefined ? '' : `workers: ${workers}\n`}${redis ? `state: { redis: { url: ${redis}, keyPrefix: "chaos:" } }\n` : ''}`;
}

export class Lab {
  /** workers: the policy's `workers` value (N or 'auto'); absent, the key is left out (one process). */
  static async start({ replicas = 1, fdLimit, rate, workers }) {
    const lab = new Lab();
    lab.dir = mkdtempSync(join(tmpdir(), 'detour-chaos-'));
    lab.file = join(lab.dir, 'policy.yaml');
    lab.sites = new Map();
    for (const [name, building] of SITES) lab.sites.set(name, await startSite(name, building));
    if (replicas > 1) lab.redis = await startRedis();
    lab.policy = policyText([...lab.sites.values()], { redis: lab.redis?.url, workers });
    writeFileSync(lab.file, lab.policy);
    lab.replicas = [];
    lab.gateways = [];
    for (let i = 0; i < replicas; i++) {
      const port = await freePort();
      const adminPort = await freePort();
      const r = { name: `r${i}`, url: `http://127.0.0.1:${port}`, admin: `http://127.0.0.1:${adminPort}`, port, adminPort };
      lab.replicas.push(r);
      r.gateway = await startGateway({
        file: lab.file, adminUrl: r.admin, fdLimit, name: r.name,
        env: { DETOUR_PORT: String(port), DETOUR_ADMIN_PORT: String(adminPort), DETOUR_ADMIN_TOKEN: TOKEN, DETOUR_REPLICA_ID: r.name },
      });
      lab.gateways.push(r.gateway);
    }
    // Every site up on every replica before the load starts.
    for (const r of lab.replicas) {
      await waitFor(async () => {
        const s = await lab.status(r).catch(() => null);
        return Array.isArray(s?.sites) && s.sites.every((x) => x.health === "up") && s.routes.every((x) => x.state === "preferred")
          && (workers === undefined || (s.workers?.workers.length > 0 && s.workers.workers.every((w) => w.state === 'serving')));
      }, 30_000, `${r.name}: every site up`);
    }
    lab.events = [];      // harness actions: { atMs, what }
    lab.faults = [];      // { site, fromMs, toMs, kind }
    lab.drains = [];      // { sites: [...], fromMs (answered), toMs (undrain called) }
    lab.forbidden = [];   // extra windows: { site, fromMs, toMs, why }
    lab.excused = [];     // { fromMs, toMs, why, site? }: failures in it (answered by site, if given) do not count
    lab.killedReplicas = []; // { name, atMs }
    lab.killedWorkers = []; // { replica, pid, atMs }
    lab.checks = [];      // scenario-specific: { name, ok, detail }
    lab.statusSamples = []; // { replica, atMs, sites: [{ name, health, since }] }
    lab.resources = [];   // { atMs, replica, rssKb, fds }
    lab.load = new OpenLoad({ targets: lab.replicas.map((r) => ({ name: r.name, url: r.url })), rate, routes: ROUTES });
    return lab;
  }

  async status(r = this.replicas[0]) {
    const res = await httpGet(`${r.admin}/status`, { timeoutMs: 2000 });
    if (res.status !== 200) throw new Error(`${r.name} /status ${res.status}`);
    return res.json();
  }

  async admin(method, path, body, r = this.replicas[0]) {
    const res = await httpGet(`${r.admin}${path}`, {
      method, body: body ? JSON.stringify(body) : undefined,
      headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
    });
    if (res.status >= 300) throw new Error(`${method} ${path} on ${r.name}: ${res.status} ${res.text}`);
    return res;
  }

  note(what) { this.events.push({ atMs: Date.now(), what }); }
  check(name, ok, detail = '') { this.checks.push({ name, ok: Boolean(ok), detail }); }

  /** Start the load, the /status poller and the resource sampler. */
  begin() {
    this.startedMs = Date.now();
    // The harness shares the machine: its own event-loop delay bounds how late it sees arrivals and answers.
    this.lag = monitorEventLoopDelay({ resolution: 10 });
    this.lag.enable();
    this.load.start();
    const pollOnce = async () => {
      for (const r of this.replicas) {
        if (this.killedReplicas.some((k) => k.name === r.name) || r.gateway.exit) continue;
        const s = await this.status(r).catch(() => null);
        if (s) {
          this.statusSamples.push({
            replica: r.name, atMs: Date.now(), drains: s.drains,
            sites: s.sites.map(({ name, health, since, reason }) => ({ name, health, since, reason })),
          });
        }
      }
    };
    this.pollOnce = pollOnce;
    const poll = async () => {
      await pollOnce();
      if (!this.ended) this.pollTimer = setTimeout(poll, 200);
    };
    void poll();
    const sample = () => {
      for (const r of this.replicas) {
        const s = r.gateway.exit ? null : r.gateway.sample();
        if (s) this.resources.push({ replica: r.name, ...s });
      }
      if (!this.ended) this.sampleTimer = setTimeout(sample, this.sampleEveryMs ?? 1000);
    };
    sample();
  }

  // ---- faults, each recorded with its time ---------------------------------
  site(name) { return this.sites.get(name); }

  async fault(name, kind, opts = {}) {
    const s = this.site(name);
    this.heal(name, { quiet: true, keepSite: true });
    if (kind === 'killed') await s.kill();
    else if (kind === 'flapping') s.flap(opts.upMs ?? 2000, opts.downMs ?? 1000);
    else s.set(kind, opts);
    this.faults.push({ site: name, kind, fromMs: Date.now(), toMs: Infinity });
    this.note(`${name}: ${kind}${opts.scope === 'traffic' ? ' (traffic only)' : ''}`);
  }

  async heal(name, { quiet = false, keepSite = false } = {}) {
    const open = this.faults.filter((f) => f.site === name && f.toMs === Infinity);
    if (!keepSite) await this.site(name).heal();
    for (const f of open) f.toMs = Date.now();
    if (!quiet) this.note(`${name}: healed`);
  }

  async drain(body, r = this.replicas[0]) {
    const calledMs = Date.now();
    // Forced: a scenario that drains means it, even while faults leave a route nothing else (the safety rule would refuse).
    await this.admin('POST', '/drain', { ...body, force: true }, r);
    const sites = body.site ? [body.site] : [...this.sites.values()].filter((s) => s.building === body.building).map((s) => s.name);
    this.drains.push({ body, sites, replica: r.name, calledMs, fromMs: Date.now(), toMs: Infinity });
    this.note(`drain ${JSON.stringify(body)} answered`);
  }

  async undrain(body, r) {
    const d = this.drains.find((x) => JSON.stringify(x.body) === JSON.stringify(body) && x.toMs === Infinity);
    if (d) d.toMs = Date.now();
    await this.admin('DELETE', '/drain', body, r);
    this.note(`undrain ${JSON.stringify(body)} answered`);
  }

  forbid(site, fromMs, toMs, why) { this.forbidden.push({ site, fromMs, toMs, why }); }
  excuse(fromMs, toMs, why, site) { this.excused.push({ fromMs, toMs, why, site }); }

  /** SIGKILL a replica: the client population stops sending to it at the same moment. */
  async killReplica(i) {
    const r = this.replicas[i];
    this.load.down.add(r.name);
    this.killedReplicas.push({ name: r.name, atMs: Date.now() });
    this.note(`replica ${r.name} SIGKILL`);
    await r.gateway.stop('SIGKILL');
  }

  /** SIGKILL one worker process of a replica's gateway (workers: N), by its pid from /status. */
  killWorker(pid, r = this.replicas[0]) {
    this.killedWorkers.push({ replica: r.name, pid, atMs: Date.now() });
    process.kill(pid, 'SIGKILL');
    this.note(`worker pid ${pid} of ${r.name} SIGKILL`);
  }

  async end() {
    if (this.ended) return;
    this.lag?.disable();
    await this.load.stop();
    this.ended = true;
    clearTimeout(this.pollTimer);
    clearTimeout(this.sampleTimer);
    this.endedMs = Date.now();
    // One last look, so a site that came back up at the very end closes its down interval.
    await this.pollOnce?.();
  }

  async close() {
    this.ended = true;
    clearTimeout(this.pollTimer);
    clearTimeout(this.sampleTimer);
    for (const g of this.gateways) if (!g.exit) await g.stop('SIGTERM');
    for (const s of this.sites.values()) await s.close();
    await this.redis?.close();
    rmSync(this.dir, { recursive: true, force: true });
  }

  // ---- analysis -------------------------------------------------------------

  /** [from, to) intervals per replica during which /status said the site was down. */
  downIntervals() {
    const out = new Map(); // replica -> site -> [[from, to]]
    for (const sample of this.statusSamples) {
      if (!out.has(sample.replica)) out.set(sample.replica, new Map());
      const bySite = out.get(sample.replica);
      for (const s of sample.sites) {
        if (!bySite.has(s.name)) bySite.set(s.name, []);
        const list = bySite.get(s.name);
        const last = list.at(-1);
        const since = Date.parse(s.since);
        if (s.health === 'down') {
          if (!last || last[1] !== Infinity) list.push([since, Infinity, s.reason]);
        } else if (last && last[1] === Infinity) {
          last[1] = Math.max(since, last[0]);
        }
      }
    }
    return out;
  }

  /** Health changes each replica reported, relative to the start: for reading a failed row. */
  #timeline() {
    const out = [];
    for (const [replica, bySite] of this.downIntervals()) {
      for (const [site, list] of bySite) {
        for (const [from, to, reason] of list) out.push(`${replica} ${site} down ${from - this.startedMs}..${to === Infinity ? 'end' : to - this.startedMs}: ${reason}`);
      }
    }
    return out;
  }

  analyse({ name, boundMs, expectedFail }) {
    const records = this.load.records;
    const at = (list, site, t) => list.some((w) => w.site === site && t >= w.fromMs && t < w.toMs);
    const faulted = (site, t) => at(this.faults, site, t);
    const drained = (site, t) => this.drains.some((d) => d.sites.includes(site) && t >= d.fromMs && t < d.toMs);
    // A healed or undrained site counts as healthy only once probes can have seen
    // it: `rise` passing probes, one interval of phase, the decision allowance.
    const recoveryMs = (TIMING.rise + 1) * TIMING.intervalMs + TIMING.decisionAllowanceMs;
    const healthyExisted = (route, from, to) => ROUTES.find((r) => r.name === route).sites
      .some((s) => !this.faults.some((f) => f.site === s && f.fromMs < to && f.toMs + recoveryMs > from)
        && !this.drains.some((d) => d.sites.includes(s) && d.fromMs < to && d.toMs > from));

    // Where each request id arrived.
    const arrivals = new Map();
    for (const s of this.sites.values()) {
      for (const a of s.arrivals) {
        if (!arrivals.has(a.id)) arrivals.set(a.id, []);
        arrivals.get(a.id).push({ site: s.name, atMs: a.atMs });
      }
    }
    const lagMaxMs = this.lag ? Math.round(this.lag.max / 1e6) : 0;
    const failed = records.filter(isFailure);
    const reasons = {};
    const unexcused = [];
    for (const rec of failed) {
      const end = rec.startMs + (rec.latencyMs ?? 0);
      const seen = arrivals.get(rec.id) ?? [];
      let why = null;
      if ([...this.sites.values()].some((s) => s.cut.has(rec.id))) why = 'answer cut mid-body by the site';
      else if (rec.method === 'POST' && (seen.some((a) => faulted(a.site, a.atMs) || drained(a.site, a.atMs))
        || (rec.site !== null && this.faults.some((f) => f.site === rec.site && f.fromMs < end && f.toMs > rec.startMs)))) why = 'POST the failing site may have run (502, never replayed)';
      else if (this.killedReplicas.some((k) => k.name === rec.replica && k.atMs >= rec.startMs - 50 && k.atMs <= end + 50)) why = 'in flight on a replica the harness killed';
      // A killed worker cannot answer: only a connection error (no status, or a body cut) from
      // that replica is excused, on a request whose start..end overlaps the kill instant +-50 ms,
      // or one sent on a pooled connection opened before the kill (the killed worker's, then)
      // before the client saw that connection close: within 50 ms + the harness's worst lag.
      else if (rec.error !== null && this.killedWorkers.some((k) => k.replica === rec.replica && k.atMs >= rec.startMs - 50 && k.atMs <= end + 50)) why = 'in flight on a worker the harness killed';
      else if (rec.error !== null && this.killedWorkers.some((k) => k.replica === rec.replica && rec.connectedMs !== null && rec.connectedMs <= k.atMs
        && rec.startMs <= k.atMs + 50 + lagMaxMs && end >= k.atMs)) why = 'sent on a pooled connection of a worker the harness killed';
      else if (this.excused.some((w) => excuses(w, rec, end))) why = this.excused.find((w) => excuses(w, rec, end)).why;
      else if (!healthyExisted(rec.route, rec.startMs, end)) why = 'no healthy site for the route';
      if (why) reasons[why] = (reasons[why] ?? 0) + 1;
      else unexcused.push({ ...rec, t: rec.startMs - this.startedMs, arrivals: seen.map((a) => ({ ...a, t: a.atMs - this.startedMs })) });
    }

    // Arrivals after the decision: drains (answered + allowance), /status down, scenario windows.
    // The harness sees an arrival as late as its own event loop lags: that lag is added to the allowance.
    const allowance = TIMING.decisionAllowanceMs + lagMaxMs;
    const downs = this.downIntervals();
    const sender = new Map(records.map((r) => [r.id, r.replica]));
    const liveReplicas = (t) => this.replicas.filter((r) => !this.killedReplicas.some((k) => k.name === r.name && k.atMs <= t) && !(r.gateway.exit && r.gateway.exit.atMs <= t));
    const isDownOn = (replica, site, t) => (downs.get(replica)?.get(site) ?? []).some(([from, to]) => t >= from + allowance && t < to);
    const downForSender = (id, site, t) => {
      const replica = sender.get(id);
      if (replica) return isDownOn(replica, site, t);
      const live = liveReplicas(t);
      return live.length > 0 && live.every((r) => isDownOn(r.name, site, t));
    };
    // A drain is applied on the replica that took the call when it answers, and on the
    // others when they learn it through Redis: the first /status of theirs that shows it.
    const appliedOn = (d, replica) => {
      if (replica === d.replica) return d.fromMs;
      const seen = this.statusSamples.find((x) => x.replica === replica && x.atMs >= d.calledMs
        && (d.body.building ? x.drains?.buildings.includes(d.body.building) : x.drains?.sites.includes(d.body.site)));
      return seen ? seen.atMs : d.fromMs;
    };
    const drainedFor = (id, site, t) => this.drains.find((d) => d.sites.includes(site) && t < d.toMs
      && t >= appliedOn(d, sender.get(id) ?? d.replica) + allowance);
    const forbiddenArrivals = [];
    for (const s of this.sites.values()) {
      for (const a of s.arrivals) {
        const why = drainedFor(a.id, s.name, a.atMs) ? 'drained'
          : downForSender(a.id, s.name, a.atMs) ? 'down'
          : this.forbidden.find((w) => w.site === s.name && a.atMs >= w.fromMs && a.atMs < w.toMs)?.why ?? null;
        if (why) forbiddenArrivals.push({ site: s.name, id: a.id, replica: sender.get(a.id) ?? null, t: a.atMs - this.startedMs, why });
      }
    }

    let twice = 0;
    const runs = new Map();
    for (const s of this.sites.values()) for (const [id, n] of s.executed) runs.set(id, (runs.get(id) ?? 0) + n);
    for (const n of runs.values()) if (n > 1) twice++;

    const restarts = this.gateways.filter((g) => g.exit && !g.expectedExit).length;
    const worst = records.reduce((m, r) => Math.max(m, r.latencyMs ?? 0), 0);
    const unanswered = records.filter((r) => r.latencyMs === null).length;
    const checksFailed = this.checks.filter((c) => !c.ok);
    const problems = [];
    if (unexcused.length) problems.push(`${unexcused.length} failed while a healthy site existed`);
    if (forbiddenArrivals.length) problems.push(`${forbiddenArrivals.length} reached a drained/down site after the decision`);
    if (twice) problems.push(`${twice} POSTs executed twice`);
    if (restarts) problems.push(`${restarts} gateway restarts`);
    if (worst > boundMs) problems.push(`worst latency ${worst} ms > bound ${boundMs} ms`);
    if (unanswered) problems.push(`${unanswered} never answered`);
    for (const c of checksFailed) problems.push(`check failed: ${c.name} ${c.detail}`);
    if (records.length === 0) problems.push('no requests sent');
    // A known bug (expectedFail) excuses the must-be-0 columns and the bound, never the scenario's own checks.
    const verdict = problems.length === 0 ? (expectedFail ? 'XPASS' : 'PASS') : expectedFail && checksFailed.length === 0 ? 'XFAIL' : 'FAIL';
    const peak = (k) => this.resources.reduce((m, r) => Math.max(m, r[k]), 0);
    return {
      scenario: name, verdict, problems, expectedFail: expectedFail ?? null,
      sent: records.length, failed: failed.length, failedHealthy: unexcused.length,
      forbiddenArrivals: forbiddenArrivals.length, allowanceMs: allowance, worstMs: worst, boundMs, postsTwice: twice, restarts,
      excusedFailures: reasons, checks: this.checks, events: this.events.map((e) => ({ t: e.atMs - this.startedMs, what: e.what })),
      peakRssKb: peak('rssKb'), peakFds: peak('fds'),
      harnessLagMs: this.lag ? { p99: Math.round(this.lag.percentile(99) / 1e6), max: Math.round(this.lag.max / 1e6) } : null,
      examples: {
        failedHealthy: unexcused.slice(0, 8), forbidden: forbiddenArrivals.slice(0, 8),
        slowest: [...records].sort((a, b) => (b.latencyMs ?? 0) - (a.latencyMs ?? 0)).slice(0, 5)
          .map((r) => ({ ...r, t: r.startMs - this.startedMs, arrivals: (arrivals.get(r.id) ?? []).map((a) => ({ site: a.site, t: a.atMs - this.startedMs })) })),
      },
      statusTimeline: problems.length ? this.#timeline() : undefined,
      gatewayLogTail: problems.length ? this.gateways.map((g) => `${g.name}: ${g.log.slice(-1500)}`) : undefined,
    };
  }
}

export { sleep, waitFor };

/** An excuse window covers a failure that overlaps it (and was answered by its site, when it names one). */
function excuses(w, rec, end) {
  return rec.startMs < w.toMs && end > w.fromMs && (w.site === undefined || rec.site === w.site);
}
