import t from 'tap';
import { matchRoute, normaliseHost } from '../../src/routing/match-route.js';
import { testPolicy } from '../helpers/policy.js';

const policy = testPolicy({
  sites: [{ name: 'a', url: 'http://127.0.0.1:1' }],
  routes: [
    { name: 'ceir-api', sites: ['a'], match: { host: 'ceir.example.go.id', pathPrefix: '/api' } },
    { name: 'ceir', sites: ['a'], match: { host: 'ceir.example.go.id' } },
    { name: 'wild', sites: ['a'], match: { host: '*.imigrasi.go.id', pathPrefix: '/visa/' } },
    { name: 'docs', sites: ['a'], match: { pathPrefix: '/docs' } },
    { name: 'catch-all', sites: ['a'], match: { host: 'fallback.example' } },
  ],
});

// host, path -> expected route (undefined = no match). First match wins.
const scenarios: Array<[string | undefined, string, string | undefined]> = [
  ['ceir.example.go.id', '/api', 'ceir-api'],
  ['ceir.example.go.id', '/api/v1/imei', 'ceir-api'],
  ['ceir.example.go.id', '/api?q=1', 'ceir-api'],
  ['ceir.example.go.id', '/api#frag', 'ceir-api'],
  ['ceir.example.go.id', '/apix', 'ceir'],
  ['ceir.example.go.id', '/', 'ceir'],
  ['CEIR.Example.GO.id:8080', '/api/x', 'ceir-api'],
  ['ceir.example.go.id.', '/x', 'ceir'],
  ['other.example.go.id', '/api', undefined],
  ['border.imigrasi.go.id', '/visa/apply', 'wild'],
  ['a.b.imigrasi.go.id', '/visa/', 'wild'],
  ['imigrasi.go.id', '/visa/apply', undefined],
  ['evilimigrasi.go.id', '/visa/apply', undefined],
  ['border.imigrasi.go.id', '/visa', undefined],
  ['anything.test', '/docs', 'docs'],
  [undefined, '/docs/x', 'docs'],
  [undefined, '/', undefined],
  ['anything.test', '/documents', undefined],
  ['[::1]:8080', '/docs', 'docs'],
  ['fallback.example', 'http://fallback.example/x?y', 'catch-all'],
  ['ceir.example.go.id', 'http://ceir.example.go.id/api/v1', 'ceir-api'],
  ['ceir.example.go.id', '*', 'ceir'],
  // Percent-encoded unreserved characters are the characters themselves to a site that decodes.
  ['anything.test', '/%64ocs/x', 'docs'],
  ['anything.test', '/%64%6F%63%73', 'docs'],
  ['ceir.example.go.id', '/%61pi/v1', 'ceir-api'],
  // An encoded '/' is data, not a separator.
  ['anything.test', '/docs%2Fx', undefined],
];

for (const [host, path, expected] of scenarios) {
  t.equal(matchRoute(policy, host, path)?.name, expected, `${host ?? '(no host)'} ${path} -> ${expected ?? 'no route'}`);
}

t.test('a route with no host and prefix / takes everything, after earlier routes', async (t) => {
  const p = testPolicy({
    sites: [{ name: 'a', url: 'http://127.0.0.1:1' }],
    routes: [{ name: 'api', sites: ['a'], match: { pathPrefix: '/api' } }, { name: 'all', sites: ['a'] }],
  });
  t.equal(matchRoute(p, undefined, '/x')?.name, 'all');
  t.equal(matchRoute(p, 'h', '/api/x')?.name, 'api');
  t.equal(matchRoute(p, 'h', '')?.name, 'all');
});

t.test('normaliseHost', async (t) => {
  const cases: Array<[string, string]> = [
    ['Example.COM', 'example.com'],
    ['example.com:443', 'example.com'],
    ['[::1]:80', '[::1]'],
    ['[::1]', '[::1]'],
    [' example.com. ', 'example.com'],
  ];
  for (const [input, expected] of cases) t.equal(normaliseHost(input), expected, input);
});

t.test('the host index keeps file order across exact, wildcard and host-less routes', async (t) => {
  // Interleaved on purpose: a host-less or wildcard route listed before an exact one wins for that host.
  const interleaved = testPolicy({
    sites: [{ name: 'a', url: 'http://127.0.0.1:1' }],
    routes: [
      { name: 'early-docs', sites: ['a'], match: { pathPrefix: '/docs' } },
      { name: 'wild-api', sites: ['a'], match: { host: '*.example.test', pathPrefix: '/api' } },
      { name: 'exact', sites: ['a'], match: { host: 'shop.example.test' } },
      { name: 'Upper', sites: ['a'], match: { host: 'UPPER.example.test', pathPrefix: '/u' } },
      { name: 'late-all', sites: ['a'], match: { pathPrefix: '/' } },
    ],
  });
  const cases: Array<[string | undefined, string, string]> = [
    ['shop.example.test', '/docs/x', 'early-docs'],
    ['shop.example.test', '/api/v1', 'wild-api'],
    ['shop.example.test', '/cart', 'exact'],
    ['upper.example.test', '/u/1', 'Upper'],
    ['upper.example.test', '/api', 'wild-api'],
    ['upper.example.test', '/x', 'late-all'],
    ['other.example.test', '/api', 'wild-api'],
    ['other.example.test', '/x', 'late-all'],
    ['example.test', '/api', 'late-all'],
    [undefined, '/api', 'late-all'],
    ['', '/docs', 'early-docs'],
  ];
  for (const [host, path, expected] of cases) {
    t.equal(matchRoute(interleaved, host, path)?.name, expected, `${host ?? '(no host)'} ${path} -> ${expected}`);
  }
});

t.test('10,000 routes over 1,000 hosts: the right route, first in file order', async (t) => {
  const routes = [];
  for (let h = 0; h < 1000; h++) {
    for (let r = 0; r < 10; r++) {
      routes.push({ name: `h${h}-r${r}`, sites: ['a'], match: { host: `h${h}.example.test`, pathPrefix: r === 9 ? '/' : `/p${r}` } });
    }
  }
  const big = testPolicy({ sites: [{ name: 'a', url: 'http://127.0.0.1:1' }], routes });
  t.equal(matchRoute(big, 'h0.example.test', '/p3/x')?.name, 'h0-r3');
  t.equal(matchRoute(big, 'h999.example.test', '/p0')?.name, 'h999-r0');
  t.equal(matchRoute(big, 'H512.example.test:80', '/nothing')?.name, 'h512-r9');
  t.equal(matchRoute(big, 'h1000.example.test', '/'), undefined, 'a host no route names');
});
