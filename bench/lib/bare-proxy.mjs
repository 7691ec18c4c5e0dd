#!/usr/bin/env node
// The yardstick: the least a Node proxy can do with http-proxy-3, one target,
// a keep-alive agent, no failover, no metrics, no logs. What detour costs on
// top of Node itself is detour against this.
//
//   node bench/lib/bare-proxy.mjs TARGET_URL   (prints {"port":N} on IPC or stdout)
import http from 'node:http';
import { createProxyServer } from 'http-proxy-3';

const target = process.argv[2];
const agent = new http.Agent({ keepAlive: true, maxSockets: 256, maxFreeSockets: 256 });
const proxy = createProxyServer({ target, agent, xfwd: true });
const server = http.createServer((req, res) => proxy.web(req, res, {}, () => {
  if (!res.headersSent) res.writeHead(502);
  res.end();
}));
server.listen(0, '127.0.0.1', () => {
  const ready = { port: server.address().port };
  if (process.send) process.send(ready);
  else console.log(JSON.stringify(ready));
});
process.on('disconnect', () => process.exit(0));
// A normal exit on SIGTERM, so `node --cpu-prof` writes its profile.
process.on('SIGTERM', () => process.exit(0));
