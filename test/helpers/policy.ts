// Build Policy and RouteTable values for tests without YAML: the same defaults
// the policy parser fills in (see src/config/policy.ts and schema.ts), deep-frozen
// like a parsed policy. Tests state only what they care about.
import type {
  FailbackPolicy, HealthPolicy, PassivePolicy, Policy, RetryPolicy, RoutePolicy, SitePolicy, Mode,
} from '../../src/config/policy.js';
import type { RouteDecision, RouteTable } from '../../src/routing/route-table.js';

/** The parser's defaults for `passive` (schema.ts). */
export const defaultPassive: PassivePolicy = Object.freeze({
  failureThreshold: 3, statuses: Object.freeze([502, 503, 504]), ratio: 0.5, minRequests: 20, minClients: 1, windowMs: 10_000,
});

export interface TestSiteInput {
  readonly name: string;
  readonly url: string;
  /** Defaults to the site's own name (one site per building), as in the parser. */
  readonly building?: string;
  readonly timeouts?: Partial<SitePolicy['timeouts']>;
  readonly health?: Partial<HealthPolicy>;
  readonly passive?: Partial<PassivePolicy>;
  readonly tls?: SitePolicy['tls'];
}

export interface TestRouteInput {
  readonly name: string;
  readonly sites: readonly string[];
  readonly match?: { readonly host?: string; readonly pathPrefix?: string };
  readonly priority?: number;
  readonly failover?: { readonly mode: Mode };
  readonly failback?: Partial<FailbackPolicy>;
  readonly retry?: Partial<RetryPolicy>;
  readonly limits?: RoutePolicy['limits'];
}

export interface TestPolicyInput {
  readonly sites: readonly TestSiteInput[];
  readonly routes: readonly TestRouteInput[];
  readonly file?: string;
  readonly listen?: Partial<Policy['listen']>;
  readonly admin?: Partial<Policy['admin']>;
  readonly drain?: Partial<Policy['drain']>;
  readonly unavailable?: Partial<Policy['unavailable']>;
  readonly state?: Policy['state'];
  readonly notify?: Partial<Policy['notify']>;
  readonly shutdown?: Partial<Policy['shutdown']>;
  readonly limits?: Partial<Policy['limits']>;
  readonly trustedProxies?: Policy['trustedProxies'];
  readonly accessLog?: Policy['accessLog'];
}

/** A Policy with the parser's defaults (listen/admin on 127.0.0.1 port 0). Throws on a route naming an unknown site. */
export function testPolicy(input: TestPolicyInput): Policy {
  const names = new Set(input.sites.map((s) => s.name));
  for (const r of input.routes) {
    for (const s of r.sites) {
      if (!names.has(s)) throw new Error(`testPolicy: route "${r.name}" names unknown site "${s}"`);
    }
  }
  const policy: Policy = {
    file: input.file ?? 'test-policy.yaml',
    listen: { host: '127.0.0.1', port: 0, ...input.listen },
    admin: { host: '127.0.0.1', port: 0, publicRead: true, ...input.admin },
    sites: input.sites.map(buildSite),
    routes: input.routes.map((r) => buildRoute(r, input.limits?.bodyBytes ?? DEFAULT_LIMITS.bodyBytes)),
    drain: { buildings: [], sites: [], ...input.drain },
    unavailable: { status: 503, retryAfterSeconds: 30, ...input.unavailable },
    ...(input.state ? { state: input.state } : {}),
    notify: { webhooks: [], ...input.notify },
    shutdown: { graceMs: 10_000, ...input.shutdown },
    limits: { ...DEFAULT_LIMITS, ...input.limits },
    trustedProxies: input.trustedProxies ?? [],
    ...(input.accessLog ? { accessLog: input.accessLog } : {}),
  };
  return deepFreeze(policy);
}

function buildSite(s: TestSiteInput): SitePolicy {
  return {
    name: s.name,
    url: s.url,
    building: s.building ?? s.name,
    timeouts: { connectMs: 1000, responseMs: 30_000, ...s.timeouts },
    health: {
      path: '/healthz', intervalMs: 1000, jitter: 0.1, timeoutMs: 500, rise: 2, fall: 2, expectStatus: [200],
      ...s.health,
    },
    passive: { ...defaultPassive, ...s.passive },
    ...(s.tls ? { tls: s.tls } : {}),
  };
}

/** The parser's defaults for `limits`. */
export const DEFAULT_LIMITS: Policy['limits'] = {
  headerBytes: 16_384, headersTimeoutMs: 10_000, requestTimeoutMs: 60_000, bodyBytes: 10 * 1024 * 1024,
  keepAliveTimeoutMs: 5000, maxConnections: 10_000,
};

function buildRoute(r: TestRouteInput, bodyBytes: number): RoutePolicy {
  return {
    name: r.name,
    match: { pathPrefix: '/', ...r.match },
    sites: [...r.sites],
    priority: r.priority ?? 1,
    failover: r.failover ?? { mode: 'auto' },
    failback: { mode: 'auto', holdDownMs: 30_000, ramp: [100], stepMs: 10_000, ...r.failback },
    retry: { on: [502, 503, 504], maxBodyBytes: 65_536, budget: { percent: 20, minPerSecond: 3 }, ...r.retry },
    limits: r.limits ?? { bodyBytes },
  };
}

export type TestDecisionInput = Partial<RouteDecision>;

/**
 * A RouteTable built by hand. Every route of the policy gets a decision; by
 * default it is `preferred` on its first site (weight 100) with all its sites
 * eligible. `decisions` overrides fields per route name. `state: 'unavailable'`
 * alone also empties weights/eligible and clears `active`.
 */
export function tableFor(
  policy: Policy,
  decisions: Readonly<Record<string, TestDecisionInput>> = {},
  opts: { readonly version?: number; readonly computedAtMs?: number } = {},
): RouteTable {
  for (const name of Object.keys(decisions)) {
    if (!policy.routes.some((r) => r.name === name)) throw new Error(`tableFor: no route named "${name}" in the policy`);
  }
  const routes = policy.routes.map((r): RouteDecision => {
    const over = decisions[r.name] ?? {};
    const unavailable = over.state === 'unavailable';
    const first = r.sites[0] ?? null;
    return {
      name: r.name,
      state: 'preferred',
      active: unavailable ? null : first,
      weights: unavailable || first === null ? [] : [{ site: first, weight: 100 }],
      eligible: unavailable ? [] : [...r.sites],
      preferred: unavailable ? null : first,
      reason: unavailable ? 'no site can serve' : 'test table',
      sinceMs: 0,
      ...over,
    };
  });
  const table: RouteTable = {
    version: opts.version ?? 1,
    computedAtMs: opts.computedAtMs ?? 0,
    policy,
    routes,
    byName: new Map(routes.map((d) => [d.name, d])),
    nextWakeMs: null,
  };
  return deepFreeze(table);
}

export function deepFreeze<T>(value: T): T {
  if (value === null || typeof value !== 'object' || Object.isFrozen(value)) return value;
  if (value instanceof Map) {
    for (const v of value.values()) deepFreeze(v);
  } else {
    for (const v of Object.values(value as Record<string, unknown>)) deepFreeze(v);
  }
  return Object.freeze(value);
}
