// The second pass: rules that tie one place in the policy to another (a route
// naming a site, a drain naming a building, a ramp's order). It reads the raw
// data defensively, so it runs even when the schema pass found problems and an
// operator sees every mistake in one `detour check`.
import { NAME_PATTERN, NAME_RULE, coerceNumber } from './field-rules.js';
import type { PathSegment } from './read-yaml-tree.js';
import { suggestKey } from './suggest-key.js';

export interface ReferenceProblem {
  readonly path: readonly PathSegment[];
  /** Point at the key itself (a bad name) or at its value. */
  readonly at: 'key' | 'value';
  readonly message: string;
}

type Data = Record<string, unknown>;

const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

export function checkReferences(root: unknown): ReferenceProblem[] {
  const problems: ReferenceProblem[] = [];
  const report = (path: readonly PathSegment[], message: string, at: 'key' | 'value' = 'value') => problems.push({ path, at, message });
  if (!isData(root)) return problems;

  const sites = isData(root.sites) ? root.sites : undefined;
  const siteNames = sites === undefined ? undefined : Object.keys(sites);
  // Looked up once per route and site: a list scan made 10,000 routes over 1,000 sites quadratic.
  const knownSites = siteNames === undefined ? undefined : new Set(siteNames);
  const buildings = new Set<string>();
  if (sites !== undefined && siteNames !== undefined) {
    if (siteNames.length === 0) report(['sites'], 'must define at least one site');
    for (const name of siteNames) {
      if (!NAME_PATTERN.test(name)) report(['sites', name], `site name "${name}" ${NAME_RULE}`, 'key');
      const site = sites[name];
      buildings.add(isData(site) && typeof site.building === 'string' ? site.building : name);
    }
  }

  const routes = Array.isArray(root.routes) ? root.routes : [];
  const firstRouteByName = new Map<string, number>();
  routes.forEach((route: unknown, index) => {
    if (!isData(route)) return;
    const path = ['routes', index];
    if (typeof route.name === 'string') {
      const first = firstRouteByName.get(route.name);
      if (first === undefined) firstRouteByName.set(route.name, index);
      else report([...path, 'name'], `duplicate route name "${route.name}" (already used by routes[${first}])`);
    }
    if (Array.isArray(route.sites)) checkSiteList(route.sites, [...path, 'sites'], knownSites, report);
    if (isData(route.failback)) checkFailback(route.failback, [...path, 'failback'], report);
  });

  if (isData(root.drain)) {
    const drain = root.drain;
    if (Array.isArray(drain.sites) && siteNames !== undefined) {
      drain.sites.forEach((name: unknown, index) => {
        if (typeof name === 'string' && !siteNames.includes(name)) report(['drain', 'sites', index], describeUnknown('site', name, siteNames));
      });
    }
    if (Array.isArray(drain.buildings) && sites !== undefined) {
      drain.buildings.forEach((name: unknown, index) => {
        if (typeof name === 'string' && !buildings.has(name)) {
          report(['drain', 'buildings', index], describeUnknown('building', name, [...buildings], 'no site is in building'));
        }
      });
    }
  }

  checkTlsSettings(root, report);
  if (isData(root.state) && isData(root.state.redis)) checkRedis(root.state.redis, report);

  const webhooks = isData(root.notify) && Array.isArray(root.notify.webhooks) ? root.notify.webhooks : [];
  webhooks.forEach((hook: unknown, index) => {
    if (!isData(hook) || !isData(hook.headers)) return;
    for (const header of Object.keys(hook.headers)) {
      if (!HEADER_NAME.test(header)) report(['notify', 'webhooks', index, 'headers', header], `"${header}" is not a valid HTTP header name`, 'key');
    }
  });
  return problems;
}

function checkSiteList(
  list: unknown[],
  path: readonly PathSegment[],
  knownSites: ReadonlySet<string> | undefined,
  report: (path: readonly PathSegment[], message: string) => void,
): void {
  const seen = new Map<string, number>();
  list.forEach((name, index) => {
    if (typeof name !== 'string') return;
    const first = seen.get(name);
    if (first !== undefined) report([...path, index], `site "${name}" is listed twice (also at position ${first + 1}); each site appears once, in order of preference`);
    else seen.set(name, index);
    if (knownSites !== undefined && !knownSites.has(name)) report([...path, index], describeUnknown('site', name, [...knownSites]));
  });
}

function checkFailback(failback: Data, path: readonly PathSegment[], report: (path: readonly PathSegment[], message: string, at?: 'key' | 'value') => void): void {
  if (Array.isArray(failback.ramp) && failback.ramp.length > 0) {
    const steps = failback.ramp.map(coerceNumber);
    steps.forEach((step, index) => {
      const before = steps[index - 1];
      if (index > 0 && typeof step === 'number' && typeof before === 'number' && step <= before) {
        report([...path, 'ramp', index], `ramp steps must increase: ${step} comes after ${before}`);
      }
    });
    const last = steps[steps.length - 1];
    if (typeof last === 'number' && last !== 100) {
      report([...path, 'ramp', steps.length - 1], `the last ramp step must be 100 (all traffic back on the preferred site), not ${last}`);
    }
  }
  const verify = failback.verify;
  if (isData(verify) && verify.max !== undefined && verify.field === undefined) {
    report([...path, 'verify', 'max'], 'needs verify.field: max is the largest value allowed in that JSON field', 'key');
  }
}

/** TLS settings that contradict each other or the URL; the files themselves are check-files.ts's job. */
/** Sentinels and their master group name come together; tls settings need a rediss:// URL. */
function checkRedis(redis: Data, report: (path: readonly PathSegment[], message: string, at?: 'key' | 'value') => void): void {
  const path = ['state', 'redis'];
  const hasSentinels = redis.sentinels !== undefined;
  if (hasSentinels && redis.name === undefined) report([...path, 'sentinels'], 'needs name: the Sentinel master group to ask for (sentinel monitor NAME ...)', 'key');
  if (!hasSentinels && redis.name !== undefined) report([...path, 'name'], 'is the Sentinel master group name: it needs sentinels: [host:port, ...]', 'key');
  if (redis.tls !== undefined && typeof redis.url === 'string' && !redis.url.startsWith('rediss://')) {
    report([...path, 'tls'], 'needs a rediss:// url (TLS); with redis:// nothing would be encrypted', 'key');
  }
}

function checkTlsSettings(root: Data, report: (path: readonly PathSegment[], message: string, at?: 'key' | 'value') => void): void {
  if (isData(root.admin) && root.admin.token !== undefined && root.admin.tokenFile !== undefined) {
    report(['admin', 'tokenFile'], 'set admin.token or admin.tokenFile, not both', 'key');
  }
  if (!isData(root.sites)) return;
  for (const [name, site] of Object.entries(root.sites)) {
    if (!isData(site) || !isData(site.tls)) continue;
    const path = ['sites', name, 'tls'];
    if (typeof site.url === 'string' && site.url.trim().toLowerCase().startsWith('http://')) {
      report(path, `applies only to https:// sites; ${name} is reached over plain http://`, 'key');
    }
    const hasCert = site.tls.cert !== undefined;
    if (hasCert !== (site.tls.key !== undefined)) {
      report([...path, hasCert ? 'cert' : 'key'], 'a client certificate needs both cert and key', 'key');
    }
  }
}

function describeUnknown(kind: string, name: string, known: readonly string[], lead = `unknown ${kind}`): string {
  const guess = suggestKey(name, known);
  if (guess !== undefined) return `${lead} "${name}" (did you mean "${guess}"?)`;
  const plural = kind === 'building' ? 'buildings' : `${kind}s`;
  return known.length === 0 ? `${lead} "${name}" (no ${plural} are defined)` : `${lead} "${name}" (${plural}: ${known.join(', ')})`;
}

function isData(value: unknown): value is Data {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
