import t from 'tap';
import { REDIS_URL, UPSTREAM_URL, WEBHOOK_URL, checkHostPattern, checkUrl, coerceNumber, parseDurationMs } from '../../src/config/field-rules.js';
import { measureEditDistance, suggestKey } from '../../src/config/suggest-key.js';

t.test('durations', async (t) => {
  const good: Array<[string, number]> = [['250ms', 250], ['2s', 2000], ['5m', 300000], ['1h', 3600000], ['0s', 0], ['1.5s', 1500], [' 3s ', 3000], ['1 minute', 60000], ['24d', 2073600000]];
  for (const [input, ms] of good) t.same(parseDurationMs(input), { ok: true, value: ms }, input);
  const bad: Array<[unknown, RegExp]> = [
    [5, /needs a unit: write 5ms or 5s/],
    ['30', /needs a unit/],
    ['-1s', /is negative/],
    ['30d', /too long; durations must be at most 24d/],
    ['soon', /is not a duration/],
    ['', /is not a duration/],
    ['2 fortnights', /is not a duration/],
    [null, /is empty/],
    [['1s'], /must be a duration like 500ms, 2s or 5m \(got a list\)/],
    [true, /must be a duration/],
  ];
  for (const [input, message] of bad) {
    const result = parseDurationMs(input);
    t.equal(result.ok, false, JSON.stringify(input));
    if (!result.ok) t.match(result.message, message, JSON.stringify(input));
  }
});

t.test('urls', async (t) => {
  const cases: Array<[unknown, typeof UPSTREAM_URL, string | RegExp]> = [
    ['http://127.0.0.1:18081', UPSTREAM_URL, 'http://127.0.0.1:18081'],
    ['https://backup.example.go.id/base/', UPSTREAM_URL, 'https://backup.example.go.id/base/'],
    ['  http://127.0.0.1:1  ', UPSTREAM_URL, 'http://127.0.0.1:1'],
    ['http://127.0.0.1:1/?', UPSTREAM_URL, /must not have a \?query/],
    ['http://127.0.0.1:1/#top', UPSTREAM_URL, /must not have a #fragment/],
    ['http://user:pw@127.0.0.1:1', UPSTREAM_URL, /must not contain a user or password/],
    ['127.0.0.1:1', UPSTREAM_URL, /"127.0.0.1:1" is not a URL: write the scheme too, like http:\/\/10.0.0.10:8080/],
    ['localhost:8080', UPSTREAM_URL, /is not a URL: write the scheme too/],
    ['http://', UPSTREAM_URL, /is not a valid URL/],
    ['ceir', UPSTREAM_URL, /is not a URL/],
    ['file:///etc/passwd', UPSTREAM_URL, /must use http or https, not file/],
    [8080, UPSTREAM_URL, /must be a URL like http:\/\/10.0.0.10:8080 \(got 8080\)/],
    ['https://127.0.0.1:9/hook?token=x', WEBHOOK_URL, 'https://127.0.0.1:9/hook?token=x'],
    ['redis://:secret@127.0.0.1:6379/0', REDIS_URL, 'redis://:secret@127.0.0.1:6379/0'],
    ['rediss://127.0.0.1:6380', REDIS_URL, 'rediss://127.0.0.1:6380'],
    ['http://127.0.0.1:6379', REDIS_URL, /must use redis or rediss, not http/],
  ];
  for (const [input, rule, expected] of cases) {
    const result = checkUrl(input, rule);
    if (typeof expected === 'string') t.same(result, { ok: true, value: expected }, String(input));
    else t.match(result, { ok: false, message: expected }, String(input));
  }
});

t.test('route hosts', async (t) => {
  const cases: Array<[string, string | undefined]> = [
    ['CEIR.Example.go.id', 'ceir.example.go.id'],
    ['*.example.go.id', '*.example.go.id'],
    ['localhost', 'localhost'],
    ['127.0.0.1', '127.0.0.1'],
    ['a.*.example', undefined],
    ['ceir.example.go.id:8080', undefined],
    ['https://ceir.example.go.id', undefined],
    ['-bad.example', undefined],
    ['', undefined],
  ];
  for (const [input, expected] of cases) {
    const result = checkHostPattern(input);
    t.same(result.ok ? result.value : undefined, expected, input);
  }
});

t.test('numbers from the environment', async (t) => {
  t.equal(coerceNumber('8080'), 8080);
  t.equal(coerceNumber(' 0.5 '), 0.5);
  t.equal(coerceNumber('-1'), -1);
  t.equal(coerceNumber('80a'), '80a');
  t.equal(coerceNumber(''), '');
  t.equal(coerceNumber(7), 7);
});

t.test('did you mean', async (t) => {
  const keys = ['url', 'building', 'timeouts', 'health', 'passive', 'failback', 'failover', 'interval'];
  const cases: Array<[string, string | undefined]> = [
    ['failbak', 'failback'],
    ['failovr', 'failover'],
    ['helth', 'health'],
    ['Building', 'building'],
    ['intreval', 'interval'],
    ['uri', 'url'],
    ['b', undefined],
    ['zzz', undefined],
    ['completely-different', undefined],
  ];
  for (const [input, expected] of cases) t.equal(suggestKey(input, keys), expected, input);
  t.equal(measureEditDistance('abc', 'acb'), 1, 'a swap costs one');
  t.equal(measureEditDistance('', 'abc'), 3);
});
