// The framing check, the trusted-proxy list and the client-error answers as
// tables: the parts of request hygiene that do not need a socket.
import t from 'tap';
import { PassThrough } from 'node:stream';
import { checkFraming } from '../../src/proxy/request-framing.js';
import { trustedProxies } from '../../src/proxy/trusted-proxies.js';
import { answerClientError, clientErrorStatus } from '../../src/proxy/client-limits.js';

t.test('checkFraming', async (t) => {
  // [name, version, raw headers, refused with a reason matching, or null when accepted]
  const scenarios: Array<[string, [number, number], string[], RegExp | null]> = [
    ['plain GET', [1, 1], ['Host', 'a'], null],
    ['HTTP/1.0 without Host', [1, 0], [], null],
    ['one Content-Length', [1, 1], ['Host', 'a', 'Content-Length', '12'], null],
    ['chunked, any case and spacing', [1, 1], ['Host', 'a', 'Transfer-Encoding', ' Chunked '], null],
    ['host with port and IPv6 literal', [1, 1], ['Host', '[::1]:8080'], null],
    ['HTTP/0.9', [0, 9], [], /HTTP\/0\.9/],
    ['HTTP/1.2', [1, 2], ['Host', 'a'], /not supported/],
    ['two Hosts', [1, 1], ['Host', 'a', 'host', 'a'], /more than one Host/],
    ['Host with a path', [1, 1], ['Host', 'a/b'], /not a host name/],
    ['Host with a space', [1, 1], ['Host', 'a b'], /not a host name/],
    ['two Content-Lengths', [1, 1], ['Host', 'a', 'Content-Length', '1', 'content-length', '1'], /more than one Content-Length/],
    ['Content-Length not a number', [1, 1], ['Host', 'a', 'Content-Length', '1e3'], /not a number/],
    ['CL and TE', [1, 1], ['Host', 'a', 'Content-Length', '1', 'Transfer-Encoding', 'chunked'], /both/],
    ['two TE lines', [1, 1], ['Host', 'a', 'Transfer-Encoding', 'chunked', 'Transfer-Encoding', 'chunked'], /more than one Transfer-Encoding/],
    ['TE list', [1, 1], ['Host', 'a', 'Transfer-Encoding', 'gzip, chunked'], /only chunked/],
    ['TE identity', [1, 1], ['Host', 'a', 'Transfer-Encoding', 'identity'], /only chunked/],
    ['TE on HTTP/1.0', [1, 0], ['Transfer-Encoding', 'chunked'], /HTTP\/1\.0/],
    ['NUL in a value', [1, 1], ['Host', 'a', 'X', 'a\u0000b'], /control characters/],
    ['LF in a value', [1, 1], ['Host', 'a', 'X', 'a\nb'], /control characters/],
    ['tab in a value is fine', [1, 1], ['Host', 'a', 'X', 'a\tb'], null],
  ];
  for (const [name, [major, minor], rawHeaders, expected] of scenarios) {
    const reason = checkFraming({ httpVersionMajor: major, httpVersionMinor: minor, rawHeaders });
    if (expected === null) t.equal(reason, undefined, `${name}: accepted`);
    else t.match(reason, expected, `${name}: ${reason}`);
  }
});

t.test('trustedProxies', async (t) => {
  const check = trustedProxies(['10.0.0.0/8', '192.0.2.7', '2001:db8::/32', '::1']);
  const scenarios: Array<[string | undefined, boolean]> = [
    ['10.1.2.3', true], ['11.0.0.1', false], ['192.0.2.7', true], ['192.0.2.8', false],
    ['::ffff:10.9.9.9', true], ['::ffff:127.0.0.1', false], ['2001:db8::5', true], ['2001:db9::5', false],
    ['::1', true], ['not-an-address', false], [undefined, false],
  ];
  for (const [peer, expected] of scenarios) t.equal(check(peer), expected, `${peer} -> ${expected}`);
  t.equal(trustedProxies([])('127.0.0.1'), false, 'an empty list trusts nobody');
});

t.test('client errors: 431 for header overflow, 408 for timeouts, else 400; the connection is closed', async (t) => {
  const coded = (code: string): Error => Object.assign(new Error(code), { code });
  t.equal(clientErrorStatus(coded('HPE_HEADER_OVERFLOW')), 431);
  t.equal(clientErrorStatus(coded('ERR_HTTP_REQUEST_TIMEOUT')), 408);
  t.equal(clientErrorStatus(coded('HPE_INVALID_METHOD')), 400);
  t.equal(clientErrorStatus(new Error('no code')), 400);

  const socket = new PassThrough();
  let written = '';
  socket.on('data', (d: Buffer) => { written += d.toString(); });
  const closed = new Promise((resolve) => socket.once('close', resolve));
  t.equal(answerClientError(coded('HPE_HEADER_OVERFLOW'), socket), 431);
  await closed;
  t.match(written, /^HTTP\/1\.1 431 Request Header Fields Too Large\r\n/);
  t.match(written, /connection: close/);

  const started = Object.assign(new PassThrough(), { _httpMessage: { headersSent: true } });
  const destroyed = new Promise((resolve) => started.once('close', resolve));
  t.equal(answerClientError(coded('ERR_HTTP_REQUEST_TIMEOUT'), started), undefined, 'no second answer');
  await destroyed;
  t.equal(started.read(), null, 'nothing written after a response had started');

  const reset = new PassThrough();
  const resetClosed = new Promise((resolve) => reset.once('close', resolve));
  t.equal(answerClientError(coded('ECONNRESET'), reset), undefined, 'a reset client gets no answer');
  await resetClosed;
  t.equal(reset.read(), null);
});
