// The console's traffic counters: per route, how many requests detour has
// answered and how many of them were server errors, read from the same
// Prometheus exposition /metrics serves (so with workers it already covers every
// worker). The page samples this every few seconds and draws rates from the
// differences; nothing here keeps history, so the gateway pays nothing when no
// console is open. Pure: exposition text in, totals out.

/** Totals for one route since the gateway started (counters: they only grow, or reset on restart). */
export interface RouteTraffic {
  readonly route: string;
  readonly requests: number;
  /** Responses with a 5xx status, including detour's own 503 when no site could serve. */
  readonly errors: number;
}

export interface TrafficSnapshot {
  /** When the counters were read (ms since the epoch), so rates do not depend on the page's timers. */
  readonly timeMs: number;
  /** Sorted by route name. */
  readonly routes: readonly RouteTraffic[];
}

const requestsMetric = 'detour_requests_total';

/** Sums detour_requests_total by route; lines of other metrics and malformed lines are skipped. */
export function summarizeTraffic(exposition: string, timeMs: number): TrafficSnapshot {
  const totals = new Map<string, { requests: number; errors: number }>();
  for (const line of exposition.split('\n')) {
    const sample = parseSample(line);
    if (sample === undefined || sample.name !== requestsMetric) continue;
    const route = sample.labels.get('route');
    if (route === undefined) continue;
    const total = totals.get(route) ?? { requests: 0, errors: 0 };
    total.requests += sample.value;
    if (/^5\d\d$/.test(sample.labels.get('code') ?? '')) total.errors += sample.value;
    totals.set(route, total);
  }
  const routes = [...totals.entries()]
    .sort(([a], [b]) => a.localeCompare(b, 'en'))
    .map(([route, t]) => ({ route, requests: t.requests, errors: t.errors }));
  return { timeMs, routes };
}

interface Sample {
  readonly name: string;
  readonly labels: ReadonlyMap<string, string>;
  readonly value: number;
}

const metricName = /^[a-zA-Z_:][a-zA-Z0-9_:]*/;
const labelName = /^[a-zA-Z_][a-zA-Z0-9_]*/;

/** One sample line of the text format: `name{a="x",b="y"} 12 [timestamp]`; undefined for comments and junk. */
export function parseSample(line: string): Sample | undefined {
  const nameMatch = metricName.exec(line);
  if (nameMatch === null) return undefined;
  const name = nameMatch[0];
  let i = name.length;
  const labels = new Map<string, string>();
  if (line[i] === '{') {
    i++;
    while (line[i] !== '}') {
      if (line[i] === ',') i++;
      if (line[i] === '}') break;
      const key = labelName.exec(line.slice(i));
      if (key === null || line[i + key[0].length] !== '=' || line[i + key[0].length + 1] !== '"') return undefined;
      i += key[0].length + 2;
      let value = '';
      // Label values escape backslash, double quote and newline.
      for (;;) {
        const c = line[i];
        if (c === undefined) return undefined;
        if (c === '"') break;
        if (c === '\\') {
          const next = line[i + 1];
          value += next === 'n' ? '\n' : (next ?? '');
          i += 2;
          continue;
        }
        value += c;
        i++;
      }
      i++;
      labels.set(key[0], value);
    }
    i++;
  }
  const rest = line.slice(i).trim().split(/\s+/);
  const value = Number(rest[0]);
  if (rest[0] === undefined || rest[0] === '' || !Number.isFinite(value)) return undefined;
  return { name, labels, value };
}
