import t from 'tap';
import { createHash } from 'node:crypto';
import { compareIntegrity, type Answer, type IntegrityResult } from '../../src/health/integrity.js';
import { makeVerify } from './site-fixture.js';
import type { VerifyPolicy } from '../../src/config/policy.js';

const json = (value: unknown, status = 200): Answer => text(JSON.stringify(value), status);
const text = (body: string, status = 200): Answer => ({ ok: true, status, body: Buffer.from(body, 'utf8') });
/** Bytes as a site sent them, e.g. Latin-1 text. */
const bytes = (body: Buffer, status = 200): Answer => ({ ok: true, status, body });
const latin1 = (body: string): Answer => bytes(Buffer.from(body, 'latin1'));
const failed = (error: string): Answer => ({ ok: false, error });
const notFetched = undefined;

const byField = makeVerify({ field: 'checksum' });
const byLag = makeVerify({ field: 'replication.lagSeconds', max: 5 });
const wholeBody = makeVerify();

// Each scenario: the rule, what the preferred site (cyber1) and the serving site (serpong) answered, the verdict.
const scenarios: Array<{
  name: string; verify: VerifyPolicy; preferred: Answer | undefined; serving: Answer | undefined;
  ok: boolean; result: IntegrityResult; detail: string | RegExp;
}> = [
  // field comparison
  { name: 'field equal', verify: byField, preferred: json({ checksum: 'a1f3' }), serving: json({ checksum: 'a1f3' }), ok: true, result: 'match', detail: 'checksum a1f3 (cyber1) == a1f3 (serpong)' },
  { name: 'field differs', verify: byField, preferred: json({ checksum: 'a1f3' }), serving: json({ checksum: '9c2e' }), ok: false, result: 'mismatch', detail: 'checksum a1f3 (cyber1) != 9c2e (serpong)' },
  { name: 'other fields do not matter', verify: byField, preferred: json({ checksum: 'a1', rows: 1 }), serving: json({ checksum: 'a1', rows: 2 }), ok: true, result: 'match', detail: 'checksum a1 (cyber1) == a1 (serpong)' },
  { name: 'numbers compare as numbers', verify: byField, preferred: json({ checksum: 42 }), serving: json({ checksum: 42 }), ok: true, result: 'match', detail: 'checksum 42 (cyber1) == 42 (serpong)' },
  { name: 'a number is not its string', verify: byField, preferred: json({ checksum: 42 }), serving: json({ checksum: '42' }), ok: false, result: 'mismatch', detail: /^checksum 42 \(cyber1\) != 42 \(serpong\)$/ },
  { name: 'objects deep-equal in any key order', verify: byField, preferred: json({ checksum: { a: 1, b: [1, 2] } }), serving: json({ checksum: { b: [1, 2], a: 1 } }), ok: true, result: 'match', detail: /^checksum .* \(cyber1\) == .* \(serpong\)$/ },
  { name: 'objects with an extra key differ', verify: byField, preferred: json({ checksum: { a: 1 } }), serving: json({ checksum: { a: 1, b: 2 } }), ok: false, result: 'mismatch', detail: /!=/ },
  { name: 'arrays differ in order', verify: byField, preferred: json({ checksum: [1, 2] }), serving: json({ checksum: [2, 1] }), ok: false, result: 'mismatch', detail: 'checksum [1,2] (cyber1) != [2,1] (serpong)' },
  { name: 'dotted path', verify: makeVerify({ field: 'data.checksum' }), preferred: json({ data: { checksum: 'x' } }), serving: json({ data: { checksum: 'x' } }), ok: true, result: 'match', detail: 'data.checksum x (cyber1) == x (serpong)' },
  { name: 'dotted path through an array', verify: makeVerify({ field: 'shards.1.sum' }), preferred: json({ shards: [{ sum: 'a' }, { sum: 'b' }] }), serving: json({ shards: [{ sum: 'z' }, { sum: 'b' }] }), ok: true, result: 'match', detail: 'shards.1.sum b (cyber1) == b (serpong)' },
  { name: 'long values are shortened keeping both ends', verify: byField, preferred: json({ checksum: '0123456789abcdef0123456789' }), serving: json({ checksum: '0123456789abcdef012345678X' }), ok: false, result: 'mismatch', detail: 'checksum 01234567…3456789 (cyber1) != 01234567…345678X (serpong)' },
  { name: 'any 2xx is readable', verify: byField, preferred: json({ checksum: 'a' }, 203), serving: json({ checksum: 'a' }, 200), ok: true, result: 'match', detail: 'checksum a (cyber1) == a (serpong)' },
  { name: 'preferred timed out', verify: byField, preferred: failed('timeout after 1000ms'), serving: json({ checksum: 'a' }), ok: false, result: 'error', detail: 'cyber1: timeout after 1000ms' },
  { name: 'serving answered 500', verify: byField, preferred: json({ checksum: 'a' }), serving: json({ checksum: 'a' }, 500), ok: false, result: 'error', detail: 'serpong: status 500' },
  { name: 'a 304 is not a document', verify: byField, preferred: text('', 304), serving: json({ checksum: 'a' }), ok: false, result: 'error', detail: 'cyber1: status 304' },
  { name: 'both failed: both reasons', verify: byField, preferred: failed('timeout after 1000ms'), serving: json({}, 500), ok: false, result: 'error', detail: 'cyber1: timeout after 1000ms; serpong: status 500' },
  { name: 'field missing on preferred', verify: byField, preferred: json({ other: 1 }), serving: json({ checksum: 'a' }), ok: false, result: 'error', detail: 'cyber1: field checksum missing' },
  { name: 'missing on both never matches', verify: byField, preferred: json({}), serving: json({}), ok: false, result: 'error', detail: 'cyber1: field checksum missing; serpong: field checksum missing' },
  { name: 'null counts as missing', verify: byField, preferred: json({ checksum: null }), serving: json({ checksum: null }), ok: false, result: 'error', detail: 'cyber1: field checksum missing; serpong: field checksum missing' },
  { name: 'inherited properties are not fields', verify: makeVerify({ field: 'constructor' }), preferred: json({}), serving: json({}), ok: false, result: 'error', detail: /cyber1: field constructor missing/ },
  { name: 'path through a scalar is missing', verify: makeVerify({ field: 'a.b' }), preferred: json({ a: 'text' }), serving: json({ a: { b: 1 } }), ok: false, result: 'error', detail: 'cyber1: field a.b missing' },
  { name: 'unreadable JSON', verify: byField, preferred: json({ checksum: 'a' }), serving: text('<html>maintenance</html>'), ok: false, result: 'error', detail: /^serpong: body is not JSON \(unexpected character at offset 0\)$/ },
  { name: 'JSON cut short', verify: byField, preferred: text('{"checksum": "a"'), serving: json({ checksum: 'a' }), ok: false, result: 'error', detail: /^cyber1: body is not JSON/ },
  { name: 'trailing text after the document', verify: byField, preferred: text('{"checksum": "a"} x'), serving: json({ checksum: 'a' }), ok: false, result: 'error', detail: /^cyber1: body is not JSON \(unexpected text after the document/ },

  // exactness: what the sites sent, not what JSON.parse makes of it
  { name: 'big integers one apart differ (JSON.parse makes both 9007199254740992)', verify: byField, preferred: text('{"checksum": 9007199254740993}'), serving: text('{"checksum": 9007199254740992}'), ok: false, result: 'mismatch', detail: 'checksum 9007199254740993 (cyber1) != 9007199254740992 (serpong)' },
  { name: 'equal big integers match', verify: byField, preferred: text('{"checksum": 18446744073709551615}'), serving: text('{"checksum":18446744073709551615}'), ok: true, result: 'match', detail: /^checksum 18446744…9551615 \(cyber1\) == 18446744…9551615 \(serpong\)$/ },
  { name: 'big integers inside an object differ', verify: makeVerify({ field: 'pos' }), preferred: text('{"pos": {"file": 3, "offset": 9007199254740993}}'), serving: text('{"pos": {"offset": 9007199254740992, "file": 3}}'), ok: false, result: 'mismatch', detail: /!=/ },
  { name: 'numbers too big for a double are not Infinity = Infinity', verify: byField, preferred: text('{"checksum": 1e400}'), serving: text('{"checksum": 2e400}'), ok: false, result: 'mismatch', detail: 'checksum 1e400 (cyber1) != 2e400 (serpong)' },
  { name: 'raw texts: 1.0 is not 1 (how a site prints a number is what it sends)', verify: byField, preferred: text('{"checksum": 1.0}'), serving: text('{"checksum": 1}'), ok: false, result: 'mismatch', detail: 'checksum 1.0 (cyber1) != 1 (serpong)' },
  { name: 'raw texts: 1e2 is not 100', verify: byField, preferred: text('{"checksum": 1e2}'), serving: text('{"checksum": 100}'), ok: false, result: 'mismatch', detail: 'checksum 1e2 (cyber1) != 100 (serpong)' },
  { name: 'equal raw texts match, whatever the spacing around them', verify: byField, preferred: text('{ "checksum" : 1.50 }'), serving: text('{"checksum":1.50}'), ok: true, result: 'match', detail: 'checksum 1.50 (cyber1) == 1.50 (serpong)' },
  { name: 'strings compare decoded: an escape is the same character', verify: byField, preferred: text('{"checksum": "caf\\u00e9"}'), serving: json({ checksum: 'café' }), ok: true, result: 'match', detail: 'checksum café (cyber1) == café (serpong)' },
  { name: 'a repeated key: the last one counts, as for JSON.parse', verify: byField, preferred: text('{"checksum": "old", "checksum": "a"}'), serving: json({ checksum: 'a' }), ok: true, result: 'match', detail: 'checksum a (cyber1) == a (serpong)' },
  { name: 'not UTF-8 in field mode blocks (Latin-1 Müller and Mäller would both decode to M\uFFFDller)', verify: byField, preferred: latin1('{"checksum": "Müller"}'), serving: latin1('{"checksum": "Mäller"}'), ok: false, result: 'error', detail: 'cyber1: body is not valid UTF-8; serpong: body is not valid UTF-8' },
  { name: 'not UTF-8 on one side blocks', verify: byField, preferred: json({ checksum: 'Müller' }), serving: latin1('{"checksum": "Müller"}'), ok: false, result: 'error', detail: 'serpong: body is not valid UTF-8' },
  { name: 'a UTF-8 byte-order mark is allowed', verify: byField, preferred: bytes(Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from('{"checksum":"a"}')])), serving: json({ checksum: 'a' }), ok: true, result: 'match', detail: 'checksum a (cyber1) == a (serpong)' },
  { name: 'nesting beyond any document blocks, without a stack overflow', verify: byField, preferred: text(`${'['.repeat(100_000)}${']'.repeat(100_000)}`), serving: json({ checksum: 'a' }), ok: false, result: 'error', detail: /^cyber1: body is not JSON \(nested deeper than 256 levels/ },
  { name: 'serving not fetched', verify: byField, preferred: json({ checksum: 'a' }), serving: notFetched, ok: false, result: 'error', detail: 'serpong: not fetched' },

  // bound on the preferred site alone
  { name: 'lag under max', verify: byLag, preferred: json({ replication: { lagSeconds: 3 } }), serving: notFetched, ok: true, result: 'match', detail: 'replication.lagSeconds 3 (cyber1) <= max 5' },
  { name: 'lag at max passes', verify: byLag, preferred: json({ replication: { lagSeconds: 5 } }), serving: notFetched, ok: true, result: 'match', detail: 'replication.lagSeconds 5 (cyber1) <= max 5' },
  { name: 'lag over max', verify: byLag, preferred: json({ replication: { lagSeconds: 12 } }), serving: notFetched, ok: false, result: 'mismatch', detail: 'replication.lagSeconds 12 (cyber1) > max 5' },
  { name: 'serving answer does not matter for a bound', verify: byLag, preferred: json({ replication: { lagSeconds: 0 } }), serving: failed('connect ECONNREFUSED'), ok: true, result: 'match', detail: 'replication.lagSeconds 0 (cyber1) <= max 5' },
  { name: 'lag as a string is not a number', verify: byLag, preferred: json({ replication: { lagSeconds: '3' } }), serving: notFetched, ok: false, result: 'error', detail: 'cyber1: field replication.lagSeconds is not a number (3)' },
  { name: 'lag as true is not a number', verify: byLag, preferred: json({ replication: { lagSeconds: true } }), serving: notFetched, ok: false, result: 'error', detail: 'cyber1: field replication.lagSeconds is not a number (true)' },
  { name: 'lag 1e400 is not finite', verify: byLag, preferred: text('{"replication": {"lagSeconds": 1e400}}'), serving: notFetched, ok: false, result: 'error', detail: 'cyber1: field replication.lagSeconds is not a finite number (1e400)' },
  { name: 'lag beyond the safe integer range blocks, never a match', verify: byLag, preferred: text('{"replication": {"lagSeconds": -9007199254740993}}'), serving: notFetched, ok: false, result: 'error', detail: /^cyber1: field replication.lagSeconds -9007199…4740993 is beyond the safe integer range \(±9007199254740991\); not compared with max 5$/ },
  { name: 'max itself beyond the safe range: a big position is still an error', verify: makeVerify({ field: 'pos', max: 2 ** 60 }), preferred: text('{"pos": 9007199254740993}'), serving: notFetched, ok: false, result: 'error', detail: /beyond the safe integer range/ },
  { name: 'the largest safe integer is compared', verify: makeVerify({ field: 'pos', max: 2 ** 60 }), preferred: text('{"pos": 9007199254740991}'), serving: notFetched, ok: true, result: 'match', detail: `pos 9007199254740991 (cyber1) <= max ${2 ** 60}` },
  { name: 'lag compared in decimal: a hair over max is over', verify: byLag, preferred: text('{"replication": {"lagSeconds": 5.000000000000000001}}'), serving: notFetched, ok: false, result: 'mismatch', detail: 'replication.lagSeconds 5.000000000000000001 (cyber1) > max 5' },
  { name: 'lag 5.0 and 0.5e1 are at max', verify: byLag, preferred: text('{"replication": {"lagSeconds": 0.5e1}}'), serving: notFetched, ok: true, result: 'match', detail: 'replication.lagSeconds 0.5e1 (cyber1) <= max 5' },
  { name: 'a fractional max', verify: makeVerify({ field: 'lag', max: 0.25 }), preferred: text('{"lag": 0.2500001}'), serving: notFetched, ok: false, result: 'mismatch', detail: 'lag 0.2500001 (cyber1) > max 0.25' },
  { name: 'negative lag under max', verify: byLag, preferred: text('{"replication": {"lagSeconds": -1E-3}}'), serving: notFetched, ok: true, result: 'match', detail: 'replication.lagSeconds -1E-3 (cyber1) <= max 5' },
  { name: 'lag in a body that is not UTF-8 blocks', verify: byLag, preferred: bytes(Buffer.from([0x7b, 0x22, 0xff, 0x22, 0x3a, 0x31, 0x7d])), serving: notFetched, ok: false, result: 'error', detail: 'cyber1: body is not valid UTF-8' },
  { name: 'lag missing', verify: byLag, preferred: json({ replication: {} }), serving: notFetched, ok: false, result: 'error', detail: 'cyber1: field replication.lagSeconds missing' },
  { name: 'lag unreadable', verify: byLag, preferred: failed('timeout after 1000ms'), serving: notFetched, ok: false, result: 'error', detail: 'cyber1: timeout after 1000ms' },
  { name: 'lag from a 503', verify: byLag, preferred: json({ replication: { lagSeconds: 0 } }, 503), serving: notFetched, ok: false, result: 'error', detail: 'cyber1: status 503' },
  { name: 'max without a field cannot pass', verify: makeVerify({ max: 5 }), preferred: json({ lag: 0 }), serving: notFetched, ok: false, result: 'error', detail: 'verify.max 5 needs a field to read' },

  // whole bodies
  { name: 'bodies byte-equal', verify: wholeBody, preferred: text('rows=10\n'), serving: text('rows=10\n'), ok: true, result: 'match', detail: `body ${hash('rows=10\n')} (cyber1) == ${hash('rows=10\n')} (serpong)` },
  { name: 'bodies differ by one byte', verify: wholeBody, preferred: text('rows=10\n'), serving: text('rows=11\n'), ok: false, result: 'mismatch', detail: `body ${hash('rows=10\n')} (cyber1) != ${hash('rows=11\n')} (serpong)` },
  { name: 'whitespace matters in whole bodies', verify: wholeBody, preferred: text('{"a":1}'), serving: text('{"a": 1}'), ok: false, result: 'mismatch', detail: /!=/ },
  { name: 'whole bodies compare as bytes, any encoding: Latin-1 Müller is not Mäller', verify: wholeBody, preferred: latin1('Müller'), serving: latin1('Mäller'), ok: false, result: 'mismatch', detail: /^body sha256:\w{8} \(cyber1\) != sha256:\w{8} \(serpong\)$/ },
  { name: 'identical non-UTF-8 bodies match', verify: wholeBody, preferred: latin1('Müller'), serving: latin1('Müller'), ok: true, result: 'match', detail: /==/ },
  { name: 'a bad UTF-8 byte is not U+FFFD', verify: wholeBody, preferred: bytes(Buffer.from([0x41, 0xff])), serving: text('A\uFFFD'), ok: false, result: 'mismatch', detail: /!=/ },
  { name: 'empty bodies are equal', verify: wholeBody, preferred: text(''), serving: text(''), ok: true, result: 'match', detail: /==/ },
  { name: 'whole body with an error', verify: wholeBody, preferred: text('x'), serving: failed('connect ECONNREFUSED'), ok: false, result: 'error', detail: 'serpong: connect ECONNREFUSED' },
  { name: 'whole body of a 500 page is not compared', verify: wholeBody, preferred: text('oops', 500), serving: text('oops', 500), ok: false, result: 'error', detail: 'cyber1: status 500; serpong: status 500' },
];

function hash(body: string): string {
  return `sha256:${createHash('sha256').update(body).digest('hex').slice(0, 8)}`;
}

for (const s of scenarios) {
  t.test(s.name, async (t) => {
    const got = compareIntegrity(s.verify, { site: 'cyber1', answer: s.preferred }, { site: 'serpong', answer: s.serving });
    t.equal(got.ok, s.ok, 'ok');
    t.equal(got.result, s.result, 'result');
    if (typeof s.detail === 'string') t.equal(got.detail, s.detail, 'detail');
    else t.match(got.detail, s.detail, 'detail');
  });
}

t.test('a failure never unblocks: every non-match is not ok', async (t) => {
  for (const s of scenarios) {
    const got = compareIntegrity(s.verify, { site: 'cyber1', answer: s.preferred }, { site: 'serpong', answer: s.serving });
    if (got.result !== 'match') t.notOk(got.ok, s.name);
  }
});
