// The primary's metrics about its data-plane processes. A single-process
// gateway exports them too (one serving process, no restarts), so dashboards
// and alerts read the same series whatever `workers` says.
import { Counter, Gauge, type Registry } from 'prom-client';

export interface WorkerCounts {
  readonly serving: number;
  readonly starting: number;
}

export interface WorkerMetrics {
  readonly restarts: Counter;
}

export function createWorkerMetrics(registry: Registry, counts: () => WorkerCounts): WorkerMetrics {
  new Gauge({
    name: 'detour_workers',
    help: 'Data-plane processes by state: serving (has a route table and listens) or starting (forked, waiting for its table). A single-process gateway is one serving.',
    labelNames: ['state'] as const,
    registers: [registry],
    collect() {
      const c = counts();
      this.set({ state: 'serving' }, c.serving);
      this.set({ state: 'starting' }, c.starting);
    },
  });
  const restarts = new Counter({
    name: 'detour_worker_restarts_total',
    help: 'Worker processes that died and were replaced.',
    registers: [registry],
  });
  restarts.inc(0);
  return { restarts };
}
