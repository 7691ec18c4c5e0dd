#!/usr/bin/env node
// What detour costs per request, as ratios measured in one run on one machine:
// the same closed-loop load against (1) the site directly, (2) a bare
// http-proxy-3 proxy with a keep-alive agent, (3) detour with two sites and its
// probes running. Absolute numbers depend on the machine; the ratios are the
// result. Loopback only, bounded in time.
//
//   npm run build && node bench/proxy-overhead.mjs [--seconds 5] [--concurrency 32]
//
// The servers run in a child process so the load generator has its own core.
import http from 'node:http';
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: { seconds: { type: 'string', default: '5' }, concurrency: { type: 'string', default: '32' }, child: { type: 'boolean', default: false } },
});

if (values.child) {
  await runServers();
} else {
  await runBench(Number(values.seconds), Number(values.concurrency));
}

async function runServers() {
  const { createProxyServer } = await import('http-proxy-3');
  const { startGateway } = await import('../dist/gateway.js');
  const { parsePolicy } = await import('../dist/config/parse-policy.js');
  const body = JSON.stringify({ ok: true, pad: 'x'.repeat(512) });
  const listen = (server) => new Promise((r) => server.listen(0, '127.0.0.1', () => r(server.address().port)));
  const site = http.createServer((req, res) => {
    req.resume();
    res.writeHead(200, { 'content-type': 'application/json' }).end(body);
  });
  const backup = http.createServer((req, res) => { req.resume(); res.writeHead(200).end(body); });
  const sitePort = await listen(site);
  const backupPort = await listen(backup);

  const agent = new http.Agent({ keepAlive: true, maxSockets: 256 });
  const bare = createProxyServer({ target: `http://127.0.0.1:${sitePort}`, agent, xfwd: true });
  const bareServer = http.createServer((req, res) => bare.web(req, res, {}, () => { if (!res.headersSent) res.writeHead(502); res.end(); }));
  const barePort = await listen(bareServer);

  const parsed = parsePolicy(`
listen: { host: 127.0.0.1, port: 0 }
admin: { host: 127.0.0.1, port: 0 }
sites:
  primary: { url: "http://127.0.0.1:${sitePort}", building: a }
  backup: { url: "http://127.0.0.1:${backupPort}", building: b }
routes:
  - name: api
    sites: [primary, backup]
`, 'bench.yaml', {});
  if (!parsed.ok) throw new Error(JSON.stringify(parsed.errors));
  const gateway = await startGateway({ policy: parsed.policy });
  process.send({ direct: `http://127.0.0.1:${sitePort}/`, bare: `http://127.0.0.1:${barePort}/`, detour: `${gateway.proxyUrl}/` });
  process.on('message', async () => {
    await gateway.close();
    for (const s of [site, backup, bareServer]) s.close();
    agent.destroy();
    process.exit(0);
  });
}

async function runBench(seconds, concurrency) {
  const child = fork(fileURLToPath(import.meta.url), ['--child'], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const urls = await new Promise((resolve, reject) => {
    child.once('message', resolve);
    child.once('exit', (code) => reject(new Error(`server process exited ${code}`)));
  });
  const results = {};
  // Warm up each target, then measure; interleaving order would not matter much
  // on loopback, so keep it simple and fixed.
  for (const name of ['direct', 'bare', 'detour']) {
    await load(urls[name], 1, concurrency);
    results[name] = await load(urls[name], seconds, concurrency);
  }
  child.send('stop');
  await new Promise((r) => child.once('exit', r));

  const row = (name) => {
    const r = results[name];
    return `${name.padEnd(8)} ${String(Math.round(r.rps)).padStart(8)} req/s  p50 ${r.p50.toFixed(2)} ms  p99 ${r.p99.toFixed(2)} ms  errors ${r.errors}`;
  };
  console.log(`closed loop, ${concurrency} connections, ${seconds}s per target (absolute figures are this machine's)`);
  for (const name of ['direct', 'bare', 'detour']) console.log(row(name));
  const ratio = (a, b, k) => (results[a][k] / results[b][k]).toFixed(2);
  console.log('');
  console.log(`throughput  detour/bare ${ratio('detour', 'bare', 'rps')}   detour/direct ${ratio('detour', 'direct', 'rps')}   bare/direct ${ratio('bare', 'direct', 'rps')}`);
  console.log(`p50 latency detour/bare ${ratio('detour', 'bare', 'p50')}   detour/direct ${ratio('detour', 'direct', 'p50')}   bare/direct ${ratio('bare', 'direct', 'p50')}`);
  console.log(`p99 latency detour/bare ${ratio('detour', 'bare', 'p99')}   detour/direct ${ratio('detour', 'direct', 'p99')}   bare/direct ${ratio('bare', 'direct', 'p99')}`);
}

async function load(url, seconds, concurrency) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency });
  const latencies = [];
  let errors = 0;
  const deadline = Date.now() + seconds * 1000;
  const one = () => new Promise((resolve) => {
    const started = process.hrtime.bigint();
    const req = http.get(url, { agent }, (res) => {
      res.resume();
      res.on('end', () => {
        if (res.statusCode !== 200) errors++;
        latencies.push(Number(process.hrtime.bigint() - started) / 1e6);
        resolve();
      });
    });
    req.on('error', () => { errors++; resolve(); });
  });
  const worker = async () => { while (Date.now() < deadline) await one(); };
  const started = Date.now();
  await Promise.all(Array.from({ length: concurrency }, worker));
  const elapsed = (Date.now() - started) / 1000;
  agent.destroy();
  latencies.sort((a, b) => a - b);
  const q = (p) => latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))] ?? NaN;
  return { rps: latencies.length / elapsed, p50: q(0.5), p99: q(0.99), errors };
}
