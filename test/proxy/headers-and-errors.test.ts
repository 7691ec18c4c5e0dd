import t from 'tap';
import { stripHopByHop } from '../../src/proxy/hop-by-hop.js';
import { UpstreamError, connectTimeout, isNeverReached, responseTimeout, toUpstreamError, type FailurePhase } from '../../src/proxy/upstream-error.js';

t.test('stripHopByHop keeps end-to-end headers only', async (t) => {
  const scenarios: Array<{ name: string; input: Record<string, string | string[]>; expect: Record<string, string | string[]> }> = [
    { name: 'fixed list', input: { connection: 'keep-alive', 'keep-alive': 'timeout=5', te: 'trailers', trailer: 'x', 'transfer-encoding': 'chunked', upgrade: 'h2c', accept: '*/*' }, expect: { accept: '*/*' } },
    { name: 'proxy-*', input: { 'proxy-authorization': 'Basic x', 'proxy-connection': 'close', 'x-proxy': 'kept' }, expect: { 'x-proxy': 'kept' } },
    { name: 'named in Connection', input: { connection: 'X-Hop, close', 'x-hop': '1', 'x-other': '2' }, expect: { 'x-other': '2' } },
    {
      name: 'Connection cannot name end-to-end fields',
      input: { connection: 'close, Host, content-length, Authorization, cookie, x-hop', host: 'ceir.example', 'content-length': '3', authorization: 'Bearer t', cookie: 'a=1', 'x-hop': '1' },
      expect: { host: 'ceir.example', 'content-length': '3', authorization: 'Bearer t', cookie: 'a=1' },
    },
    { name: 'multi-valued kept', input: { 'set-cookie': ['a=1', 'b=2'] }, expect: { 'set-cookie': ['a=1', 'b=2'] } },
  ];
  for (const s of scenarios) t.same(stripHopByHop(s.input), s.expect, s.name);
});

t.test('toUpstreamError classifies by phase and code', async (t) => {
  const err = (code: string, message = code): Error => Object.assign(new Error(message), { code });
  const fresh = { connected: true };
  const stale = { connected: true, reusedAndSilent: true };
  const scenarios: Array<[unknown, FailurePhase, string, number, string]> = [
    [err('ECONNREFUSED', 'connect ECONNREFUSED 127.0.0.1:1'), { connected: false }, 'connect_failed', 502, 'connect ECONNREFUSED'],
    [err('ENOTFOUND'), { connected: false }, 'connect_failed', 502, 'connect ENOTFOUND'],
    [err('ECONNRESET', 'socket hang up'), fresh, 'reset', 502, 'socket hang up'],
    [err('ECONNRESET', 'read ECONNRESET'), fresh, 'reset', 502, 'ECONNRESET'],
    [err('EPIPE'), fresh, 'reset', 502, 'EPIPE'],
    [err('HPE_INVALID_CONSTANT', 'Parse Error'), fresh, 'bad_response', 502, 'bad response (HPE_INVALID_CONSTANT)'],
    [err('HPE_HEADER_OVERFLOW', 'Parse Error'), stale, 'bad_response', 502, 'bad response (HPE_HEADER_OVERFLOW)'],
    [new Error('weird'), fresh, 'reset', 502, 'weird'],
    [err('ECONNRESET', 'socket hang up'), stale, 'stale_connection', 502, 'reused connection closed by the site (socket hang up)'],
    [err('EPIPE'), stale, 'stale_connection', 502, 'reused connection closed by the site (EPIPE)'],
    [err('ETIMEDOUT'), stale, 'reset', 502, 'ETIMEDOUT'],
    // detour out of file descriptors: about the gateway, not the site (no verdict, 503).
    [err('EMFILE', 'connect EMFILE 127.0.0.1:8080 - Local (undefined:undefined)'), { connected: false }, 'local_error', 503, 'gateway out of resources (EMFILE)'],
    [err('ENFILE'), fresh, 'local_error', 503, 'gateway out of resources (ENFILE)'],
    [connectTimeout(100), { connected: false }, 'connect_timeout', 504, 'connect timeout after 100ms'],
    [responseTimeout(2000), fresh, 'response_timeout', 504, 'response timeout after 2000ms'],
    // TLS failures come after the TCP connect, before a byte of the request: whatever the phase says.
    [err('UNABLE_TO_VERIFY_LEAF_SIGNATURE'), fresh, 'tls_failed', 502, 'certificate signed by unknown authority'],
    [err('SELF_SIGNED_CERT_IN_CHAIN'), { connected: false }, 'tls_failed', 502, 'certificate signed by unknown authority'],
    [Object.assign(err('ERR_TLS_CERT_ALTNAME_INVALID'), { host: 'ceir.internal' }), fresh, 'tls_failed', 502, 'name mismatch: ceir.internal'],
    [err('CERT_HAS_EXPIRED'), fresh, 'tls_failed', 502, 'certificate expired'],
    [err('ERR_SSL_WRONG_VERSION_NUMBER', 'C0B7:error:0A00010B:SSL routines:ssl3_get_record:wrong version number'), fresh, 'tls_failed', 502, 'TLS handshake failed: SSL routines:ssl3_get_record:wrong version number'],
  ];
  for (const [input, phase, code, status, detail] of scenarios) {
    const e = toUpstreamError(input, phase);
    t.ok(e instanceof UpstreamError);
    t.same([e.code, e.status, e.detail], [code, status, detail], detail);
  }
});

t.test('only failures before the request was written prove the site never saw it', async (t) => {
  const table: Array<[Parameters<typeof isNeverReached>[0], boolean]> = [
    ['connect_failed', true], ['connect_timeout', true], ['tls_failed', true],
    ['stale_connection', false], ['reset', false], ['response_timeout', false], ['bad_response', false],
  ];
  for (const [code, expected] of table) t.equal(isNeverReached(code), expected, code);
});
