// A counter and a histogram for the two metrics every proxied request updates
// (detour_requests_total, detour_request_duration_seconds). prom-client's
// Counter and Histogram build a labels object, check its names and hash it on
// every call, even through a label child; in the gateway under load that was
// about 7 us of the roughly 200 us of CPU a request costs (measured by turning
// the recording off). Here each label set is a cell, found once and then
// updated with plain arithmetic; the request path keeps the cells it uses.
//
// They are registered in the same prom-client Registry and export exactly
// what prom-client's own Counter and Histogram would for the same
// observations (names, label order with `le` first, cumulative buckets,
// `+Inf`, `_sum`, `_count`, `aggregator: 'sum'`), in the text exposition and
// in getMetricsAsJSON (which is what worker processes send to the primary):
// test/metrics/hot-metrics.test.ts compares them line for line.
import type { Registry } from 'prom-client';

type Labels<L extends string> = Readonly<Record<L, string>>;

interface MetricValue {
  readonly value: number;
  readonly labels: Record<string, string | number>;
  readonly metricName?: string;
}

interface MetricObject {
  readonly name: string;
  readonly help: string;
  readonly type: 'counter' | 'histogram';
  readonly values: MetricValue[];
  readonly aggregator: 'sum';
}

interface HotConfig<L extends string> {
  readonly name: string;
  readonly help: string;
  readonly labelNames: readonly L[];
  readonly registers: readonly Registry[];
}

/** A label set's key: its values in labelNames order (they cannot contain NUL: label values are names and codes). */
function keyOf<L extends string>(labelNames: readonly L[], labels: Labels<L>): string {
  let key = '';
  for (const name of labelNames) {
    const value = labels[name];
    if (typeof value !== 'string') throw new Error(`metric label ${name} is missing`);
    key += `${value}\u0000`;
  }
  return key;
}

/** The label set as its own object, in labelNames order (what the exposition prints). */
function copyLabels<L extends string>(labelNames: readonly L[], labels: Labels<L>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of labelNames) out[name] = labels[name];
  return out;
}

abstract class HotMetric<L extends string, C> {
  readonly name: string;
  readonly help: string;
  readonly aggregator = 'sum' as const;
  protected readonly labelNames: readonly L[];
  /** Live cells by label key; a reset empties them in place, so cells kept by callers stay valid. */
  protected readonly cells = new Map<string, C>();

  constructor(config: HotConfig<L>) {
    this.name = config.name;
    this.help = config.help;
    this.labelNames = config.labelNames;
    for (const registry of config.registers) registry.registerMetric(this as unknown as Parameters<Registry['registerMetric']>[0]);
  }

  protected cellFor(labels: Labels<L>): C {
    const key = keyOf(this.labelNames, labels);
    let cell = this.cells.get(key);
    if (!cell) this.cells.set(key, (cell = this.create(copyLabels(this.labelNames, labels))));
    return cell;
  }

  protected abstract create(labels: Record<string, string>): C;
  abstract reset(): void;
  abstract get(): Promise<MetricObject>;
}

export class CounterCell {
  value = 0;
  /** Counted (even by 0) since the last reset: prom-client exports a series from then on. */
  seen = false;
  constructor(readonly labels: Readonly<Record<string, string>>) {}

  inc(amount = 1): void {
    if (!(amount >= 0) || !Number.isFinite(amount)) throw new Error(`a counter only goes up by a finite amount (got ${amount})`);
    this.value += amount;
    this.seen = true;
  }
}

/** The counter: `labels(...)` is the cell to keep; `inc(labels, n)` for one-off use. */
export class HotCounter<L extends string> extends HotMetric<L, CounterCell> {
  readonly type = 'counter' as const;

  labels(labels: Labels<L>): CounterCell {
    return this.cellFor(labels);
  }

  inc(labels: Labels<L>, amount = 1): void {
    this.cellFor(labels).inc(amount);
  }

  protected create(labels: Record<string, string>): CounterCell {
    return new CounterCell(labels);
  }

  /** Every series goes back to "never counted" (not exported until counted again). */
  reset(): void {
    for (const cell of this.cells.values()) {
      cell.value = 0;
      cell.seen = false;
    }
  }

  get(): Promise<MetricObject> {
    const values: MetricValue[] = [];
    for (const cell of this.cells.values()) {
      if (!cell.seen) continue;
      values.push({ value: cell.value, labels: { ...cell.labels } });
    }
    return Promise.resolve({ help: this.help, name: this.name, type: this.type, values, aggregator: this.aggregator });
  }
}

export class HistogramCell {
  /** Observations per bucket (not cumulative); the last slot is above every bound. */
  readonly counts: Float64Array;
  sum = 0;
  count = 0;

  constructor(readonly labels: Readonly<Record<string, string>>, private readonly bounds: readonly number[]) {
    this.counts = new Float64Array(bounds.length + 1);
  }

  observe(value: number): void {
    if (!Number.isFinite(value)) throw new TypeError(`Value is not a valid number: ${value}`);
    const bounds = this.bounds;
    let i = 0;
    while (i < bounds.length && value > bounds[i]!) i++;
    this.counts[i]!++;
    this.sum += value;
    this.count++;
  }
}

/** The histogram: `labels(...)` is the cell to keep; `observe(labels, v)` for one-off use. */
export class HotHistogram<L extends string> extends HotMetric<L, HistogramCell> {
  readonly type = 'histogram' as const;
  private readonly bounds: readonly number[];

  constructor(config: HotConfig<L> & { readonly buckets: readonly number[] }) {
    super(config);
    this.bounds = Object.freeze([...config.buckets].sort((a, b) => a - b));
  }

  labels(labels: Labels<L>): HistogramCell {
    return this.cellFor(labels);
  }

  observe(labels: Labels<L>, value: number): void {
    this.cellFor(labels).observe(value);
  }

  protected create(labels: Record<string, string>): HistogramCell {
    return new HistogramCell(labels, this.bounds);
  }

  reset(): void {
    for (const cell of this.cells.values()) {
      cell.counts.fill(0);
      cell.sum = 0;
      cell.count = 0;
    }
  }

  get(): Promise<MetricObject> {
    const values: MetricValue[] = [];
    const bucket = `${this.name}_bucket`;
    for (const cell of this.cells.values()) {
      if (cell.count === 0) continue;
      let cumulative = 0;
      for (let i = 0; i < this.bounds.length; i++) {
        cumulative += cell.counts[i]!;
        values.push({ value: cumulative, labels: { le: this.bounds[i]!, ...cell.labels }, metricName: bucket });
      }
      values.push({ value: cell.count, labels: { le: '+Inf', ...cell.labels }, metricName: bucket });
      values.push({ value: cell.sum, labels: { ...cell.labels }, metricName: `${this.name}_sum` });
      values.push({ value: cell.count, labels: { ...cell.labels }, metricName: `${this.name}_count` });
    }
    return Promise.resolve({ name: this.name, help: this.help, type: this.type, values, aggregator: this.aggregator });
  }
}
