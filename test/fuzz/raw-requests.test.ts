// A raw-socket request fuzzer against a running gateway. Hand-written malformed
// requests (framing two parsers could read differently, bad chunk sizes,
// obs-fold, control characters, overlong lines, bad methods, targets and
// versions) and seeded random mutations of valid requests are written over
// net.Socket. The site behind the gateway records the raw bytes of every
// connection and checks them itself, so the oracle does not depend on what the
// gateway thinks it sent:
//   - the gateway answers every request with a status line or closes the
//     connection, within its own limits (no hang), and a malformed one gets a
//     4xx or a closed connection, never reaching the site complete;
//   - every request the site receives is well formed: an origin-form target,
//     HTTP/1.1, token header names, no CR, LF, NUL or other control character
//     in a value, no folded line, at most one Content-Length and never both
//     Content-Length and Transfer-Encoding, chunk sizes it can parse, and no
//     bytes past the message's end (a smuggled second request);
//   - a smuggled request (`/smuggled-N`) never reaches the site;
//   - after every batch a normal request is still answered 200.
import t from 'tap';
import fc from 'fast-check';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { connect, type Socket } from 'node:net';
import { startRig } from '../helpers/gateway.js';
import { waitFor } from '../helpers/wait.js';

const SEED = 20261201;

interface Received {
  readonly path: string;
  readonly marker: string | undefined;
  /** The body arrived in full (a request cut off mid-body is not "received"). */
  readonly complete: boolean;
}

interface RecordingSite {
  readonly url: string;
  readonly received: Received[];
  readonly problems: string[];
  /** Connections accepted, and closed (their bytes checked). */
  readonly connections: { opened: number; checked: number };
  close(): Promise<void>;
}

const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
// eslint-disable-next-line no-control-regex
const CONTROL = /[\x00-\x08\x0a-\x1f\x7f]/;

/**
 * Check one upstream connection's bytes: one request (the site answers
 * `connection: close`), well formed, nothing after its end.
 */
export function checkForwarded(raw: Buffer): string[] {
  const text = raw.toString('latin1');
  if (text.length === 0) return [];
  const show = (s: string): string => JSON.stringify(s.slice(0, 120));
  const end = text.indexOf('\r\n\r\n');
  if (end === -1) return [`head never ended: ${show(text)}`];
  const lines = text.slice(0, end).split('\r\n');
  const problems: string[] = [];
  const requestLine = lines.shift()!;
  const m = /^(\S+) (\S+) HTTP\/1\.1$/.exec(requestLine);
  if (!m || !TOKEN.test(m[1]!) || !m[2]!.startsWith('/') || CONTROL.test(m[2]!)) problems.push(`request line ${show(requestLine)}`);
  const headers: Array<[string, string]> = [];
  for (const line of lines) {
    if (/^[ \t]/.test(line)) { problems.push(`folded header line ${show(line)}`); continue; }
    const colon = line.indexOf(':');
    const name = colon > 0 ? line.slice(0, colon) : '';
    const value = line.slice(colon + 1);
    if (!TOKEN.test(name)) problems.push(`header name ${show(line)}`);
    if (CONTROL.test(value) || value.includes('\r') || value.includes('\n')) problems.push(`control character in header ${show(line)}`);
    headers.push([name.toLowerCase(), value.trim()]);
  }
  const lengths = headers.filter(([n]) => n === 'content-length');
  const codings = headers.filter(([n]) => n === 'transfer-encoding');
  if (lengths.length > 1) problems.push(`${lengths.length} Content-Length headers`);
  if (lengths.length > 0 && codings.length > 0) problems.push('both Content-Length and Transfer-Encoding');
  if (codings.length > 1 || (codings.length === 1 && codings[0]![1].toLowerCase() !== 'chunked')) problems.push(`Transfer-Encoding ${show(codings.map(([, v]) => v).join(', '))}`);
  if (lengths.length === 1 && !/^\d+$/.test(lengths[0]![1])) problems.push(`Content-Length ${show(lengths[0]![1])}`);
  if (headers.filter(([n]) => n === 'host').length !== 1) problems.push('not exactly one Host');
  const body = text.slice(end + 4);
  if (codings.length === 1) {
    problems.push(...checkChunked(body));
  } else if (lengths.length === 1) {
    if (body.length > Number(lengths[0]![1])) problems.push(`${body.length - Number(lengths[0]![1])} bytes past Content-Length: ${show(body.slice(Number(lengths[0]![1])))}`);
  } else if (body.length > 0) {
    problems.push(`bytes after a request without a body: ${show(body)}`);
  }
  return problems;
}

/** A chunked body, strictly: it may be cut short (the gateway gave up on it), never malformed or followed by more. */
function checkChunked(body: string): string[] {
  let at = 0;
  for (;;) {
    const eol = body.indexOf('\r\n', at);
    if (eol === -1) return /^[0-9A-Fa-f]*$/.test(body.slice(at)) ? [] : [`chunk size ${JSON.stringify(body.slice(at, at + 40))}`];
    const line = body.slice(at, eol);
    if (!/^[0-9A-Fa-f]{1,15}(;[^\r\n]*)?$/.test(line)) return [`chunk size ${JSON.stringify(line.slice(0, 40))}`];
    const size = parseInt(line, 16);
    at = eol + 2;
    if (size === 0) {
      // Trailers (none expected), then the empty line; nothing after it.
      const rest = body.slice(at);
      if (rest === '' || rest === '\r' || '\r\n'.startsWith(rest)) return [];
      if (!rest.startsWith('\r\n')) return [`trailer after the last chunk: ${JSON.stringify(rest.slice(0, 60))}`];
      return rest.length > 2 ? [`bytes after the chunked body: ${JSON.stringify(rest.slice(2, 80))}`] : [];
    }
    if (body.length < at + size) return []; // cut short
    at += size;
    const tail = body.slice(at, at + 2);
    if (tail.length === 2 && tail !== '\r\n') return [`chunk of ${size} bytes not followed by CRLF`];
    if (tail.length < 2) return '\r\n'.startsWith(tail) ? [] : [`chunk of ${size} bytes not followed by CRLF`];
    at += 2;
  }
}

async function startRecordingSite(): Promise<RecordingSite> {
  const received: Received[] = [];
  const problems: string[] = [];
  const connections = { opened: 0, checked: 0 };
  const server: Server = createServer((req: IncomingMessage, res) => {
    let complete = false;
    req.on('data', () => {});
    req.on('error', () => {}); // the gateway gave up on the request mid-body: not received
    res.on('error', () => {});
    req.on('end', () => { complete = true; });
    req.on('close', () => {
      if (req.url !== '/healthz') {
        const marker = req.headers['x-fz'];
        received.push({ path: req.url ?? '', marker: typeof marker === 'string' ? marker : undefined, complete });
      }
    });
    req.on('end', () => {
      res.writeHead(200, { 'content-type': 'text/plain', connection: 'close' });
      res.end('ok');
    });
  });
  // Node's own strict parser on the site side: a parse error here is a malformed request forwarded.
  server.on('clientError', (err: Error & { code?: string }, socket) => {
    if (err.code?.startsWith('HPE_')) problems.push(`the site's parser refused what it received: ${err.code} ${err.message}`);
    socket.destroy();
  });
  server.on('connection', (socket: Socket) => {
    connections.opened++;
    const chunks: Buffer[] = [];
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('error', () => {});
    socket.on('close', () => {
      problems.push(...checkForwarded(Buffer.concat(chunks)));
      connections.checked++;
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  return {
    url: `http://127.0.0.1:${port}`, received, problems, connections,
    close: () => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()); }),
  };
}

interface Outcome {
  /** Status of the first response, or null when the connection closed without one. */
  readonly status: number | null;
  /** The gateway neither answered nor closed within the client's patience. */
  readonly hung: boolean;
  readonly raw: string;
}

/** Write `bytes` on a fresh connection; read until one response is complete, the gateway closes, or `patienceMs`. */
function exchange(port: number, bytes: Buffer, patienceMs: number): Promise<Outcome> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    let data = Buffer.alloc(0);
    let settled = false;
    const finish = (hung: boolean): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      const text = data.toString('latin1');
      const m = /^HTTP\/1\.[01] (\d{3}) /.exec(text);
      resolve({ status: m ? Number(m[1]) : null, hung, raw: text.slice(0, 200) });
    };
    const timer = setTimeout(() => finish(true), patienceMs);
    socket.on('data', (c: Buffer) => {
      data = Buffer.concat([data, c]);
      const text = data.toString('latin1');
      const end = text.indexOf('\r\n\r\n');
      if (end === -1) return;
      const length = /\r\ncontent-length: *(\d+)/i.exec(text.slice(0, end));
      if (length && text.length >= end + 4 + Number(length[1])) finish(false);
      else if (!length && /\r\ntransfer-encoding: *chunked/i.test(text.slice(0, end)) && text.endsWith('0\r\n\r\n')) finish(false);
    });
    socket.on('error', () => finish(false));
    socket.on('close', () => finish(false));
    socket.on('connect', () => socket.write(bytes));
  });
}

type Expect = 'refused' | 'any';
interface Case { readonly name: string; readonly expect: Expect; readonly bytes: Buffer }

const CRLF = '\r\n';
const head = (n: number, lines: string[], requestLine = `GET /fz/${n} HTTP/1.1`): string => [requestLine, 'Host: gw.test', `X-Fz: ${n}`, ...lines].join(CRLF) + CRLF + CRLF;
const smuggled = (n: number): string => `GET /smuggled-${n} HTTP/1.1\r\nHost: gw.test\r\nX-Fz: s${n}\r\n\r\n`;

/** Requests any careful parser must refuse (or close on), each with its own marker. */
function malformedCases(): Array<(n: number) => Case> {
  const c = (name: string, expect: Expect, build: (n: number) => string | Buffer) => (n: number): Case => {
    const b = build(n);
    return { name, expect, bytes: typeof b === 'string' ? Buffer.from(b, 'latin1') : b };
  };
  const post = (n: number, lines: string[], body: string) => head(n, lines, `POST /fz/${n} HTTP/1.1`) + body;
  return [
    // Framing: the classic smuggling shapes.
    c('CL + TE', 'refused', (n) => post(n, ['Content-Length: 6', 'Transfer-Encoding: chunked'], `0\r\n\r\n${smuggled(n)}`)),
    c('TE + CL', 'refused', (n) => post(n, ['Transfer-Encoding: chunked', 'Content-Length: 40'], `0\r\n\r\n${smuggled(n)}`)),
    c('two different Content-Length', 'refused', (n) => post(n, ['Content-Length: 5', 'Content-Length: 6'], 'hello!')),
    c('two equal Content-Length', 'refused', (n) => post(n, ['Content-Length: 5', 'Content-Length: 5'], 'hello')),
    c('Content-Length list', 'refused', (n) => post(n, ['Content-Length: 5, 5'], 'hello')),
    c('negative Content-Length', 'refused', (n) => post(n, ['Content-Length: -1'], 'x')),
    c('Content-Length not a number', 'refused', (n) => post(n, ['Content-Length: 1e2'], 'x')),
    c('Content-Length with a plus', 'refused', (n) => post(n, ['Content-Length: +5'], 'hello')),
    c('two Transfer-Encoding', 'refused', (n) => post(n, ['Transfer-Encoding: chunked', 'Transfer-Encoding: chunked'], '0\r\n\r\n')),
    c('Transfer-Encoding gzip', 'refused', (n) => post(n, ['Transfer-Encoding: gzip'], smuggled(n))),
    c('Transfer-Encoding list', 'refused', (n) => post(n, ['Transfer-Encoding: gzip, chunked'], '0\r\n\r\n')),
    c('Transfer-Encoding xchunked', 'refused', (n) => post(n, ['Transfer-Encoding: xchunked'], '0\r\n\r\n')),
    c('Transfer-Encoding with a space before the colon', 'refused', (n) => post(n, ['Transfer-Encoding : chunked', 'Content-Length: 5'], '0\r\n\r\n')),
    c('Transfer-Encoding with a vertical tab', 'refused', (n) => post(n, ['Transfer-Encoding:\x0bchunked'], '0\r\n\r\n')),
    c('Transfer-Encoding on HTTP/1.0', 'refused', (n) => head(n, ['Transfer-Encoding: chunked'], `POST /fz/${n} HTTP/1.0`) + '0\r\n\r\n'),
    // Chunk sizes.
    c('chunk size not hex', 'refused', (n) => post(n, ['Transfer-Encoding: chunked'], 'zz\r\nhello\r\n0\r\n\r\n')),
    c('negative chunk size', 'refused', (n) => post(n, ['Transfer-Encoding: chunked'], '-1\r\nh\r\n0\r\n\r\n')),
    c('chunk size 0x5', 'refused', (n) => post(n, ['Transfer-Encoding: chunked'], '0x5\r\nhello\r\n0\r\n\r\n')),
    c('chunk size with a space inside', 'refused', (n) => post(n, ['Transfer-Encoding: chunked'], '5 5\r\nhello\r\n0\r\n\r\n')),
    c('chunk size overflow', 'refused', (n) => post(n, ['Transfer-Encoding: chunked'], 'fffffffffffffffff\r\nhello\r\n0\r\n\r\n')),
    c('chunk size ended by a bare LF', 'refused', (n) => post(n, ['Transfer-Encoding: chunked'], '5\nhello\r\n0\r\n\r\n')),
    c('chunk longer than its size', 'refused', (n) => post(n, ['Transfer-Encoding: chunked'], `5\r\nhello world\r\n0\r\n\r\n${smuggled(n)}`)),
    c('chunk not ended by CRLF', 'refused', (n) => post(n, ['Transfer-Encoding: chunked'], '5\r\nhelloXX0\r\n\r\n')),
    c('bad chunk after 70 KB streamed', 'refused', (n) => post(n, ['Transfer-Encoding: chunked'], `${(70_000).toString(16)}\r\n${'a'.repeat(70_000)}\r\nzz\r\n\r\n`)),
    // Header lines.
    c('obs-fold', 'any', (n) => head(n, ['X-Folded: a', ' b'])),
    c('obs-fold with a tab', 'any', (n) => head(n, ['X-Folded: a', '\tTransfer-Encoding: chunked'])),
    c('NUL in a header value', 'refused', (n) => head(n, ['X-Bad: a\x00b'])),
    c('bare CR in a header value', 'refused', (n) => head(n, ['X-Bad: a\rTransfer-Encoding: chunked'])),
    c('bare LF between headers', 'refused', (n) => head(n, ['X-Bad: a\nContent-Length: 5'])),
    c('DEL in a header value', 'refused', (n) => head(n, ['X-Bad: a\x7fb'])),
    c('escape in a header value', 'refused', (n) => head(n, ['X-Bad: \x1b[31mred'])),
    c('space before the colon', 'refused', (n) => head(n, ['X-Bad : a'])),
    c('no colon', 'refused', (n) => head(n, ['X-Bad'])),
    c('empty header name', 'refused', (n) => head(n, [': a'])),
    c('header name with a slash', 'refused', (n) => head(n, ['X/Bad: a'])),
    c('overlong header value', 'refused', (n) => head(n, [`X-Long: ${'a'.repeat(20_000)}`])),
    c('too many header bytes', 'refused', (n) => head(n, Array.from({ length: 400 }, (_, i) => `X-H${i}: ${'b'.repeat(50)}`))),
    c('no Host', 'refused', (n) => `GET /fz/${n} HTTP/1.1\r\nX-Fz: ${n}\r\n\r\n`),
    c('two Host headers', 'refused', (n) => head(n, ['Host: other.test'])),
    c('Host with a path', 'refused', (n) => head(n, []).replace('Host: gw.test', 'Host: gw.test/evil')),
    // Request lines.
    c('overlong request line', 'refused', (n) => head(n, [], `GET /fz/${n}/${'a'.repeat(20_000)} HTTP/1.1`)),
    c('method with a space', 'refused', (n) => head(n, [], `G ET /fz/${n} HTTP/1.1`)),
    c('method with a parenthesis', 'refused', (n) => head(n, [], `G(T /fz/${n} HTTP/1.1`)),
    c('empty method', 'refused', (n) => head(n, [], ` /fz/${n} HTTP/1.1`)),
    c('unknown method', 'any', (n) => head(n, [], `BREW /fz/${n} HTTP/1.1`)),
    c('lowercase method', 'any', (n) => head(n, [], `get /fz/${n} HTTP/1.1`)),
    c('tab between method and target', 'refused', (n) => head(n, [], `GET\t/fz/${n} HTTP/1.1`)),
    c('two spaces after the method', 'any', (n) => head(n, [], `GET  /fz/${n} HTTP/1.1`)),
    c('space inside the target', 'refused', (n) => head(n, [], `GET /fz/${n} x HTTP/1.1`)),
    c('NUL in the target', 'refused', (n) => head(n, [], `GET /fz/${n}\x00 HTTP/1.1`)),
    c('control character in the target', 'refused', (n) => head(n, [], `GET /fz/${n}\x01 HTTP/1.1`)),
    c('absolute-form target', 'any', (n) => head(n, [], `GET http://gw.test/fz/${n} HTTP/1.1`)),
    c('absolute-form target naming another host', 'any', (n) => head(n, [], `GET http://127.0.0.2:1/fz/${n} HTTP/1.1`)),
    c('absolute-form with userinfo', 'any', (n) => head(n, [], `GET http://user@gw.test/fz/${n} HTTP/1.1`)),
    c('authority-form on GET', 'refused', (n) => head(n, [], 'GET gw.test:80 HTTP/1.1')),
    c('asterisk-form on GET', 'any', (n) => head(n, [], 'GET * HTTP/1.1')),
    c('relative target', 'refused', (n) => head(n, [], `GET fz/${n} HTTP/1.1`)),
    c('encoded slash in the target', 'refused', (n) => head(n, [], `GET /fz/${n}/..%2f..%2fadmin HTTP/1.1`)),
    c('dot segments in the target', 'refused', (n) => head(n, [], `GET /fz/${n}/../../admin HTTP/1.1`)),
    c('HTTP/1.2', 'refused', (n) => head(n, [], `GET /fz/${n} HTTP/1.2`)),
    c('HTTP/2.0', 'refused', (n) => head(n, [], `GET /fz/${n} HTTP/2.0`)),
    c('HTTP/9.9', 'refused', (n) => head(n, [], `GET /fz/${n} HTTP/9.9`)),
    c('HTTP/1', 'refused', (n) => head(n, [], `GET /fz/${n} HTTP/1`)),
    c('HTTP/1.1x', 'refused', (n) => head(n, [], `GET /fz/${n} HTTP/1.1x`)),
    c('lowercase version', 'refused', (n) => head(n, [], `GET /fz/${n} http/1.1`)),
    c('HTTP/0.9 request line', 'refused', (n) => `GET /fz/${n}\r\n\r\n`),
    c('no version', 'refused', (n) => head(n, [], `GET /fz/${n}`)),
    c('request line ended by a bare LF', 'refused', (n) => `GET /fz/${n} HTTP/1.1\nHost: gw.test\r\nX-Fz: ${n}\r\n\r\n`),
    c('binary garbage', 'refused', () => Buffer.from([0x16, 0x03, 0x01, 0x00, 0xa5, 0x01, 0x00, 0x00, 0xa1, 0x03, 0x03, 0x0d, 0x0a, 0x0d, 0x0a])),
  ];
}

const valid = (n: number): string => head(n, ['Content-Length: 5', 'Content-Type: text/plain'], `POST /fz/${n} HTTP/1.1`) + 'hello';
const validChunked = (n: number): string => head(n, ['Transfer-Encoding: chunked'], `PUT /fz/${n} HTTP/1.1`) + '5\r\nhello\r\n0\r\n\r\n';

/** Seeded mutations of a valid request: a dangerous byte inserted, a byte dropped or replaced, a line repeated. */
const mutationArb = fc.record({
  base: fc.constantFrom(0, 1),
  edits: fc.array(fc.record({
    op: fc.constantFrom('insert', 'replace', 'delete', 'duplicate-line'),
    at: fc.nat(),
    byte: fc.constantFrom('\r', '\n', '\x00', ' ', '\t', ':', ',', '\x0b', '\x7f', '\xff', '0', 'f', 'G', ';', '"'),
  }), { minLength: 1, maxLength: 3 }),
});

function mutate(n: number, m: { base: number; edits: Array<{ op: string; at: number; byte: string }> }): Case {
  let s = m.base === 0 ? valid(n) : validChunked(n);
  for (const e of m.edits) {
    const at = e.at % (s.length + 1);
    if (e.op === 'insert') s = s.slice(0, at) + e.byte + s.slice(at);
    else if (e.op === 'replace') s = s.slice(0, at) + e.byte + s.slice(at + 1);
    else if (e.op === 'delete') s = s.slice(0, at) + s.slice(at + 1);
    else {
      const lines = s.split(CRLF);
      const i = at % Math.max(1, lines.length - 3) + 1; // a header line, not the request line
      lines.splice(i, 0, lines[i]!);
      s = lines.join(CRLF);
    }
  }
  return { name: `mutation ${JSON.stringify(m.edits.map((e) => `${e.op}@${e.at % 100}:${JSON.stringify(e.byte)}`))}`, expect: 'any', bytes: Buffer.from(s, 'latin1') };
}

t.test('malformed and mutated requests: answered or closed, never forwarded malformed; the gateway stays responsive', async (t) => {
  const site = await startRecordingSite();
  t.teardown(() => site.close());
  // Short head and request limits, so a request left incomplete by a mutation is closed by the gateway in about a second.
  const rig = await startRig(t, [], () => ({
    sites: [{ name: 's1', url: site.url, health: { intervalMs: 200, timeoutMs: 1000, rise: 1, fall: 3, jitter: 0 } }],
    routes: [{ name: 'all', sites: ['s1'], match: { pathPrefix: '/' } }],
    limits: { headersTimeoutMs: 1000, requestTimeoutMs: 1500 },
  }));
  const port = rig.gateway.proxyAddress.port;
  await waitFor(async () => (await rig.admin('GET', '/status')).json?.sites?.[0]?.health === 'up', { timeoutMs: 10_000, message: 's1 up' });

  const cases: Case[] = [];
  let n = 0;
  for (const build of malformedCases()) cases.push(build(++n));
  for (const m of fc.sample(mutationArb, { seed: SEED, numRuns: 150 })) cases.push(mutate(++n, m));
  // Controls: the same shapes unmutated must go through, or the fuzzer would pass on a gateway that refuses everything.
  const controls = [valid(++n), validChunked(++n)].map((s, i) => ({ name: `control ${i}`, expect: 'any' as const, bytes: Buffer.from(s, 'latin1'), marker: String(n - 1 + i) }));

  const byMarker = new Map<string, Case>();
  cases.forEach((c, i) => byMarker.set(String(i + 1), c));
  const outcomes: Array<{ c: Case; o: Outcome }> = [];
  const BATCH = 20;
  for (let i = 0; i < cases.length; i += BATCH) {
    const batch = cases.slice(i, i + BATCH);
    // Patience beyond the gateway's own limits: headersTimeout 1 s + its 500 ms check interval + a loaded machine.
    const results = await Promise.all(batch.map((c) => exchange(port, c.bytes, 6000)));
    batch.forEach((c, j) => outcomes.push({ c, o: results[j]! }));
    const normal = await exchange(port, Buffer.from(`GET /after-batch-${i} HTTP/1.1\r\nHost: gw.test\r\n\r\n`), 5000);
    t.equal(normal.status, 200, `a normal request is answered 200 after batch ${i / BATCH + 1}`);
  }
  for (const c of controls) {
    const o = await exchange(port, c.bytes, 5000);
    t.equal(o.status, 200, `${c.name} answered 200 (${o.raw.split('\r\n')[0]})`);
  }

  let refusedAnswered = 0;
  for (const { c, o } of outcomes) {
    t.notOk(o.hung, `${c.name}: answered or closed by the gateway, not left hanging`);
    if (o.status !== null) t.ok(o.status < 500, `${c.name}: no 5xx (${o.status})`);
    if (c.expect === 'refused') {
      const ok = o.status === null || (o.status >= 400 && o.status < 500);
      t.ok(ok, `${c.name}: refused with a 4xx or a closed connection (got ${o.status ?? 'close'}: ${JSON.stringify(o.raw.split('\r\n')[0])})`);
      if (o.status !== null) refusedAnswered++;
    }
  }
  t.ok(refusedAnswered > 30, `most refusals say so with a status (${refusedAnswered})`);

  // Let the site's last connections close, so their bytes are checked.
  await waitFor(() => site.connections.checked === site.connections.opened, { timeoutMs: 5000, message: 'site connections closed' }).catch(() => {});
  t.same(site.problems, [], 'every request the site received was well formed');
  t.same(site.received.filter((r) => r.path.includes('smuggled') || r.marker?.startsWith('s')), [], 'no smuggled request reached the site');
  const leaked = site.received.filter((r) => r.complete && r.marker !== undefined && byMarker.get(r.marker)?.expect === 'refused')
    .map((r) => `${byMarker.get(r.marker!)!.name} (${r.path})`);
  t.same(leaked, [], 'no request that had to be refused reached the site complete');
  for (const c of controls) t.ok(site.received.some((r) => r.marker === c.marker && r.complete), `${c.name} reached the site`);
  t.ok(site.received.filter((r) => r.complete && r.marker !== undefined).length > 20, 'some fuzzed requests went through (the site sees traffic)');
});

t.test('the forwarded-bytes oracle reports what it must', async (t) => {
  // Guards the test above: each of these must be caught.
  const bad = [
    'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n',
    'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nx',
    'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n',
    'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\n\r\n',
    'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\n\r\nxGET / HTTP/1.1\r\n\r\n',
    'GET / HTTP/1.1\r\nHost: a\r\nX: a\x00b\r\n\r\n',
    'GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n b\r\n\r\n',
    'GET http://a/ HTTP/1.1\r\nHost: a\r\n\r\n',
    'GET / HTTP/1.0\r\nHost: a\r\n\r\n',
    'GET / HTTP/1.1\r\n\r\n',
  ];
  for (const b of bad) t.not(checkForwarded(Buffer.from(b, 'latin1')).length, 0, JSON.stringify(b.slice(0, 60)));
  t.same(checkForwarded(Buffer.from('PUT /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n', 'latin1')), []);
  t.same(checkForwarded(Buffer.from('PUT /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel', 'latin1')), [], 'a body cut short is not malformed');
  t.same(checkForwarded(Buffer.from('POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello', 'latin1')), []);
});
