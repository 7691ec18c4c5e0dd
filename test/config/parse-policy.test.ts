import t from 'tap';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parsePolicy } from '../../src/config/parse-policy.js';
import { formatPolicyError, indexPolicy, type Policy } from '../../src/config/policy.js';

const fixtures = fileURLToPath(new URL('../fixtures/policies/', import.meta.url));
type Env = Record<string, string | undefined>;

function linesFor(text: string, file: string, env: Env = {}): string[] {
  const result = parsePolicy(text, file, env);
  return result.ok ? [] : result.errors.map(formatPolicyError);
}

function parseOk(text: string, env: Env = {}): Policy {
  const result = parsePolicy(text, 'inline.yaml', env);
  if (!result.ok) throw new Error(`expected a valid policy, got:\n${result.errors.map(formatPolicyError).join('\n')}`);
  return result.policy;
}

// Bad files and the exact lines `detour check` prints for them.
const badFiles: Array<{ fixture: string; env?: Env; expect: string[] }> = [
  {
    fixture: 'unknown-site.yaml',
    expect: ['10:9 routes[0].sites[1]: unknown site "serpongg" (did you mean "serpong"?)'],
  },
  {
    fixture: 'misspelled-key.yaml',
    expect: ['7:5 routes[0].failbak: unknown key (did you mean "failback"?)'],
  },
  {
    fixture: 'bad-duration.yaml',
    expect: [
      '5:17 sites.cyber1.health.interval: needs a unit: write 5ms or 5s, not a bare number',
      '6:16 sites.cyber1.health.timeout: "soon" is not a duration (use a number and a unit: 250ms, 2s, 5m, 1h)',
      '10:27 routes[0].failback.holdDown: "-30s" is negative; durations must be 0 or more',
    ],
  },
  {
    fixture: 'bad-url.yaml',
    expect: [
      '3:10 sites.cyber1.url: "10.0.0.10:8080" is not a URL: write the scheme too, like http://10.0.0.10:8080',
      '5:10 sites.serpong.url: "ftp://127.0.0.1:18082" must use http or https, not ftp',
      '7:10 sites.batam.url: "http://127.0.0.1:18083/api?debug=1" must not have a ?query (a base path like /api is fine)',
    ],
  },
  {
    fixture: 'duplicate-route.yaml',
    expect: ['9:11 routes[2].name: duplicate route name "ceir" (already used by routes[0])'],
  },
  {
    // admin.token is absent, not an error, when its variable is unset.
    fixture: 'unset-env.yaml',
    expect: [
      '1:17 listen.port: environment variable DETOUR_TEST_PORT is not set',
      '5:10 sites.cyber1.url: environment variable DETOUR_TEST_CYBER1_URL is not set',
    ],
  },
  {
    // Values that arrive through ${VAR} are reported where the ${VAR} is written.
    fixture: 'interpolated-value.yaml',
    env: { DETOUR_TEST_PORT: 'eighty', DETOUR_TEST_CYBER1_URL: 'http://127.0.0.1:18081/?x=1', DETOUR_TEST_INTERVAL: '0ms' },
    expect: [
      '4:9 listen.port: must be a port from 0 to 65535 (0 picks a free port) (got "eighty")',
      '7:10 sites.cyber1.url: "http://127.0.0.1:18081/?x=1" must not have a ?query (a base path like /api is fine)',
      '8:25 sites.cyber1.health.interval: must be longer than 0',
    ],
  },
  {
    fixture: 'many-errors.yaml',
    expect: [
      '2:32 listen.port: must be a port from 0 to 65535 (0 picks a free port) (got 70000)',
      '7:5 sites.cyber1.helth: unknown key (did you mean "health"?)',
      '11:35 sites.serpong.health.expectStatus[1]: must be an HTTP status from 100 to 599 (got 99)',
      '14:30 routes[0].sites[2]: site "cyber1" is listed twice (also at position 1); each site appears once, in order of preference',
      '15:23 routes[0].failover.mode: must be auto or manual (got "automatic")',
      '17:22 routes[0].failback.ramp[2]: ramp steps must increase: 30 comes after 50',
      '17:22 routes[0].failback.ramp[2]: the last ramp step must be 100 (all traffic back on the preferred site), not 30',
      '18:36 routes[0].failback.verify.max: needs verify.field: max is the largest value allowed in that JSON field',
      '19:5 routes[1].name: is required',
      '19:20 routes[1].match.host: "https://ceir.example.go.id" is not a host name; write it like ceir.example.go.id or *.example.go.id (no scheme, port or path)',
      '21:15 routes[1].priority: must be a whole number from 1 to 1000000 (got 0)',
      '23:15 drain.buildings[0]: no site is in building "gedung-cyber-2" (did you mean "gedung-cyber-1"?)',
      '24:11 drain.sites[0]: unknown site "cyber9" (did you mean "cyber1"?)',
      '25:24 unavailable.status: must be an HTTP error status from 400 to 599 (got 200)',
      '25:41 unavailable.retryAfter: needs a unit: write 30ms or 30s, not a bare number',
      '26:8 state.redis: is required',
    ],
  },
  {
    fixture: 'syntax-error.yaml',
    expect: ['4:8 (top level): YAML syntax: Nested mappings are not allowed in compact mappings'],
  },
  {
    fixture: 'not-a-map.yaml',
    expect: ['1:1 (top level): must be a map of settings such as sites: and routes: (got a list)'],
  },
];

for (const scenario of badFiles) {
  t.test(`bad file: ${scenario.fixture}`, async (t) => {
    const text = readFileSync(`${fixtures}${scenario.fixture}`, 'utf8');
    const lines = linesFor(text, scenario.fixture, scenario.env);
    t.same(lines, scenario.expect.map((line) => `${scenario.fixture}:${line}`));
  });
}

// Small inline files for rules the fixtures above do not reach.
const site = 'sites:\n  a: { url: "http://127.0.0.1:1" }\n';
const route = 'routes:\n  - { name: r, sites: [a] }\n';
const inlineCases: Array<{ name: string; text: string; env?: Env; expect: string[] }> = [
  { name: 'empty file', text: '# nothing yet\n', expect: ['1:1 (top level): the policy is empty; it needs at least sites and routes'] },
  {
    name: 'missing required keys point at the map that should hold them',
    text: 'listen:\n  port: 8080\nsites:\n  a:\n    building: b\n',
    expect: ['1:1 routes: is required', '5:5 sites.a.url: is required'],
  },
  {
    name: 'unknown top-level key lists the allowed keys when nothing is close',
    text: `${site}${route}frobnicate: true\n`,
    expect: ['5:1 frobnicate: unknown key (allowed here: listen, admin, sites, routes, drain, unavailable, state, notify, shutdown, limits, trustedProxies, accessLog, workers)'],
  },
  {
    name: 'a key named __proto__ is an unknown key, not a prototype',
    text: `${site}${route}drain:\n  __proto__: { sites: [a] }\n`,
    expect: ['6:3 drain.__proto__: unknown key (allowed here: buildings, sites)'],
  },
  {
    name: 'duplicate YAML keys',
    text: `${site}${route}listen: { port: 1 }\nlisten: { port: 2 }\n`,
    expect: ['6:1 (top level): YAML syntax: this key appears twice in the same map (YAML keys must be unique)'],
  },
  {
    name: 'empty values say so',
    text: 'sites:\n  a:\n    url:\n' + route,
    expect: ['3:5 sites.a.url: is empty (expected a URL like http://10.0.0.10:8080)'],
  },
  {
    name: 'names, empty lists and an empty site map',
    text: 'sites: {}\nroutes:\n  - { name: "bad name", sites: [] }\n',
    expect: [
      '1:8 sites: must define at least one site',
      '3:13 routes[0].name: must start with a letter or digit and use only letters, digits, \'.\', \'_\' and \'-\'',
      '3:32 routes[0].sites: must list at least one site',
    ],
  },
  {
    name: 'bad site name is reported at the key',
    text: 'sites:\n  -bad: { url: "http://127.0.0.1:1" }\nroutes:\n  - { name: r, sites: [-bad] }\n',
    expect: ['2:3 sites.-bad: site name "-bad" must start with a letter or digit and use only letters, digits, \'.\', \'_\' and \'-\''],
  },
  {
    name: 'ports, statuses, jitter, retry statuses and counts',
    text: `${site}${route}admin: { port: -1 }\nnotify:\n  webhooks:\n    - { url: "http://127.0.0.1:2/hook#x", retries: 1.5, headers: { "Bad Header": x } }\n`,
    expect: [
      '5:16 admin.port: must be a port from 0 to 65535 (0 picks a free port) (got -1)',
      '8:14 notify.webhooks[0].url: "http://127.0.0.1:2/hook#x" must not have a #fragment',
      '8:52 notify.webhooks[0].retries: must be a whole number from 0 to 100 (got 1.5)',
      '8:68 notify.webhooks[0].headers.Bad Header: "Bad Header" is not a valid HTTP header name',
    ],
  },
  {
    name: 'health and retry ranges',
    text: 'sites:\n  a:\n    url: http://127.0.0.1:1\n    health: { jitter: 2, rise: 0, expectStatus: [], path: healthz }\n'
      + 'routes:\n  - name: r\n    sites: [a]\n    retry: { on: [200] }\n    failback: { ramp: [0, 100], mode: later }\n',
    expect: [
      '4:23 sites.a.health.jitter: must be from 0 to 1',
      '4:32 sites.a.health.rise: must be a whole number from 1 to 1000 (got 0)',
      '4:49 sites.a.health.expectStatus: must list at least one status',
      '4:59 sites.a.health.path: "healthz" must start with /',
      '8:19 routes[0].retry.on[0]: must be an HTTP error status from 400 to 599 (got 200)',
      '9:24 routes[0].failback.ramp[0]: must be a percentage from 1 to 100 (got 0)',
      '9:39 routes[0].failback.mode: must be auto or manual (got "later")',
    ],
  },
  {
    name: 'edge limits, trusted proxies, access log and retry budget',
    text: `${site}routes:\n  - name: r\n    sites: [a]\n    retry: { budget: { percent: 120, minPerSecond: -1 } }\n    limits: { bodyBytes: 10 parsecs }\n`
      + 'limits: { headerBytes: 10, headersTimeout: 2m, requestTimeout: 1m, bodyBytes: -5, maxConnections: 0 }\n'
      + 'trustedProxies: [10.0.0.0/33, not-an-ip, 192.0.2.7, "2001:db8::/32"]\n'
      + 'accessLog: { sample: 1.5, path: "" }\n',
    expect: [
      '6:33 routes[0].retry.budget.percent: must be from 0 to 100',
      '6:52 routes[0].retry.budget.minPerSecond: must be 0 or more',
      '7:26 routes[0].limits.bodyBytes: "10 parsecs" is not a size (use b, kb, mb or gb: 16kb, 10mb)',
      '8:24 limits.headerBytes: must be a byte count from 1024 to 16777216 (got 10)',
      '8:79 limits.bodyBytes: must be a whole number of bytes, 0 or more (got -5)',
      '8:99 limits.maxConnections: must be a whole number from 1 to 10000000 (got 0)',
      '9:18 trustedProxies[0]: "10.0.0.0/33": the prefix length must be 0 to 32',
      '9:31 trustedProxies[1]: "not-an-ip" is not a CIDR like 10.0.0.0/8 or an address like 192.0.2.7',
      '10:22 accessLog.sample: must be from 0 to 1',
      '10:33 accessLog.path: must not be empty',
    ],
  },
  {
    name: 'workers: a whole number from 1 to 256, or auto',
    text: `${site}${route}workers: 0\n`,
    expect: ['5:10 workers: must be a whole number from 1 to 256, or auto for one per core (got 0)'],
  },
  {
    name: 'workers: a word other than auto',
    text: `${site}${route}workers: all\n`,
    expect: ['5:10 workers: must be a whole number from 1 to 256, or auto for one per core (got "all")'],
  },
  {
    name: 'the head cannot take longer than the whole request',
    text: `${site}${route}limits: { headersTimeout: 2m, requestTimeout: 1m }\naccessLog: { path: "" }\n`,
    expect: ['5:27 limits.headersTimeout: must not be longer than limits.requestTimeout', '6:20 accessLog.path: must not be empty'],
  },
  {
    name: 'redis url scheme',
    text: `${site}${route}state:\n  redis: { url: "http://127.0.0.1:6379" }\n`,
    expect: ['6:17 state.redis.url: "http://127.0.0.1:6379" must use redis or rediss, not http'],
  },
  {
    name: 'a bad variable reference',
    text: `${site}${route}admin: { token: "\${not-a-name}" }\nshutdown: { grace: "\${GRACE" }\n`,
    expect: [
      '5:17 admin.token: "${not-a-name}" is not a variable reference: write ${NAME} or ${NAME:-default} (NAME is letters, digits and _)',
      '6:20 shutdown.grace: "${" is never closed by "}" (write "$${" for a literal "${")',
    ],
  },
  {
    name: 'several unset variables in one value',
    text: `sites:\n  a: { url: "http://\${HOST_A}:\${PORT_A}" }\n${route}`,
    expect: ['2:13 sites.a.url: environment variables HOST_A, PORT_A are not set'],
  },
];

for (const c of inlineCases) {
  t.test(`inline: ${c.name}`, async (t) => {
    t.same(linesFor(c.text, 'p.yaml', c.env), c.expect.map((line) => `p.yaml:${line}`));
  });
}

t.test('defaults are filled in', async (t) => {
  const policy = parseOk(readFileSync(`${fixtures}minimal.yaml`, 'utf8'));
  const health = { path: '/healthz', intervalMs: 1000, jitter: 0.1, timeoutMs: 500, rise: 2, fall: 2, expectStatus: [200] };
  const siteDefaults = { timeouts: { connectMs: 1000, responseMs: 30000 }, health, passive: { failureThreshold: 3, statuses: [502, 503, 504], ratio: 0.5, minRequests: 20, minClients: 1, windowMs: 10000 } };
  t.same({ ...policy, file: 'x' }, {
    file: 'x',
    listen: { host: '0.0.0.0', port: 8080 },
    admin: { host: '127.0.0.1', port: 9090, publicRead: true },
    sites: [
      { name: 'primary', url: 'http://127.0.0.1:18081', building: 'primary', ...siteDefaults },
      { name: 'backup', url: 'http://127.0.0.1:18082', building: 'backup', ...siteDefaults },
    ],
    routes: [{
      name: 'app',
      match: { pathPrefix: '/' },
      sites: ['primary', 'backup'],
      priority: 1,
      failover: { mode: 'auto' },
      failback: { mode: 'auto', holdDownMs: 30000, ramp: [100], stepMs: 10000 },
      retry: { on: [502, 503, 504], maxBodyBytes: 65536, budget: { percent: 20, minPerSecond: 3 } },
      limits: { bodyBytes: 10 * 1024 * 1024 },
    }],
    drain: { buildings: [], sites: [] },
    unavailable: { status: 503, retryAfterSeconds: 30 },
    notify: { webhooks: [] },
    shutdown: { graceMs: 10000 },
    limits: {
      headerBytes: 16384, headersTimeoutMs: 10000, requestTimeoutMs: 60000, bodyBytes: 10 * 1024 * 1024,
      keepAliveTimeoutMs: 5000, maxConnections: 10000,
    },
    trustedProxies: [],
  });
  t.notOk('accessLog' in policy, 'no access log unless configured');
  t.notOk('state' in policy, 'no state store unless configured');
  t.notOk('token' in policy.admin, 'no token unless configured');
  t.notOk('verify' in policy.routes[0]!.failback, 'no integrity gate unless configured');
});

t.test('edge keys convert at the edge', async (t) => {
  const policy = parseOk([
    'sites: { a: { url: "http://127.0.0.1:1" } }',
    'routes:',
    '  - { name: upload, sites: [a], limits: { bodyBytes: 1gb }, retry: { budget: { percent: 5, minPerSecond: 0.5 } } }',
    '  - { name: rest, sites: [a] }',
    'limits: { headerBytes: 32768, headersTimeout: 2s, requestTimeout: 30s, bodyBytes: 64kb, keepAliveTimeout: 1s, maxConnections: 50 }',
    'trustedProxies: [10.0.0.0/8, "::1"]',
    'accessLog: { path: /var/log/detour/access.log, sample: 0.25 }',
  ].join('\n'));
  t.same(policy.limits, { headerBytes: 32768, headersTimeoutMs: 2000, requestTimeoutMs: 30000, bodyBytes: 65536, keepAliveTimeoutMs: 1000, maxConnections: 50 });
  t.same(policy.routes.map((r) => r.limits.bodyBytes), [1024 ** 3, 65536], 'a route limit wins; the rest take the top-level one');
  t.same(policy.routes[0]!.retry.budget, { percent: 5, minPerSecond: 0.5 });
  t.same(policy.trustedProxies, ['10.0.0.0/8', '::1']);
  t.same(policy.accessLog, { path: '/var/log/detour/access.log', sample: 0.25 });
  t.same(parseOk('sites: { a: { url: "http://127.0.0.1:1" } }\nroutes: [{ name: r, sites: [a] }]\naccessLog: {}\nlimits: { bodyBytes: 512 }').accessLog,
    { path: 'stdout', sample: 1 }, 'accessLog: {} logs everything to stdout');
});

t.test('workers: absent (one process), a count, or auto', async (t) => {
  const base = 'sites: { a: { url: "http://127.0.0.1:1" } }\nroutes: [{ name: r, sites: [a] }]\n';
  const scenarios: Array<[string, number | 'auto' | undefined]> = [['', undefined], ['workers: 1\n', 1], ['workers: 4\n', 4], ['workers: "3"\n', 3], ['workers: auto\n', 'auto']];
  for (const [text, expected] of scenarios) t.equal(parseOk(base + text).workers, expected, text.trim() || 'absent');
  t.notOk('workers' in parseOk(base), 'absent stays absent (older policies compare equal)');
});

t.test('every value converts at the edge', async (t) => {
  const policy = parseOk([
    'sites:',
    '  z: { url: "http://127.0.0.1:1", building: west, health: { expectBody: ok, interval: 250ms } }',
    '  a: { url: "https://127.0.0.1:2/base" }',
    '  "10": { url: "http://127.0.0.1:3" }',
    'routes:',
    '  - name: r',
    '    match: { host: "*.Example.GO.id", pathPrefix: /api }',
    '    sites: [a, z, "10"]',
    '    failback:',
    '      verify: { path: /_replication, field: replication.lagSeconds, max: 5, interval: 1m }',
    '      maxConcurrent: 2',
    'unavailable: { retryAfter: 1500ms }',
    'state: { redis: { url: "redis://127.0.0.1:6379/0" } }',
    'notify: { webhooks: [{ url: "https://127.0.0.1:9/h?t=1", headers: { X-Team: imm } }] }',
    'shutdown: { grace: 2m }',
  ].join('\n'));
  t.same(policy.sites.map((s) => s.name), ['z', 'a', '10'], 'sites keep file order, even numeric names');
  t.equal(policy.sites[0]!.building, 'west');
  t.equal(policy.sites[0]!.health.expectBody, 'ok');
  t.equal(policy.sites[0]!.health.intervalMs, 250);
  t.equal(policy.sites[1]!.url, 'https://127.0.0.1:2/base', 'a base path is allowed');
  t.same(policy.routes[0]!.match, { host: '*.example.go.id', pathPrefix: '/api' }, 'host is lower-cased, wildcard kept');
  t.same(policy.routes[0]!.failback.verify, { path: '/_replication', field: 'replication.lagSeconds', max: 5, intervalMs: 60000, timeoutMs: 1000 });
  t.equal(policy.routes[0]!.failback.maxConcurrent, 2);
  t.equal(policy.unavailable.retryAfterSeconds, 2, 'Retry-After rounds up to whole seconds');
  t.same(policy.state, { redis: { url: 'redis://127.0.0.1:6379/0', keyPrefix: 'detour:' } });
  t.same(policy.notify.webhooks, [{ url: 'https://127.0.0.1:9/h?t=1', timeoutMs: 2000, retries: 3, headers: { 'X-Team': 'imm' } }]);
  t.equal(policy.shutdown.graceMs, 120000);
});

t.test('the policy is frozen all the way down', async (t) => {
  const policy = parseOk(readFileSync(`${fixtures}minimal.yaml`, 'utf8'));
  t.ok(Object.isFrozen(policy));
  t.ok(Object.isFrozen(policy.sites[0]!.health.expectStatus));
  t.ok(Object.isFrozen(policy.routes[0]!.failback.ramp));
  t.throws(() => { (policy.routes[0]!.sites as string[]).push('x'); });
  t.throws(() => { (policy.listen as { port: number }).port = 1; });
});

t.test('environment interpolation', async (t) => {
  const text = [
    'listen: { host: "${HOST:-127.0.0.1}", port: ${PORT} }',
    'admin: { host: 127.0.0.1, port: 9090, token: ${DETOUR_ADMIN_TOKEN} }',
    'sites:',
    '  a: { url: "http://127.0.0.1:${SITE_PORT:-18081}", health: { expectBody: "$${literal} $5" } }',
    'routes:',
    '  - { name: r, sites: [a] }',
  ].join('\n');
  const withAll = parseOk(text, { PORT: '8081', DETOUR_ADMIN_TOKEN: 's3cret', SITE_PORT: '19000', HOST: '' });
  t.same(withAll.listen, { host: '127.0.0.1', port: 8081 }, 'numbers from the environment are numbers; empty takes the default');
  t.equal(withAll.admin.token, 's3cret', 'a flow map may hold ${VAR} unquoted');
  t.equal(withAll.sites[0]!.url, 'http://127.0.0.1:19000');
  t.equal(withAll.sites[0]!.health.expectBody, '${literal} $5', '$${ is a literal ${');

  const noToken = parseOk(text, { PORT: '8081' });
  t.notOk('token' in noToken.admin, 'unset admin token: absent, mutations refused');
  t.equal(noToken.sites[0]!.url, 'http://127.0.0.1:18081', 'default used when unset');
  t.notOk('token' in parseOk(text, { PORT: '1', DETOUR_ADMIN_TOKEN: '' }).admin, 'empty admin token: absent too');
});

t.test('anchors and aliases share settings', async (t) => {
  const policy = parseOk([
    'sites:',
    '  a: { url: "http://127.0.0.1:1", health: &probe { interval: 3s, rise: 4 } }',
    '  b: { url: "http://127.0.0.1:2", health: *probe }',
    'routes:',
    '  - { name: r, sites: [a, b] }',
  ].join('\n'));
  t.same(policy.sites.map((s) => [s.health.intervalMs, s.health.rise]), [[3000, 4], [3000, 4]]);
});

t.test('never throws on odd input', async (t) => {
  const odd = ['', '---\n---\n', ': x', '[', 'sites: !!binary aGVsbG8=', 'a: &x [*x]', '\t- x', 'sites:\n  ? [a]\n  : 1', '\uE000${X}'];
  for (const text of odd) {
    const result = parsePolicy(text, 'odd.yaml', {});
    t.equal(result.ok, false, JSON.stringify(text));
    if (!result.ok) t.ok(result.errors.length > 0 && result.errors.every((e) => e.line >= 1 && e.col >= 1 && e.message !== ''));
  }
});

t.test('the index: a policy with the same routes and sites shares it; one with other routes or sites has its own', async (t) => {
  const text = 'sites:\n  a: { url: "http://127.0.0.1:1" }\nroutes:\n  - { name: r, match: { host: r.example }, sites: [a] }\n';
  const from = parseOk(text);
  const index = indexPolicy(from);
  const sameLists: Policy = { ...from, listen: { ...from.listen, port: from.listen.port + 1 } };
  t.equal(indexPolicy(sameLists), index, 'same routes and sites: the same index');
  const other = parseOk(text);
  const copied: Policy = { ...from, routes: other.routes };
  t.not(indexPolicy(copied), index, 'other routes: an index of its own');
  t.equal(indexPolicy(copied).routes.get('r'), other.routes[0], 'built from its own routes');
  const otherSites: Policy = { ...from, sites: other.sites };
  t.not(indexPolicy(otherSites), index, 'other sites: an index of its own');
  t.equal(indexPolicy(otherSites).sites.get('a'), other.sites[0], 'built from its own sites');
  t.equal(indexPolicy(from).sites.get('a'), from.sites[0], 'the first policy still gets an index of its own sites');
});
