#!/usr/bin/env node
// What one access-log line costs the request path, without the noise of a
// whole proxy under load: begin() and the close handler for N fake requests,
// written to a file in the temp directory through the real destination.
//
//   npm run build && node bench/access-log-line.mjs [--lines 200000]
import { EventEmitter } from 'node:events';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { AccessLog } from '../dist/proxy/access-log.js';
import { silentLogger } from '../dist/logger.js';

const { values } = parseArgs({ options: { lines: { type: 'string', default: '200000' } } });
const lines = Number(values.lines);
const dir = mkdtempSync(join(tmpdir(), 'detour-access-log-'));
const file = join(dir, 'access.log');
const log = new AccessLog({ logger: silentLogger() });
log.update({ path: file, sample: 1 });
const socket = { remoteAddress: '203.0.113.9', bytesWritten: 0 };
const cpuBefore = process.cpuUsage();
const startedMs = performance.now();
for (let i = 0; i < lines; i++) {
  const req = { socket, headers: { host: 'ceir.example.go.id' }, method: 'GET', url: `/imei/${i}?x=1` };
  const res = Object.assign(new EventEmitter(), { headersSent: true, statusCode: 200, writableFinished: true });
  const note = log.begin(req, res);
  note.route = 'ceir';
  note.summary = () => ({ site: 'cyber1', status: 200, retries: 0 });
  socket.bytesWritten += 412;
  res.emit('close');
  // Let the destination write, as the event loop would between requests.
  if (i % 1000 === 0) await new Promise((resolve) => setImmediate(resolve));
}
const wallMs = performance.now() - startedMs;
const cpu = process.cpuUsage(cpuBefore);
await log.close();
const bytes = statSync(file).size;
rmSync(dir, { recursive: true, force: true });
console.log(`${lines} lines, ${(bytes / 1e6).toFixed(1)} MB: ${((cpu.user + cpu.system) / lines).toFixed(2)} us CPU and ${(wallMs * 1000 / lines).toFixed(2)} us wall per line`);
