// The operator console's pure half: turns the admin API's /status document and
// traffic counters into words, groups and series, with no DOM and no I/O, so
// node tests can import it directly (test/admin/console-model.test.ts) and the
// browser loads the very same file. Types: model.d.ts beside it.
//
// Every value here stays a plain string or number; app.js puts them into the
// page with textContent only, so a reason like `<img onerror=...>` is text.

/** Route states in words, as an operator says them. */
const routeStates = {
  preferred: { words: 'on preferred site', tone: 'ok' },
  'failed-over': { words: 'failed over', tone: 'warn' },
  'pending-failover': { words: 'failover awaiting approval', tone: 'act' },
  'holding-down': { words: 'holding down before failback', tone: 'warn' },
  verifying: { words: 'verifying', tone: 'warn' },
  blocked: { words: 'failback blocked', tone: 'act' },
  'awaiting-approval': { words: 'awaiting approval', tone: 'act' },
  ramping: { words: 'ramping', tone: 'warn' },
  pinned: { words: 'pinned', tone: 'warn' },
  unavailable: { words: 'unavailable: no site can serve', tone: 'bad' },
};

/** Words, a tone for colour (never shown alone) and a symbol for one route's state. */
export function describeRoute(route) {
  const known = routeStates[route.state];
  let words = known ? known.words : String(route.state).replace(/-/g, ' ');
  const tone = known ? known.tone : 'info';
  if (route.state === 'ramping') {
    const percent = rampPercent(route);
    if (percent !== undefined) words = `ramping ${percent}%`;
  }
  if (route.state === 'pinned' && route.pinnedTo) words = `pinned to ${route.pinnedTo}`;
  return { words, tone, symbol: symbols[tone], detail: route.reason ?? '' };
}

/** During a ramp `active` is the site being left: the percent is what the others already get. */
export function rampPercent(route) {
  const weights = route.weights ?? [];
  if (weights.length < 2 || route.active === null) return undefined;
  let moved = 0;
  for (const w of weights) if (w.site !== route.active) moved += w.weight;
  return Math.round(moved);
}

/**
 * The lines under a route's state: what it waits for and what an operator can
 * do. What the reason already says is not repeated.
 */
export function routeNotes(route) {
  const notes = [];
  const reason = route.reason ?? '';
  if (route.pendingFailover) {
    notes.push(`failover ${route.pendingFailover.from} → ${route.pendingFailover.to} waits for an operator's approval`);
  }
  if (route.blocked && route.blocked.code === 'approval') notes.push('failback waits for an operator\'s approval');
  else if (route.blocked) {
    notes.push(reason.includes(route.blocked.message) ? `failback blocked by the ${route.blocked.code} gate` : `failback blocked (${route.blocked.code}): ${route.blocked.message}`);
  }
  if (route.integrity && !reason.includes(route.integrity.detail)) {
    notes.push(`integrity ${route.integrity.ok ? 'matches' : 'check failing'}: ${route.integrity.detail}`);
  }
  if (route.pinnedTo) notes.push(`pinned to ${route.pinnedTo} until unpinned`);
  if (route.passiveIgnored) {
    notes.push(`still served from ${route.passiveIgnored} although live traffic marked it down: it is the route's last site`);
  }
  return notes;
}

/** Which action buttons make sense now; the API still has the last word (409 otherwise). */
export function routeActions(route) {
  const failbackStates = ['awaiting-approval', 'blocked', 'verifying', 'holding-down', 'ramping'];
  const failback = failbackStates.includes(route.state) || route.pendingFailback === true;
  return {
    pin: true,
    unpin: Boolean(route.pinnedTo),
    approveFailback: failback,
    forceFailback: failback,
    approveFailover: Boolean(route.pendingFailover),
  };
}

// Glyphs every common system font has (no emoji): a missing glyph is a box, not a signal.
const symbols = { ok: '✓', warn: '⚠', act: '◆', bad: '✕', info: '•' };

const siteHealth = {
  up: { words: 'up', tone: 'ok' },
  down: { words: 'down', tone: 'bad' },
  unknown: { words: 'not probed yet', tone: 'info' },
};

export function describeSite(site) {
  const h = siteHealth[site.health] ?? { words: String(site.health), tone: 'info' };
  return { words: h.words, tone: h.tone, symbol: symbols[h.tone] };
}

/** Sites grouped by building, in the order /status lists them, each with its state in words. */
export function groupBuildings(sites) {
  const byName = new Map();
  for (const site of sites) {
    let b = byName.get(site.building);
    if (b === undefined) {
      b = { name: site.building, sites: [] };
      byName.set(site.building, b);
    }
    b.sites.push(site);
  }
  return [...byName.values()].map((b) => {
    const down = b.sites.filter((s) => s.health === 'down').length;
    const up = b.sites.filter((s) => s.health === 'up').length;
    const drained = b.sites.every((s) => (s.drainedBy ?? []).includes('building'));
    let words;
    let tone;
    if (down === b.sites.length) {
      words = b.sites.length === 1 ? 'dark: its site is down' : `dark: all ${b.sites.length} sites down`;
      tone = 'bad';
    } else if (down > 0) {
      words = `partly down: ${down} of ${b.sites.length} sites down`;
      tone = 'warn';
    } else if (up === b.sites.length) {
      words = 'up';
      tone = 'ok';
    } else {
      words = 'not probed yet';
      tone = 'info';
    }
    if (drained) {
      words = `drained; ${words}`;
      if (tone === 'ok') tone = 'warn';
    }
    return { name: b.name, sites: b.sites, drained, words, tone, symbol: symbols[tone] };
  });
}

/**
 * When a site or building was drained, from the newest drained/undrained event
 * naming it; undefined when the events do not say (a drain from the policy
 * file, or one older than the event history).
 */
export function drainedSince(kind, name, events) {
  for (let i = events.length - 1; i >= 0; i--) {
    const e = events[i];
    if (e.type !== 'drained' && e.type !== 'undrained') continue;
    const names = kind === 'site' ? e.site === name || startsWithTarget(e.message, 'site', name) : startsWithTarget(e.message, 'building', name);
    if (!names) continue;
    return e.type === 'drained' ? e.time : undefined;
  }
  return undefined;
}

function startsWithTarget(message, kind, name) {
  return typeof message === 'string' && message.startsWith(`${kind} ${name} `);
}

/** Newest first, at most `limit`. /status lists events oldest first. */
export function newestFirst(events, limit = 50) {
  return events.slice(-limit).reverse();
}

/** What operators did: admin calls that changed something. */
const operatorEventTypes = new Set([
  'drained', 'undrained', 'pinned', 'unpinned', 'failbackApproved', 'failbackForced', 'failoverApproved', 'policyReloaded',
]);

/**
 * The audit trail, newest first: the status document's own `audit` list when
 * the gateway has one, else the operator actions among the events.
 */
export function auditTrail(doc, limit = 50) {
  if (Array.isArray(doc.audit)) {
    const entries = doc.audit.map((entry) => ({ time: typeof entry.time === 'string' ? entry.time : '', text: describeAuditEntry(entry) }));
    return entries.slice(-limit).reverse();
  }
  const events = (doc.events ?? []).filter((e) => operatorEventTypes.has(e.type));
  return newestFirst(events, limit).map((e) => ({ time: e.time, text: `${e.type}: ${e.message}` }));
}

/**
 * One admin call in words: `drain building gedung-cyber-1: ok (200) building
 * gedung-cyber-1 drained, from 127.0.0.1`; other shapes as `key: value` pairs.
 */
export function describeAuditEntry(entry) {
  if (entry === null || typeof entry !== 'object' || typeof entry.action !== 'string' || typeof entry.result !== 'string') {
    return describeFields(entry);
  }
  const target = typeof entry.target === 'string' && entry.target !== '' ? ` ${entry.target}` : '';
  const status = entry.status !== undefined ? ` (${entry.status})` : '';
  const message = typeof entry.message === 'string' && entry.message !== '' ? ` ${entry.message}` : '';
  const source = typeof entry.source === 'string' && entry.source !== '' ? `, from ${entry.source}` : '';
  return `${entry.action}${target}: ${entry.result}${status}${message}${source}`;
}

/** `key: value` pairs of a record of unknown shape (a newer gateway's fields), time left out. */
export function describeFields(record) {
  if (record === null || typeof record !== 'object') return String(record);
  return Object.entries(record)
    .filter(([k]) => k !== 'time')
    .map(([k, v]) => `${k}: ${v !== null && typeof v === 'object' ? JSON.stringify(v) : String(v)}`)
    .join(', ');
}

/** Replica facts when the status document has them (state.redis), else an empty list. */
export function describeReplicas(doc) {
  const lines = [];
  if (doc.replica !== undefined) lines.push(`this replica: ${doc.replica}`);
  if (doc.leader !== undefined) lines.push(doc.leader === null ? 'leader: none (no replica holds the lease)' : `leader: ${doc.leader}`);
  const replicas = Array.isArray(doc.replicas)
    ? doc.replicas
    : doc.replicas && typeof doc.replicas === 'object'
      ? Object.entries(doc.replicas).map(([id, r]) => ({ id, ...(r && typeof r === 'object' ? r : { value: r }) }))
      : [];
  for (const r of replicas) {
    const isLeader = doc.leader !== undefined && doc.leader !== null && r.id === doc.leader;
    lines.push(`replica ${describeFields(r)}${isLeader ? ' (leader)' : ''}`);
  }
  return lines;
}

export function describeStore(store) {
  if (!store) return { words: 'unknown', tone: 'info' };
  if (store.kind === 'memory') return { words: 'memory: this replica only', tone: 'ok' };
  return store.up
    ? { words: `${store.kind}: up`, tone: 'ok' }
    : { words: `${store.kind}: DOWN, routing on the last known state and own probes`, tone: 'bad' };
}

/** `12s ago`, `3m 5s ago`, `2h 4m ago`; '' for a time that does not parse. */
export function formatAge(iso, nowMs) {
  const t = Date.parse(iso);
  if (Number.isNaN(t)) return '';
  const s = Math.max(0, Math.floor((nowMs - t) / 1000));
  if (s < 60) return `${s}s ago`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m ${s % 60}s ago`;
  const h = Math.floor(m / 60);
  if (h < 48) return `${h}h ${m % 60}m ago`;
  return `${Math.floor(h / 24)}d ago`;
}

/** HH:MM:SS in the browser's time zone, or the raw text when it is not a time. */
export function formatClock(iso) {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return String(iso);
  const pad = (n) => String(n).padStart(2, '0');
  return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

const statusWords = {
  400: 'bad request', 401: 'unauthorized', 403: 'forbidden', 404: 'not found', 405: 'method not allowed',
  409: 'conflict', 413: 'body too large', 422: 'invalid policy', 429: 'too many requests', 500: 'internal error',
  502: 'bad gateway', 503: 'unavailable', 504: 'timeout',
};

/** A refusal as the API words it: `403 forbidden: invalid admin token`, plus policy problems on a failed reload. */
export function refusalText(status, bodyText) {
  const head = `${status}${statusWords[status] ? ` ${statusWords[status]}` : ''}`;
  let parsed;
  try {
    parsed = JSON.parse(bodyText);
  } catch {
    const text = String(bodyText ?? '').trim().slice(0, 300);
    return text === '' ? head : `${head}: ${text}`;
  }
  const message = parsed && typeof parsed.error === 'string' ? parsed.error : parsed && typeof parsed.message === 'string' ? parsed.message : '';
  const lines = parsed && Array.isArray(parsed.lines) ? parsed.lines.map(String) : [];
  return [message === '' ? head : `${head}: ${message}`, ...lines].join('\n');
}

/**
 * Request and error rates per route from counter snapshots the page samples
 * (`GET /console/traffic`). Counters only grow; a smaller value means the
 * gateway restarted, and the new value is the count since then.
 */
export function createTrafficHistory(windowMs = 5 * 60_000) {
  const samples = [];
  return {
    windowMs,
    /** Adds one snapshot `{ timeMs, routes: [{ route, requests, errors }] }`; out-of-order ones are ignored. */
    add(snapshot) {
      const last = samples[samples.length - 1];
      if (last !== undefined && snapshot.timeMs <= last.timeMs) return false;
      samples.push({ timeMs: snapshot.timeMs, routes: new Map(snapshot.routes.map((r) => [r.route, r])) });
      while (samples.length > 2 && samples[1].timeMs < snapshot.timeMs - windowMs) samples.shift();
      return true;
    },
    /** Route names in the newest snapshot. */
    routes() {
      const last = samples[samples.length - 1];
      return last === undefined ? [] : [...last.routes.keys()];
    },
    /** Rates between consecutive snapshots, oldest first: `{ timeMs, requestsPerSecond, errorsPerSecond }`. */
    series(route) {
      const points = [];
      for (let i = 1; i < samples.length; i++) {
        const a = samples[i - 1];
        const b = samples[i];
        const seconds = (b.timeMs - a.timeMs) / 1000;
        const before = a.routes.get(route) ?? { requests: 0, errors: 0 };
        const after = b.routes.get(route) ?? { requests: 0, errors: 0 };
        points.push({
          timeMs: b.timeMs,
          requestsPerSecond: counterDelta(before.requests, after.requests) / seconds,
          errorsPerSecond: counterDelta(before.errors, after.errors) / seconds,
        });
      }
      return points;
    },
  };
}

function counterDelta(before, after) {
  return after >= before ? after - before : after;
}

/** A rate in words: `12.5 req/s`, `0.2 req/s`, `0 req/s`. */
export function formatRate(perSecond, unit = 'req/s') {
  const n = perSecond >= 10 ? Math.round(perSecond) : Math.round(perSecond * 10) / 10;
  return `${n} ${unit}`;
}

/** Share of errors in words: `1.6% errors`; `no requests` when there were none. */
export function formatErrorShare(point) {
  if (point.requestsPerSecond <= 0) return point.errorsPerSecond > 0 ? 'errors without requests' : 'no requests';
  const pct = (100 * point.errorsPerSecond) / point.requestsPerSecond;
  return `${pct >= 10 ? Math.round(pct) : Math.round(pct * 10) / 10}% errors`;
}

/**
 * SVG polyline points for one series in a width x height box, time on x over
 * the window ending at `endMs`, value on y from 0 to `maxValue` (0 at the bottom).
 */
export function chartPoints(points, key, opts) {
  const { width, height, endMs, windowMs, maxValue } = opts;
  const top = maxValue > 0 ? maxValue : 1;
  return points
    .map((p) => {
      const x = width - ((endMs - p.timeMs) / windowMs) * width;
      const y = height - (Math.min(p[key], top) / top) * height;
      return `${round1(Math.max(0, x))},${round1(y)}`;
    })
    .join(' ');
}

function round1(n) {
  return Math.round(n * 10) / 10;
}
