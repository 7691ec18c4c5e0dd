import t from 'tap';
import { createHash } from 'node:crypto';
import { compareIntegrity, type Answer, type IntegrityResult } from '../../src/health/integrity.js';
import { makeVerify } from './site-fixture.js';
import type { VerifyPolicy } from '../../src/config/policy.js';

const json = (value: unknown, status = 200): Answer => ({ ok: true, status, body: JSON.stringify(value) });
const text = (body: string, status = 200): Answer => ({ ok: true, status, body });
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
  { name: 'unreadable JSON', verify: byField, preferred: json({ checksum: 'a' }), serving: text('<html>maintenance</html>'), ok: false, result: 'error', detail: 'serpong: body is not JSON' },
  { name: 'serving not fetched', verify: byField, preferred: json({ checksum: 'a' }), serving: notFetched, ok: false, result: 'error', detail: 'serpong: not fetched' },

  // bound on the preferred site alone
  { name: 'lag under max', verify: byLag, preferred: json({ replication: { lagSeconds: 3 } }), serving: notFetched, ok: true, result: 'match', detail: 'replication.lagSeconds 3 (cyber1) <= max 5' },
  { name: 'lag at max passes', verify: byLag, preferred: json({ replication: { lagSeconds: 5 } }), serving: notFetched, ok: true, result: 'match', detail: 'replication.lagSeconds 5 (cyber1) <= max 5' },
  { name: 'lag over max', verify: byLag, preferred: json({ replication: { lagSeconds: 12 } }), serving: notFetched, ok: false, result: 'mismatch', detail: 'replication.lagSeconds 12 (cyber1) > max 5' },
  { name: 'serving answer does not matter for a bound', verify: byLag, preferred: json({ replication: { lagSeconds: 0 } }), serving: failed('connect ECONNREFUSED'), ok: true, result: 'match', detail: 'replication.lagSeconds 0 (cyber1) <= max 5' },
  { name: 'lag as a string is not a number', verify: byLag, preferred: json({ replication: { lagSeconds: '3' } }), serving: notFetched, ok: false, result: 'error', detail: 'cyber1: field replication.lagSeconds is not a finite number (3)' },
  { name: 'lag missing', verify: byLag, preferred: json({ replication: {} }), serving: notFetched, ok: false, result: 'error', detail: 'cyber1: field replication.lagSeconds missing' },
  { name: 'lag unreadable', verify: byLag, preferred: failed('timeout after 1000ms'), serving: notFetched, ok: false, result: 'error', detail: 'cyber1: timeout after 1000ms' },
  { name: 'lag from a 503', verify: byLag, preferred: json({ replication: { lagSeconds: 0 } }, 503), serving: notFetched, ok: false, result: 'error', detail: 'cyber1: status 503' },
  { name: 'max without a field cannot pass', verify: makeVerify({ max: 5 }), preferred: json({ lag: 0 }), serving: notFetched, ok: false, result: 'error', detail: 'verify.max 5 needs a field to read' },

  // whole bodies
  { name: 'bodies byte-equal', verify: wholeBody, preferred: text('rows=10\n'), serving: text('rows=10\n'), ok: true, result: 'match', detail: `body ${hash('rows=10\n')} (cyber1) == ${hash('rows=10\n')} (serpong)` },
  { name: 'bodies differ by one byte', verify: wholeBody, preferred: text('rows=10\n'), serving: text('rows=11\n'), ok: false, result: 'mismatch', detail: `body ${hash('rows=10\n')} (cyber1) != ${hash('rows=11\n')} (serpong)` },
  { name: 'whitespace matters in whole bodies', verify: wholeBody, preferred: text('{"a":1}'), serving: text('{"a": 1}'), ok: false, result: 'mismatch', detail: /!=/ },
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
