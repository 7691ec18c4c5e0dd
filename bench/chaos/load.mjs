// Open-loop client load: requests start at a fixed rate whatever the answers
// (a real client population does not slow down because the gateway is slow).
// Every request is recorded: id, route, method, start, latency, status, the
// serving site from `x-detour-site`, and the error if any. POSTs carry their id
// in the body and in `x-chaos-id` so sites can count executions.
import http from 'node:http';

export class OpenLoad {
  constructor({ targets, rate, routes, postShare = 0.2, timeoutMs = 20_000 }) {
    this.targets = targets; // [{ name, url }] gateway replicas, used round-robin while `up`
    this.rate = rate;
    this.routes = routes;   // [{ name, pathPrefix }]
    this.postShare = postShare;
    this.timeoutMs = timeoutMs;
    this.records = [];
    this.inflight = new Set();
    // No socket limit: a pool limit would queue requests in the client and
    // report the queueing as gateway latency (seen: 15 s "latencies" at 80 req/s
    // against a slow site with maxSockets 256).
    this.agent = new http.Agent({ keepAlive: true, maxSockets: Infinity });
    this.down = new Set(); // replicas the harness has stopped or killed: no new requests to them
    this.seq = 0;
    this.paused = false;
  }

  start() {
    const intervalMs = 1000 / this.rate;
    const t0 = Date.now();
    let sent = 0;
    // A self-correcting tick: send as many as the clock says are due.
    const tick = () => {
      const due = Math.floor((Date.now() - t0) / intervalMs);
      while (sent < due) {
        sent++;
        if (!this.paused) this.#one();
      }
      this.timer = setTimeout(tick, Math.max(1, intervalMs / 2));
    };
    tick();
    return this;
  }

  async stop() {
    clearTimeout(this.timer);
    await Promise.all(this.inflight);
    this.agent.destroy();
  }

  #one() {
    const live = this.targets.filter((t) => !this.down.has(t.name));
    if (live.length === 0) return;
    const n = this.seq++;
    const target = live[n % live.length];
    const route = this.routes[n % this.routes.length];
    const method = (n * 7919) % 100 < this.postShare * 100 ? 'POST' : 'GET';
    const id = `c${n}`;
    const body = method === 'POST' ? JSON.stringify({ id }) : undefined;
    // connectedMs: when the connection the request went on was opened (a pooled one, earlier).
    const rec = { id, route: route.name, method, replica: target.name, startMs: Date.now(), latencyMs: null, status: null, site: null, error: null, connectedMs: null };
    let socket = null;
    this.records.push(rec);
    const p = new Promise((resolve) => {
      const done = (status, site, error) => {
        if (rec.latencyMs !== null) return;
        rec.latencyMs = Date.now() - rec.startMs;
        rec.status = status;
        rec.site = site;
        rec.error = error;
        rec.connectedMs = Number.isFinite(socket?.chaosConnectedMs) ? socket.chaosConnectedMs : null;
        resolve();
      };
      const req = http.request(`${target.url}${route.pathPrefix}/item/${n}`, {
        method, agent: this.agent,
        headers: { 'x-chaos-id': id, ...(body ? { 'content-type': 'application/json', 'content-length': String(body.length) } : {}) },
      }, (res) => {
        res.on('data', () => {});
        res.on('end', () => done(res.statusCode, res.headers['x-detour-site'] ?? null, null));
        res.on('error', (err) => done(res.statusCode, res.headers['x-detour-site'] ?? null, `response: ${err.code ?? err.message}`));
        res.on('aborted', () => done(res.statusCode, res.headers['x-detour-site'] ?? null, 'response aborted'));
      });
      req.on('socket', (s) => {
        socket = s;
        if (s.chaosConnectedMs === undefined) {
          s.chaosConnectedMs = Infinity;
          s.once('connect', () => { s.chaosConnectedMs = Date.now(); });
        }
      });
      req.setTimeout(this.timeoutMs, () => req.destroy(new Error('client timeout')));
      req.on('error', (err) => done(null, null, err.code ?? err.message));
      req.end(body);
    });
    this.inflight.add(p);
    p.then(() => this.inflight.delete(p));
  }
}

export function isFailure(rec) {
  return rec.error !== null || rec.status === null || rec.status >= 500;
}
