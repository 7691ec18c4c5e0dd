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

export interface PassivePolicy {
  /** Consecutive 5xx answers from live traffic that mark the site down (0 disables). */
  readonly failureThreshold: number;
}

export interface SitePolicy {
  readonly name: string;
  readonly url: string;
  readonly building: string;
  readonly timeouts: { readonly connectMs: number; readonly responseMs: number };
  readonly health: HealthPolicy;
  readonly passive: PassivePolicy;
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
}

export interface WebhookPolicy {
  readonly url: string;
  readonly timeoutMs: number;
  readonly retries: number;
  readonly headers: Readonly<Record<string, string>>;
}

export interface Policy {
  /** Path of the file this policy came from (for messages and reloads). */
  readonly file: string;
  readonly listen: { readonly host: string; readonly port: number };
  readonly admin: { readonly host: string; readonly port: number; readonly token?: string };
  /** In file order. */
  readonly sites: readonly SitePolicy[];
  readonly routes: readonly RoutePolicy[];
  readonly drain: { readonly buildings: readonly string[]; readonly sites: readonly string[] };
  readonly unavailable: { readonly status: number; readonly retryAfterSeconds: number };
  readonly state?: { readonly redis: { readonly url: string; readonly keyPrefix: string } };
  readonly notify: { readonly webhooks: readonly WebhookPolicy[] };
  readonly shutdown: { readonly graceMs: number };
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
  | { readonly ok: true; readonly policy: Policy }
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
}

const indexes = new WeakMap<Policy, PolicyIndex>();

export function indexPolicy(policy: Policy): PolicyIndex {
  let index = indexes.get(policy);
  if (index === undefined) {
    index = {
      sites: new Map(policy.sites.map((s) => [s.name, s])),
      routes: new Map(policy.routes.map((r) => [r.name, r])),
      buildings: new Set(policy.sites.map((s) => s.building)),
    };
    indexes.set(policy, index);
  }
  return index;
}

export function siteByName(policy: Policy, name: string): SitePolicy | undefined {
  return indexPolicy(policy).sites.get(name);
}

export function routeByName(policy: Policy, name: string): RoutePolicy | undefined {
  return indexPolicy(policy).routes.get(name);
}
