// A worker process (`workers: N`): the data plane and nothing else. It holds
// no policy file, runs no probes and makes no decisions: the primary sends it
// the policy and every route table (worker-pool.ts), and it sends back what
// live traffic saw, batched. It opens its listener only once it has a table,
// and acknowledges every table version once requests are routed by it.
//
// It stops when the primary says so (SIGTERM to the primary), when it gets
// SIGTERM or SIGINT itself (a process-group signal, Ctrl-C), or when the
// primary goes away (the IPC channel closes): in each case it drains like a
// single-process gateway does, then exits.
import cluster from 'node:cluster';
import { Registry } from 'prom-client';
import type { Policy } from '../config/policy.js';
import { createLogger, type Logger } from '../logger.js';
import { createMetrics } from '../metrics/metrics.js';
import type { RouteTable } from '../routing/route-table.js';
import { loadPolicyMaterial, type PolicyMaterial } from '../tls/policy-material.js';
import { DataPlaneListener } from './listener.js';
import { CHANNEL, isDetourMessage, type PrimaryMessage, type WorkerMessage } from './protocol.js';
import { SignalBatcher } from './signal-batch.js';
import { deepFreeze, fromWire } from './table-wire.js';

export interface WorkerChannel {
  send(message: WorkerMessage): void;
  onMessage(handle: (message: PrimaryMessage) => void): void;
  /** The primary went away. */
  onDisconnect(handle: () => void): void;
  exit(code: number): void;
}

export function runWorker(channel: WorkerChannel, logger: Logger): { readonly stop: (graceMs?: number) => Promise<void> } {
  const registry = new Registry();
  // A worker's registry holds only its own counts: its state gauges stay empty
  // (nothing binds them), and the primary takes counters and histograms only.
  const metrics = createMetrics(registry);
  const policies = new Map<number, { policy: Policy; material: PolicyMaterial | undefined }>();
  let table: RouteTable | undefined;
  let material: PolicyMaterial | undefined;
  let listener: DataPlaneListener | undefined;
  let doubts: ReadonlySet<string> = new Set();
  let stopping: Promise<void> | undefined;
  const batcher = new SignalBatcher({ send: (batch) => channel.send({ type: 'signals', batch }) });

  const applyTable = (message: Extract<PrimaryMessage, { type: 'table' }>): void => {
    const known = new Map([...policies].map(([id, p]) => [id, p.policy]));
    const result = fromWire(message.table, known, table);
    if (!result.ok) {
      logger.error(result.message);
      return;
    }
    const prev = table;
    table = result.table;
    const held = policies.get(message.table.policyId)!;
    // Policies older than the one in use are never named again (the channel is ordered).
    for (const id of policies.keys()) if (id < message.table.policyId) policies.delete(id);
    if (held.material) material = held.material;
    if (!listener) {
      void open(table);
      return;
    }
    if (prev?.policy !== table.policy && material) listener.applyPolicy(table.policy, material);
    listener.tableChanged(table);
    channel.send({ type: 'applied', version: table.version });
  };

  const open = async (first: RouteTable): Promise<void> => {
    if (!material) {
      channel.send({ type: 'listenFailed', message: 'worker: the first policy\'s certificates or keys cannot be read' });
      channel.exit(1);
      return;
    }
    listener = new DataPlaneListener({
      policy: first.policy, material, currentTable: () => table!, passive: batcher, metrics, logger,
      inDoubt: (site) => doubts.has(site),
    });
    // The first table is in place before the first request can arrive.
    channel.send({ type: 'applied', version: first.version });
    try {
      const address = await listener.listen(first.policy.listen.host, first.policy.listen.port);
      channel.send({ type: 'listening', address: address.address, port: address.port, family: address.family });
    } catch (err) {
      channel.send({ type: 'listenFailed', message: `cannot listen on ${first.policy.listen.host}:${first.policy.listen.port}: ${(err as Error).message}` });
      // A worker that cannot serve is no use: exit, and the primary decides (stop at start, replace later).
      await listener.abort();
      channel.exit(1);
    }
  };

  const stop = (graceMs?: number): Promise<void> => {
    stopping ??= (async () => {
      await listener?.close(graceMs ?? table?.policy.shutdown.graceMs ?? 10_000);
      batcher.close();
      metrics.close();
      channel.exit(0);
    })();
    return stopping;
  };

  channel.onMessage((message) => {
    switch (message.type) {
      case 'policy': {
        const policy = deepFreeze(message.policy);
        // Certificates and keys are read here, as the primary read them; a file
        // broken in between keeps this worker's running ones.
        const loaded = loadPolicyMaterial(policy, Date.now());
        if (!loaded.ok) logger.error({ errors: loaded.errors.map((e) => `${e.path}: ${e.message}`) }, 'worker: cannot read the policy\'s certificates or keys; keeping the running ones');
        policies.set(message.policyId, { policy, material: loaded.ok ? loaded.material : undefined });
        return;
      }
      case 'table':
        applyTable(message);
        return;
      case 'doubts':
        doubts = new Set(message.sites);
        return;
      case 'siteDown':
        listener?.siteDown(message.site);
        return;
      case 'reopenLogs':
        listener?.reopenLogs();
        return;
      case 'collectMetrics':
        void registry.getMetricsAsJSON().then((snapshot) => channel.send({ type: 'metrics', id: message.id, metrics: snapshot }));
        return;
      case 'shutdown':
        void stop(message.graceMs);
        return;
    }
  });
  channel.onDisconnect(() => {
    logger.warn('worker: the primary is gone; draining and exiting');
    void stop();
  });
  channel.send({ type: 'booted' });
  return { stop };
}

/** The IPC channel of a cluster worker. */
function clusterChannel(): WorkerChannel {
  return {
    send: (message) => {
      if (process.connected) process.send?.({ [CHANNEL]: message });
    },
    onMessage: (handle) => {
      process.on('message', (message: unknown) => {
        if (isDetourMessage(message)) handle(message[CHANNEL] as PrimaryMessage);
      });
    },
    onDisconnect: (handle) => { process.once('disconnect', handle); },
    exit: (code) => {
      // Let the logger and the last IPC messages leave first.
      setTimeout(() => process.exit(code), 50).unref();
      if (process.connected) process.disconnect();
    },
  };
}

if (cluster.isWorker && process.env.DETOUR_WORKER === '1') {
  const logger = createLogger().child({ worker: cluster.worker?.id });
  const worker = runWorker(clusterChannel(), logger);
  for (const signal of ['SIGTERM', 'SIGINT'] as const) process.on(signal, () => void worker.stop());
}
