// `workers: 1` (the default): the data plane runs in the gateway's own
// process and reads the control plane's table by reference, so a table is in
// place the moment it is decided and settled() has nothing to wait for.
import type { AddressInfo } from 'node:net';
import type { Policy } from '../config/policy.js';
import type { RouteTable } from '../routing/route-table.js';
import type { PolicyMaterial } from '../tls/policy-material.js';
import type { DataPlane, WorkersStatus } from './data-plane.js';
import { DataPlaneListener, type DataPlaneListenerDeps } from './listener.js';
import type { MetricSnapshot } from './protocol.js';
import type { AckResult } from './version-acks.js';

export class LocalDataPlane implements DataPlane {
  readonly listener: DataPlaneListener;
  readonly #startedAt = new Date().toISOString();
  #table: RouteTable | undefined;

  constructor(deps: DataPlaneListenerDeps) {
    this.listener = new DataPlaneListener(deps);
  }

  async start(table: RouteTable): Promise<{ readonly address: AddressInfo; readonly isTls: boolean }> {
    this.#table = table;
    const address = await this.listener.listen(table.policy.listen.host, table.policy.listen.port);
    return { address, isTls: this.listener.isTls };
  }

  tableChanged(table: RouteTable): void {
    this.#table = table;
    this.listener.tableChanged(table);
  }

  siteDown(site: string): void {
    this.listener.siteDown(site);
  }

  applyPolicy(policy: Policy, material: PolicyMaterial): void {
    this.listener.applyPolicy(policy, material);
  }

  doubtsChanged(): void {
    // The forwarder asks the control plane directly.
  }

  settled(): Promise<AckResult<number> & { readonly version: number }> {
    return Promise.resolve({ ok: true, version: this.#table?.version ?? 0 });
  }

  reopenLogs(): void {
    this.listener.reopenLogs();
  }

  close(graceMs: number): Promise<void> {
    return this.listener.close(graceMs);
  }

  abort(): Promise<void> {
    return this.listener.abort();
  }

  metrics(primary: MetricSnapshot): Promise<MetricSnapshot> {
    return Promise.resolve(primary);
  }

  status(): WorkersStatus {
    return {
      configured: 1, count: 1, restarts: 0,
      workers: [{ id: 0, pid: process.pid, state: 'serving', tableVersion: this.#table?.version ?? 0, startedAt: this.#startedAt }],
    };
  }
}
