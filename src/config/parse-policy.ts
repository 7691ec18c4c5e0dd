// YAML text -> a deeply frozen Policy, or every problem in the file at once,
// each with the LINE:COL an operator should edit. Pure: the caller supplies the
// text and the environment (see load-policy.ts for the file system side).
import { dirname } from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import type { z } from 'zod';
import { describeValue } from './field-rules.js';
import { deepFreeze } from '../model/deep-freeze.js';
import { checkReferences, type ReferenceProblem } from './check-references.js';
import { resolvePolicyPath } from './check-files.js';
import type { ListenerTlsPolicy, ParseResult, Policy, PolicyError, RedisPolicy, RoutePolicy, SitePolicy } from './policy.js';
import { readYamlFast } from './read-yaml-fast.js';
import { formatPath, pathKey, readYamlTree, type PathSegment, type Position, type YamlTree } from './read-yaml-tree.js';
import { listAllowedKeys, policySchema, type PolicyDocument } from './schema.js';
import { suggestKey } from './suggest-key.js';

type Env = Readonly<Record<string, string | undefined>>;

/**
 * admin.token is the one value that may reference an unset variable: the token
 * is then simply absent (as it is when the variable is set but empty), and the
 * admin API refuses every mutating call. A gateway started without its secret
 * still routes traffic; it just cannot be changed remotely.
 */
function isAdminToken(path: readonly PathSegment[]): boolean {
  return path.length === 2 && path[0] === 'admin' && path[1] === 'token';
}

export interface ParseOptions {
  /**
   * Checks of the files the policy names (see check-files.ts), given the raw
   * data and the policy file's directory. Supplied by the file-system edge;
   * without it parsing stays pure and files are not looked at.
   */
  readonly checkFiles?: (root: unknown, baseDir: string) => readonly ReferenceProblem[];
}

export function parsePolicy(text: string, file: string, env: Env, options: ParseOptions = {}): ParseResult {
  // The fast reading first (see read-yaml-fast.ts); the positioned one whenever
  // there is anything to point at, and for whatever the fast one gives up on.
  const fast = readYamlFast(text, { env, isOptionalWhenUnset: isAdminToken });
  const quick = fast === undefined ? undefined : validate(fast.value, undefined, file, [], options);
  if (quick !== undefined && process.env.DETOUR_YAML_CROSSCHECK !== '1') return quick;
  const slow = parseWithPositions(text, file, env, options);
  if (quick !== undefined && !isDeepStrictEqual(quick, slow)) {
    throw new Error(`DETOUR_YAML_CROSSCHECK: the fast and the positioned readings of ${file} disagree`);
  }
  return slow;
}

function parseWithPositions(text: string, file: string, env: Env, options: ParseOptions): ParseResult {
  const read = readYamlTree(text, { env, isOptionalWhenUnset: isAdminToken });
  const errors: PolicyError[] = read.problems.map((p) => ({ file, ...p.position, path: formatPath(p.path), message: p.message }));
  if (!read.ok) return failWith(errors);
  return validate(read.tree.value, read.tree, file, errors, options)!;
}

/**
 * Schema, cross-references and files, on data read with positions (`tree`) or
 * without: then any problem or warning answers undefined, to be read again with
 * positions to point at.
 */
function validate(root: unknown, tree: YamlTree | undefined, file: string, errors: PolicyError[], options: ParseOptions): ParseResult | undefined {
  if (typeof root !== 'object' || root === null || Array.isArray(root)) {
    if (tree === undefined) return undefined;
    const message = root === null
      ? 'the policy is empty; it needs at least sites and routes'
      : `must be a map of settings such as sites: and routes: (got ${describeValue(root)})`;
    return failWith([...errors, { file, line: 1, col: 1, path: '(top level)', message }]);
  }

  let unpositioned = false;
  const report = (path: readonly PropertyKey[], message: string, at: 'key' | 'value' = 'value') => {
    if (tree === undefined) {
      unpositioned = true;
      return;
    }
    const segments = path.map((s) => (typeof s === 'number' ? s : String(s)));
    // A scalar whose ${VAR} failed already has its error; its raw text would only add noise.
    if (tree.interpolationFailed.has(pathKey(segments))) return;
    errors.push({ file, ...locate(tree, segments, at), path: formatPath(segments), message });
  };

  const parsed = policySchema.safeParse(root, { reportInput: true, error: describeIssue });
  if (!parsed.success) {
    for (const issue of parsed.error.issues) {
      if (issue.code === 'unrecognized_keys') {
        const allowed = listAllowedKeys(issue.path);
        for (const key of issue.keys) report([...issue.path, key], describeUnknownKey(key, allowed), 'key');
      } else {
        report(issue.path, issue.message);
      }
    }
  }
  for (const problem of checkReferences(root)) report(problem.path, problem.message, problem.at);
  for (const problem of options.checkFiles?.(root, dirname(file)) ?? []) report(problem.path, problem.message, problem.at);

  if (unpositioned) return undefined;
  if (errors.length > 0 || !parsed.success) return failWith(errors);
  // Without positions, no integer-like keys were read (read-yaml-fast.ts), so the object's order is the file's.
  const siteOrder = tree?.keyOrder.get(pathKey(['sites'])) ?? Object.keys(parsed.data.sites);
  const policy = deepFreeze(buildPolicy(parsed.data, file, siteOrder));
  const unverified = policy.sites.filter((site) => site.tls?.verify === false);
  if (unverified.length === 0) return { ok: true, policy };
  if (tree === undefined) return undefined;
  const warnings = unverified.map((site): PolicyError => ({
    file, ...locate(tree, ['sites', site.name, 'tls', 'verify'], 'value'), path: `sites.${site.name}.tls.verify`,
    message: `warning: certificates of ${site.name} are not verified; anyone on the path can impersonate it`,
  }));
  return { ok: true, policy, warnings: Object.freeze(warnings) };
}

function failWith(errors: PolicyError[]): ParseResult {
  const seen = new Set<string>();
  const unique = errors.filter((e) => {
    const key = `${e.line}:${e.col} ${e.path}: ${e.message}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
  unique.sort((a, b) => a.line - b.line || a.col - b.col);
  return { ok: false, errors: Object.freeze(unique.map((e) => Object.freeze(e))) };
}

function locate(tree: YamlTree, path: readonly PathSegment[], at: 'key' | 'value'): Position {
  if (at === 'key') {
    const position = tree.keyPositions.get(pathKey(path));
    if (position !== undefined) return position;
  }
  // A missing key has no position of its own: point at the map that should hold it.
  for (let length = path.length; length >= 0; length--) {
    const position = tree.valuePositions.get(pathKey(path.slice(0, length)));
    if (position !== undefined) return position;
  }
  return { line: 1, col: 1 };
}

function describeUnknownKey(key: string, allowed: readonly string[]): string {
  if (key === '<<') return 'YAML merge keys (<<) are not supported; write the settings out';
  const guess = suggestKey(key, allowed);
  if (guess !== undefined) return `unknown key (did you mean "${guess}"?)`;
  return allowed.length > 0 ? `unknown key (allowed here: ${allowed.join(', ')})` : 'unknown key';
}

const EXPECTED: Record<string, string> = {
  string: 'a string',
  number: 'a number',
  int: 'a whole number',
  boolean: 'true or false',
  array: 'a list',
  object: 'a map of key: value',
  record: 'a map of key: value',
};

function describeIssue(issue: z.core.$ZodRawIssue): string | undefined {
  switch (issue.code) {
    case 'invalid_type':
      if (issue.input === undefined) return 'is required';
      return `must be ${EXPECTED[issue.expected] ?? issue.expected} (got ${describeValue(issue.input)})`;
    case 'too_small':
      if (issue.origin === 'array') return `must list at least ${String(issue.minimum)}`;
      if (issue.origin === 'string') return 'must not be empty';
      return `must be ${issue.inclusive ? 'at least' : 'more than'} ${String(issue.minimum)}`;
    case 'too_big':
      return `must be ${issue.inclusive ? 'at most' : 'less than'} ${String(issue.maximum)}`;
    case 'invalid_value':
      return `must be one of ${issue.values.map(String).join(', ')} (got ${describeValue(issue.input)})`;
    default:
      return undefined;
  }
}

function buildPolicy(doc: PolicyDocument, file: string, siteOrder: readonly string[]): Policy {
  const baseDir = dirname(file);
  const pathOf = (p: string) => resolvePolicyPath(baseDir, p);
  const listenerTls = (tls: { cert: string; key: string; minVersion: ListenerTlsPolicy['minVersion'] } | undefined) =>
    tls === undefined ? {} : { tls: { cert: pathOf(tls.cert), key: pathOf(tls.key), minVersion: tls.minVersion } };
  const sites = siteOrder.map((name): SitePolicy => {
    const site = doc.sites[name]!;
    const { health, tls } = site;
    return {
      name,
      url: site.url,
      building: site.building ?? name,
      timeouts: { connectMs: site.timeouts.connect, responseMs: site.timeouts.response },
      health: {
        path: health.path,
        intervalMs: health.interval,
        jitter: health.jitter,
        timeoutMs: health.timeout,
        rise: health.rise,
        fall: health.fall,
        expectStatus: health.expectStatus,
        ...(health.expectBody !== undefined && { expectBody: health.expectBody }),
      },
      passive: {
        failureThreshold: site.passive.failureThreshold,
        statuses: site.passive.statuses,
        ratio: site.passive.ratio,
        minRequests: site.passive.minRequests,
        minClients: site.passive.minClients,
        windowMs: site.passive.window,
      },
      ...(tls !== undefined && {
        tls: {
          ...(tls.ca !== undefined && { ca: pathOf(tls.ca) }),
          ...(tls.servername !== undefined && { servername: tls.servername }),
          ...(tls.cert !== undefined && { cert: pathOf(tls.cert) }),
          ...(tls.key !== undefined && { key: pathOf(tls.key) }),
          verify: tls.verify,
        },
      }),
    };
  });
  const routes = doc.routes.map((route): RoutePolicy => {
    const { failback } = route;
    const verify = failback.verify;
    return {
      name: route.name,
      match: { ...(route.match.host !== undefined && { host: route.match.host }), pathPrefix: route.match.pathPrefix },
      sites: route.sites,
      priority: route.priority,
      failover: { mode: route.failover.mode },
      failback: {
        mode: failback.mode,
        holdDownMs: failback.holdDown,
        ...(verify !== undefined && {
          verify: {
            path: verify.path,
            ...(verify.field !== undefined && { field: verify.field }),
            ...(verify.max !== undefined && { max: verify.max }),
            intervalMs: verify.interval,
            timeoutMs: verify.timeout,
          },
        }),
        ramp: failback.ramp,
        stepMs: failback.step,
        ...(failback.maxConcurrent !== undefined && { maxConcurrent: failback.maxConcurrent }),
      },
      retry: {
        on: route.retry.on, maxBodyBytes: route.retry.maxBodyBytes,
        budget: { percent: route.retry.budget.percent, minPerSecond: route.retry.budget.minPerSecond },
      },
      limits: { bodyBytes: route.limits?.bodyBytes ?? doc.limits.bodyBytes },
    };
  });
  return {
    file,
    listen: { host: doc.listen.host, port: doc.listen.port, ...listenerTls(doc.listen.tls) },
    admin: {
      host: doc.admin.host,
      port: doc.admin.port,
      ...(doc.admin.token !== undefined && { token: doc.admin.token }),
      ...(doc.admin.tokenFile !== undefined && { tokenFile: pathOf(doc.admin.tokenFile) }),
      publicRead: doc.admin.publicRead,
      ...listenerTls(doc.admin.tls),
    },
    sites,
    routes,
    drain: { buildings: doc.drain.buildings, sites: doc.drain.sites },
    unavailable: { status: doc.unavailable.status, retryAfterSeconds: Math.ceil(doc.unavailable.retryAfter / 1000) },
    ...(doc.state !== undefined && { state: { redis: redisPolicy(doc.state.redis, pathOf) } }),
    notify: {
      webhooks: doc.notify.webhooks.map((hook) => ({ url: hook.url, timeoutMs: hook.timeout, retries: hook.retries, headers: { ...hook.headers } })),
    },
    shutdown: { graceMs: doc.shutdown.grace },
    limits: {
      headerBytes: doc.limits.headerBytes,
      headersTimeoutMs: doc.limits.headersTimeout,
      requestTimeoutMs: doc.limits.requestTimeout,
      bodyBytes: doc.limits.bodyBytes,
      keepAliveTimeoutMs: doc.limits.keepAliveTimeout,
      maxConnections: doc.limits.maxConnections,
    },
    trustedProxies: doc.trustedProxies,
    ...(doc.accessLog !== undefined && { accessLog: { path: doc.accessLog.path, sample: doc.accessLog.sample } }),
    ...(doc.workers !== undefined && { workers: doc.workers }),
  };
}

function redisPolicy(redis: NonNullable<PolicyDocument['state']>['redis'], pathOf: (p: string) => string): RedisPolicy {
  const tls = redis.tls;
  return {
    url: redis.url, keyPrefix: redis.keyPrefix,
    ...(redis.sentinels !== undefined && { sentinels: redis.sentinels.map((s) => ({ host: s.host, port: s.port })) }),
    ...(redis.name !== undefined && { name: redis.name }),
    ...(tls !== undefined && {
      tls: { ...(tls.ca !== undefined && { ca: pathOf(tls.ca) }), ...(tls.servername !== undefined && { servername: tls.servername }) },
    }),
  };
}
