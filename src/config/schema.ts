// The shape of a policy file as operators write it, with defaults. Objects are
// strict so a misspelled key is an error instead of a silently ignored setting.
// Values are checked one by one here; checks that relate two places in the file
// (a route naming a site, ramp order) live in check-references.ts so every
// problem is reported in one run.
import { z } from 'zod';
import {
  NAME_PATTERN, NAME_RULE, REDIS_URL, UPSTREAM_URL, WEBHOOK_URL, checkCidr, checkHostPattern, checkRequestPath, checkUrl, coerceNumber,
  describeValue, parseByteSize, parseDurationMs, type Checked,
} from './field-rules.js';

function fromCheck<T>(check: (input: unknown) => Checked<T>) {
  return z.any().transform((input, ctx) => {
    if (input === undefined) {
      ctx.issues.push({ code: 'custom', message: 'is required', input });
      return z.NEVER;
    }
    const result = check(input);
    if (result.ok) return result.value;
    ctx.issues.push({ code: 'custom', message: result.message, input });
    return z.NEVER;
  });
}

/** Zod error callback: "is required" for a missing key, else the rule and what was found. */
function expecting(rule: string) {
  return (issue: { input?: unknown }) => (issue.input === undefined ? 'is required' : `must be ${rule} (got ${describeValue(issue.input)})`);
}

function duration(fallback: string, { allowZero }: { allowZero: boolean }) {
  return fromCheck((input) => {
    const result = parseDurationMs(input);
    if (result.ok && result.value === 0 && !allowZero) return { ok: false, message: 'must be longer than 0' };
    return result;
  }).prefault(fallback);
}

function wholeNumber(min: number, max: number, rule: string) {
  const error = expecting(rule);
  return z.preprocess(coerceNumber, z.number({ error }).int({ error }).min(min, { error }).max(max, { error }));
}

function text(rule: string) {
  return z.string({ error: expecting(rule) }).min(1, { error: 'must not be empty' });
}

function name(what: string) {
  return text(`a ${what} name`).regex(NAME_PATTERN, { error: NAME_RULE });
}

function requestPath() {
  return fromCheck((input) => (typeof input === 'string' ? checkRequestPath(input) : { ok: false, message: `must be a path like /healthz (got ${describeValue(input)})` }));
}

function list<T extends z.ZodType>(item: T, example: string) {
  return z.array(item, { error: expecting(`a list like ${example}`) });
}

const mode = z.enum(['auto', 'manual'], { error: expecting('auto or manual') });
const port = wholeNumber(0, 65535, 'a port from 0 to 65535 (0 picks a free port)');
const httpStatus = wholeNumber(100, 599, 'an HTTP status from 100 to 599');
const errorStatus = wholeNumber(400, 599, 'an HTTP error status from 400 to 599');
/** Most worker processes a policy may ask for: beyond this, forks cost more than they serve. */
export const MAX_WORKERS = 256;
function checkWorkers(input: unknown): Checked<number | 'auto'> {
  if (input === 'auto') return { ok: true, value: 'auto' };
  const n = coerceNumber(input);
  if (typeof n === 'number' && Number.isInteger(n) && n >= 1 && n <= MAX_WORKERS) return { ok: true, value: n };
  return { ok: false, message: `must be a whole number from 1 to ${MAX_WORKERS}, or auto for one per core (got ${describeValue(input)})` };
}
const count = (max: number) => wholeNumber(1, max, `a whole number from 1 to ${max}`);

// --- TLS: file paths here; their contents are checked by check-files.ts (detour check, reload) ---
const tlsVersion = z.enum(['TLSv1.2', 'TLSv1.3'], { error: expecting('TLSv1.2 or TLSv1.3') });
const filePath = (what: string) => text(`the path of ${what}`);
const listenerTlsSchema = z.strictObject({
  cert: filePath('a PEM certificate (chain allowed)'),
  key: filePath("the certificate's PEM private key"),
  minVersion: tlsVersion.default('TLSv1.2'),
});
const siteTlsSchema = z.strictObject({
  ca: filePath('a PEM file of trusted CA certificates').optional(),
  servername: fromCheck((input) => (typeof input === 'string' ? checkHostPattern(input) : { ok: false, message: `must be a host name like ceir.internal (got ${describeValue(input)})` })).optional(),
  cert: filePath('a PEM client certificate').optional(),
  key: filePath("the client certificate's PEM private key").optional(),
  verify: z.boolean({ error: expecting('true or false') }).default(true),
});

/** A Sentinel as { host, port } or "host:port". */
const sentinelAddress = z.union([
  z.strictObject({ host: text('a host or IP address'), port: wholeNumber(1, 65535, 'a port from 1 to 65535') }),
  fromCheck((input) => {
    const match = typeof input === 'string' ? /^(?:\[([^\]]+)\]|([^:\s]+)):(\d{1,5})$/.exec(input) : null;
    const port = match ? Number(match[3]) : 0;
    if (!match || port < 1 || port > 65535) return { ok: false, message: `must be host:port or { host, port } (got ${describeValue(input)})` };
    return { ok: true, value: { host: (match[1] ?? match[2])!, port } };
  }),
], { error: (issue) => (issue.input === undefined ? 'is required' : `must be host:port or { host, port } (got ${describeValue(issue.input)})`) });

// --- Edge: request limits, retry budget, trusted proxies, access log ---

function byteSize(fallback: string) {
  return fromCheck(parseByteSize).prefault(fallback);
}

const fraction = z.preprocess(coerceNumber, z.number({ error: expecting('a fraction from 0 to 1') })
  .min(0, { error: 'must be from 0 to 1' }).max(1, { error: 'must be from 0 to 1' }));

const retryBudgetSchema = z.strictObject({
  percent: z.preprocess(coerceNumber, z.number({ error: expecting('a percentage from 0 to 100') })
    .min(0, { error: 'must be from 0 to 100' }).max(100, { error: 'must be from 0 to 100' })).default(20),
  minPerSecond: z.preprocess(coerceNumber, z.number({ error: expecting('a number of retries per second, 0 or more') })
    .min(0, { error: 'must be 0 or more' }).max(1_000_000, { error: 'must be at most 1000000' })).default(3),
}).prefault({});

const limitsSchema = z.strictObject({
  headerBytes: wholeNumber(1024, 1 << 24, 'a byte count from 1024 to 16777216').default(16384),
  headersTimeout: duration('10s', { allowZero: false }),
  requestTimeout: duration('60s', { allowZero: false }),
  bodyBytes: byteSize('10mb'),
  keepAliveTimeout: duration('5s', { allowZero: false }),
  maxConnections: wholeNumber(1, 10_000_000, 'a whole number from 1 to 10000000').default(10000),
}).superRefine((limits, ctx) => {
  // Node refuses a server whose head may take longer than the whole request.
  if (limits.headersTimeout > limits.requestTimeout) {
    ctx.addIssue({ code: 'custom', path: ['headersTimeout'], message: 'must not be longer than limits.requestTimeout', input: limits.headersTimeout });
  }
}).prefault({});

const accessLogSchema = z.strictObject({
  path: text('stdout or a file path').default('stdout'),
  sample: fraction.default(1),
});

const siteSchema = z.strictObject({
  url: fromCheck((input) => checkUrl(input, UPSTREAM_URL)),
  /** Defaults to the site's own name (one site per building). */
  building: name('building').optional(),
  timeouts: z.strictObject({
    connect: duration('1s', { allowZero: false }),
    response: duration('30s', { allowZero: false }),
  }).prefault({}),
  health: z.strictObject({
    path: requestPath().prefault('/healthz'),
    interval: duration('1s', { allowZero: false }),
    jitter: z.preprocess(coerceNumber, z.number({ error: expecting('a fraction from 0 to 1') })
      .min(0, { error: 'must be from 0 to 1' }).max(1, { error: 'must be from 0 to 1' })).default(0.1),
    timeout: duration('500ms', { allowZero: false }),
    rise: count(1000).default(2),
    fall: count(1000).default(2),
    expectStatus: list(httpStatus, '[200, 204]').min(1, { error: 'must list at least one status' }).default(() => [200]),
    expectBody: text('text the probe body must contain').optional(),
  }).prefault({}),
  passive: z.strictObject({
    failureThreshold: wholeNumber(0, 1_000_000, 'a whole number, 0 or more (0 turns request-level passive detection off)').default(3),
    statuses: list(errorStatus, '[502, 503, 504]').default(() => [502, 503, 504]),
    ratio: z.preprocess(coerceNumber, z.number({ error: expecting('a fraction above 0, at most 1') })
      .gt(0, { error: 'must be above 0 and at most 1' }).max(1, { error: 'must be above 0 and at most 1' })).default(0.5),
    minRequests: count(1_000_000).default(20),
    minClients: count(10_000).default(1),
    window: duration('10s', { allowZero: false }),
  }).prefault({}),
  tls: siteTlsSchema.optional(),
});

const verifySchema = z.strictObject({
  path: requestPath(),
  field: text('a dotted JSON field like checksum or replication.lagSeconds').optional(),
  max: z.preprocess(coerceNumber, z.number({ error: expecting('a number') })
    .min(0, { error: 'must be 0 or more' })).optional(),
  interval: duration('2s', { allowZero: false }),
  timeout: duration('1s', { allowZero: false }),
});

const routeSchema = z.strictObject({
  name: name('route'),
  match: z.strictObject({
    host: fromCheck((input) => (typeof input === 'string' ? checkHostPattern(input) : { ok: false, message: `must be a host name like ceir.example.go.id (got ${describeValue(input)})` })).optional(),
    pathPrefix: requestPath().prefault('/'),
  }).prefault({}),
  sites: list(z.string({ error: expecting('a site name') }), '[cyber1, serpong]')
    .min(1, { error: 'must list at least one site' }),
  priority: count(1_000_000).default(1),
  failover: z.strictObject({ mode: mode.default('auto') }).prefault({}),
  failback: z.strictObject({
    mode: mode.default('auto'),
    holdDown: duration('30s', { allowZero: true }),
    verify: verifySchema.optional(),
    ramp: list(wholeNumber(1, 100, 'a percentage from 1 to 100'), '[10, 50, 100]')
      .min(1, { error: 'must list at least one step (end with 100)' }).default(() => [100]),
    step: duration('10s', { allowZero: true }),
    maxConcurrent: count(1_000_000).optional(),
  }).prefault({}),
  retry: z.strictObject({
    on: list(errorStatus, '[502, 503, 504]').default(() => [502, 503, 504]),
    maxBodyBytes: wholeNumber(0, 1 << 30, 'a byte count, 0 or more').default(65536),
    budget: retryBudgetSchema,
  }).prefault({}),
  /** Absent: the top-level limits.bodyBytes. */
  limits: z.strictObject({ bodyBytes: fromCheck(parseByteSize).optional() }).optional(),
});

const webhookSchema = z.strictObject({
  url: fromCheck((input) => checkUrl(input, WEBHOOK_URL)),
  timeout: duration('2s', { allowZero: false }),
  retries: wholeNumber(0, 100, 'a whole number from 0 to 100').default(3),
  headers: z.record(z.string(), text('a header value').regex(/^[^\r\n]*$/, { error: 'must be on one line' }), {
    error: expecting('a map of header name to value'),
  }).default(() => ({})),
});

export const policySchema = z.strictObject({
  listen: z.strictObject({
    host: text('a host or IP address').default('0.0.0.0'), port: port.default(8080), tls: listenerTlsSchema.optional(),
  }).prefault({}),
  admin: z.strictObject({
    host: text('a host or IP address').default('127.0.0.1'),
    port: port.default(9090),
    token: text('a secret token').optional(),
    tokenFile: filePath('a file holding the admin token').optional(),
    publicRead: z.boolean({ error: expecting('true or false') }).default(true),
    tls: listenerTlsSchema.optional(),
  }).prefault({}),
  sites: z.record(z.string(), siteSchema, { error: expecting('a map of site name to site') }),
  routes: list(routeSchema, '[{ name: api, sites: [primary, backup] }]').min(1, { error: 'must list at least one route' }),
  drain: z.strictObject({
    buildings: list(text('a building name'), '[gedung-cyber-1]').default(() => []),
    sites: list(text('a site name'), '[cyber1]').default(() => []),
  }).prefault({}),
  unavailable: z.strictObject({
    status: errorStatus.default(503),
    retryAfter: duration('30s', { allowZero: true }),
  }).prefault({}),
  state: z.strictObject({
    redis: z.strictObject({
      url: fromCheck((input) => checkUrl(input, REDIS_URL)),
      keyPrefix: z.string({ error: expecting('a string') }).default('detour:'),
      // Sentinel: the master is found by asking these for `name` (the URL's host is then not used).
      sentinels: list(sentinelAddress, '[{ host: 10.0.0.5, port: 26379 }] or [10.0.0.5:26379]').min(1, { error: 'must list at least one sentinel' }).optional(),
      name: text('a Sentinel master group name').optional(),
      tls: z.strictObject({
        ca: filePath('a PEM file of trusted CA certificates').optional(),
        servername: fromCheck((input) => (typeof input === 'string' ? checkHostPattern(input) : { ok: false, message: `must be a host name like redis.internal (got ${describeValue(input)})` })).optional(),
      }).optional(),
    }),
  }).optional(),
  notify: z.strictObject({ webhooks: list(webhookSchema, '[{ url: https://hooks.example.go.id/detour }]').default(() => []) }).prefault({}),
  shutdown: z.strictObject({ grace: duration('10s', { allowZero: true }) }).prefault({}),
  // Edge (request hygiene, access log)
  limits: limitsSchema,
  trustedProxies: list(fromCheck(checkCidr), '[10.0.0.0/8, 192.0.2.7]').default(() => []),
  accessLog: accessLogSchema.optional(),
  // Data-plane processes (src/workers): a count, or auto for one per core.
  workers: fromCheck(checkWorkers).optional(),
});

export type PolicyDocument = z.output<typeof policySchema>;

/** Keys allowed in the map at `path` (for "did you mean"); empty when the path is not a fixed-key map. */
export function listAllowedKeys(path: readonly PropertyKey[]): string[] {
  let schema: z.core.$ZodType | undefined = policySchema;
  for (const segment of path) {
    schema = unwrap(schema);
    const def = schema?._zod.def;
    if (def === undefined) return [];
    if (def.type === 'object') schema = (def as z.core.$ZodObjectDef).shape[String(segment)];
    else if (def.type === 'array') schema = (def as z.core.$ZodArrayDef).element;
    else if (def.type === 'record') schema = (def as z.core.$ZodRecordDef).valueType;
    else return [];
  }
  const def = unwrap(schema)?._zod.def;
  return def?.type === 'object' ? Object.keys((def as z.core.$ZodObjectDef).shape) : [];
}

function unwrap(schema: z.core.$ZodType | undefined): z.core.$ZodType | undefined {
  let current = schema;
  for (let depth = 0; current !== undefined && depth < 10; depth++) {
    const def = current._zod.def as unknown as { type: string; innerType?: z.core.$ZodType; in?: z.core.$ZodType; out?: z.core.$ZodType };
    if (def.innerType !== undefined) current = def.innerType;
    else if (def.type === 'pipe') current = def.in?._zod.def.type === 'transform' ? def.out : def.in;
    else return current;
  }
  return current;
}
