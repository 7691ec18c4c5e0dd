// What the primary and its workers say to each other over the cluster IPC
// channel, as one closed union per direction. The channel uses Node's
// 'advanced' serialization (structured clone), so values arrive as plain,
// unfrozen copies: the worker re-freezes what it keeps (table-wire.ts).
//
// Ordering: messages from one process to another arrive in the order they
// were sent. The primary relies on it: a `siteDown` sent after a table is
// handled after that table is in place, and a policy always arrives before
// the first table that refers to it.
import type { MetricObjectWithValues, MetricValue } from 'prom-client';
import type { Policy } from '../config/policy.js';
import type { WireTable } from './table-wire.js';
import type { SignalBatch } from './signal-batch.js';

/** Sent by the primary. */
export type PrimaryMessage =
  /** A new policy; the tables that follow are computed from it. */
  | { readonly type: 'policy'; readonly policyId: number; readonly policy: Policy }
  /** A new route table: apply it, then acknowledge its version. */
  | { readonly type: 'table'; readonly table: WireTable }
  /** Sites the primary's probes doubt (their re-sends skip the retry budget). */
  | { readonly type: 'doubts'; readonly sites: readonly string[] }
  /** A site went down: re-send safe requests still waiting on it at once. */
  | { readonly type: 'siteDown'; readonly site: string }
  /** Reopen the access log (SIGUSR1 after rotation). */
  | { readonly type: 'reopenLogs' }
  /** Answer with a metrics snapshot. */
  | { readonly type: 'collectMetrics'; readonly id: number }
  /** Stop accepting, finish in-flight requests within graceMs, exit. */
  | { readonly type: 'shutdown'; readonly graceMs: number };

/** Sent by a worker. */
export type WorkerMessage =
  /** The worker is up and waits for a policy and a table before it listens. */
  | { readonly type: 'booted' }
  /** This table version is in place: requests from now on are routed by it. */
  | { readonly type: 'applied'; readonly version: number }
  /** The data-plane listener is open (after the first table). */
  | { readonly type: 'listening'; readonly address: string; readonly port: number; readonly family: string }
  /** The listener could not open: the primary stops with this message. */
  | { readonly type: 'listenFailed'; readonly message: string }
  /** Passive signals of live traffic, batched. */
  | { readonly type: 'signals'; readonly batch: SignalBatch }
  | { readonly type: 'metrics'; readonly id: number; readonly metrics: MetricSnapshot };

export type MetricSnapshot = readonly MetricObjectWithValues<MetricValue<string>>[];

/** Every message carries this key, so a stray message on the channel (a library's) is ignored. */
export const CHANNEL = 'detour';

export function isDetourMessage(value: unknown): value is { readonly [CHANNEL]: PrimaryMessage | WorkerMessage } {
  return typeof value === 'object' && value !== null && CHANNEL in value;
}
