import t from 'tap';
import { parseSample, summarizeTraffic } from '../../src/admin/console-traffic.js';

t.test('parseSample reads one line of the text format, or nothing', async (t) => {
  const cases: Array<{ line: string; want: { name: string; labels: Record<string, string>; value: number } | undefined }> = [
    { line: 'detour_requests_total{route="ceir",site="cyber1",code="200"} 42', want: { name: 'detour_requests_total', labels: { route: 'ceir', site: 'cyber1', code: '200' }, value: 42 } },
    { line: 'detour_requests_total{route="ceir",} 3 1700000000000', want: { name: 'detour_requests_total', labels: { route: 'ceir' }, value: 3 } },
    { line: 'detour_decision_epoch 7', want: { name: 'detour_decision_epoch', labels: {}, value: 7 } },
    { line: 'm{a="say \\"hi\\"",b="back\\\\slash",c="two\\nlines"} 1.5e3', want: { name: 'm', labels: { a: 'say "hi"', b: 'back\\slash', c: 'two\nlines' }, value: 1500 } },
    { line: 'm{} 1', want: { name: 'm', labels: {}, value: 1 } },
    { line: '# HELP detour_requests_total Proxied requests', want: undefined },
    { line: '# TYPE detour_requests_total counter', want: undefined },
    { line: '', want: undefined },
    { line: 'm{a="unterminated} 1', want: undefined },
    { line: 'm{a=unquoted} 1', want: undefined },
    { line: 'm{a="x"', want: undefined },
    { line: 'm{="x"} 1', want: undefined },
    { line: 'm{a="x"}', want: undefined },
    { line: 'm{a="x"} NaN', want: undefined },
    { line: 'm{a="x"} +Inf', want: undefined },
    { line: 'm{a="x\\', want: undefined },
  ];
  for (const c of cases) {
    const got = parseSample(c.line);
    t.same(got === undefined ? undefined : { name: got.name, labels: Object.fromEntries(got.labels), value: got.value }, c.want, JSON.stringify(c.line));
  }
});

t.test('summarizeTraffic sums requests and 5xx per route over sites and codes', async (t) => {
  const exposition = [
    '# HELP detour_requests_total Proxied requests by route, serving site and response status code.',
    '# TYPE detour_requests_total counter',
    'detour_requests_total{route="visa",site="serpong",code="200"} 4',
    'detour_requests_total{route="visa",site="serpong"} 1',
    'detour_requests_total{route="ceir",site="cyber1",code="200"} 90',
    'detour_requests_total{route="ceir",site="serpong",code="200"} 7',
    'detour_requests_total{route="ceir",site="cyber1",code="502"} 2',
    'detour_requests_total{route="ceir",site="none",code="503"} 1',
    'detour_requests_total{route="ceir",site="cyber1",code="404"} 4',
    'detour_requests_total{site="cyber1",code="200"} 100',
    'detour_request_duration_seconds_count{route="ceir",site="cyber1"} 99',
    'detour_requests_total{route="broken",code="200"',
    'detour_site_up{site="cyber1",building="gedung-cyber-1"} 1',
    'detour_requests_total{route="alpha",site="serpong",code="200"} 1',
  ].join('\n');
  t.same(summarizeTraffic(exposition, 1234), {
    timeMs: 1234,
    routes: [
      { route: 'alpha', requests: 1, errors: 0 },
      { route: 'ceir', requests: 104, errors: 3 },
      { route: 'visa', requests: 5, errors: 0 },
    ],
  }, '4xx are requests, not errors; a line without a route or cut short is skipped');
  t.same(summarizeTraffic('', 5), { timeMs: 5, routes: [] }, 'no traffic yet');
});
