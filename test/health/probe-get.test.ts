import t from 'tap';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { MAX_HEAD_BYTES, ResponseReader, probeGet, probeTarget, worthParsing, type ProbeTarget } from '../../src/health/probe-get.js';
import { createAgents, destroyAgents, httpGet, type HttpAgents, type HttpGetResult } from '../../src/health/http-get.js';
import { refusedUrl, startProbeSite, waitFor } from '../helpers/probe-site.js';

const ok = (status: number, body: string | Buffer, truncated = false): HttpGetResult => {
  const bytes = Buffer.from(body);
  return { ok: true, status, body: bytes.toString('utf8'), bytes, truncated };
};
const failed = (error: string): HttpGetResult => ({ ok: false, error });

const latin1 = Buffer.from('M\xfcller', 'latin1');

// Each case: the bytes a site sends (then it closes), the body cap, and the answer.
const answers: Array<[name: string, response: string | Buffer, maxBodyBytes: number, want: HttpGetResult]> = [
  ['content-length', 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok', 100, ok(200, 'ok')],
  ['chunked, with an extension and a trailer', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n3;x=1\r\n!!!\r\n0\r\nX-T: 1\r\n\r\n', 100, ok(200, 'ok!!!')],
  ['chunked, upper-case hex', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: Chunked\r\n\r\nA\r\n0123456789\r\n0\r\n\r\n', 100, ok(200, '0123456789')],
  ['body until the close', 'HTTP/1.0 200 OK\r\n\r\nhello', 100, ok(200, 'hello')],
  ['no reason phrase', 'HTTP/1.1 503\r\nContent-Length: 4\r\n\r\ndown', 100, ok(503, 'down')],
  ['204 has no body', 'HTTP/1.1 204 No Content\r\n\r\n', 100, ok(204, '')],
  ['304 has no body whatever its length says', 'HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n', 100, ok(304, '')],
  ['100 Continue, then the answer', 'HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok', 100, ok(200, 'ok')],
  ['103 Early Hints, then the answer', 'HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok', 100, ok(200, 'ok')],
  ['a coding other than chunked runs until the close', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nabc', 100, ok(200, 'abc')],
  ['bytes as sent, not as UTF-8', Buffer.concat([Buffer.from('HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\n'), latin1]), 100, { ...ok(200, latin1) }],
  ['length over the cap', 'HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n0123456789', 4, ok(200, '0123', true)],
  ['length exactly the cap', 'HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\n0123', 4, ok(200, '0123')],
  ['chunks over the cap', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n3\r\ndef\r\n0\r\n\r\n', 4, ok(200, 'abcd', true)],
  ['until-close over the cap', 'HTTP/1.0 200 OK\r\n\r\n0123456789', 3, ok(200, '012', true)],
  ['a trailing CRLF after the body', 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok\r\n', 100, ok(200, 'ok')],
  ['an empty line before the status line', '\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok', 100, ok(200, 'ok')],
  ['an empty line between a 100 and the answer', 'HTTP/1.1 100 Continue\r\n\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok', 100, ok(200, 'ok')],
  ['a NUL in the reason phrase', 'HTTP/1.1 200 O\x00K\r\nContent-Length: 2\r\n\r\nok', 100, ok(200, 'ok')],
  ['2,000 small headers (more than 16 KiB as sent, less as counted)', `HTTP/1.1 200 OK\r\n${Array.from({ length: 2000 }, (_, i) => `X${i}: 1\r\n`).join('')}Content-Length: 2\r\n\r\nok`, 100, ok(200, 'ok')],
  ['a length with spaces around it', 'HTTP/1.1 200 OK\r\nContent-Length:  2  \r\n\r\nok', 100, ok(200, 'ok')],
  ['a length with leading zeros', 'HTTP/1.1 200 OK\r\nContent-Length: 0000000000000000002\r\n\r\nok', 100, ok(200, 'ok')],
  ['a chunk size with leading zeros', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n00000000000000002\r\nok\r\n0\r\n\r\n', 100, ok(200, 'ok')],
  ['chunk extensions: a name, a value, a quoted value', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2;a;b=c;d="e f"\r\nok\r\n0\r\n\r\n', 100, ok(200, 'ok')],
  ['cut mid-body', 'HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial', 1000, failed('connection closed before the body ended')],
  ['cut mid-chunk', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab', 1000, failed('connection closed before the body ended')],
  ['no last chunk', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n', 1000, failed('connection closed before the body ended')],
  ['closed without a byte', '', 100, failed('socket hang up')],
  ['closed mid-head', 'HTTP/1.1 200 OK\r\nContent-Le', 100, failed('connection closed before the headers ended')],
  ['HTTP/2 text', 'HTTP/2 200\r\n\r\n', 100, failed('bad response: status line "HTTP/2 200"')],
  ['not HTTP', 'ICY 200 OK\r\n\r\n', 100, failed('bad response: status line "ICY 200 OK"')],
  ['status under 100', 'HTTP/1.1 099 Odd\r\n\r\n', 100, failed('bad response: status line "HTTP/1.1 099 Odd"')],
  ['a header line without a colon', 'HTTP/1.1 200 OK\r\nnonsense\r\n\r\n', 100, failed('bad response: header line "nonsense"')],
  ['a folded header line', 'HTTP/1.1 200 OK\r\nX-A: 1\r\n  more\r\n\r\n', 100, failed('bad response: header line "  more"')],
  ['a control character in a value', 'HTTP/1.1 200 OK\r\nX-A: a\x01b\r\nContent-Length: 0\r\n\r\n', 100, failed('bad response: a control character in "X-A: a\\u0001b"')],
  ['a CR inside a line', 'HTTP/1.1 200 OK\r\nX-A: a\rb\r\nContent-Length: 0\r\n\r\n', 100, failed('bad response: a control character in "X-A: a\\rb"')],
  ['a tab in a value is fine', 'HTTP/1.1 200 OK\r\nX-A: a\tb\r\nContent-Length: 2\r\n\r\nok', 100, ok(200, 'ok')],
  ['a space before the colon', 'HTTP/1.1 200 OK\r\nContent-Length : 2\r\n\r\nok', 100, failed('bad response: header line "Content-Length : 2"')],
  ['two lengths', 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nok', 100, failed('bad response: content-length given twice')],
  ['the same length twice', 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\ncontent-length: 2\r\n\r\nok', 100, failed('bad response: content-length given twice')],
  ['a list of lengths', 'HTTP/1.1 200 OK\r\nContent-Length: 2, 2\r\n\r\nok', 100, failed('bad response: content-length "2, 2"')],
  ['both framings', 'HTTP/1.1 200 OK\r\nContent-Length: 99\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n', 100, failed('bad response: both Content-Length and Transfer-Encoding')],
  ['bare LF in the head', 'HTTP/1.1 200 OK\nContent-Length: 2\n\nok', 100, failed('bad response: a line ends in LF without CR')],
  ['bare LF after a chunk size', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\nok\r\n0\r\n\r\n', 100, failed('bad response: a line ends in LF without CR')],
  ['a space after a chunk size', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2 \r\nok\r\n0\r\n\r\n', 100, failed('bad response: bad chunk size "2 "')],
  ['a length that is not a number', 'HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n', 100, failed('bad response: content-length "-1"')],
  ['a chunk size that is not hex', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n', 100, failed('bad response: bad chunk size "zz"')],
  ['chunk data longer than its size', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nokay\r\n0\r\n\r\n', 100, failed('bad response: chunk not followed by CRLF')],
  ['a head over the memory bound', `HTTP/1.1 200 OK\r\n${'X: 1\r\n'.repeat(11_000)}`, 100, failed('bad response: headers over 64 KiB')],
  ['a big head, just under the limit', `HTTP/1.1 200 OK\r\nX-Big: ${'a'.repeat(MAX_HEAD_BYTES - 100)}\r\nContent-Length: 2\r\n\r\nok`, 100, ok(200, 'ok')],
  ['a status line ending in a tab', 'HTTP/1.1 200\t\r\nContent-Length: 2\r\n\r\nok', 100, failed('bad response: status line "HTTP/1.1 200\\t"')],
  ['a length ending in a tab', 'HTTP/1.1 200 OK\r\nContent-Length: 2\t\r\n\r\nok', 100, failed('bad response: content-length "2"')],
  ['a length ending in a no-break space', Buffer.from('HTTP/1.1 200 OK\r\nContent-Length: 2\xa0\r\n\r\nok', 'latin1'), 100, failed('bad response: content-length "2\xa0"')],
  ['a trailer without a colon', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\nbad trailer\r\n\r\n', 100, failed('bad response: trailer: header line "bad trailer"')],
  ['a control character in a trailer', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\nX-T: a\x01\r\n\r\n', 100, failed('bad response: trailer: a control character in "X-T: a\\u0001"')],
  ['an empty chunk extension', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2;\r\nok\r\n0\r\n\r\n', 100, failed('bad response: bad chunk size "2;"')],
  ['a space in a chunk extension', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2; a=b\r\nok\r\n0\r\n\r\n', 100, failed('bad response: bad chunk size "2; a=b"')],
  ['a chunk size past 2^53', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1FFFFFFFFFFFFFF\r\nok', 100, failed('bad response: chunk size "1FFFFFFFFFFFFFF" too large')],
  ['101 to a GET that asked for no upgrade', 'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n', 100, failed('bad response: 101 Switching Protocols to a probe that asked for no upgrade')],
  ['a head over the limit', `HTTP/1.1 200 OK\r\nX-Big: ${'a'.repeat(MAX_HEAD_BYTES)}\r\n\r\n`, 100, failed('bad response: headers over 16 KiB')],
  ['a chunk line over the limit', `HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1;${'x'.repeat(5000)}`, 100, failed('bad response: chunk line too long')],
];

// Bytes after a whole answer, in the same read: a failure, as in Node's parser. Bytes that come in a
// later read are never read (the answer was whole), with Node's client too: which one a site gets
// depends on its packets, so these are tested whole and over a connection (one write), not in pieces.
const dataAfter: Array<[name: string, response: string, passedWithoutIt: HttpGetResult]> = [
  ['a body longer than its length', 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok{"extra":1}', ok(200, 'ok')],
  ['a body after a 204', 'HTTP/1.1 204 No Content\r\n\r\nxyz', ok(204, '')],
  ['bytes after the last chunk', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\nmore', ok(200, 'ok')],
];

t.test('bytes after a whole answer in the same read fail it; in a later read they are not looked at', async (t) => {
  const agents = createAgents();
  t.teardown(() => destroyAgents(agents));
  for (const [name, response, passedWithoutIt] of dataAfter) {
    t.same(readAll(100, [Buffer.from(response)]), failed('bad response: data after the response'), `${name}: in one read`);
    t.same(readAll(100, [...Buffer.from(response)].map((b) => Buffer.from([b]))), passedWithoutIt, `${name}: byte by byte`);
    const { raw, node } = await bothReaders(response, 100, agents);
    t.same(raw, failed('bad response: data after the response'), `${name}: over a connection, one write`);
    t.equal(node.ok, false, `${name}: Node's client fails it too`);
  }
});

function readAll(maxBodyBytes: number, pieces: Buffer[]): HttpGetResult {
  const reader = new ResponseReader(maxBodyBytes);
  for (const piece of pieces) {
    const answer = reader.read(piece);
    if (answer !== undefined) return answer;
  }
  return reader.end();
}

t.test('a head arriving in pieces is parsed when its status line or a blank line arrives, not at every byte', async (t) => {
  // Each case: what had arrived at the last look, what has arrived now.
  const table: Array<[before: string, now: string, worth: boolean]> = [
    ['', 'HTTP/1.1 20', false],
    ['HTTP/1.1 20', 'HTTP/1.1 200 OK\r', false],
    ['HTTP/1.1 200 OK\r', 'HTTP/1.1 200 OK\r\n', true],
    ['', 'SSH-2.0-OpenSSH\r\n', true],
    ['HTTP/1.1 200 OK\r\n', 'HTTP/1.1 200 OK\r\nA: 1\r\nB: 2', false],
    ['HTTP/1.1 200 OK\r\nA: 1\r\nB: 2', 'HTTP/1.1 200 OK\r\nA: 1\r\nB: 2\r\n', false],
    ['HTTP/1.1 200 OK\r\nA: 1\r\n', 'HTTP/1.1 200 OK\r\nA: 1\r\n\r', false],
    ['HTTP/1.1 200 OK\r\nA: 1\r\n\r', 'HTTP/1.1 200 OK\r\nA: 1\r\n\r\n', true],
    ['HTTP/1.1 200 OK\r\nA: 1\r\n', 'HTTP/1.1 200 OK\r\nA: 1\r\n\r\n', true],
    ['HTTP/1.1 200 OK\r\nA: 1\r', 'HTTP/1.1 200 OK\r\nA: 1\r\n\r\nbody', true],
    ['HTTP/1.1 200 OK\r\nA: 1\n', 'HTTP/1.1 200 OK\r\nA: 1\n\n', true],
    ['', 'HTTP/1.1 200 OK\r\nA: 1\r\n\r\n', true],
  ];
  for (const [before, now, worth] of table) t.equal(worthParsing(Buffer.from(now), before.length), worth, `${JSON.stringify(before)} -> ${JSON.stringify(now)}`);
});

t.test('the response reader, whole, byte by byte, and in random pieces', async (t) => {
  let seed = 7;
  const random = (): number => { seed = (seed * 1103515245 + 12345) % 2 ** 31; return seed / 2 ** 31; };
  for (const [name, response, maxBodyBytes, want] of answers) {
    const bytes = Buffer.from(response);
    t.same(readAll(maxBodyBytes, [bytes]), want, `${name}: whole`);
    if (bytes.length < 20_000) {
      t.same(readAll(maxBodyBytes, [...bytes].map((b) => Buffer.from([b]))), want, `${name}: byte by byte`);
    }
    for (let round = 0; round < 5; round++) {
      const pieces: Buffer[] = [];
      for (let at = 0; at < bytes.length;) {
        const size = 1 + Math.floor(random() * Math.max(1, bytes.length / 3));
        pieces.push(bytes.subarray(at, at + size));
        at += size;
      }
      t.same(readAll(maxBodyBytes, pieces), want, `${name}: pieces ${pieces.map((p) => p.length).join('+')}`);
    }
  }
});

/** A site that answers every connection with these bytes, then closes. */
async function scriptedSite(response: string | Buffer): Promise<{ url: string; requests: string[]; close(): Promise<void> }> {
  const requests: string[] = [];
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
    let seen = '';
    socket.on('data', (chunk) => {
      seen += chunk.toString('latin1');
      if (!seen.includes('\r\n\r\n')) return;
      requests.push(seen);
      socket.end(response);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/healthz`,
    requests,
    close: () => new Promise<void>((resolve) => { for (const s of sockets) s.destroy(); server.close(() => resolve()); }),
  };
}

/** What probeGet and Node's client (httpGet) each make of one answer, sent in one write by a site that then closes. */
async function bothReaders(response: string | Buffer, maxBodyBytes: number, agents: HttpAgents): Promise<{ raw: HttpGetResult; node: HttpGetResult }> {
  const site = await scriptedSite(response);
  try {
    const raw = await probeGet(targetOf(site.url), { timeoutMs: 2000, maxBodyBytes });
    const node = await httpGet(site.url, { timeoutMs: 2000, maxBodyBytes, agents });
    return { raw, node };
  } finally {
    await site.close();
  }
}

function targetOf(url: string): ProbeTarget {
  const target = probeTarget(url);
  if (typeof target === 'string') throw new Error(target);
  return target;
}

t.test('over a real connection, every well-formed answer reads as Node\'s HTTP client reads it', async (t) => {
  const agents = createAgents();
  t.teardown(() => destroyAgents(agents));
  for (const [name, response, maxBodyBytes, want] of answers) {
    if (!want.ok) continue;
    const { raw, node } = await bothReaders(response, maxBodyBytes, agents);
    t.same(raw, want, `${name}: probeGet`);
    t.same(raw, node, `${name}: the same as Node's client`);
  }
});

t.test('over a real connection, a malformed or cut answer is a failure for both readers', async (t) => {
  const agents = createAgents();
  t.teardown(() => destroyAgents(agents));
  for (const [name, response, maxBodyBytes, want] of answers) {
    if (want.ok) continue;
    const { raw, node } = await bothReaders(response, maxBodyBytes, agents);
    t.same(raw, want, `${name}: probeGet`);
    // Node's parser takes any three digits as a status (below 100 fails every expectStatus all the same), and
    // hands a 101 to an upgrade listener (none: it answers the 101 when the site closes, waits when it does not).
    t.ok(!node.ok || node.status < 100 || node.status === 101, `${name}: Node's client does not pass it either`);
  }
});

t.test('the request: what Node\'s client sends for a GET without keep-alive', async (t) => {
  const site = await scriptedSite('HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n');
  t.teardown(() => site.close());
  const { port } = new URL(site.url);
  await probeGet(targetOf(`http://127.0.0.1:${port}/base/ready?deep=1`), { timeoutMs: 1000, maxBodyBytes: 10 });
  t.same(site.requests, [
    `GET /base/ready?deep=1 HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUser-Agent: detour-probe\r\nAccept: */*\r\nConnection: close\r\n\r\n`,
  ]);
});

t.test('targets: the address to connect to and the Host header, from the url', async (t) => {
  const table: Array<[url: string, host: string, port: number, hostHeader: string]> = [
    ['http://127.0.0.1:8080/healthz', '127.0.0.1', 8080, '127.0.0.1:8080'],
    ['http://example.internal/healthz', 'example.internal', 80, 'example.internal'],
    ['http://[::1]:9000/healthz', '::1', 9000, '[::1]:9000'],
    ['http://EXAMPLE.internal:80/', 'example.internal', 80, 'example.internal'],
  ];
  for (const [url, host, port, hostHeader] of table) {
    const target = targetOf(url);
    t.same([target.host, target.port], [host, port], url);
    t.match(target.request.toString('latin1'), new RegExp(`\\r\\nHost: ${hostHeader.replace(/[[\]]/g, '\\$&')}\\r\\n`), `${url}: Host`);
  }
  t.equal(probeTarget('not a url'), 'bad url not a url');
  t.equal(probeTarget('https://127.0.0.1/'), 'unsupported protocol https:');
});

t.test('refused, hung, aborted: answered in words, the connection closed', async (t) => {
  t.same(await probeGet(targetOf(await refusedUrl()), { timeoutMs: 1000, maxBodyBytes: 10 }), failed('connect ECONNREFUSED'));

  const hung = await startProbeSite('hang');
  t.teardown(() => hung.close());
  const started = performance.now();
  t.same(await probeGet(targetOf(hung.url), { timeoutMs: 150, maxBodyBytes: 10 }), failed('timeout after 150ms'));
  t.ok(performance.now() - started < 1000, 'no longer than the timeout, give or take');

  const controller = new AbortController();
  const pending = probeGet(targetOf(hung.url), { timeoutMs: 10_000, maxBodyBytes: 10, signal: controller.signal });
  setTimeout(() => controller.abort(), 20);
  t.same(await pending, failed('aborted'));
  t.same(await probeGet(targetOf(hung.url), { timeoutMs: 1000, maxBodyBytes: 10, signal: AbortSignal.abort() }), failed('aborted'));
  await waitFor(() => hung.openSockets === 0, 'every probe connection closed');
  t.equal(hung.openSockets, 0, 'every probe connection closed');
});
