#!/usr/bin/env node
// A site for the benches, in its own process so that the proxies and the load
// generator do not share its event loop. Answers every request with 200 and a
// small JSON body naming itself; the parent may switch it to answering 503
// (`{ mode: '503' }`) or back (`{ mode: 'ok' }`) over IPC. Killing and hanging
// are done to the process itself (SIGKILL, SIGSTOP/SIGCONT), as they happen to
// a real one.
//
//   node bench/lib/backend.mjs NAME [PORT]   (PORT 0 or absent: a free one; prints {"port":N} on IPC or stdout)
import http from 'node:http';

const name = process.argv[2] ?? 'site';
const port = Number(process.argv[3] ?? 0);
const ok = Buffer.from(JSON.stringify({ site: name, pad: 'x'.repeat(256) }));
const unavailable = Buffer.from(JSON.stringify({ site: name, status: 503 }));
let mode = 'ok';

const server = http.createServer((req, res) => {
  req.resume();
  if (mode === '503') {
    res.writeHead(503, { 'content-type': 'application/json', 'content-length': unavailable.length }).end(unavailable);
    return;
  }
  res.writeHead(200, { 'content-type': 'application/json', 'content-length': ok.length }).end(ok);
});
// Longer than any proxy's idle timeout for pooled connections, so the site is not the one closing them.
server.keepAliveTimeout = 65_000;
server.listen(port, '127.0.0.1', () => {
  const ready = { port: server.address().port };
  if (process.send) process.send(ready);
  else console.log(JSON.stringify(ready));
});
process.on('message', (m) => {
  if (m && typeof m.mode === 'string') mode = m.mode;
  process.send?.({ mode });
});
process.on('disconnect', () => process.exit(0));
// A normal exit on SIGTERM, so `node --cpu-prof` writes its profile.
process.on('SIGTERM', () => process.exit(0));
