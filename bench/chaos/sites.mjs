// Fake data-center sites for the chaos suite: real HTTP servers on 127.0.0.1
// (port 0, kept across kill/revive) in the harness process. Each records every
// live-traffic arrival (request id from `x-chaos-id`, method, time) so the
// harness can count POSTs executed twice and requests that reached a site after
// it was drained or marked down. Faults:
//   ok | hang (accept, never answer) | 5xx (503 to everything) | slow (answer
//   after delayMs) | cut (send the head and half the body, then reset) |
//   killed (listener closed, sockets destroyed) | flapping (up 2 s, down 1 s).
// `scope: 'all'` applies the fault to /healthz and /_integrity too (the whole
// building is broken); 'traffic' leaves probes passing.
import http from 'node:http';

export async function startSite(name, building) {
  let mode = 'ok';
  let scope = 'all';
  let delayMs = 0;
  let checksum = 'same';
  let flapTimer;
  const arrivals = [];   // { id, method, atMs }
  const executed = new Map(); // POST id -> times run
  const cut = new Set(); // ids whose answer this site cut mid-body
  const sockets = new Set();
  const timers = new Set();

  const server = http.createServer((req, res) => {
    const arrivedMs = Date.now();
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('error', () => {});
    req.on('end', () => {
      const path = (req.url ?? '/').split('?')[0];
      const probe = path === '/healthz' || path === '/_integrity';
      const faulted = mode !== 'ok' && (scope === 'all' || !probe);
      if (!probe) {
        const id = String(req.headers['x-chaos-id'] ?? '');
        arrivals.push({ id, method: req.method, atMs: arrivedMs });
        // A POST "runs" when the site decides to answer it (not when it hangs or fails it).
        if (req.method === 'POST' && (!faulted || mode === 'slow' || mode === 'cut')) executed.set(id, (executed.get(id) ?? 0) + 1);
      }
      const body = path === '/healthz' ? 'ok\n'
        : path === '/_integrity' ? JSON.stringify({ site: name, checksum })
        : JSON.stringify({ site: name, path, bytes: Buffer.concat(chunks).length, pad: 'x'.repeat(2048) });
      if (!faulted) return void res.writeHead(200, { 'content-type': 'application/json', 'x-fake-site': name }).end(body);
      if (mode === 'hang') return;
      if (mode === '5xx') return void res.writeHead(503, { 'x-fake-site': name }).end(`${name} 503\n`);
      if (mode === 'slow') {
        const t = setTimeout(() => { timers.delete(t); if (!res.destroyed) res.writeHead(200, { 'x-fake-site': name }).end(body); }, delayMs);
        timers.add(t);
        return;
      }
      if (mode === 'cut') {
        if (!probe) cut.add(String(req.headers['x-chaos-id'] ?? ''));
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': String(body.length), 'x-fake-site': name });
        res.write(body.slice(0, body.length >> 1), () => setImmediate(() => req.socket.destroy()));
      }
    });
  });
  server.keepAliveTimeout = 60_000;
  server.on('connection', (s) => { sockets.add(s); s.on('close', () => sockets.delete(s)); });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address();

  const kill = async () => {
    for (const t of timers) clearTimeout(t);
    timers.clear();
    if (!server.listening) return;
    const closed = new Promise((resolve) => server.close(resolve));
    for (const s of sockets) s.destroy();
    await closed;
  };
  const revive = async () => {
    if (server.listening) return;
    for (let attempt = 0; ; attempt++) {
      try {
        await new Promise((resolve, reject) => { server.once('error', reject); server.listen(port, '127.0.0.1', () => { server.off('error', reject); resolve(); }); });
        return;
      } catch (err) {
        if (attempt >= 20) throw err;
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  };
  const stopFlapping = () => { clearTimeout(flapTimer); flapTimer = undefined; };

  return {
    name, building, port, url: `http://127.0.0.1:${port}`, arrivals, executed, cut,
    get mode() { return flapTimer ? 'flapping' : server.listening ? mode : 'killed'; },
    /** mode: ok | hang | 5xx | slow | cut; scope: all | traffic. */
    set(next, opts = {}) {
      mode = next;
      scope = opts.scope ?? 'all';
      delayMs = opts.delayMs ?? delayMs;
      // Open keep-alive sockets would keep serving under the old behaviour's timing: new mode, new connections.
      if (next !== 'ok') for (const s of sockets) s.destroy();
    },
    setChecksum(value) { checksum = value; },
    kill,
    revive,
    /** Up upMs, down downMs, repeating, until stopFlapping() or heal(). */
    flap(upMs, downMs) {
      stopFlapping();
      const cycle = async (up) => {
        if (up) await revive(); else await kill();
        flapTimer = setTimeout(() => void cycle(!up), up ? upMs : downMs);
      };
      void cycle(false);
    },
    stopFlapping,
    async heal() {
      stopFlapping();
      mode = 'ok';
      scope = 'all';
      await revive();
    },
    reset() { arrivals.length = 0; executed.clear(); cut.clear(); },
    async close() { stopFlapping(); await kill(); },
  };
}
