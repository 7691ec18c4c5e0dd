// The validated, normalised policy that every other part of detour reads.
// Durations are converted to milliseconds once, at the parse edge (units live in
// the names); defaults are filled in, so nothing downstream re-checks optionals.
// A Policy is deeply frozen after parsing: a reload builds a new one.

export type Mode = 'auto' | 'manual';

export interface HealthPolicy {
  readonly path: string;
  readonly intervalMs: number;
  /** Fraction of intervalMs added or removed at random per probe, 0..1 (default 0.1). */
  readonly jitter: number;
  readonly timeoutMs: number;
  readonly rise: number;
  readonly fall: number;
  readonly expectStatus: readonly number[];
  /** Optional substring the probe body must contain. */
  readonly expectBody?: string;
}

/**
 * What live traffic may say about a site. Failures before the request was sent
 * (refused, connect timeout) are about the site and mark it down at once.
 * Failures after it was sent (reset, hang-up, response timeout, a status in
 * `statuses`) may be the request's own fault: they only count toward a failure
 * ratio over a sliding window, and crossing it triggers an immediate probe; the
 * site goes down only if that probe fails too.
 */
export interface PassivePolicy {
  /** At least this many failed requests in the window (0 turns request-level detection off). */
  readonly failureThreshold: number;
  /** Upstream statuses that count as a failed request (default 502, 503, 504; a 500 is the application's answer). */
  readonly statuses: readonly number[];
  /** Share of failed requests in the window, 0 < ratio <= 1, that makes the site suspect. */
  readonly ratio: number;
  /** Requests in the window below which no ratio is trusted. */
  readonly minRequests: number;
  /** Distinct clients among the failed requests (1: any; behind one load balancer every client looks alike). */
  readonly minClients: number;
  readonly windowMs: number;
}

export interface SitePolicy {
  readonly name: string;
  readonly url: string;
  readonly building: string;
  readonly timeouts: { readonly connectMs: number; readonly responseMs: number };
  readonly health: HealthPolicy;
  readonly passive: PassivePolicy;
  /** TLS to an https:// site (live traffic, probes and integrity checks alike); absent = defaults. */
  readonly tls?: SiteTlsPolicy;
}

// --- TLS (file paths are absolute: relative ones are resolved against the policy file's directory) ---

export type TlsVersion = 'TLSv1.2' | 'TLSv1.3';

/** A certificate (PEM, chain allowed) and its key, served to clients; re-read on every reload. */
export interface ListenerTlsPolicy {
  readonly cert: string;
  readonly key: string;
  readonly minVersion: TlsVersion;
}

export interface SiteTlsPolicy {
  /** Trust anchors (PEM); absent = the system's CAs. */
  readonly ca?: string;
  /** SNI and the name the site's certificate must carry; absent = the URL's host. */
  readonly servername?: string;
  /** Client certificate and key for mutual TLS (both or neither). */
  readonly cert?: string;
  readonly key?: string;
  /** false: any certificate is accepted (warned about at start and by check). */
  readonly verify: boolean;
}

export interface AdminPolicy {
  readonly host: string;
  readonly port: number;
  readonly token?: string;
  /** A file holding the token (alternative to token), re-read on every reload. */
  readonly tokenFile?: string;
  /** false: /status and /metrics need the token too. */
  readonly publicRead: boolean;
  readonly tls?: ListenerTlsPolicy;
}

export interface VerifyPolicy {
  readonly path: string;
  /** Dotted path into the JSON body; absent = compare whole bodies. */
  readonly field?: string;
  /** When set, `field` is a number read from the preferred site alone, which must be <= max. */
  readonly max?: number;
  readonly intervalMs: number;
  readonly timeoutMs: number;
}

export interface FailbackPolicy {
  readonly mode: Mode;
  readonly holdDownMs: number;
  readonly verify?: VerifyPolicy;
  /** Percent of traffic on the preferred site per step; always ends at 100. */
  readonly ramp: readonly number[];
  readonly stepMs: number;
  /** Routes allowed to ramp at the same time (across the whole policy); absent = unlimited. */
  readonly maxConcurrent?: number;
}

export interface RetryPolicy {
  /** Upstream statuses that make a safe request try the next site once. */
  readonly on: readonly number[];
  /** Largest request body buffered so that a non-idempotent request can be retried. */
  readonly maxBodyBytes: number;
  /** Re-sends away from one site allowed as a share of the requests it received (see proxy/retry-budget.ts). */
  readonly budget: RetryBudgetPolicy;
}

export interface RetryBudgetPolicy {
  /** Retries out of a site, as a percentage of the requests sent to it in the window. */
  readonly percent: number;
  /** Retries always allowed per second of the window, however little traffic there is. */
  readonly minPerSecond: number;
}

export interface RoutePolicy {
  readonly name: string;
  readonly match: { readonly host?: string; readonly pathPrefix: string };
  /** Site names in preference order. */
  readonly sites: readonly string[];
  readonly priority: number;
  readonly failover: { readonly mode: Mode };
  readonly failback: FailbackPolicy;
  readonly retry: RetryPolicy;
  /** The route's own body limit, or the top-level limits.bodyBytes. */
  readonly limits: { readonly bodyBytes: number };
}

export interface WebhookPolicy {
  readonly url: string;
  readonly timeoutMs: number;
  readonly retries: number;
  readonly headers: Readonly<Record<string, string>>;
}

export interface RedisPolicy {
  /** redis:// or rediss:// (TLS). With sentinels only its scheme, credentials and db are used. */
  readonly url: string;
  readonly keyPrefix: string;
  /** Sentinel addresses; with `name`, the master group they watch. */
  readonly sentinels?: readonly { readonly host: string; readonly port: number }[];
  readonly name?: string;
  /** For rediss://: trust anchors (absolute path) and the name the certificate must carry. */
  readonly tls?: { readonly ca?: string; readonly servername?: string };
}

export interface Policy {
  /** Path of the file this policy came from (for messages and reloads). */
  readonly file: string;
  readonly listen: { readonly host: string; readonly port: number; readonly tls?: ListenerTlsPolicy };
  readonly admin: AdminPolicy;
  /** In file order. */
  readonly sites: readonly SitePolicy[];
  readonly routes: readonly RoutePolicy[];
  readonly drain: { readonly buildings: readonly string[]; readonly sites: readonly string[] };
  readonly unavailable: { readonly status: number; readonly retryAfterSeconds: number };
  readonly state?: { readonly redis: RedisPolicy };
  readonly notify: { readonly webhooks: readonly WebhookPolicy[] };
  readonly shutdown: { readonly graceMs: number };
  // Edge: request hygiene and the access log
  readonly limits: LimitsPolicy;
  /** CIDRs whose X-Forwarded-For is kept; empty: detour starts the chain. */
  readonly trustedProxies: readonly string[];
  /** Absent: no access log. */
  readonly accessLog?: AccessLogPolicy;
  /**
   * Data-plane processes (src/workers): absent or 1 = one process does
   * everything, as before; N > 1 or auto (one per core) = a primary and N
   * workers. Read at start only (a change needs a restart).
   */
  readonly workers?: number | 'auto';
}

export interface LimitsPolicy {
  /** Request line and headers together; 431 beyond. */
  readonly headerBytes: number;
  /** The request head must arrive within this (408 after). */
  readonly headersTimeoutMs: number;
  /** The whole request, body included (408 after). */
  readonly requestTimeoutMs: number;
  /** Default request body limit; 413 beyond. */
  readonly bodyBytes: number;
  readonly keepAliveTimeoutMs: number;
  readonly maxConnections: number;
}

export interface AccessLogPolicy {
  /** `stdout` or a file (appended to, reopened on SIGUSR1). */
  readonly path: string;
  /** Fraction of requests logged, 0..1. */
  readonly sample: number;
}

/** One problem in a policy file, printed as `FILE:LINE:COL path: message`. */
export interface PolicyError {
  readonly file: string;
  readonly line: number;
  readonly col: number;
  /** Dotted path of the offending key, e.g. `routes[0].sites[1]` or `sites.cyber1.url`. */
  readonly path: string;
  readonly message: string;
}

export type ParseResult =
  /** `warnings`: settings that are valid but weaken security (`verify: false`), same shape as errors. */
  | { readonly ok: true; readonly policy: Policy; readonly warnings?: readonly PolicyError[] }
  | { readonly ok: false; readonly errors: readonly PolicyError[] };

export function formatPolicyError(e: PolicyError): string {
  return `${e.file}:${e.line}:${e.col} ${e.path}: ${e.message}`;
}

/**
 * Lookups by name, built once per policy. A Policy is frozen and replaced whole
 * on reload, so the index lives beside it in a WeakMap and goes with it; every
 * per-route or per-site lookup in a decision is then O(1), and a decision stays
 * linear in routes and sites (a scan per lookup made 10,000 routes cost minutes).
 * Maps, not objects: a route named `constructor` must not find Object's.
 */
export interface PolicyIndex {
  readonly sites: ReadonlyMap<string, SitePolicy>;
  readonly routes: ReadonlyMap<string, RoutePolicy>;
  readonly buildings: ReadonlySet<string>;
  /** The routes that list each site (a site's change re-decides only these). */
  readonly routesBySite: ReadonlyMap<string, readonly RoutePolicy[]>;
  /** The sites in each building. */
  readonly sitesByBuilding: ReadonlyMap<string, readonly string[]>;
}

/**
 * Kept by the routes list, for those routes and these sites: an index depends on
 * nothing else, so a copy of a policy with other addresses or settings (a reload
 * that keeps the running listener) finds the index built for the parsed one.
 */
const indexes = new WeakMap<readonly RoutePolicy[], { readonly sites: readonly SitePolicy[]; readonly index: PolicyIndex }>();

export function indexPolicy(policy: Policy): PolicyIndex {
  const kept = indexes.get(policy.routes);
  let index = kept !== undefined && kept.sites === policy.sites ? kept.index : undefined;
  if (index === undefined) {
    // Plain loops, no [key, value] pair or closure per entry: this runs in a reload's swap turn.
    const sites = new Map<string, SitePolicy>();
    const routesBySite = new Map<string, RoutePolicy[]>();
    const sitesByBuilding = new Map<string, string[]>();
    for (const site of policy.sites) {
      sites.set(site.name, site);
      routesBySite.set(site.name, []);
      const list = sitesByBuilding.get(site.building);
      if (list) list.push(site.name);
      else sitesByBuilding.set(site.building, [site.name]);
    }
    const routes = new Map<string, RoutePolicy>();
    for (const route of policy.routes) {
      routes.set(route.name, route);
      // A site listed twice counts once (no Set per route: 10,000 of them were most of a reload's index).
      const listed = route.sites;
      for (let i = 0; i < listed.length; i++) {
        if (listed.indexOf(listed[i]!) === i) routesBySite.get(listed[i]!)?.push(route);
      }
    }
    index = {
      sites,
      routes,
      buildings: new Set(sitesByBuilding.keys()),
      routesBySite,
      sitesByBuilding,
    };
    indexes.set(policy.routes, { sites: policy.sites, index });
  }
  return index;
}

/**
 * Two parts of parsed policies (plain, frozen data: objects, arrays,
 * primitives) alike, field by field. No text per part: JSON.stringify of
 * 10,000 routes was most of a reload's stall. NaN equals NaN; a key holding
 * undefined is not a missing key.
 */
export function samePart(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return Number.isNaN(a) && Number.isNaN(b);
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  if (Array.isArray(a)) {
    const other = b as unknown[];
    if (a.length !== other.length) return false;
    for (let i = 0; i < a.length; i++) if (!samePart(a[i], other[i])) return false;
    return true;
  }
  const x = a as Record<string, unknown>;
  const y = b as Record<string, unknown>;
  let keys = 0;
  for (const key in x) {
    if (!Object.hasOwn(x, key)) continue;
    keys++;
    if (!Object.hasOwn(y, key) || !samePart(x[key], y[key])) return false;
  }
  for (const key in y) if (Object.hasOwn(y, key)) keys--;
  return keys === 0;
}

export function siteByName(policy: Policy, name: string): SitePolicy | undefined {
  return indexPolicy(policy).sites.get(name);
}

export function routeByName(policy: Policy, name: string): RoutePolicy | undefined {
  return indexPolicy(policy).routes.get(name);
}
