#!/usr/bin/env node
// The yardstick: the least a Node proxy can do with http-proxy-3, one target,
// a keep-alive agent, no failover, no metrics, no logs. What detour costs on
// top of Node itself is detour against this.
//
//   node bench/lib/bare-proxy.mjs TARGET_URL [set|list]   (prints {"port":N} on IPC or stdout)
//
// `set` or `list` (bench/gc-survivors.mjs only): also keep every request in
// flight in a Set, or in detour's LiveList, from its arrival until its
// response closes, as a gateway must to move or cut off requests in flight.
import http from 'node:http';
import { createProxyServer } from 'http-proxy-3';

const target = process.argv[2];
const track = process.argv[3];
const { LiveList } = track === 'list' ? await import('../../dist/proxy/live-list.js') : {};
const inFlight = track === 'set' ? new Set() : track === 'list' ? new LiveList() : undefined;
const agent = new http.Agent({ keepAlive: true, maxSockets: 256, maxFreeSockets: 256 });
const proxy = createProxyServer({ target, agent, xfwd: true });
const server = http.createServer((req, res) => {
  if (inFlight instanceof Set) {
    inFlight.add(res);
    res.on('close', () => inFlight.delete(res));
  } else if (inFlight) {
    const entry = inFlight.add(res);
    res.on('close', () => inFlight.remove(entry));
  }
  proxy.web(req, res, {}, () => {
    if (!res.headersSent) res.writeHead(502);
    res.end();
  });
});
server.listen(0, '127.0.0.1', () => {
  const ready = { port: server.address().port };
  if (process.send) process.send(ready);
  else console.log(JSON.stringify(ready));
});
process.on('disconnect', () => process.exit(0));
// A normal exit on SIGTERM, so `node --cpu-prof` writes its profile.
process.on('SIGTERM', () => process.exit(0));
