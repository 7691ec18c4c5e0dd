// `detour demo`: the building-fire story, live. Two simulated sites in two
// buildings, the real gateway in front (policy parsed from YAML like any other),
// and a steady client load through it. Acts move on when what they wait for has
// happened, not after fixed sleeps, so the story is the same on a slow machine.
import http from 'node:http';
import { parsePolicy } from '../config/parse-policy.js';
import { formatPolicyError } from '../config/policy.js';
import { startGateway, type Gateway } from '../gateway.js';
import { silentLogger } from '../logger.js';
import type { GatewayEvent } from '../admin/admin-control.js';
import { SimSite } from './sim-site.js';
import { AdminClient } from '../admin/admin-client.js';
import { randomBytes } from 'node:crypto';

export interface DemoOptions {
  /** Short pauses between acts (tests, impatient people). */
  readonly fast: boolean;
  /** One line per update instead of a redrawn table. */
  readonly plain: boolean;
  readonly out: (line: string) => void;
}

export interface DemoSummary {
  readonly requests: number;
  readonly failedRequests: number;
  readonly bySite: Readonly<Record<string, number>>;
  readonly retries: number;
  /** Route names in the order they completed failback. */
  readonly recoveryOrder: readonly string[];
  readonly detectionMs: number;
}

const ROUTES = [
  { name: 'border-control', path: '/border', priority: 1, label: 'border control (autogates, travel bans)' },
  { name: 'ceir', path: '/ceir', priority: 2, label: 'IMEI register' },
  { name: 'passport', path: '/passport', priority: 3, label: 'passports' },
];

function demoPolicyYaml(cyber1: SimSite, serpong: SimSite, fast: boolean): string {
  const t = fast
    ? { interval: '150ms', hold: '1s', step: '400ms', verify: '150ms' }
    : { interval: '250ms', hold: '3s', step: '1500ms', verify: '300ms' };
  const site = (s: SimSite) => `
  ${s.name}:
    url: ${s.url}
    building: ${s.building}
    timeouts: { connect: 300ms, response: 5s }
    health: { path: /healthz, interval: ${t.interval}, timeout: 250ms, rise: 2, fall: 2 }`;
  const route = (r: typeof ROUTES[number]) => `
  - name: ${r.name}
    match: { pathPrefix: ${r.path} }
    sites: [cyber1, serpong]
    priority: ${r.priority}
    failback:
      holdDown: ${t.hold}
      verify: { path: /_integrity, field: checksum, interval: ${t.verify}, timeout: 250ms }
      ramp: [25, 50, 100]
      step: ${t.step}`;
  return `# the demo's policy, generated with the simulated sites' ports
listen: { host: 127.0.0.1, port: 0 }
admin: { host: 127.0.0.1, port: 0, token: \${DEMO_TOKEN} }
sites:${site(cyber1)}${site(serpong)}
routes:${ROUTES.map(route).join('')}
unavailable: { status: 503, retryAfter: 5s }
`;
}

export async function runDemo(opts: DemoOptions): Promise<DemoSummary> {
  const pause = (ms: number) => new Promise<void>((r) => setTimeout(r, opts.fast ? Math.min(ms, 800) : ms));
  const cyber1 = new SimSite('cyber1', 'gedung-cyber-1', 'c0ffee01');
  const serpong = new SimSite('serpong', 'serpong-dc', 'c0ffee01');
  await cyber1.powerOn();
  await serpong.powerOn();

  const token = randomBytes(16).toString('hex');
  const parsed = parsePolicy(demoPolicyYaml(cyber1, serpong, opts.fast), 'demo.yaml', { DEMO_TOKEN: token });
  if (!parsed.ok) throw new Error(`demo policy invalid:\n${parsed.errors.map(formatPolicyError).join('\n')}`);
  const gateway = await startGateway({ policy: parsed.policy, logger: silentLogger() });
  // First line: the story can be watched (and acted on) in the operator console while it runs.
  opts.out(`Operator console: ${gateway.adminUrl}/  (open it in a browser to watch; token for its actions: ${token})`);
  // Operator actions go through the real admin API, as `detour drain` would.
  const admin = new AdminClient({ baseUrl: gateway.adminUrl, token });

  const events: GatewayEvent[] = [];
  const recoveryOrder: string[] = [];
  const screen = new Screen(opts, gateway);
  gateway.control.subscribe({
    event: (e) => {
      events.push(e);
      if (e.type === 'failedBack' && e.route) recoveryOrder.push(e.route);
      screen.event(e);
    },
  });
  const load = new ClientLoad(gateway.proxyUrl, ROUTES.map((r) => r.path));
  screen.load = load;
  const allOn = (site: string) => gateway.table().routes.every((d) => d.active === site && d.weights.length === 1);

  try {
    screen.act(1, 'Normal day',
      `Clients hit one address (${gateway.proxyUrl}). Three services run in building gedung-cyber-1 (site cyber1),`
      + ' with backups in serpong-dc (site serpong).');
    load.start();
    screen.startLive();
    await pause(4000);

    screen.act(2, 'Fire in gedung-cyber-1',
      'The building loses power: its site stops answering and every open connection is cut mid-request.');
    const fireAt = Date.now();
    await cyber1.powerOff();
    await waitUntil(() => allOn('serpong'), 30_000, 'every route to move to serpong');
    const detectionMs = Date.now() - fireAt;
    screen.note(`All routes on serpong ${detectionMs} ms after the fire. Requests caught in flight were retried on serpong.`);
    await pause(4000);

    screen.act(3, 'Operators reroute away from the building',
      'As the regulator ordered, an operator drains the whole building with one line:'
      + ' `detour drain --building gedung-cyber-1`. Whatever its probes say, no new request will go there.');
    const drained = await admin.drain({ kind: 'building', name: 'gedung-cyber-1' });
    screen.note(`admin API: ${drained.message}`);
    await pause(2000);

    screen.act(4, 'The building comes back, but its data diverged',
      'cyber1 answers its health checks again. While the building is drained it gets no traffic; once the operator'
      + ' undrains it, the integrity gate finds its checksum no longer matches serpong\'s: no failback onto stale data.');
    cyber1.checksum = 'dead0042';
    await cyber1.powerOn();
    await waitUntil(() => gateway.control.health('cyber1')?.status === 'up', 30_000, 'cyber1 to pass its probes');
    const servedWhileDrained = cyber1.served;
    await pause(2000);
    screen.note(`cyber1 is up, and drained: ${cyber1.served - servedWhileDrained} requests reached it.`);
    if (cyber1.served !== servedWhileDrained) throw new Error('a drained building received requests');
    const undrained = await admin.undrain({ kind: 'building', name: 'gedung-cyber-1' });
    screen.note(`admin API: ${undrained.message} (detour undrain --building gedung-cyber-1)`);
    await waitUntil(() => gateway.table().routes.some((d) => d.blocked?.code === 'integrity'), 30_000, 'failback to be blocked by the integrity gate');
    const blocked = gateway.table().routes.find((d) => d.blocked?.code === 'integrity')!;
    screen.note(`Failback held: ${blocked.name}: ${blocked.reason}`);
    await pause(5000);
    if (!allOn('serpong')) throw new Error('a route failed back onto diverged data');

    screen.act(5, 'Data reconciled: phased failback',
      'Operators re-sync cyber1. Once checksums match for the whole hold-down, services return in priority order:'
      + ' border control first, then the IMEI register, then passports, each ramping 25% -> 50% -> 100%.');
    cyber1.checksum = serpong.checksum;
    await waitUntil(() => allOn('cyber1'), 60_000, 'every route to fail back to cyber1');
    await pause(3000);
    await load.stop();
    screen.stopLive();

    const retries = await retriesTotal(gateway);
    const summary: DemoSummary = {
      requests: load.total, failedRequests: load.failed, bySite: { ...load.bySite }, retries, recoveryOrder, detectionMs,
    };
    screen.summary(summary);
    return summary;
  } finally {
    screen.stopLive();
    await load.stop();
    await gateway.close();
    await cyber1.powerOff();
    await serpong.powerOff();
  }
}

async function retriesTotal(gateway: Gateway): Promise<number> {
  const metric = await gateway.metrics.retries.get();
  return metric.values.reduce((sum, v) => sum + v.value, 0);
}

async function waitUntil(cond: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`demo: gave up waiting for ${what} after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** A steady, bounded client load through the gateway; counts answers by site. */
class ClientLoad {
  total = 0;
  failed = 0;
  readonly bySite: Record<string, number> = {};
  readonly failures: string[] = [];
  #running = false;
  #workers: Promise<void>[] = [];
  readonly #agent = new http.Agent({ keepAlive: true, maxSockets: 8 });

  constructor(readonly baseUrl: string, readonly paths: readonly string[]) {}

  start(workers = 4): void {
    this.#running = true;
    for (let i = 0; i < workers; i++) this.#workers.push(this.#loop(i));
  }

  async stop(): Promise<void> {
    this.#running = false;
    await Promise.all(this.#workers);
    this.#workers = [];
    this.#agent.destroy();
  }

  async #loop(worker: number): Promise<void> {
    let n = worker;
    while (this.#running) {
      const path = this.paths[n++ % this.paths.length]!;
      await this.#one(`${this.baseUrl}${path}/status`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  #one(url: string): Promise<void> {
    return new Promise((resolve) => {
      const req = http.get(url, { agent: this.#agent, timeout: 10_000 }, (res) => {
        res.resume();
        res.on('end', () => {
          this.total++;
          const site = String(res.headers['x-detour-site'] ?? 'none');
          if (res.statusCode === 200) this.bySite[site] = (this.bySite[site] ?? 0) + 1;
          else this.#fail(`${url}: ${res.statusCode} from ${site}`);
          resolve();
        });
        res.on('error', (err) => { this.total++; this.#fail(`${url}: ${err.message}`); resolve(); });
      });
      req.on('timeout', () => req.destroy(new Error('client timeout')));
      req.on('error', (err) => { this.total++; this.#fail(`${url}: ${err.message}`); resolve(); });
    });
  }

  #fail(why: string): void {
    this.failed++;
    if (this.failures.length < 20) this.failures.push(why);
  }
}

/** Terminal output: a redrawn live table in a TTY, one line per update otherwise. */
class Screen {
  load: ClientLoad | undefined;
  #timer: NodeJS.Timeout | undefined;
  #act = '';
  #notes: string[] = [];
  #lastEvents: string[] = [];
  #drawnLines = 0;

  constructor(readonly opts: DemoOptions, readonly gateway: Gateway) {}

  act(n: number, title: string, story: string): void {
    this.#act = `Act ${n}: ${title}`;
    this.#notes = [story];
    this.#print(`\n=== ${this.#act} ===\n${story}`);
  }

  note(line: string): void {
    this.#notes.push(line);
    this.#print(`  -> ${line}`);
  }

  event(e: GatewayEvent): void {
    const line = `${e.time.slice(11, 23)} ${e.message}`;
    this.#lastEvents.push(line);
    if (this.#lastEvents.length > 6) this.#lastEvents.shift();
    if (this.opts.plain) this.opts.out(`  [event] ${line}`);
  }

  startLive(): void {
    if (this.opts.plain || this.#timer) return;
    this.#timer = setInterval(() => this.#draw(), 250);
  }

  stopLive(): void {
    if (!this.#timer) return;
    clearInterval(this.#timer);
    this.#timer = undefined;
    this.#draw();
  }

  summary(s: DemoSummary): void {
    const lines = [
      '',
      '=== Summary ===',
      `client requests: ${s.requests}, failed: ${s.failedRequests}` + (s.failedRequests === 0 ? ' (zero: no client saw the fire)' : ''),
      `answered by site: ${Object.entries(s.bySite).map(([k, v]) => `${k} ${v}`).join(', ')}`,
      `requests retried on another site: ${s.retries}`,
      `fire to all routes on the backup: ${s.detectionMs} ms`,
      `failback order: ${s.recoveryOrder.join(' -> ')}`,
      ...(this.load?.failures.length ? ['failures:', ...this.load.failures.map((f) => `  ${f}`)] : []),
      '',
      'Where to look on a real gateway (detour start -c config/jakarta-fire.yaml):',
      '  http://127.0.0.1:9090/               the operator console: buildings, routes, traffic, events, actions',
      '  GET  http://127.0.0.1:9090/status    routes, sites, why each route is where it is, recent events',
      '  GET  http://127.0.0.1:9090/metrics   Prometheus metrics (detour_*)',
      '  grafana/dashboards/detour.json     the Grafana dashboard; grafana/prometheus/alerts.yaml the alert rules',
      '  detour status | drain --building B | pin ROUTE SITE | failback ROUTE   the operator CLI',
    ];
    for (const l of lines) this.opts.out(l);
  }

  #print(text: string): void {
    if (this.opts.plain) {
      this.opts.out(text);
    } else {
      this.#draw(text);
    }
  }

  #draw(extra?: string): void {
    if (this.opts.plain) return;
    const table = this.gateway.table();
    const status = this.gateway.control.status();
    const rows: string[] = [];
    if (extra !== undefined) {
      // Scroll the story line above the live block.
      this.#clear();
      process.stdout.write(`${extra}\n`);
    }
    rows.push(`--- live: ${this.#act} ---`);
    rows.push(pad('route', 16) + pad('state', 19) + pad('weights', 26) + 'reason');
    for (const d of table.routes) {
      const weights = d.weights.map((w) => `${w.site} ${w.weight}%`).join(' / ') || '-';
      rows.push(pad(d.name, 16) + pad(d.state, 19) + pad(weights, 26) + d.reason.slice(0, 70));
    }
    rows.push('');
    rows.push(status.sites.map((s) => `${s.name} (${s.building}): ${s.health.toUpperCase()}`).join('    '));
    const l = this.load;
    if (l) rows.push(`client requests ${l.total}, failed ${l.failed}; answered by ${Object.entries(l.bySite).map(([k, v]) => `${k} ${v}`).join(', ')}`);
    rows.push('recent events:');
    for (const e of this.#lastEvents) rows.push(`  ${e.slice(0, 110)}`);
    this.#clear();
    process.stdout.write(`${rows.join('\n')}\n`);
    this.#drawnLines = rows.length;
  }

  #clear(): void {
    if (this.#drawnLines > 0) process.stdout.write(`\x1b[${this.#drawnLines}A\x1b[0J`);
    this.#drawnLines = 0;
  }
}

function pad(s: string, n: number): string {
  return s.length >= n ? `${s.slice(0, n - 1)} ` : s + ' '.repeat(n - s.length);
}
