// End to end through a real Prometheus: a gateway in front of two fake sites,
// scraped every 500ms. Killing the primary must show up in Prometheus as the
// route's active site moving to the backup and a counted failover, and every
// dashboard query must run against the live data without a PromQL error.
import t from 'tap';
import { Registry } from 'prom-client';
import { parsePolicy } from '../../src/config/parse-policy.js';
import { formatPolicyError } from '../../src/config/policy.js';
import { startGateway } from '../../src/gateway.js';
import { silentLogger } from '../../src/logger.js';
import { startFakeSite } from '../helpers/fake-site.js';
import { startPrometheus, type PromSample } from '../helpers/prometheus.js';
import { listDashboardExprs, readDashboard } from './shipped-files.js';

// A killed site refuses connections at once, so a generous probe timeout costs
// no detection time and keeps one slow probe on a busy machine (fall: 1) from
// failing the route over before the test starts.
const policyYaml = `
listen: { host: 127.0.0.1, port: 0 }
admin: { host: 127.0.0.1, port: 0 }
sites:
  primary:
    url: \${PRIMARY_URL}
    building: building-a
    health: { path: /healthz, interval: 200ms, timeout: 1s, jitter: 0, rise: 1, fall: 1 }
  backup:
    url: \${BACKUP_URL}
    building: building-b
    health: { path: /healthz, interval: 200ms, timeout: 1s, jitter: 0, rise: 1, fall: 1 }
routes:
  - name: r
    sites: [primary, backup]
`;

const valueOf = (s: PromSample[]): number | undefined => (s.length === 1 ? Number(s[0]!.value[1]) : undefined);

t.test('Prometheus sees the failover when the primary site dies', async (t) => {
  const primary = await startFakeSite({ name: 'primary' });
  t.teardown(() => primary.close());
  const backup = await startFakeSite({ name: 'backup' });
  t.teardown(() => backup.close());

  const parsed = parsePolicy(policyYaml, 'inline.yaml', { PRIMARY_URL: primary.url, BACKUP_URL: backup.url });
  if (!parsed.ok) throw new Error(`test policy rejected:\n${parsed.errors.map(formatPolicyError).join('\n')}`);
  const gateway = await startGateway({ policy: parsed.policy, logger: silentLogger(), registry: new Registry() });
  t.teardown(() => gateway.close());

  const prom = await startPrometheus({ scrapeTargets: [gateway.adminUrl], scrapeIntervalMs: 500 });
  t.teardown(() => prom.close());

  // Traffic, so the request metrics exist too.
  const res = await fetch(`${gateway.proxyUrl}/`);
  t.equal(res.headers.get('x-detour-site'), 'primary', 'the gateway serves from the primary at first');
  await res.arrayBuffer();

  await prom.waitFor('detour_route_active_site{route="r",site="primary"}', (s) => valueOf(s) === 1);
  t.pass('Prometheus sees route r on primary');
  const before = await prom.query('detour_failovers_total{route="r"}');
  t.same(before, [], 'no failover counted before the primary dies');
  t.equal(valueOf(await prom.query('detour_site_up{site="primary",building="building-a"}')), 1, 'primary is up');

  await primary.kill();

  await prom.waitFor('detour_route_active_site{route="r",site="backup"} == 1', (s) => s.length === 1);
  t.pass('Prometheus sees route r move to backup');
  const failovers = await prom.waitFor('detour_failovers_total{route="r"} > 0', (s) => s.length > 0);
  t.same(failovers.map((s) => ({ from: s.metric.from, to: s.metric.to })), [{ from: 'primary', to: 'backup' }], 'failover from primary to backup');
  t.equal(valueOf(await prom.query('detour_route_active_site{route="r",site="primary"}')), 0, 'primary is no longer active');
  t.equal(valueOf(await prom.query('detour_site_up{site="primary"}')), 0, 'primary is down');

  // The dashboard's queries must all run on real data (Grafana variables set to All).
  const substitutions: Record<string, string> = {
    route: '.*', site: '.*', building: '.*', __rate_interval: '2s', __interval: '1s', __range: '1m',
  };
  for (const { where, expr } of listDashboardExprs(readDashboard())) {
    const live = expr.replace(/\$(\w+)/g, (whole, v: string) => substitutions[v] ?? whole);
    await t.resolves(prom.query(live), `${where} runs`);
  }
  const activePanel = await prom.query('max by (route, site) (detour_route_active_site{route=~".*", site=~".*"})');
  t.equal(activePanel.length, 2, 'the active-site panel query returns one row per route and site');
});
