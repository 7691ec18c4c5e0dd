// Reproduces, without detour, the open bug "a worker killed" shows (README, Reliability,
// Found by the suite): under node:cluster's round-robin scheduling, SIGKILL one of two
// workers while new connections arrive, and one connection hangs (neither answered nor
// reset) until the client's 4 s timeout. With NODE_CLUSTER_SCHED_POLICY=none none hangs.
//   node bench/chaos/cluster-rr-hang.cjs        -> {"ok":819,"reset":0,"hung":1} (node 20.20.2)
//   NODE_CLUSTER_SCHED_POLICY=none node bench/chaos/cluster-rr-hang.cjs -> hung 0
const cluster = require('node:cluster'); const http = require('node:http');
if (cluster.isWorker) {
  const srv = http.createServer((q, s) => s.end('ok')).listen(0, '127.0.0.1', () => process.send({ port: srv.address().port }));
} else {
  const ws = [cluster.fork(), cluster.fork()];
  let port; let ready = 0;
  for (const w of ws) w.on('message', (m) => { port = m.port; if (++ready === 2) go(); });
  async function go() {
    const res = { ok: 0, reset: 0, hung: 0 }; const ps = [];
    const t0 = Date.now();
    const timer = setInterval(() => {
      for (let i = 0; i < 5; i++) ps.push(new Promise((r) => {
        const q = http.get({ host: '127.0.0.1', port, path: '/', agent: false }, (s) => { s.resume(); s.on('end', () => { res.ok++; r(); }); });
        q.setTimeout(4000, () => { res.hung++; q.destroy(); r(); });
        q.on('error', () => { res.reset++; r(); });
      }));
    }, 2);
    setTimeout(() => { process.kill(ws[0].process.pid, 'SIGKILL'); }, 1000);
    setTimeout(async () => { clearInterval(timer); await Promise.all(ps); console.log(JSON.stringify(res), 'sent', ps.length); ws[1].kill(); process.exit(0); }, 1500);
  }
}
