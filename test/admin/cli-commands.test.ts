import t from 'tap';
import { Command, CommanderError } from 'commander';
import { registerAdminCommands, formatStatus } from '../../src/admin/cli-commands.js';
import { policyErrors, sampleStatus } from './fake-control.js';
import { closedPort, goodToken, startTestServer } from './start-server.js';

interface CliRun {
  /** Last exit code set; undefined if never set. */
  readonly code: number | undefined;
  readonly out: string;
  readonly err: string;
}

async function runCli(args: string[], env: Record<string, string | undefined>): Promise<CliRun> {
  // Root-level errors (unknown command) must not exit the test process either.
  const program = new Command('detour').exitOverride();
  const out: string[] = [];
  const err: string[] = [];
  let code: number | undefined;
  registerAdminCommands(program, { out: (s) => out.push(s), err: (s) => err.push(s), env, setExitCode: (n) => (code = n) });
  try {
    await program.parseAsync(args, { from: 'user' });
  } catch (e) {
    if (!(e instanceof CommanderError)) throw e;
  }
  return { code, out: out.join(''), err: err.join('') };
}

t.test('status prints routes, sites and the last ten events', async (t) => {
  const s = await startTestServer(t);
  const r = await runCli(['status', '--admin', s.url], {});
  t.equal(r.code, 0);
  t.equal(r.err, '');
  for (const route of sampleStatus().routes) {
    t.match(r.out, new RegExp(`^  ${route.name} +${route.priority} +${route.state} `, 'm'), `row for ${route.name}`);
  }
  t.match(r.out, /serpong 10% cyber1 90%/, 'ramp weights');
  t.match(r.out, /^  cyber1 +down +gedung-cyber-1 +yes \(building\)/m, 'drained site row');
  t.match(r.out, /^  dr +unknown +surabaya-dc +no/m);
  t.match(r.out, /^  border control: failover cyber1 -> serpong waiting for approval: detour failover 'border control'$/m);
  t.match(r.out, /ceir: failback waiting for approval: detour failback ceir/);
  t.match(r.out, /visa: integrity check failing: checksum 9c2e/);
  t.match(r.out, /DRAINS +buildings: gedung-cyber-1 +sites: -/);
  t.match(r.out, /RECENT EVENTS \(10 of 12\)/);
  t.match(r.out, /event number 12$/m);
  t.match(r.out, /event number 3$/m);
  t.notMatch(r.out, /event number 2$/m, 'older events are left out');
  t.same(s.control.calls.map((c) => c.method), ['status']);
});

t.test('status --json prints the raw document; DETOUR_ADMIN_URL is used without --admin', async (t) => {
  const s = await startTestServer(t);
  const r = await runCli(['status', '--json'], { DETOUR_ADMIN_URL: s.url });
  t.equal(r.code, 0);
  t.same(JSON.parse(r.out), sampleStatus());
});

t.test('--admin wins over DETOUR_ADMIN_URL', async (t) => {
  const s = await startTestServer(t);
  const r = await runCli(['status', '--json', '--admin', s.url], { DETOUR_ADMIN_URL: `http://127.0.0.1:${await closedPort()}` });
  t.equal(r.code, 0);
});

t.test('mutations succeed with the token from the environment', async (t) => {
  const s = await startTestServer(t);
  const env = { DETOUR_ADMIN_URL: s.url, DETOUR_ADMIN_TOKEN: goodToken };
  const cases: Array<{ args: string[]; call: { method: string; args: unknown[] }; out: RegExp }> = [
    { args: ['drain', '--building', 'gedung-cyber-1'], call: { method: 'drain', args: [{ kind: 'building', name: 'gedung-cyber-1' }] }, out: /^drained building gedung-cyber-1\n$/ },
    { args: ['drain', '--site', 'cyber1'], call: { method: 'drain', args: [{ kind: 'site', name: 'cyber1' }] }, out: /^drained site cyber1\n$/ },
    { args: ['drain', '--site', 'cyber1', '--force'], call: { method: 'drain', args: [{ kind: 'site', name: 'cyber1' }, { force: true }] }, out: /^drained site cyber1\n$/ },
    { args: ['undrain', '--building', 'gedung-cyber-1'], call: { method: 'undrain', args: [{ kind: 'building', name: 'gedung-cyber-1' }] }, out: /^undrained building/ },
    { args: ['undrain', '--site', 'cyber1'], call: { method: 'undrain', args: [{ kind: 'site', name: 'cyber1' }] }, out: /^undrained site/ },
    { args: ['pin', 'border control', 'dr'], call: { method: 'pin', args: ['border control', 'dr'] }, out: /^route border control pinned to dr\n$/ },
    { args: ['unpin', 'border control'], call: { method: 'unpin', args: ['border control'] }, out: /unpinned/ },
    { args: ['failback', 'ceir'], call: { method: 'approveFailback', args: ['ceir', false] }, out: /^failback of ceir approved\n$/ },
    { args: ['failback', 'ceir', '--force'], call: { method: 'approveFailback', args: ['ceir', true] }, out: /integrity gate skipped/ },
    { args: ['failover', 'border control'], call: { method: 'approveFailover', args: ['border control'] }, out: /approved/ },
    { args: ['reload'], call: { method: 'reload', args: [] }, out: /^policy reloaded/ },
  ];
  for (const c of cases) {
    const r = await runCli(c.args, env);
    t.equal(r.code, 0, c.args.join(' '));
    t.match(r.out, c.out, c.args.join(' '));
    t.equal(r.err, '', c.args.join(' '));
    t.same(s.control.calls.at(-1), c.call, c.args.join(' '));
  }
});

t.test('API refusals exit 1 with the server message', async (t) => {
  const s = await startTestServer(t);
  const env = { DETOUR_ADMIN_URL: s.url, DETOUR_ADMIN_TOKEN: goodToken };
  const cases: Array<{ args: string[]; env?: Record<string, string | undefined>; err: RegExp }> = [
    { args: ['pin', 'nope', 'cyber1'], err: /^error: unknown route "nope"\n$/ },
    { args: ['drain', '--building', 'atlantis'], err: /unknown building "atlantis"/ },
    { args: ['unpin', 'visa'], err: /not pinned/ },
    { args: ['failover', 'ceir'], err: /no pending failover/ },
    { args: ['drain', '--site', 'cyber1'], env: { DETOUR_ADMIN_URL: s.url }, err: /Authorization.*\nhint: set DETOUR_ADMIN_TOKEN/ },
    { args: ['reload'], env: { DETOUR_ADMIN_URL: s.url, DETOUR_ADMIN_TOKEN: 'wrong' }, err: /^error: invalid admin token\n$/ },
  ];
  for (const c of cases) {
    const r = await runCli(c.args, c.env ?? env);
    t.equal(r.code, 1, c.args.join(' '));
    t.match(r.err, c.err, c.args.join(' '));
    t.equal(r.out, '');
  }
});

t.test('a refused reload prints one line per problem and exits 1', async (t) => {
  const s = await startTestServer(t);
  s.control.reloadErrors = policyErrors;
  const r = await runCli(['reload', '--admin', s.url], { DETOUR_ADMIN_TOKEN: goodToken });
  t.equal(r.code, 1);
  t.match(r.err, /^error: policy has 2 problem/);
  t.match(r.err, /^  config\/prod\.yaml:12:5 routes\[0\]\.sites\[1\]: unknown site "serpongg"/m);
  t.match(r.err, /^  config\/prod\.yaml:30:3 drain\.buildingz: unknown key$/m);
});

t.test('usage errors exit 2 and never call the API', async (t) => {
  const s = await startTestServer(t);
  const env = { DETOUR_ADMIN_URL: s.url, DETOUR_ADMIN_TOKEN: goodToken };
  const cases: Array<{ args: string[]; err: RegExp }> = [
    { args: ['drain'], err: /drain needs exactly one of --building NAME or --site NAME/ },
    { args: ['undrain', '--site', 'a', '--building', 'b'], err: /undrain needs exactly one of/ },
    { args: ['drain', '--building'], err: /argument missing/ },
    { args: ['pin', 'ceir'], err: /missing required argument 'site'/ },
    { args: ['unpin'], err: /missing required argument 'route'/ },
    { args: ['failback', 'ceir', '--forse'], err: /unknown option '--forse'/ },
    { args: ['status', 'extra'], err: /too many arguments/ },
    { args: ['status', '--admin', 'not a url'], err: /invalid admin URL "not a url"/ },
    { args: ['status', '--admin', 'ftp://127.0.0.1:9090'], err: /only http and https/ },
  ];
  for (const c of cases) {
    const r = await runCli(c.args, env);
    t.equal(r.code, 2, c.args.join(' '));
    t.match(r.err, c.err, c.args.join(' '));
  }
  t.same(s.control.calls, []);
});

t.test('--help prints usage and exits 0', async (t) => {
  const r = await runCli(['drain', '--help'], {});
  t.equal(r.code, 0);
  t.match(r.out, /Usage: detour drain \[options\]/);
  t.match(r.out, /--building <name>/);
  t.match(r.out, /--admin <url>/);
});

t.test('an unreachable gateway exits 1 with a clear message', async (t) => {
  const url = `http://127.0.0.1:${await closedPort()}`;
  const r = await runCli(['status'], { DETOUR_ADMIN_URL: url });
  t.equal(r.code, 1);
  t.match(r.err, `error: cannot reach detour admin API at ${url}: connect ECONNREFUSED\n`);
  t.match(r.err, /hint: is the gateway running\?/);
  t.equal(r.out, '');
});

t.test('formatStatus shows ages, pins, blocks and empty sections', async (t) => {
  const doc = sampleStatus();
  const base = doc.routes[0]!;
  const nowMs = Date.parse(base.since) + 90_000;
  const text = formatStatus(
    {
      ...doc,
      routes: [
        { ...base, state: 'pinned', pinnedTo: 'serpong', blocked: null, pendingFailback: false, integrity: null },
        { ...base, name: "it's", state: 'pinned', pinnedTo: 'dr', blocked: null, pendingFailback: false, integrity: null },
        { ...base, name: 'passport', state: 'blocked', blocked: { code: 'priority', message: 'waiting for priority 1 routes' }, pendingFailback: false, active: null, weights: [] },
      ],
      sites: [],
      events: [],
      stateStore: { kind: 'redis', up: false },
    },
    nowMs,
  );
  t.match(text, /state redis \(DOWN\)/);
  t.match(text, /^  ceir +1 +pinned +serpong +serpong 100% +2m ago /m);
  t.match(text, /ceir: pinned to serpong; release with: detour unpin ceir$/m);
  t.match(text, "it's: pinned to dr; release with: detour unpin 'it'\\''s'", 'names are quoted for the shell');
  t.match(text, /^  passport +1 +blocked +- +- /m, 'no active site, no weights');
  t.match(text, /passport: failback blocked \(priority\): waiting for priority 1 routes/);
  t.match(text, /SITES\n  \(none\)/);
  t.match(text, /RECENT EVENTS \(0 of 0\)\n  \(none\)/);
});

t.test('formatStatus lists warnings (a policy drain that empties a route) only when there are some', async (t) => {
  const doc = sampleStatus();
  const nowMs = Date.parse(doc.routes[0]!.since);
  t.notMatch(formatStatus(doc, nowMs), /WARNINGS/);
  const text = formatStatus({ ...doc, warnings: ["the policy file's drain: leaves route ceir with no eligible site (applied anyway: the file wins)"] }, nowMs);
  t.match(text, /\nWARNINGS\n  the policy file's drain: leaves route ceir with no eligible site/);
});
