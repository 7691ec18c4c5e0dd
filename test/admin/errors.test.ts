import t from 'tap';
import {
  DetourError, badRequest, badResponse, codeForStatus, conflict, forbidden, internalError, isDetourError,
  methodNotAllowed, notFound, payloadTooLarge, timedOut, toDetourError, unauthorized, unreachable,
} from '../../src/errors.js';

const cases: Array<{ name: string; err: DetourError; code: string; status: number; message: RegExp; headers?: Record<string, string> }> = [
  { name: 'badRequest', err: badRequest('bad body'), code: 'bad_request', status: 400, message: /^bad body$/ },
  { name: 'unauthorized', err: unauthorized(), code: 'unauthorized', status: 401, message: /Bearer <token>/, headers: { 'www-authenticate': 'Bearer' } },
  { name: 'forbidden', err: forbidden(), code: 'forbidden', status: 403, message: /invalid admin token/ },
  { name: 'notFound', err: notFound('no route x'), code: 'not_found', status: 404, message: /^no route x$/ },
  { name: 'methodNotAllowed', err: methodNotAllowed('GET', '/drain', ['POST', 'DELETE']), code: 'method_not_allowed', status: 405, message: /GET is not allowed on \/drain/, headers: { allow: 'POST, DELETE' } },
  { name: 'conflict', err: conflict('not pinned'), code: 'conflict', status: 409, message: /^not pinned$/ },
  { name: 'payloadTooLarge', err: payloadTooLarge(65536), code: 'payload_too_large', status: 413, message: /65536 bytes/ },
  { name: 'internalError', err: internalError('boom'), code: 'internal', status: 500, message: /^boom$/ },
  { name: 'unreachable', err: unreachable('http://127.0.0.1:9090', 'connect ECONNREFUSED'), code: 'unreachable', status: 503, message: /^cannot reach detour admin API at http:\/\/127\.0\.0\.1:9090: connect ECONNREFUSED$/ },
  { name: 'timedOut', err: timedOut('http://h:1', 250), code: 'timeout', status: 504, message: /no answer within 250ms/ },
  { name: 'badResponse keeps an error status', err: badResponse('html', 502), code: 'bad_response', status: 502, message: /html/ },
  { name: 'badResponse on a 200 is still an error status', err: badResponse('html', 200), code: 'bad_response', status: 502, message: /html/ },
];

for (const c of cases) {
  t.test(c.name, async (t) => {
    t.ok(isDetourError(c.err));
    t.type(c.err, Error);
    t.equal(c.err.name, 'DetourError');
    t.equal(c.err.code, c.code);
    t.equal(c.err.status, c.status);
    t.match(c.err.message, c.message);
    t.same(c.err.headers, c.headers ?? {});
  });
}

t.test('cause is kept', async (t) => {
  const original = new Error('ENOENT');
  t.equal(badRequest('x', original).cause, original);
  t.equal(badRequest('x').cause, undefined);
});

t.test('toDetourError keeps detour errors and hides others behind a 500', async (t) => {
  const known = notFound('x');
  t.equal(toDetourError(known), known);
  const original = new Error('secret internals');
  const wrapped = toDetourError(original);
  t.equal(wrapped.status, 500);
  t.equal(wrapped.message, 'internal error');
  t.equal(wrapped.cause, original);
  t.equal(toDetourError('a string').status, 500);
});

t.test('codeForStatus', async (t) => {
  const table: Array<[number, string]> = [[400, 'bad_request'], [401, 'unauthorized'], [403, 'forbidden'], [404, 'not_found'], [405, 'method_not_allowed'], [409, 'conflict'], [413, 'payload_too_large'], [422, 'invalid_policy'], [418, 'bad_request'], [500, 'internal'], [502, 'internal']];
  for (const [status, code] of table) t.equal(codeForStatus(status), code, String(status));
});
