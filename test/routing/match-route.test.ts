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
