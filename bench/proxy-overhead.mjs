#!/usr/bin/env node
// What detour costs per request, as ratios measured in one run on one machine:
// the same closed-loop load against (1) the site directly, (2) a bare
// http-proxy-3 proxy with a keep-alive agent, (3) detour with two sites and its
// probes running. Absolute numbers depend on the machine; the ratios are the
// result. Loopback only, bounded in time.
//
//   npm run build && node bench/proxy-overhead.mjs [--seconds 5] [--concurrency 32] [--access-log]
//   npm run bench -- --access-log
//
// --access-log adds a fourth target: detour with `accessLog` writing every
// request to a file in the temp directory, and prints its cost against
// detour without one (alternating rounds; throughput, latency and the server
// process's CPU time per request). --noise-check runs the same comparison
// between two gateways without an access log: the difference it shows is the
// measurement's noise on this machine.
//
// The servers run in a child process so the load generator has its own core.
import http from 'node:http';
import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '5' }, concurrency: { type: 'string', default: '32' },
    child: { type: 'boolean', default: false }, 'access-log': { type: 'boolean', default: false },
    // With --access-log: give the second gateway no access log either, to see the noise between two equal ones.
    'noise-check': { type: 'boolean', default: false },
    // Internal: the file the child's second gateway logs to.
    'log-file': { type: 'string' },
  },
});

if (values.child) {
  await runServers(values['log-file']);
} else {
  await runBench(Number(values.seconds), Number(values.concurrency), values['access-log']);
}

async function runServers(accessLogFile) {
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

  const policyText = (extra) => `
listen: { host: 127.0.0.1, port: 0 }
admin: { host: 127.0.0.1, port: 0 }
sites:
  primary: { url: "http://127.0.0.1:${sitePort}", building: a }
  backup: { url: "http://127.0.0.1:${backupPort}", building: b }
routes:
  - name: api
    sites: [primary, backup]
${extra}`;
  const start = async (extra) => {
    const parsed = parsePolicy(policyText(extra), 'bench.yaml', {});
    if (!parsed.ok) throw new Error(JSON.stringify(parsed.errors));
    return startGateway({ policy: parsed.policy });
  };
  const gateway = await start('');
  const logged = accessLogFile ? await start(values['noise-check'] ? '' : `accessLog: { path: ${JSON.stringify(accessLogFile)} }`) : undefined;
  process.send({
    direct: `http://127.0.0.1:${sitePort}/`, bare: `http://127.0.0.1:${barePort}/`, detour: `${gateway.proxyUrl}/`,
    ...(logged ? { 'detour+log': `${logged.proxyUrl}/` } : {}),
  });
  process.on('message', async (m) => {
    // CPU time of this process (sites and gateways), read around a load phase.
    if (m === 'cpu') return process.send({ cpu: process.cpuUsage() });
    await gateway.close();
    await logged?.close();
    for (const s of [site, backup, bareServer]) s.close();
    agent.destroy();
    process.exit(0);
  });
}

async function runBench(seconds, concurrency, withAccessLog) {
  const logDir = withAccessLog ? mkdtempSync(join(tmpdir(), 'detour-bench-')) : undefined;
  const logFile = logDir ? join(logDir, 'access.log') : undefined;
  const args = ['--child', ...(logFile ? ['--log-file', logFile] : []), ...(values['noise-check'] ? ['--noise-check'] : [])];
  const child = fork(fileURLToPath(import.meta.url), args, { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const targets = ['direct', 'bare', 'detour', ...(logFile ? ['detour+log'] : [])];
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
  if (logFile) {
    // With and without the access log in alternating rounds, so a busy moment
    // of the machine does not land on one side only.
    // Throughput on a busy machine is noisy; CPU time of the server process
    // per request is the steadier measure of what the log costs.
    const cpu = async () => new Promise((resolve) => {
      child.once('message', (m) => resolve(m.cpu.user + m.cpu.system));
      child.send('cpu');
    });
    const measured = async (name) => {
      const before = await cpu();
      const r = await load(urls[name], seconds, concurrency);
      return { ...r, cpuUs: (await cpu()) - before };
    };
    await load(urls['detour+log'], 1, concurrency);
    const rounds = { detour: [], 'detour+log': [] };
    for (let i = 0; i < 3; i++) {
      rounds['detour+log'].push(await measured('detour+log'));
      rounds.detour.push(await measured('detour'));
    }
    results.detour = merge(rounds.detour);
    results['detour+log'] = merge(rounds['detour+log']);
    for (const name of ['detour', 'detour+log']) {
      const requests = rounds[name].reduce((n, r) => n + r.latencies.length, 0);
      results[name].cpuUsPerRequest = rounds[name].reduce((n, r) => n + r.cpuUs, 0) / requests;
    }
  }
  child.send('stop');
  await new Promise((r) => child.once('exit', r));
  const logBytes = logFile && existsSync(logFile) ? statSync(logFile).size : 0;
  if (logDir) rmSync(logDir, { recursive: true, force: true });

  const row = (name) => {
    const r = results[name];
    return `${name.padEnd(10)} ${String(Math.round(r.rps)).padStart(8)} req/s  p50 ${r.p50.toFixed(2)} ms  p99 ${r.p99.toFixed(2)} ms  errors ${r.errors}`;
  };
  console.log(`closed loop, ${concurrency} connections, ${seconds}s per target (absolute figures are this machine's)`);
  for (const name of targets) console.log(row(name));
  const ratio = (a, b, k) => (results[a][k] / results[b][k]).toFixed(2);
  console.log('');
  console.log(`throughput  detour/bare ${ratio('detour', 'bare', 'rps')}   detour/direct ${ratio('detour', 'direct', 'rps')}   bare/direct ${ratio('bare', 'direct', 'rps')}`);
  console.log(`p50 latency detour/bare ${ratio('detour', 'bare', 'p50')}   detour/direct ${ratio('detour', 'direct', 'p50')}   bare/direct ${ratio('bare', 'direct', 'p50')}`);
  console.log(`p99 latency detour/bare ${ratio('detour', 'bare', 'p99')}   detour/direct ${ratio('detour', 'direct', 'p99')}   bare/direct ${ratio('bare', 'direct', 'p99')}`);
  if (logFile) {
    console.log('');
    console.log(`access log  throughput with/without ${ratio('detour+log', 'detour', 'rps')}   p50 ${ratio('detour+log', 'detour', 'p50')}   p99 ${ratio('detour+log', 'detour', 'p99')}   (${(logBytes / 1e6).toFixed(1)} MB of lines written)`);
    const [without, withLog] = [results.detour.cpuUsPerRequest, results['detour+log'].cpuUsPerRequest];
    console.log(`access log  server CPU per request ${without.toFixed(0)} us without, ${withLog.toFixed(0)} us with: x${(withLog / without).toFixed(3)} (sites included in both)`);
  }
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
  return summarize(latencies, elapsed, errors);
}

function summarize(latencies, elapsed, errors) {
  latencies.sort((a, b) => a - b);
  const q = (p) => latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))] ?? NaN;
  return { rps: latencies.length / elapsed, p50: q(0.5), p99: q(0.99), errors, latencies, elapsed };
}

function merge(runs) {
  return summarize(runs.flatMap((r) => r.latencies), runs.reduce((n, r) => n + r.elapsed, 0), runs.reduce((n, r) => n + r.errors, 0));
}
